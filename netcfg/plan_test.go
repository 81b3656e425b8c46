package netcfg_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/netcfg"
)

// These tests need no root: they plan against link names and apply to
// fakeHandle.

var existing = []string{"lo", "wan", "lan", "bnc"}

func TestNewPlanRejectsBadSettings(t *testing.T) {
	cases := []struct {
		name   string
		modify func(ifaces []settings.Interface) []settings.Interface
		key    string
		text   string
	}{
		{"unknown role", func(i []settings.Interface) []settings.Interface {
			i[1].Roles = append(i[1].Roles, "smtp")
			return i
		}, "interface[1].roles", `lan: "smtp" is not one of inbound, bounce, internal, admin`},
		{"role on two interfaces", func(i []settings.Interface) []settings.Interface {
			i[1].Roles = append(i[1].Roles, settings.RoleInbound)
			return i
		}, "interface[1].roles", "lan: role inbound is already on wan"},
		{"missing role", func(i []settings.Interface) []settings.Interface {
			i[0].Roles = []string{settings.RoleInbound}
			i[0].BounceAddress = ""
			return i
		}, "interface", "role bounce is on no interface"},
		{"bounce without own address", func(i []settings.Interface) []settings.Interface {
			i[0].BounceAddress = ""
			return i
		}, "interface[0].bounce_address", "wan: bounce shares this interface with inbound, so it needs its own address"},
		{"bounce on inbound address", func(i []settings.Interface) []settings.Interface {
			i[0].BounceAddress = "192.0.2.10"
			return i
		}, "interface[0].bounce_address", "wan: 192.0.2.10 is the first address, which inbound uses"},
		{"bounce address elsewhere", func(i []settings.Interface) []settings.Interface {
			i[0].BounceAddress = "192.0.2.30"
			return i
		}, "interface[0].bounce_address", "wan: 192.0.2.30 is not one of the addresses of this interface"},
		{"gateway outside subnet", func(i []settings.Interface) []settings.Interface {
			i[0].Gateway = "198.51.100.1"
			return i
		}, "interface[0].gateway", "wan: 198.51.100.1 is outside the subnets of this interface"},
		{"gateway is own address", func(i []settings.Interface) []settings.Interface {
			i[0].Gateway = "192.0.2.10"
			return i
		}, "interface[0].gateway", "wan: 192.0.2.10 is an address of this interface itself"},
		{"bounce without gateway", func(i []settings.Interface) []settings.Interface {
			i[0].Gateway = ""
			return i
		}, "interface[0].gateway", "wan: the bounce role needs a gateway"},
		{"unused gateway", func(i []settings.Interface) []settings.Interface {
			i[1].Gateway = "198.51.100.1"
			return i
		}, "interface[1].gateway", "lan: unused"},
		{"routes without gateway", func(i []settings.Interface) []settings.Interface {
			i[1].Routes = []string{"10.0.0.0/8"}
			return i
		}, "interface[1].routes", "lan: routes need a gateway"},
		{"duplicate address", func(i []settings.Interface) []settings.Interface {
			i[1].Addresses = []string{"192.0.2.10/24"}
			return i
		}, "interface[1].addresses", "lan: address 192.0.2.10 is already on wan"},
		{"bad prefix", func(i []settings.Interface) []settings.Interface {
			i[1].Addresses = []string{"198.51.100.10"}
			return i
		}, "interface[1].addresses", `lan: "198.51.100.10" is not a CIDR prefix`},
		{"no address", func(i []settings.Interface) []settings.Interface {
			i[1].Addresses = nil
			return i
		}, "interface[1].addresses", "lan: no address"},
		{"bounce on dhcp", func(i []settings.Interface) []settings.Interface {
			i[0].Addresses, i[0].BounceAddress, i[0].Gateway, i[0].DNS = nil, "", "", nil
			i[0].DHCP = true
			return i
		}, "interface[0].dhcp", "wan: the bounce role needs a fixed address"},
		{"dhcp with addresses", func(i []settings.Interface) []settings.Interface {
			i[1].DHCP = true
			i[1].DNS = nil
			return i
		}, "interface[1].addresses", "lan: addresses come from DHCP"},
		{"table of main", func(i []settings.Interface) []settings.Interface {
			i[0].BounceTable = 254
			return i
		}, "interface[0].bounce_table", "wan: 254 is not a free table id"},
		{"table without bounce", func(i []settings.Interface) []settings.Interface {
			i[1].BounceTable = 100
			return i
		}, "interface[1].bounce_table", "lan: only the interface with the bounce role"},
		{"tiny mtu", func(i []settings.Interface) []settings.Interface {
			i[1].MTU = 40
			return i
		}, "interface[1].mtu", "lan: 40 is not an MTU"},
		{"bad dns", func(i []settings.Interface) []settings.Interface {
			i[1].DNS = []string{"ns1"}
			return i
		}, "interface[1].dns", `lan: "ns1" is not an IP address`},
		{"bounce alone, version mismatch", func(i []settings.Interface) []settings.Interface {
			i[0].Roles = []string{settings.RoleInbound}
			i[0].BounceAddress = ""
			return append(i, settings.Interface{
				Name: "bnc", Roles: []string{settings.RoleBounce},
				Addresses: []string{"2001:db8:2::20/64", "203.0.113.20/24"}, Gateway: "203.0.113.1",
			})
		}, "interface[2].bounce_address", "bnc: the first address 2001:db8:2::20, which bounce uses, and the gateway"},
		{"name twice", func(i []settings.Interface) []settings.Interface {
			i[1].Name = "wan"
			return i
		}, "interface[1].name", "wan: listed twice"},
		{"long name", func(i []settings.Interface) []settings.Interface {
			i[1].Name = "lan-with-a-long-name"
			return i
		}, "interface[1].name", "not a valid device name"},
		{"missing device", func(i []settings.Interface) []settings.Interface {
			i[1].Name = "eth7"
			return i
		}, "interface[1].name", "eth7: no such network device"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := netcfg.NewPlan(c.modify(twoInterfaces()), existing, "")
			if err == nil {
				t.Fatalf("plan accepted: %+v", p)
			}
			var errs settings.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not settings.Errors", err)
			}
			i := slices.IndexFunc(errs, func(e *settings.FieldError) bool { return e.Key == c.key })
			if i < 0 {
				t.Fatalf("no error for key %s in %v", c.key, err)
			}
			if !strings.Contains(errs[i].Message, c.text) {
				t.Errorf("message %q does not contain %q", errs[i].Message, c.text)
			}
		})
	}
}

