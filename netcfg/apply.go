package netcfg

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/settings"
)

// Op is the kind of modification a Change made.
type Op string

const (
	OpAdd    Op = "add"
	OpDelete Op = "delete"
	OpSet    Op = "set"
)

// Change is one modification Apply made to the machine.
type Change struct {
	// Link is the device name, empty for rules and resolv.conf.
	Link string
	Op   Op
	// Object names the changed object in iproute2's terms, such as
	// "link up", "mtu 1400", "address 192.0.2.10/24", "route default
	// via ...", "rule from ..." or "resolv.conf /tmp/resolv.conf".
	Object string
}

func (c Change) String() string {
	if c.Link == "" {
		return string(c.Op) + " " + c.Object
	}
	return c.Link + ": " + string(c.Op) + " " + c.Object
}

// Configure lists the links, plans the interface settings and applies the
// plan: the whole of what the appliance does at start and on reload.
func Configure(h Handle, ifaces []settings.Interface, resolvConf string, log *slog.Logger) ([]Change, error) {
	links, err := dump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("netcfg: list links: %w", err)
	}
	names := make([]string, len(links))
	for k, l := range links {
		names[k] = l.Attrs().Name
	}
	p, err := NewPlan(ifaces, names, resolvConf)
	if err != nil {
		return nil, fmt.Errorf("netcfg: interface settings rejected: %w", err)
	}
	return Apply(h, p, log)
}

// Apply brings the machine to the plan. It reads the current state back and
// changes only what differs, so a second Apply of the same plan changes
// nothing. Each change is logged to log (nil discards) and returned, also
// when a later step fails.
// The steps run in this order because each depends on the one before:
// links up, addresses (stale ones first, since deleting a primary address
// can take its secondaries with it), the wait for IPv6 duplicate address
// detection, routes, rules, resolv.conf.
//
// TODO: the sysctls that decide whether the kernel adds routes of its own
// (accept_ra on IPv6 static interfaces) or drops asymmetric traffic
// (rp_filter) are left at the kernel's values.
func Apply(h Handle, p *Plan, log *slog.Logger) ([]Change, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := applier{h: h, log: log}
	for _, lp := range p.Links {
		if err := a.link(lp); err != nil {
			return a.changes, err
		}
	}
	tentative, err := a.waitDAD(p.Links)
	if err != nil {
		return a.changes, err
	}
	if err := a.routes(p.Routes, tentative); err != nil {
		return a.changes, err
	}
	if err := a.rules(p.Rules); err != nil {
		return a.changes, err
	}
	if err := a.resolvConf(p.ResolvConf, p.Nameservers); err != nil {
		return a.changes, err
	}
	if len(tentative) > 0 {
		var waiting []string
		for addr, link := range tentative {
			waiting = append(waiting, addr.String()+" on "+link)
		}
		slices.Sort(waiting)
		return a.changes, fmt.Errorf("netcfg: IPv6 duplicate address detection still running after %s for %s, "+
			"so routes from these addresses are not added yet: apply again once the links have carrier",
			dadTimeout, strings.Join(waiting, ", "))
	}
	return a.changes, nil
}

type applier struct {
	h       Handle
	log     *slog.Logger
	changes []Change
}

func (a *applier) record(c Change) {
	a.changes = append(a.changes, c)
	a.log.Info("network changed", "link", c.Link, "op", string(c.Op), "object", c.Object)
}

func (a *applier) link(lp LinkPlan) error {
	link, err := a.h.LinkByName(lp.Name)
	if err != nil {
		return fmt.Errorf("netcfg: interface %s: %w", lp.Name, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := a.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("netcfg: interface %s: set up: %w", lp.Name, err)
		}
		a.record(Change{Link: lp.Name, Op: OpSet, Object: "link up"})
	}
	if lp.MTU != 0 && link.Attrs().MTU != lp.MTU {
		if err := a.h.LinkSetMTU(link, lp.MTU); err != nil {
			return fmt.Errorf("netcfg: interface %s: set mtu %d: %w", lp.Name, lp.MTU, err)
		}
		a.record(Change{Link: lp.Name, Op: OpSet, Object: fmt.Sprintf("mtu %d", lp.MTU)})
	}
	if lp.DHCP {
		return nil
	}

	have, err := a.addrs(link, true)
	if err != nil {
		return err
	}
	for _, addr := range have {
		if !containsPrefix(lp.Addrs, addr) {
			if err := a.h.AddrDel(link, toAddr(addr)); err != nil {
				return fmt.Errorf("netcfg: interface %s: delete address %s: %w", lp.Name, addr, err)
			}
			a.record(Change{Link: lp.Name, Op: OpDelete, Object: "address " + addr.String()})
		}
	}

	// Read again: the kernel may have removed secondary addresses together
	// with a deleted primary one.
	have, err = a.addrs(link, false)
	if err != nil {
		return err
	}
	for _, want := range lp.Addrs {
		if !containsPrefix(have, want) {
			if err := a.h.AddrAdd(link, toAddr(want)); err != nil {
				return fmt.Errorf("netcfg: interface %s: add address %s: %w", lp.Name, want, err)
			}
			a.record(Change{Link: lp.Name, Op: OpAdd, Object: "address " + want.String()})
		}
	}
	return nil
}

