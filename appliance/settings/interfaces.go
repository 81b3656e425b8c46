package settings

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Interface roles. Every role is carried by exactly one interface once the
// interface section is used at all.
const (
	// RoleInbound is the SMTP listener for internet mail.
	RoleInbound = "inbound"
	// RoleBounce is every message the appliance originates (DSNs,
	// auto-replies): its own source address, HELO name and default route.
	RoleBounce = "bounce"
	// RoleInternal relays accepted mail to the internal mail server.
	RoleInternal = "internal"
	// RoleAdmin is the web setup and the metrics endpoint.
	RoleAdmin = "admin"
)

// Roles lists every role in a fixed order, for validation and display.
var Roles = []string{RoleInbound, RoleBounce, RoleInternal, RoleAdmin}

// DefaultBounceTable is the routing table of the bounce role when
// bounce_table is 0.
const DefaultBounceTable = 200

// Interface is one network interface, the roles it carries and its static
// configuration. netcfg applies it with netlink.
type Interface struct {
	// Name is the Linux device name, such as "eth0" or "wan".
	Name  string   `toml:"name"`
	Roles []string `toml:"roles"`
	// Addresses are CIDR prefixes such as "192.0.2.10/24". The first one
	// is the address of every role on this interface except bounce.
	Addresses []string `toml:"addresses"`
	// BounceAddress is the bounce role's address, one of Addresses. It is
	// required when bounce shares the interface with another role, because
	// bounces must never leave from the address of the organisation's real
	// mail. Alone on an interface, bounce uses the first address.
	BounceAddress string `toml:"bounce_address"`
	// Gateway is the next hop of this interface. On the inbound role's
	// interface it becomes the default route of the main table. On the
	// bounce role's interface it is the default route of the bounce table.
	// On other interfaces it is used only for Routes.
	// TODO: one gateway per interface, so a dual-stack interface gets a
	// default route and a bounce table for one IP version only.
	Gateway string `toml:"gateway"`
	// Routes are extra destination prefixes reached through Gateway, such
	// as internal networks behind a router on the lan side.
	Routes []string `toml:"routes"`
	// DHCP leaves addresses, routes and DNS of this interface to a DHCP
	// client; netcfg then only brings the link up and sets its MTU.
	DHCP bool `toml:"dhcp"`
	// DNS lists name server addresses written to resolv.conf.
	DNS []string `toml:"dns"`
	// BounceTable is the routing table id of the bounce role's policy
	// routing; 0 means DefaultBounceTable. Only valid with the bounce role.
	BounceTable int `toml:"bounce_table"`
	// MTU in bytes; 0 leaves the device's MTU unchanged.
	MTU int `toml:"mtu"`
}

// HasRole reports whether the interface carries role.
func (i *Interface) HasRole(role string) bool { return slices.Contains(i.Roles, role) }

// Table returns the routing table id of the bounce role on this interface.
func (i *Interface) Table() int {
	if i.BounceTable == 0 {
		return DefaultBounceTable
	}
	return i.BounceTable
}

// Prefixes parses Addresses. Validation has checked them, so a parse error
// only happens on settings that skipped Validate.
func (i *Interface) Prefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(i.Addresses))
	for _, a := range i.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("interface %s: address %q is not a CIDR prefix", i.Name, a)
		}
		out = append(out, p)
	}
	return out, nil
}

// RoleAddress returns the configured address of role on this interface:
// BounceAddress (or the first address) for bounce, the first address for
// every other role. It returns false for a DHCP interface, whose address is
// known only from the live state, and for a role the interface lacks.
func (i *Interface) RoleAddress(role string) (netip.Addr, bool) {
	if !i.HasRole(role) || i.DHCP || len(i.Addresses) == 0 {
		return netip.Addr{}, false
	}
	if role == RoleBounce && i.BounceAddress != "" {
		a, err := netip.ParseAddr(i.BounceAddress)
		return a, err == nil
	}
	p, err := netip.ParsePrefix(i.Addresses[0])
	return p.Addr(), err == nil
}

// RoleInterface returns the interface that carries role, or nil.
func RoleInterface(ifaces []Interface, role string) *Interface {
	for k := range ifaces {
		if ifaces[k].HasRole(role) {
			return &ifaces[k]
		}
	}
	return nil
}

