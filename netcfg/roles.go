package netcfg

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/settings"
)

// RoleAddr is the address and device that sockets of one role bind to.
type RoleAddr struct {
	Role   string
	Addr   netip.Addr
	Device string
}

// RoleAddrs returns, for each role, the address and device the gateway must
// bind to, checked against the live state of the machine. A static role's
// address must be present on its device; a DHCP interface gives its first
// usable address, IPv4 before IPv6. A role without a usable address is an
// error naming the role, and the role is missing from the map. There is no
// fallback to another address, because a bounce must never leave from the
// address of the organisation's real mail. With no interface settings the
// map is empty, and the gateway binds to the addresses of its listen
// settings.
func RoleAddrs(h Handle, ifaces []settings.Interface) (map[string]RoleAddr, error) {
	out := map[string]RoleAddr{}
	if len(ifaces) == 0 {
		return out, nil
	}
	var errs []error
	for _, role := range settings.Roles {
		ra, err := roleAddr(h, ifaces, role)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s role: %w", role, err))
			continue
		}
		out[role] = ra
	}
	return out, errors.Join(errs...)
}

func roleAddr(h Handle, ifaces []settings.Interface, role string) (RoleAddr, error) {
	i := settings.RoleInterface(ifaces, role)
	if i == nil {
		return RoleAddr{}, errors.New("on no interface in the settings")
	}
	link, err := h.LinkByName(i.Name)
	if err != nil {
		if isNotFound(err) {
			return RoleAddr{}, fmt.Errorf("interface %s not found", i.Name)
		}
		return RoleAddr{}, fmt.Errorf("interface %s: %w", i.Name, err)
	}
	list, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return RoleAddr{}, fmt.Errorf("interface %s: list addresses: %w", i.Name, err)
	}
	present := usableAddrs(list)

	if want, ok := i.RoleAddress(role); ok {
		for _, a := range present {
			if a == want {
				return RoleAddr{Role: role, Addr: want, Device: i.Name}, nil
			}
		}
		if unusable := unusableReason(list, want); unusable != "" {
			return RoleAddr{}, fmt.Errorf("address %s on %s %s", want, i.Name, unusable)
		}
		return RoleAddr{}, fmt.Errorf("address %s not present on %s", want, i.Name)
	}

	// DHCP: the lease decides the address.
	for _, wantV4 := range []bool{true, false} {
		for _, a := range present {
			if a.Is4() == wantV4 && a.IsGlobalUnicast() {
				return RoleAddr{Role: role, Addr: a, Device: i.Name}, nil
			}
		}
	}
	return RoleAddr{}, fmt.Errorf("no address on %s yet: the DHCP client has no lease", i.Name)
}

// unusableReason explains why want is on the link but cannot be bound, or
// returns "" when it is not on the link at all.
func unusableReason(list []netlink.Addr, want netip.Addr) string {
	for _, a := range list {
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Addr() != want {
			continue
		}
		if a.Flags&unix.IFA_F_DADFAILED != 0 {
			return "failed IPv6 duplicate address detection: another host on the link uses it"
		}
		return "is still in IPv6 duplicate address detection: retry in a few seconds"
	}
	return ""
}

// usableAddrs drops addresses a socket cannot bind to yet or ever: IPv6
// addresses still in duplicate address detection or that failed it.
func usableAddrs(list []netlink.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range list {
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p.Addr())
		}
	}
	return out
}