func TestNewPlanNeverSourcesMainRouteFromBounce(t *testing.T) {
	ifaces := twoInterfaces()
	ifaces[0].Addresses = []string{"2001:db8:1::10/64", "192.0.2.20/24", "192.0.2.10/24"}
	p, err := netcfg.NewPlan(ifaces, existing, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Routes[0].String(); got != "default via 192.0.2.1 dev wan src 192.0.2.10" {
		t.Errorf("main default route = %q, want it from 192.0.2.10, not the bounce address", got)
	}
}

func TestNewPlanAcceptsIPv6LinkLocalGateway(t *testing.T) {
	ifaces := twoInterfaces()
	ifaces[0].Addresses = []string{"2001:db8:1::10/64", "2001:db8:1::20/64"}
	ifaces[0].BounceAddress = "2001:db8:1::20"
	ifaces[0].Gateway = "fe80::1"
	if _, err := netcfg.NewPlan(ifaces, existing, ""); err != nil {
		t.Errorf("link-local gateway rejected: %v", err)
	}
}

func TestNewPlanRoutesAndRules(t *testing.T) {
	ifaces := twoInterfaces()
	ifaces[1].Gateway = "198.51.100.1"
	ifaces[1].Routes = []string{"10.1.2.3/8"}
	p, err := netcfg.NewPlan(ifaces, existing, "/tmp/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range p.Routes {
		routes = append(routes, r.String())
	}
	assertEqual(t, "routes", routes, []string{
		"default via 192.0.2.1 dev wan src 192.0.2.10",
		"192.0.2.0/24 dev wan src 192.0.2.20 table 200",
		"default via 192.0.2.1 dev wan src 192.0.2.20 table 200",
		"10.0.0.0/8 via 198.51.100.1 dev lan src 198.51.100.10",
	})
	var rules []string
	for _, r := range p.Rules {
		rules = append(rules, r.String())
	}
	assertEqual(t, "rules", rules, []string{"from 192.0.2.20/32 lookup 200 priority 1000"})
	want := []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("198.51.100.53")}
	if !slices.Equal(p.Nameservers, want) {
		t.Errorf("name servers = %v, want %v", p.Nameservers, want)
	}
}

