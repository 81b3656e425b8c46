package netcfg

import (
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// This file converts between the plan's netip values and netlink's net
// types, and compares them the way the kernel identifies each object.

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), bits), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func toAddr(p netip.Prefix) *netlink.Addr { return &netlink.Addr{IPNet: ipNet(p)} }

// containsPrefix compares address and length, as the kernel does: the same
// address with another prefix length is a different address entry.
func containsPrefix(list []netip.Prefix, p netip.Prefix) bool { return slices.Contains(list, p) }

func routePlanOf(r netlink.Route, names map[int]string) RoutePlan {
	rp := RoutePlan{Link: names[r.LinkIndex], Table: r.Table, Gateway: addrOf(r.Gw), Src: addrOf(r.Src)}
	if p, ok := prefixOf(r.Dst); ok {
		rp.Dst = p
	}
	return rp
}

func toRoute(rp RoutePlan, linkIndex int) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: linkIndex,
		Table:     rp.Table,
		Dst:       ipNet(rp.Dst),
		Gw:        ipOf(rp.Gateway),
		Src:       ipOf(rp.Src),
		Protocol:  RouteProtocol,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if !rp.Gateway.IsValid() {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

func containsRoute(list []RoutePlan, rp RoutePlan) bool { return slices.Contains(list, rp) }

func toRule(rp RulePlan, family int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = family
	r.Priority = rp.Priority
	r.Table = rp.Table
	if rp.Src.IsValid() {
		r.Src = ipNet(rp.Src)
	}
	return r
}

func containsRule(list []RulePlan, rp RulePlan) bool { return slices.Contains(list, rp) }
