// Package netcfg owns the appliance's network interfaces. It brings the
// links of the interface settings up and applies their addresses, routes
// and DNS servers. It installs the policy routing of the bounce role, so
// that bounces leave from their own address through their own gateway. It
// also returns the address the gateway must bind to for each role, and the
// status of each role's interface for the web setup.
//
// It never opens sockets, never runs a DHCP client and never touches a link,
// address, route or rule that the interface settings do not name: routes
// and rules it removes are only those it installed itself (RouteProtocol,
// BounceRulePriority).
package netcfg

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// Handle is the part of *netlink.Handle that netcfg uses. Tests of the plan
// and diff logic pass a fake; the appliance passes netlink.NewHandle() or a
// handle opened in a network namespace with netlink.NewHandleAt.
type Handle interface {
	LinkList() ([]netlink.Link, error)
	LinkByName(name string) (netlink.Link, error)
	LinkSetUp(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error

	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error

	RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error

	RuleList(family int) ([]netlink.Rule, error)
	RuleAdd(rule *netlink.Rule) error
	RuleDel(rule *netlink.Rule) error
}

var _ Handle = (*netlink.Handle)(nil)

// dumpAttempts bounds the retries of a netlink dump that the kernel
// interrupted because the list changed while it was being read.
const dumpAttempts = 5

// dump calls list until it returns a consistent result. netlink returns
// ErrDumpInterrupted together with possibly incomplete results, which must
// not be diffed against the plan: a missing entry would be added twice.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range dumpAttempts {
		out, err = list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

// isNotFound reports whether err means the link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