func TestApplyRemovesOnlyOwnStaleState(t *testing.T) {
	h := newFakeHandle("wan", "lan")
	wan, lan := h.links[0].Attrs().Index, h.links[1].Attrs().Index
	h.addrs[wan] = []netlink.Addr{
		{IPNet: mustCIDR("192.0.2.10/24"), Flags: unix.IFA_F_PERMANENT},
		{IPNet: mustCIDR("192.0.2.99/24"), Flags: unix.IFA_F_PERMANENT},
		{IPNet: mustCIDR("fe80::1/64"), Flags: unix.IFA_F_PERMANENT},
		// From IPv6 autoconfiguration: it has a lifetime, so it stays.
		{IPNet: mustCIDR("2001:db8:1::a8/64"), ValidLft: 86400},
	}
	h.routes = []netlink.Route{
		// Installed by netcfg under an older plan.
		{Table: 200, Dst: mustCIDR("0.0.0.0/0"), Gw: net.ParseIP("192.0.2.2"), LinkIndex: wan,
			Protocol: netcfg.RouteProtocol},
		// Installed by someone else.
		{Table: unix.RT_TABLE_MAIN, Dst: mustCIDR("203.0.113.0/24"), Gw: net.ParseIP("198.51.100.7"),
			LinkIndex: lan, Protocol: unix.RTPROT_STATIC},
	}
	stale := netlink.NewRule()
	stale.Family, stale.Priority, stale.Table, stale.Src = netlink.FAMILY_V4, netcfg.BounceRulePriority, 200,
		mustCIDR("192.0.2.99/32")
	foreign := netlink.NewRule()
	foreign.Family, foreign.Priority, foreign.Table = netlink.FAMILY_V4, 500, 50
	h.rules = []netlink.Rule{*stale, *foreign}

	p, err := netcfg.NewPlan(twoInterfaces(), []string{"wan", "lan"}, "")
	if err != nil {
		t.Fatal(err)
	}
	changes, err := netcfg.Apply(h, p, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	assertEqual(t, "changes", got, []string{
		"wan: set link up",
		"wan: delete address 192.0.2.99/24",
		"wan: add address 192.0.2.20/24",
		"lan: set link up",
		"lan: add address 198.51.100.10/24",
		"wan: delete route default via 192.0.2.2 dev wan table 200",
		"wan: add route default via 192.0.2.1 dev wan src 192.0.2.10",
		"wan: add route 192.0.2.0/24 dev wan src 192.0.2.20 table 200",
		"wan: add route default via 192.0.2.1 dev wan src 192.0.2.20 table 200",
		"delete rule from 192.0.2.99/32 lookup 200 priority 1000",
		"add rule from 192.0.2.20/32 lookup 200 priority 1000",
	})
	if !slices.ContainsFunc(h.routes, func(r netlink.Route) bool { return r.Protocol == unix.RTPROT_STATIC }) {
		t.Error("foreign route deleted")
	}
	if !slices.ContainsFunc(h.rules, func(r netlink.Rule) bool { return r.Priority == 500 }) {
		t.Error("foreign rule deleted")
	}
	if !slices.ContainsFunc(h.addrs[wan], func(a netlink.Addr) bool { return a.IP.String() == "fe80::1" }) {
		t.Error("IPv6 link-local address deleted")
	}
	if !slices.ContainsFunc(h.addrs[wan], func(a netlink.Addr) bool { return a.IP.String() == "2001:db8:1::a8" }) {
		t.Error("autoconfigured IPv6 address deleted")
	}

	again, err := netcfg.Apply(h, p, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second apply changed %v", again)
	}
}

func dhcpLan() []settings.Interface {
	ifaces := twoInterfaces()
	ifaces[1].Addresses, ifaces[1].DNS = nil, nil
	ifaces[1].DHCP = true
	return ifaces
}

func TestApplyLeavesDHCPAddressesAlone(t *testing.T) {
	h := newFakeHandle("wan", "lan")
	lan := h.links[1].Attrs().Index
	h.addrs[lan] = []netlink.Addr{{IPNet: mustCIDR("198.51.100.77/24")}}

	p, err := netcfg.NewPlan(dhcpLan(), []string{"wan", "lan"}, "")
	if err != nil {
		t.Fatal(err)
	}
	changes, err := netcfg.Apply(h, p, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Link == "lan" && c.String() != "lan: set link up" {
			t.Errorf("DHCP link changed: %s", c)
		}
	}
	if len(h.addrs[lan]) != 1 {
		t.Errorf("lease address touched: %v", h.addrs[lan])
	}
}

func TestRoleAddrsUsesDHCPLease(t *testing.T) {
	h := newFakeHandle("wan", "lan")
	wan, lan := h.links[0].Attrs().Index, h.links[1].Attrs().Index
	h.addrs[wan] = []netlink.Addr{{IPNet: mustCIDR("192.0.2.10/24")}, {IPNet: mustCIDR("192.0.2.20/24")}}

	_, err := netcfg.RoleAddrs(h, dhcpLan())
	want := "internal role: no address on lan yet: the DHCP client has no lease\n" +
		"admin role: no address on lan yet: the DHCP client has no lease"
	if err == nil || err.Error() != want {
		t.Errorf("error without a lease = %v, want %q", err, want)
	}

	h.addrs[lan] = []netlink.Addr{{IPNet: mustCIDR("fe80::5/64")}, {IPNet: mustCIDR("198.51.100.77/24")}}
	addrs, err := netcfg.RoleAddrs(h, dhcpLan())
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs[settings.RoleInternal].Addr.String(); got != "198.51.100.77" {
		t.Errorf("internal role address = %s, want the lease address 198.51.100.77", got)
	}
}

func TestRoleAddrsReportsTentativeAddress(t *testing.T) {
	h := newFakeHandle("wan", "lan")
	wan, lan := h.links[0].Attrs().Index, h.links[1].Attrs().Index
	h.addrs[wan] = []netlink.Addr{
		{IPNet: mustCIDR("192.0.2.10/24")},
		{IPNet: mustCIDR("192.0.2.20/24"), Flags: unix.IFA_F_TENTATIVE},
	}
	h.addrs[lan] = []netlink.Addr{{IPNet: mustCIDR("198.51.100.10/24")}}

	_, err := netcfg.RoleAddrs(h, twoInterfaces())
	want := "bounce role: address 192.0.2.20 on wan is still in IPv6 duplicate address detection: " +
		"retry in a few seconds"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestRoleAddrsWithoutInterfaceSettings(t *testing.T) {
	addrs, err := netcfg.RoleAddrs(newFakeHandle("eth0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 0 {
		t.Errorf("role addresses without interface settings: %v", addrs)
	}
}

func TestSettingsParseInterfaceSection(t *testing.T) {
	file := `
[inbound]
listen = ["0.0.0.0:25"]

[bounce]
source_address = "192.0.2.21"

[[interface]]
name = "wan"
roles = ["inbound", "bounce"]
addresses = ["192.0.2.10/24", "192.0.2.20/24"]
bounce_address = "192.0.2.20"
gateway = "192.0.2.1"
bounce_table = 120
mtu = 1400

[[interface]]
name = "lan"
roles = ["internal", "admin"]
dhcp = true
`
	_, err := settings.Parse([]byte(file))
	var errs settings.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not settings.Errors", err)
	}
	if len(errs) != 1 || errs[0].Key != "bounce.source_address" {
		t.Fatalf("errors = %v, want one for bounce.source_address", err)
	}

	s, err := settings.Parse([]byte(strings.Replace(file, "192.0.2.21", "192.0.2.20", 1)))
	if err != nil {
		t.Fatal(err)
	}
	wan := s.Interfaces[0]
	if wan.BounceAddress != "192.0.2.20" || wan.Table() != 120 || wan.MTU != 1400 || wan.Gateway != "192.0.2.1" {
		t.Errorf("wan parsed as %+v", wan)
	}
	if !s.Interfaces[1].DHCP {
		t.Errorf("lan parsed as %+v", s.Interfaces[1])
	}
}
