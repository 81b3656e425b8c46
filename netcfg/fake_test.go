package netcfg_test

import (
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fakeHandle is an in-memory netcfg.Handle for tests without root. It keys
// addresses, routes and rules the way the kernel does, which is enough for
// the diff logic. It does not model primary addresses or DAD.
type fakeHandle struct {
	links  []netlink.Link
	addrs  map[int][]netlink.Addr
	routes []netlink.Route
	rules  []netlink.Rule
}

func newFakeHandle(names ...string) *fakeHandle {
	f := &fakeHandle{addrs: map[int][]netlink.Addr{}}
	for k, name := range names {
		f.links = append(f.links, &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, Index: k + 2, MTU: 1500}})
	}
	return f
}

func (f *fakeHandle) LinkList() ([]netlink.Link, error) { return f.links, nil }

func (f *fakeHandle) LinkByName(name string) (netlink.Link, error) {
	for _, l := range f.links {
		if l.Attrs().Name == name {
			return l, nil
		}
	}
	return nil, netlink.LinkNotFoundError{}
}

func (f *fakeHandle) LinkSetUp(l netlink.Link) error {
	l.Attrs().Flags |= net.FlagUp
	l.Attrs().RawFlags |= unix.IFF_UP
	return nil
}

func (f *fakeHandle) LinkSetMTU(l netlink.Link, mtu int) error {
	l.Attrs().MTU = mtu
	return nil
}

func (f *fakeHandle) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	var out []netlink.Addr
	for _, a := range f.addrs[l.Attrs().Index] {
		if family == netlink.FAMILY_ALL || (family == netlink.FAMILY_V4) == (a.IP.To4() != nil) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeHandle) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	i := l.Attrs().Index
	if slices.ContainsFunc(f.addrs[i], func(b netlink.Addr) bool { return b.IPNet.String() == a.IPNet.String() }) {
		return unix.EEXIST
	}
	added := *a
	added.Flags |= unix.IFA_F_PERMANENT
	f.addrs[i] = append(f.addrs[i], added)
	return nil
}

func (f *fakeHandle) AddrDel(l netlink.Link, a *netlink.Addr) error {
	i := l.Attrs().Index
	k := slices.IndexFunc(f.addrs[i], func(b netlink.Addr) bool { return b.IPNet.String() == a.IPNet.String() })
	if k < 0 {
		return unix.EADDRNOTAVAIL
	}
	f.addrs[i] = slices.Delete(f.addrs[i], k, k+1)
	return nil
}

// RouteListFiltered supports the filters netcfg uses: protocol, and table
// with RT_TABLE_UNSPEC for all tables. Without a table filter it lists the
// main table only, as netlink does.
func (f *fakeHandle) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	var out []netlink.Route
	for _, r := range f.routes {
		if mask&netlink.RT_FILTER_TABLE == 0 && r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		if mask&netlink.RT_FILTER_TABLE != 0 && filter.Table != unix.RT_TABLE_UNSPEC && r.Table != filter.Table {
			continue
		}
		if mask&netlink.RT_FILTER_PROTOCOL != 0 && r.Protocol != filter.Protocol {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func routeKey(r *netlink.Route) string { return fmt.Sprintf("%d %s", r.Table, r.Dst) }

func (f *fakeHandle) RouteReplace(r *netlink.Route) error {
	k := slices.IndexFunc(f.routes, func(o netlink.Route) bool { return routeKey(&o) == routeKey(r) })
	if k >= 0 {
		f.routes[k] = *r
		return nil
	}
	f.routes = append(f.routes, *r)
	return nil
}

func (f *fakeHandle) RouteDel(r *netlink.Route) error {
	k := slices.IndexFunc(f.routes, func(o netlink.Route) bool { return routeKey(&o) == routeKey(r) })
	if k < 0 {
		return unix.ESRCH
	}
	f.routes = slices.Delete(f.routes, k, k+1)
	return nil
}

func (f *fakeHandle) RuleList(family int) ([]netlink.Rule, error) {
	var out []netlink.Rule
	for _, r := range f.rules {
		if r.Family == family {
			out = append(out, r)
		}
	}
	return out, nil
}

func ruleKey(r *netlink.Rule) string { return fmt.Sprintf("%d %d %s", r.Priority, r.Table, r.Src) }

func (f *fakeHandle) RuleAdd(r *netlink.Rule) error {
	f.rules = append(f.rules, *r)
	return nil
}

func (f *fakeHandle) RuleDel(r *netlink.Rule) error {
	k := slices.IndexFunc(f.rules, func(o netlink.Rule) bool { return ruleKey(&o) == ruleKey(r) })
	if k < 0 {
		return unix.ENOENT
	}
	f.rules = slices.Delete(f.rules, k, k+1)
	return nil
}

func mustCIDR(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}