// addrs returns the addresses of link except IPv6 link-local ones, which
// the kernel assigns itself. With permanentOnly it also leaves out
// addresses with a lifetime, from IPv6 autoconfiguration or a DHCP client:
// Apply deletes only permanent addresses, since the others would come back
// and make every Apply report a change.
func (a *applier) addrs(link netlink.Link, permanentOnly bool) ([]netip.Prefix, error) {
	list, err := dump(func() ([]netlink.Addr, error) { return a.h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("netcfg: interface %s: list addresses: %w", link.Attrs().Name, err)
	}
	var out []netip.Prefix
	for _, addr := range list {
		p, ok := prefixOf(addr.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if permanentOnly && addr.Flags&unix.IFA_F_PERMANENT == 0 {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// routes deletes the stale routes netcfg owns and adds the missing ones,
// except those whose source address is in tentative.
func (a *applier) routes(want []RoutePlan, tentative map[netip.Addr]string) error {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_UNSPEC}
	list, err := dump(func() ([]netlink.Route, error) {
		return a.h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("netcfg: list routes: %w", err)
	}
	names, err := a.linkNames()
	if err != nil {
		return err
	}

	// Stale routes go first: a replaced default route would otherwise be
	// overwritten by RouteReplace and then fail to delete.
	var have []RoutePlan
	for _, r := range list {
		rp := routePlanOf(r, names)
		if !containsRoute(want, rp) {
			if err := a.h.RouteDel(&r); err != nil {
				return fmt.Errorf("netcfg: delete route %s: %w", rp, err)
			}
			a.record(Change{Link: rp.Link, Op: OpDelete, Object: "route " + rp.String()})
			continue
		}
		have = append(have, rp)
	}
	for _, rp := range want {
		if containsRoute(have, rp) {
			continue
		}
		if _, ok := tentative[rp.Src]; ok {
			a.log.Warn("route skipped: source address tentative", "link", rp.Link, "route", rp.String())
			continue
		}
		link, err := a.h.LinkByName(rp.Link)
		if err != nil {
			return fmt.Errorf("netcfg: interface %s: %w", rp.Link, err)
		}
		if err := a.h.RouteReplace(toRoute(rp, link.Attrs().Index)); err != nil {
			return fmt.Errorf("netcfg: interface %s: add route %s: %w", rp.Link, rp, err)
		}
		a.record(Change{Link: rp.Link, Op: OpAdd, Object: "route " + rp.String()})
	}
	return nil
}

func (a *applier) linkNames() (map[int]string, error) {
	links, err := dump(a.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("netcfg: list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return names, nil
}

func (a *applier) rules(want []RulePlan) error {
	var have []RulePlan
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := dump(func() ([]netlink.Rule, error) { return a.h.RuleList(family) })
		if err != nil {
			return fmt.Errorf("netcfg: list rules: %w", err)
		}
		for _, r := range list {
			if r.Priority != BounceRulePriority {
				continue
			}
			rp := RulePlan{Priority: r.Priority, Table: r.Table}
			if p, ok := prefixOf(r.Src); ok {
				rp.Src = p
			}
			if !containsRule(want, rp) || containsRule(have, rp) {
				if err := a.h.RuleDel(toRule(rp, family)); err != nil {
					return fmt.Errorf("netcfg: delete rule %s: %w", rp, err)
				}
				a.record(Change{Op: OpDelete, Object: "rule " + rp.String()})
				continue
			}
			have = append(have, rp)
		}
	}
	for _, rp := range want {
		if containsRule(have, rp) {
			continue
		}
		family := netlink.FAMILY_V6
		if rp.Src.Addr().Is4() {
			family = netlink.FAMILY_V4
		}
		if err := a.h.RuleAdd(toRule(rp, family)); err != nil {
			return fmt.Errorf("netcfg: add rule %s: %w", rp, err)
		}
		a.record(Change{Op: OpAdd, Object: "rule " + rp.String()})
	}
	return nil
}

// resolvConf writes the name servers when the file differs. The file is
// replaced atomically because resolvers read it at any time.
func (a *applier) resolvConf(path string, servers []netip.Addr) error {
	if path == "" || len(servers) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# Written by lambgate from the interface settings; edits are overwritten.\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, []byte(b.String())) {
		return nil
	}
	if err := settings.WriteFileAtomic(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("netcfg: write %s: %w", path, err)
	}
	a.record(Change{Op: OpSet, Object: "resolv.conf " + path})
	return nil
}
