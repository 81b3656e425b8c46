package settings

import (
	"net"
	"net/netip"
	"slices"
)

// Bound returns a copy of s in which every role's sockets point at that
// role's address from the interface section. Inbound and admin listeners
// with an unspecified host ("0.0.0.0:25", ":25") get the role's address.
// Empty source addresses of the bounce and internal roles, and the bounce
// interface, are filled in. Without an interface section, or for a role on
// a DHCP interface, the values stay as written.
func (s *Settings) Bound() *Settings {
	c := *s
	if len(s.Interfaces) == 0 {
		return &c
	}
	c.Inbound.Listen = slices.Clone(s.Inbound.Listen)

	if addr, ok := roleAddress(s.Interfaces, RoleInbound); ok {
		for i, l := range c.Inbound.Listen {
			c.Inbound.Listen[i] = bindHost(l, addr)
		}
	}
	if addr, ok := roleAddress(s.Interfaces, RoleAdmin); ok && c.Admin.Listen != "" {
		c.Admin.Listen = bindHost(c.Admin.Listen, addr)
	}
	if addr, ok := roleAddress(s.Interfaces, RoleBounce); ok && c.Bounce.SourceAddress == "" {
		c.Bounce.SourceAddress = addr.String()
	}
	if b := RoleInterface(s.Interfaces, RoleBounce); b != nil && c.Bounce.Interface == "" {
		c.Bounce.Interface = b.Name
	}
	if addr, ok := roleAddress(s.Interfaces, RoleInternal); ok && c.Internal.SourceAddress == "" {
		c.Internal.SourceAddress = addr.String()
	}
	return &c
}

func roleAddress(ifaces []Interface, role string) (netip.Addr, bool) {
	i := RoleInterface(ifaces, role)
	if i == nil {
		return netip.Addr{}, false
	}
	return i.RoleAddress(role)
}

// bindHost replaces an unspecified host in hostport with addr.
func bindHost(hostport string, addr netip.Addr) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || !unspecifiedHost(host) {
		return hostport
	}
	return net.JoinHostPort(addr.String(), port)
}

func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}