// validateInterfaces checks the interface section on its own and against
// the source addresses of the bounce and internal sections. An empty
// section is valid: nothing is configured by netlink then.
func (s *Settings) validateInterfaces() Errors {
	if len(s.Interfaces) == 0 {
		return nil
	}
	errs := CheckInterfaces(s.Interfaces)

	if b := RoleInterface(s.Interfaces, RoleBounce); b != nil {
		if want, ok := b.RoleAddress(RoleBounce); ok && s.Bounce.SourceAddress != "" &&
			s.Bounce.SourceAddress != want.String() {
			errs = append(errs, &FieldError{Key: "bounce.source_address", Message: fmt.Sprintf(
				"%s differs from the bounce role's address %s on %s: leave it empty or make them equal",
				s.Bounce.SourceAddress, want, b.Name)})
		}
		if s.Bounce.Interface != "" && s.Bounce.Interface != b.Name {
			errs = append(errs, &FieldError{Key: "bounce.interface", Message: fmt.Sprintf(
				"%q is not %s, the interface with the bounce role", s.Bounce.Interface, b.Name)})
		}
	}
	errs = append(errs, s.checkListenRole("inbound.listen", RoleInbound, s.Inbound.Listen)...)
	if s.Admin.Listen != "" {
		errs = append(errs, s.checkListenRole("admin.listen", RoleAdmin, []string{s.Admin.Listen})...)
	}
	if in := RoleInterface(s.Interfaces, RoleInternal); in != nil {
		if want, ok := in.RoleAddress(RoleInternal); ok && s.Internal.SourceAddress != "" &&
			s.Internal.SourceAddress != want.String() {
			errs = append(errs, &FieldError{Key: "internal.source_address", Message: fmt.Sprintf(
				"%s differs from the internal role's address %s on %s: leave it empty or make them equal",
				s.Internal.SourceAddress, want, in.Name)})
		}
	}
	return errs
}

// checkListenRole rejects a listen address whose host is neither
// unspecified (then Bound fills in the role's address) nor the role's own
// address, because a listener on another role's address would, for
// example, put the web setup on the internet-facing interface.
func (s *Settings) checkListenRole(key, role string, listen []string) Errors {
	want, ok := roleAddress(s.Interfaces, role)
	if !ok {
		return nil
	}
	var errs Errors
	for _, l := range listen {
		host, _, err := net.SplitHostPort(l)
		if err != nil || unspecifiedHost(host) {
			continue
		}
		if a, err := netip.ParseAddr(host); err != nil || a != want {
			errs = append(errs, &FieldError{Key: key, Message: fmt.Sprintf(
				"%s is not on the %s role's address %s: use %s or an unspecified host such as 0.0.0.0",
				l, role, want, net.JoinHostPort(want.String(), "PORT"))})
		}
	}
	return errs
}

// CheckInterfaces validates an interface section without looking at the
// machine: names, roles, addresses, gateway, routes, DNS, table and MTU.
// Keys have the form interface[N].field with N counted from 0, and every
// message names the interface. netcfg calls it before touching anything.
func CheckInterfaces(ifaces []Interface) Errors {
	var errs Errors
	roleOwner := map[string]string{}
	addrOwner := map[netip.Addr]string{}
	names := map[string]bool{}

	for n := range ifaces {
		i := &ifaces[n]
		bad := func(field, format string, args ...any) {
			errs = append(errs, &FieldError{
				Key:     fmt.Sprintf("interface[%d].%s", n, field),
				Message: i.Name + ": " + fmt.Sprintf(format, args...),
			})
		}

		if !validLinkName(i.Name) {
			bad("name", "not a valid device name: use 1 to 15 characters without '/', ':' or spaces")
		}
		if names[i.Name] {
			bad("name", "listed twice")
		}
		names[i.Name] = true

		for _, r := range i.Roles {
			if !slices.Contains(Roles, r) {
				bad("roles", "%q is not one of %s", r, strings.Join(Roles, ", "))
				continue
			}
			if other, ok := roleOwner[r]; ok {
				bad("roles", "role %s is already on %s: each role needs one interface", r, other)
				continue
			}
			roleOwner[r] = i.Name
		}

		prefixes := checkAddresses(i, bad, addrOwner)
		checkBounceAddress(i, prefixes, bad)
		checkGateway(i, prefixes, bad)

		for _, d := range i.DNS {
			if _, err := netip.ParseAddr(d); err != nil {
				bad("dns", "%q is not an IP address", d)
			}
		}
		if i.DHCP && len(i.DNS) > 0 {
			bad("dns", "name servers come from DHCP on this interface: remove dns or dhcp")
		}
		if t := i.BounceTable; t != 0 {
			if !i.HasRole(RoleBounce) {
				bad("bounce_table", "only the interface with the bounce role has a bounce table")
			}
			if t < 1 || t > 0x7fffffff || t == 253 || t == 254 || t == 255 {
				bad("bounce_table", "%d is not a free table id: use 1 to 252 or 256 to 2147483647", t)
			}
		}
		if i.MTU != 0 && (i.MTU < 68 || i.MTU > 65535) {
			bad("mtu", "%d is not an MTU: use 68 to 65535 bytes, or 0 to keep the device's", i.MTU)
		}
	}

	for _, r := range Roles {
		if _, ok := roleOwner[r]; !ok {
			errs = append(errs, &FieldError{Key: "interface", Message: fmt.Sprintf(
				"role %s is on no interface: add it to the roles of one", r)})
		}
	}
	return errs
}

