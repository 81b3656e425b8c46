package netcfg_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/internal/netns"
	"github.com/lambgate/lambgate/netcfg"
)

// These tests need root: they build the appliance's links in namespaces of
// their own. Addresses:
//
//	internet peer  192.0.2.1      <-veth->  wan  192.0.2.10 (inbound), 192.0.2.20 (bounce)
//	lan peer       198.51.100.1   <-veth->  lan  198.51.100.10 (internal, admin)
//	bounce peer    203.0.113.1    <-veth->  bnc  203.0.113.20/26 (bounce alone)

// network is an appliance namespace with its links and the peers behind them.
type network struct {
	appliance, internet, lan, bounce *netns.NS
	resolvConf                       string
}

// newNetwork builds the appliance namespace with wan and lan links, and bnc
// too when withBounceLink is set. Only the peers are configured.
func newNetwork(t *testing.T, withBounceLink bool) *network {
	n := &network{
		appliance:  netns.New(t, "app"),
		internet:   netns.New(t, "inet"),
		lan:        netns.New(t, "lan"),
		resolvConf: filepath.Join(t.TempDir(), "resolv.conf"),
	}
	netns.Veth(t, n.appliance, "wan", n.internet, "eth0")
	netns.Veth(t, n.appliance, "lan", n.lan, "eth0")
	n.internet.AddAddr("eth0", "192.0.2.1/24")
	n.lan.AddAddr("eth0", "198.51.100.1/24")
	if withBounceLink {
		n.bounce = netns.New(t, "bnc")
		netns.Veth(t, n.appliance, "bnc", n.bounce, "eth0")
		n.bounce.AddAddr("eth0", "203.0.113.1/26")
	}
	return n
}

// twoInterfaces is the default layout: wan carries inbound and bounce, lan
// carries internal and admin.
func twoInterfaces() []settings.Interface {
	return []settings.Interface{
		{
			Name:          "wan",
			Roles:         []string{settings.RoleInbound, settings.RoleBounce},
			Addresses:     []string{"192.0.2.10/24", "192.0.2.20/24"},
			BounceAddress: "192.0.2.20",
			Gateway:       "192.0.2.1",
			DNS:           []string{"192.0.2.53"},
		},
		{
			Name:      "lan",
			Roles:     []string{settings.RoleInternal, settings.RoleAdmin},
			Addresses: []string{"198.51.100.10/24"},
			DNS:       []string{"198.51.100.53"},
		},
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (n *network) configure(t *testing.T, ifaces []settings.Interface) []netcfg.Change {
	t.Helper()
	changes, err := netcfg.Configure(n.appliance.Netlink(), ifaces, n.resolvConf, discardLog())
	if err != nil {
		t.Fatalf("configure: %v\nchanges so far: %v", err, changes)
	}
	return changes
}

func addrsOf(t *testing.T, h *netlink.Handle, link string) []string {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.IPNet.String())
	}
	slices.Sort(out)
	return out
}

