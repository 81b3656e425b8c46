package netcfg

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lambgate/lambgate/appliance/settings"
)

// RouteProtocol marks every route netcfg installs (the rtm_protocol field,
// shown by "ip route" as "proto 76"). Apply deletes stale routes only when
// they carry it, so routes of a DHCP client or an administrator survive.
const RouteProtocol = 76

// BounceRulePriority is the priority of the rule that sends traffic from the
// bounce address to the bounce table. It must be below 32766, the rule of
// the main table. Apply treats every rule at this priority as its own.
const BounceRulePriority = 1000

// mainTable is the kernel's main routing table (RT_TABLE_MAIN).
const mainTable = 254

// Plan is the desired network state computed from the interface settings.
// It is pure data: NewPlan touches nothing, and Apply brings the machine to
// it.
type Plan struct {
	Links  []LinkPlan
	Routes []RoutePlan
	Rules  []RulePlan
	// Nameservers go to ResolvConf; when either is empty, DNS is left alone.
	Nameservers []netip.Addr
	ResolvConf  string
}

// LinkPlan is the desired state of one device.
type LinkPlan struct {
	Name string
	// MTU is 0 to keep the device's MTU.
	MTU int
	// DHCP links get no address changes: a DHCP client owns them.
	DHCP  bool
	Addrs []netip.Prefix
}

// RoutePlan is one route netcfg owns.
type RoutePlan struct {
	Link  string
	Table int
	Dst   netip.Prefix
	// Gateway is invalid for a connected route.
	Gateway netip.Addr
	// Src is the preferred source address; invalid leaves it to the kernel.
	Src netip.Addr
}

// RulePlan is one policy routing rule netcfg owns.
type RulePlan struct {
	Priority int
	Src      netip.Prefix
	Table    int
}

func (r RoutePlan) String() string {
	s := r.Dst.String()
	if r.Dst.Bits() == 0 {
		s = "default"
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	s += " dev " + r.Link
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	if r.Table != mainTable {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

func (r RulePlan) String() string {
	return fmt.Sprintf("from %s lookup %d priority %d", r.Src, r.Table, r.Priority)
}

// NewPlan validates the interface settings against the names of the links
// that exist and computes the desired state. A plan that cannot work is
// returned as settings.Errors, one entry per problem, each naming the
// interface; nothing has been touched then. resolvConf is the file the DNS
// servers are written to (the appliance uses /tmp/resolv.conf).
func NewPlan(ifaces []settings.Interface, links []string, resolvConf string) (*Plan, error) {
	errs := settings.CheckInterfaces(ifaces)
	for n, i := range ifaces {
		if i.Name != "" && !slices.Contains(links, i.Name) {
			errs = append(errs, &settings.FieldError{
				Key:     fmt.Sprintf("interface[%d].name", n),
				Message: i.Name + ": no such network device on this machine",
			})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	p := &Plan{ResolvConf: resolvConf}
	for k := range ifaces {
		i := &ifaces[k]
		prefixes, err := i.Prefixes()
		if err != nil {
			return nil, err
		}
		p.Links = append(p.Links, LinkPlan{Name: i.Name, MTU: i.MTU, DHCP: i.DHCP, Addrs: prefixes})
		if i.DHCP {
			continue
		}
		for _, d := range i.DNS {
			p.Nameservers = append(p.Nameservers, netip.MustParseAddr(d))
		}
		p.addRoutes(i, prefixes)
	}
	return p, nil
}

// addRoutes adds the routes and rules of one static interface: the main
// default route for the inbound role, the bounce table and its rule for the
// bounce role, and the extra routes through the gateway.
func (p *Plan) addRoutes(i *settings.Interface, prefixes []netip.Prefix) {
	var gw, first netip.Addr
	if i.Gateway != "" {
		gw = netip.MustParseAddr(i.Gateway)
		first = firstOfFamily(prefixes, gw, i.BounceAddress)
	}

	// The main default route names the inbound address as its source, so
	// that a socket bound to no address never leaves from the bounce
	// address, whichever address the kernel made primary.
	if gw.IsValid() && i.HasRole(settings.RoleInbound) {
		p.Routes = append(p.Routes, RoutePlan{
			Link: i.Name, Table: mainTable, Dst: defaultRoute(gw), Gateway: gw, Src: first,
		})
	}
	for _, r := range i.Routes {
		p.Routes = append(p.Routes, RoutePlan{
			Link: i.Name, Table: mainTable, Dst: netip.MustParsePrefix(r).Masked(), Gateway: gw, Src: first,
		})
	}

	if !i.HasRole(settings.RoleBounce) {
		return
	}
	bounce, _ := i.RoleAddress(settings.RoleBounce)
	k := slices.IndexFunc(prefixes, func(p netip.Prefix) bool { return p.Addr() == bounce })
	table := i.Table()

	// The bounce table holds the connected subnet of the bounce address and
	// nothing of the internal side, so a bounce can reach only its own
	// subnet and the bounce gateway, never the lan.
	p.Routes = append(p.Routes,
		RoutePlan{Link: i.Name, Table: table, Dst: prefixes[k].Masked(), Src: bounce},
		RoutePlan{Link: i.Name, Table: table, Dst: defaultRoute(gw), Gateway: gw, Src: bounce},
	)
	p.Rules = append(p.Rules, RulePlan{
		Priority: BounceRulePriority, Src: netip.PrefixFrom(bounce, bounce.BitLen()), Table: table,
	})
}

func defaultRoute(gw netip.Addr) netip.Prefix {
	if gw.Is4() {
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	return netip.MustParsePrefix("::/0")
}

// firstOfFamily returns the first address of the gateway's IP version
// other than the bounce address: the source of routes that are not the
// bounce role's. It returns an invalid address when there is none, and the
// kernel then chooses.
func firstOfFamily(prefixes []netip.Prefix, gw netip.Addr, bounceAddress string) netip.Addr {
	for _, p := range prefixes {
		if p.Addr().Is4() == gw.Is4() && p.Addr().String() != bounceAddress {
			return p.Addr()
		}
	}
	return netip.Addr{}
}