// checkAddresses parses the addresses of i, reports duplicates across all
// interfaces through owner, and returns the prefixes that parsed.
func checkAddresses(i *Interface, bad func(string, string, ...any), owner map[netip.Addr]string) []netip.Prefix {
	if i.DHCP {
		if len(i.Addresses) > 0 {
			bad("addresses", "addresses come from DHCP on this interface: remove addresses or dhcp")
		}
		if i.HasRole(RoleBounce) {
			bad("dhcp", "the bounce role needs a fixed address for its PTR and SPF records: turn dhcp off")
		}
		return nil
	}
	if len(i.Addresses) == 0 {
		bad("addresses", "no address: give one such as \"192.0.2.10/24\", or set dhcp = true")
	}

	var prefixes []netip.Prefix
	for _, a := range i.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			bad("addresses", "%q is not a CIDR prefix such as \"192.0.2.10/24\"", a)
			continue
		}
		addr := p.Addr()
		if addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() || addr.IsLinkLocalUnicast() {
			bad("addresses", "%s cannot be an interface address", a)
			continue
		}
		if other, ok := owner[addr]; ok {
			bad("addresses", "address %s is already on %s", addr, other)
			continue
		}
		owner[addr] = i.Name
		prefixes = append(prefixes, p)
	}
	return prefixes
}

func checkBounceAddress(i *Interface, prefixes []netip.Prefix, bad func(string, string, ...any)) {
	shared := i.HasRole(RoleBounce) && len(i.Roles) > 1
	if i.BounceAddress == "" {
		if shared && !i.DHCP {
			bad("bounce_address", "bounce shares this interface with %s, so it needs its own address: "+
				"add a second address and name it in bounce_address", otherRoles(i))
		}
		// Alone on the interface, bounce uses the first address.
		gw, err := netip.ParseAddr(i.Gateway)
		if i.HasRole(RoleBounce) && len(prefixes) > 0 && err == nil && gw.Is4() != prefixes[0].Addr().Is4() {
			bad("bounce_address", "the first address %s, which bounce uses, and the gateway %s are of "+
				"different IP versions: name an address of the gateway's version in bounce_address",
				prefixes[0].Addr(), gw)
		}
		return
	}
	if !i.HasRole(RoleBounce) {
		bad("bounce_address", "set on an interface without the bounce role")
		return
	}
	a, err := netip.ParseAddr(i.BounceAddress)
	if err != nil {
		bad("bounce_address", "%q is not an IP address", i.BounceAddress)
		return
	}
	k := slices.IndexFunc(prefixes, func(p netip.Prefix) bool { return p.Addr() == a })
	if k < 0 {
		bad("bounce_address", "%s is not one of the addresses of this interface", a)
		return
	}
	if gw, err := netip.ParseAddr(i.Gateway); err == nil && gw.Is4() != a.Is4() {
		bad("bounce_address", "%s and the gateway %s are of different IP versions", a, gw)
	}
	if shared && k == 0 {
		bad("bounce_address", "%s is the first address, which %s uses: bounces need a separate address",
			a, otherRoles(i))
	}
}

func checkGateway(i *Interface, prefixes []netip.Prefix, bad func(string, string, ...any)) {
	if i.DHCP {
		if i.Gateway != "" || len(i.Routes) > 0 {
			bad("gateway", "routes come from DHCP on this interface: remove gateway and routes or dhcp")
		}
		return
	}
	if i.Gateway == "" {
		if i.HasRole(RoleBounce) {
			bad("gateway", "the bounce role needs a gateway for the default route of its own table")
		}
		if len(i.Routes) > 0 {
			bad("routes", "routes need a gateway on this interface")
		}
		return
	}

	gw, err := netip.ParseAddr(i.Gateway)
	if err != nil {
		bad("gateway", "%q is not an IP address", i.Gateway)
		return
	}
	inside := false
	for _, p := range prefixes {
		if p.Addr() == gw {
			bad("gateway", "%s is an address of this interface itself", gw)
			return
		}
		if p.Masked().Contains(gw) {
			inside = true
		}
	}
	// An IPv6 router is usually named by its link-local address, which is
	// on every link without being in a configured prefix.
	if gw.Is6() && gw.IsLinkLocalUnicast() {
		inside = true
	}
	if !inside && len(prefixes) > 0 {
		bad("gateway", "%s is outside the subnets of this interface (%s)", gw, strings.Join(i.Addresses, ", "))
	}
	if !i.HasRole(RoleInbound) && !i.HasRole(RoleBounce) && len(i.Routes) == 0 {
		bad("gateway", "unused: only the inbound and bounce roles get a default route, "+
			"so list the networks behind %s in routes or remove the gateway", gw)
	}
	for _, r := range i.Routes {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			bad("routes", "%q is not a CIDR prefix such as \"10.0.0.0/8\"", r)
			continue
		}
		if p.Addr().Is4() != gw.Is4() {
			bad("routes", "%s and the gateway %s are of different IP versions", r, gw)
		}
	}
}

func otherRoles(i *Interface) string {
	var out []string
	for _, r := range i.Roles {
		if r != RoleBounce {
			out = append(out, r)
		}
	}
	return strings.Join(out, " and ")
}

// validLinkName follows the kernel's dev_valid_name: at most 15 bytes, not
// "." or "..", and no '/', ':' or white space.
func validLinkName(name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return false
	}
	return !strings.ContainsAny(name, "/: \t\n\r\v\f")
}