// routesIn returns the routes of a table as "dst via gw dev src" strings.
func routesIn(t *testing.T, h *netlink.Handle, table int) []string {
	t.Helper()
	list, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		link, err := h.LinkByIndex(r.LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		s += " dev " + link.Attrs().Name
		if r.Src != nil {
			s += " src " + r.Src.String()
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// bounceRules returns the rules at netcfg's priority as "from lookup" strings.
func bounceRules(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	list, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list {
		if r.Priority == netcfg.BounceRulePriority {
			out = append(out, fmt.Sprintf("from %s lookup %d", r.Src, r.Table))
		}
	}
	return out
}

func assertEqual(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestApplyTwoInterfacesReadsBack(t *testing.T) {
	n := newNetwork(t, false)
	changes := n.configure(t, twoInterfaces())
	if len(changes) == 0 {
		t.Fatal("first apply reported no changes")
	}
	h := n.appliance.Netlink()

	assertEqual(t, "wan addresses", addrsOf(t, h, "wan"), []string{"192.0.2.10/24", "192.0.2.20/24"})
	assertEqual(t, "lan addresses", addrsOf(t, h, "lan"), []string{"198.51.100.10/24"})
	for _, name := range []string{"wan", "lan"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s is down after apply", name)
		}
	}

	main := routesIn(t, h, unix.RT_TABLE_MAIN)
	if !slices.Contains(main, "0.0.0.0/0 via 192.0.2.1 dev wan src 192.0.2.10") {
		t.Errorf("main table has no default route via the wan gateway from the inbound address: %q", main)
	}
	assertEqual(t, "bounce table", routesIn(t, h, settings.DefaultBounceTable), []string{
		"0.0.0.0/0 via 192.0.2.1 dev wan src 192.0.2.20",
		"192.0.2.0/24 dev wan src 192.0.2.20",
	})
	assertEqual(t, "bounce rules", bounceRules(t, h), []string{"from 192.0.2.20/32 lookup 200"})

	resolv, err := os.ReadFile(n.resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resolv), "nameserver 192.0.2.53\nnameserver 198.51.100.53\n") {
		t.Errorf("resolv.conf lacks both name servers in order:\n%s", resolv)
	}
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	n := newNetwork(t, false)
	n.configure(t, twoInterfaces())
	if changes := n.configure(t, twoInterfaces()); len(changes) != 0 {
		t.Errorf("second apply changed %v", changes)
	}
}

func TestApplyChangesOnlyTheDifference(t *testing.T) {
	cases := []struct {
		name   string
		modify func(ifaces []settings.Interface)
		want   []string
	}{
		{
			name:   "lan address",
			modify: func(ifaces []settings.Interface) { ifaces[1].Addresses = []string{"198.51.100.11/24"} },
			want:   []string{"lan: delete address 198.51.100.10/24", "lan: add address 198.51.100.11/24"},
		},
		{
			name: "bounce address",
			modify: func(ifaces []settings.Interface) {
				ifaces[0].Addresses = []string{"192.0.2.10/24", "192.0.2.21/24"}
				ifaces[0].BounceAddress = "192.0.2.21"
			},
			want: []string{
				"wan: delete address 192.0.2.20/24",
				"wan: add address 192.0.2.21/24",
				"wan: delete route default via 192.0.2.1 dev wan src 192.0.2.20 table 200",
				"wan: delete route 192.0.2.0/24 dev wan src 192.0.2.20 table 200",
				"wan: add route 192.0.2.0/24 dev wan src 192.0.2.21 table 200",
				"wan: add route default via 192.0.2.1 dev wan src 192.0.2.21 table 200",
				"delete rule from 192.0.2.20/32 lookup 200 priority 1000",
				"add rule from 192.0.2.21/32 lookup 200 priority 1000",
			},
		},
		{
			name:   "bounce table",
			modify: func(ifaces []settings.Interface) { ifaces[0].BounceTable = 300 },
			want: []string{
				"wan: delete route default via 192.0.2.1 dev wan src 192.0.2.20 table 200",
				"wan: delete route 192.0.2.0/24 dev wan src 192.0.2.20 table 200",
				"wan: add route 192.0.2.0/24 dev wan src 192.0.2.20 table 300",
				"wan: add route default via 192.0.2.1 dev wan src 192.0.2.20 table 300",
				"delete rule from 192.0.2.20/32 lookup 200 priority 1000",
				"add rule from 192.0.2.20/32 lookup 300 priority 1000",
			},
		},
		{
			name:   "mtu",
			modify: func(ifaces []settings.Interface) { ifaces[1].MTU = 1400 },
			want:   []string{"lan: set mtu 1400"},
		},
		{
			name:   "dns",
			modify: func(ifaces []settings.Interface) { ifaces[1].DNS = nil },
			want:   []string{"set resolv.conf RESOLV"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNetwork(t, false)
			n.configure(t, twoInterfaces())

			ifaces := twoInterfaces()
			c.modify(ifaces)
			var got []string
			for _, ch := range n.configure(t, ifaces) {
				got = append(got, strings.ReplaceAll(ch.String(), n.resolvConf, "RESOLV"))
			}
			// Deletions within a table come in the kernel's dump order.
			assertEqual(t, "changes", got, c.want)
			if again := n.configure(t, ifaces); len(again) != 0 {
				t.Errorf("apply after the change changed %v", again)
			}
		})
	}
}

// snapshot returns everything netcfg could touch in the namespace, read
// with netlink. It leaves out what the kernel changes by itself while a
// link comes up: IPv6 link-local addresses and the routes of the local
// table, which appear when duplicate address detection ends.
func snapshot(t *testing.T, h *netlink.Handle, resolvConf string) string {
	t.Helper()
	var b strings.Builder
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		fmt.Fprintf(&b, "link %s up=%v mtu=%d\n", a.Name, a.Flags&net.FlagUp != 0, a.MTU)
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, addr := range addrs {
			if !addr.IP.IsLinkLocalUnicast() {
				fmt.Fprintf(&b, "  address %s\n", addr.IPNet)
			}
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Table == unix.RT_TABLE_LOCAL || (r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast()) {
			continue
		}
		fmt.Fprintf(&b, "route table %d %s via %s dev %s src %s proto %d\n",
			r.Table, r.Dst, r.Gw, names[r.LinkIndex], r.Src, r.Protocol)
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := h.RuleList(family)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			fmt.Fprintf(&b, "rule %s\n", r)
		}
	}
	data, err := os.ReadFile(resolvConf)
	if err != nil {
		fmt.Fprintf(&b, "resolv.conf: %v\n", err)
	}
	b.Write(data)
	return b.String()
}

func TestRejectedPlanLeavesNamespaceUntouched(t *testing.T) {
	cases := []struct {
		name   string
		modify func(ifaces []settings.Interface)
		want   string
	}{
		{
			name:   "bounce shares inbound address",
			modify: func(ifaces []settings.Interface) { ifaces[0].BounceAddress = "192.0.2.10" },
			want:   "interface[0].bounce_address: wan: 192.0.2.10 is the first address",
		},
		{
			name:   "gateway outside subnet",
			modify: func(ifaces []settings.Interface) { ifaces[0].Gateway = "203.0.113.1" },
			want:   "interface[0].gateway: wan: 203.0.113.1 is outside the subnets",
		},
		{
			name:   "missing device",
			modify: func(ifaces []settings.Interface) { ifaces[1].Name = "eth7" },
			want:   "interface[1].name: eth7: no such network device",
		},
		{
			name:   "missing role",
			modify: func(ifaces []settings.Interface) { ifaces[1].Roles = []string{settings.RoleInternal} },
			want:   "interface: role admin is on no interface",
		},
		{
			name:   "duplicate address",
			modify: func(ifaces []settings.Interface) { ifaces[1].Addresses = []string{"192.0.2.20/24"} },
			want:   "interface[1].addresses: lan: address 192.0.2.20 is already on wan",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNetwork(t, false)
			// Start from an applied configuration, so that a rejected plan
			// that deleted anything would show.
			n.configure(t, twoInterfaces())
			before := snapshot(t, n.appliance.Netlink(), n.resolvConf)

			ifaces := twoInterfaces()
			ifaces[1].MTU = 1400
			ifaces[1].DNS = []string{"198.51.100.54"}
			c.modify(ifaces)
			changes, err := netcfg.Configure(n.appliance.Netlink(), ifaces, n.resolvConf, discardLog())
			if err == nil {
				t.Fatalf("plan accepted, changes %v", changes)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			var errs settings.Errors
			if !errors.As(err, &errs) {
				t.Errorf("error %v is not settings.Errors", err)
			}
			if len(changes) != 0 {
				t.Errorf("rejected plan reported changes %v", changes)
			}
			if after := snapshot(t, n.appliance.Netlink(), n.resolvConf); after != before {
				t.Errorf("namespace changed by a rejected plan:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestBounceAloneOnThirdInterface(t *testing.T) {
	n := newNetwork(t, true)
	ifaces := twoInterfaces()
	ifaces[0].Roles = []string{settings.RoleInbound}
	ifaces[0].Addresses = []string{"192.0.2.10/24"}
	ifaces[0].BounceAddress = ""
	ifaces = append(ifaces, settings.Interface{
		Name:        "bnc",
		Roles:       []string{settings.RoleBounce},
		Addresses:   []string{"203.0.113.20/26"},
		Gateway:     "203.0.113.1",
		BounceTable: 120,
	})
	n.configure(t, ifaces)
	h := n.appliance.Netlink()

	assertEqual(t, "bnc addresses", addrsOf(t, h, "bnc"), []string{"203.0.113.20/26"})
	assertEqual(t, "bounce table", routesIn(t, h, 120), []string{
		"0.0.0.0/0 via 203.0.113.1 dev bnc src 203.0.113.20",
		"203.0.113.0/26 dev bnc src 203.0.113.20",
	})
	assertEqual(t, "bounce rules", bounceRules(t, h), []string{"from 203.0.113.20/32 lookup 120"})
	main := routesIn(t, h, unix.RT_TABLE_MAIN)
	if !slices.Contains(main, "0.0.0.0/0 via 192.0.2.1 dev wan src 192.0.2.10") {
		t.Errorf("main default route is not via wan: %q", main)
	}
	for _, r := range main {
		if strings.Contains(r, "via 203.0.113.1") {
			t.Errorf("main table routes through the bounce gateway: %q", r)
		}
	}

	addrs, err := netcfg.RoleAddrs(h, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	want := netcfg.RoleAddr{Role: settings.RoleBounce, Addr: netip.MustParseAddr("203.0.113.20"), Device: "bnc"}
	if addrs[settings.RoleBounce] != want {
		t.Errorf("bounce role address = %+v, want %+v", addrs[settings.RoleBounce], want)
	}

	// The target is outside every subnet of the appliance, so each
	// connection goes through a gateway: the bounce peer's for the bounce
	// address, the internet peer's for everything else.
	serveWhoAmI(t, n.internet, "internet")
	serveWhoAmI(t, n.bounce, "bounce")
	if got := dialFrom(t, n.appliance, "203.0.113.20"); got != "bounce 203.0.113.20" {
		t.Errorf("connection from the bounce address: peer replied %q, want the bounce peer", got)
	}
	if got := dialFrom(t, n.appliance, "192.0.2.10"); got != "internet 192.0.2.10" {
		t.Errorf("connection from the inbound address: peer replied %q, want the internet peer", got)
	}
}

// target is an address on the loopback of both the internet peer and the
// lan peer, so the peer that accepts a connection to it shows the route.
const target = "203.0.113.80"

// serveWhoAmI accepts connections on target:25 in ns and replies with the
// peer's label and the client address it saw.
func serveWhoAmI(t *testing.T, ns *netns.NS, label string) {
	ns.AddAddr("lo", target+"/32")
	ln := ns.Listen("tcp", target+":25")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", label, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// dialFrom connects from src in the appliance namespace to target:25 and
// returns the reply: the label of the peer that accepted and the source
// address it saw.
func dialFrom(t *testing.T, appliance *netns.NS, src string) string {
	t.Helper()
	c, err := appliance.Dial(context.Background(), "tcp", src, target+":25")
	if err != nil {
		t.Fatalf("dial %s from %s: %v", target, src, err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF {
		t.Fatalf("read reply of %s to %s: %v", target, src, err)
	}
	return strings.TrimSpace(line)
}

func TestBounceTrafficLeavesViaBounceGateway(t *testing.T) {
	n := newNetwork(t, false)
	ifaces := twoInterfaces()
	// The main table reaches the target through the lan, so only the
	// bounce table can send traffic to it through the internet peer.
	ifaces[1].Gateway = "198.51.100.1"
	ifaces[1].Routes = []string{target + "/32"}
	n.configure(t, ifaces)

	n.internet.Run("ip", "route", "add", "default", "via", "192.0.2.10")
	n.lan.Run("ip", "route", "add", "default", "via", "198.51.100.10")
	serveWhoAmI(t, n.internet, "internet")
	serveWhoAmI(t, n.lan, "lan")

	capture := n.appliance.Capture("wan", "tcp port 25")
	cases := []struct{ src, want string }{
		{"192.0.2.20", "internet 192.0.2.20"},
		{"198.51.100.10", "lan 198.51.100.10"},
		{"192.0.2.10", "lan 192.0.2.10"},
	}
	for _, c := range cases {
		if got := dialFrom(t, n.appliance, c.src); got != c.want {
			t.Errorf("connection from %s: peer replied %q, want %q", c.src, got, c.want)
		}
	}
	syn, ok := capture.WaitFor(defaultWait, "IP 192.0.2.20.", "> "+target+".25: Flags [S]")
	if !ok {
		t.Errorf("no SYN from the bounce address seen on wan")
	}
	for _, l := range capture.Stop() {
		if !strings.Contains(l, "192.0.2.20") {
			t.Errorf("packet on wan not from or to the bounce address: %s (bounce SYN: %s)", l, syn)
		}
	}
}

func TestRoleAddrsFailsWithoutBounceAddress(t *testing.T) {
	n := newNetwork(t, false)
	ifaces := twoInterfaces()
	n.configure(t, ifaces)
	h := n.appliance.Netlink()

	addrs, err := netcfg.RoleAddrs(h, ifaces)
	if err != nil {
		t.Fatalf("role addresses after apply: %v", err)
	}
	wantAll := map[string]netcfg.RoleAddr{
		settings.RoleInbound:  {settings.RoleInbound, netip.MustParseAddr("192.0.2.10"), "wan"},
		settings.RoleBounce:   {settings.RoleBounce, netip.MustParseAddr("192.0.2.20"), "wan"},
		settings.RoleInternal: {settings.RoleInternal, netip.MustParseAddr("198.51.100.10"), "lan"},
		settings.RoleAdmin:    {settings.RoleAdmin, netip.MustParseAddr("198.51.100.10"), "lan"},
	}
	for role, want := range wantAll {
		if addrs[role] != want {
			t.Errorf("%s role: got %+v, want %+v", role, addrs[role], want)
		}
	}

	wan, err := h.LinkByName("wan")
	if err != nil {
		t.Fatal(err)
	}
	bounce, err := netlink.ParseAddr("192.0.2.20/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrDel(wan, bounce); err != nil {
		t.Fatal(err)
	}
	addrs, err = netcfg.RoleAddrs(h, ifaces)
	if err == nil {
		t.Fatal("no error with the bounce address removed")
	}
	if got, want := err.Error(), "bounce role: address 192.0.2.20 not present on wan"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if _, ok := addrs[settings.RoleBounce]; ok {
		t.Errorf("bounce role still has an address: %+v", addrs[settings.RoleBounce])
	}
	if addrs[settings.RoleInbound] != wantAll[settings.RoleInbound] {
		t.Errorf("inbound role: got %+v, want %+v", addrs[settings.RoleInbound], wantAll[settings.RoleInbound])
	}
}

func TestStatusReportsLinkAndCounters(t *testing.T) {
	n := newNetwork(t, false)
	ifaces := twoInterfaces()
	ifaces[0].MTU = 1400
	n.configure(t, ifaces)
	ifaces = append(ifaces, settings.Interface{Name: "eth9", Roles: []string{}})

	// Traffic on wan, so its counters are not zero.
	serveWhoAmI(t, n.internet, "internet")
	dialFrom(t, n.appliance, "192.0.2.20")

	st, err := netcfg.Status(n.appliance.Netlink(), ifaces)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 {
		t.Fatalf("got %d statuses, want 3", len(st))
	}
	wan := st[0]
	if wan.Name != "wan" || !wan.Found {
		t.Errorf("first status = %+v, want wan found", wan)
	}
	if !wan.Up {
		t.Error("wan not up")
	}
	if !wan.Carrier {
		t.Error("wan has no carrier although its veth peer is up")
	}
	if wan.MTU != 1400 {
		t.Errorf("wan mtu = %d, want 1400", wan.MTU)
	}
	if wan.TxPackets == 0 || wan.RxPackets == 0 || wan.TxBytes == 0 || wan.RxBytes == 0 {
		t.Errorf("wan counters zero after a connection: %+v", wan)
	}
	var v4 []string
	for _, a := range wan.Addresses {
		if !strings.HasPrefix(a, "fe80:") {
			v4 = append(v4, a)
		}
	}
	slices.Sort(v4)
	assertEqual(t, "wan addresses", v4, []string{"192.0.2.10/24", "192.0.2.20/24"})
	if missing := st[2]; missing.Found {
		t.Errorf("eth9 reported as found: %+v", missing)
	}
}

// defaultWait bounds waits for packets that a test has already caused.
const defaultWait = 10 * time.Second

func TestApplyIPv6BounceAddress(t *testing.T) {
	n := newNetwork(t, false)
	n.internet.AddAddr("eth0", "2001:db8:1::1/64")
	ifaces := twoInterfaces()
	ifaces[0].Addresses = []string{"2001:db8:1::10/64", "2001:db8:1::20/64", "192.0.2.10/24"}
	ifaces[0].BounceAddress = "2001:db8:1::20"
	ifaces[0].Gateway = "2001:db8:1::1"
	n.configure(t, ifaces)
	h := n.appliance.Netlink()

	rules, err := h.RuleList(netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		if r.Priority == netcfg.BounceRulePriority {
			got = append(got, fmt.Sprintf("from %s lookup %d", r.Src, r.Table))
		}
	}
	assertEqual(t, "IPv6 bounce rules", got, []string{"from 2001:db8:1::20/128 lookup 200"})

	list, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: 200}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range list {
		got = append(got, fmt.Sprintf("%s via %s src %s", r.Dst, r.Gw, r.Src))
	}
	slices.Sort(got)
	assertEqual(t, "IPv6 bounce table", got, []string{
		"2001:db8:1::/64 via <nil> src 2001:db8:1::20",
		"::/0 via 2001:db8:1::1 src 2001:db8:1::20",
	})
	if changes := n.configure(t, ifaces); len(changes) != 0 {
		t.Errorf("second apply changed %v", changes)
	}
}

func TestDHCPLeaseSurvivesApply(t *testing.T) {
	n := newNetwork(t, false)
	ifaces := twoInterfaces()
	ifaces[1].Addresses, ifaces[1].DNS = nil, nil
	ifaces[1].DHCP = true
	// What a DHCP client does: an address with a lease lifetime.
	n.appliance.Run("ip", "addr", "add", "198.51.100.77/24", "dev", "lan", "valid_lft", "3600", "preferred_lft", "3600")
	n.configure(t, ifaces)
	h := n.appliance.Netlink()

	assertEqual(t, "lan addresses", addrsOf(t, h, "lan"), []string{"198.51.100.77/24"})
	if again := n.configure(t, ifaces); len(again) != 0 {
		t.Errorf("second apply changed %v", again)
	}
	addrs, err := netcfg.RoleAddrs(h, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	want := netcfg.RoleAddr{Role: settings.RoleInternal, Addr: netip.MustParseAddr("198.51.100.77"), Device: "lan"}
	if addrs[settings.RoleInternal] != want {
		t.Errorf("internal role = %+v, want the lease address %+v", addrs[settings.RoleInternal], want)
	}
}

func TestAutoconfiguredAddressSurvivesApply(t *testing.T) {
	n := newNetwork(t, false)
	// An address with a lifetime, as IPv6 autoconfiguration adds it, on a
	// link that netcfg configures statically.
	n.appliance.Run("ip", "addr", "add", "2001:db8:1::a8/64", "dev", "wan", "nodad",
		"valid_lft", "3600", "preferred_lft", "3600")
	n.configure(t, twoInterfaces())
	if again := n.configure(t, twoInterfaces()); len(again) != 0 {
		t.Errorf("second apply changed %v", again)
	}
	out := n.appliance.Run("ip", "-6", "addr", "show", "dev", "wan")
	if !strings.Contains(out, "2001:db8:1::a8/64") {
		t.Errorf("autoconfigured address deleted:\n%s", out)
	}
}
