package gateway

import (
	"fmt"
	"log/slog"

	"github.com/vishvananda/netlink"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/netcfg"
)

// SetLogLevel hands the gateway the level of its logger, so that a reload
// (SIGHUP or the web setup) applies [log] level. Call it before Start.
func (g *Gateway) SetLogLevel(level *slog.LevelVar) { g.level = level }

// SetResolvConf names the file that the interfaces' DNS servers are written
// to ("/tmp/resolv.conf" on the appliance, where /etc/resolv.conf links to
// it). Empty, the default, writes none. Call it before Start.
func (g *Gateway) SetResolvConf(path string) { g.resolvConf = path }

// applyNetwork configures the interfaces of s with netlink and returns the
// address of each role that is present. A role without its address is
// logged and left out: the gateway never binds a role to another address.
// Without interface settings (a development machine) it changes nothing.
func (g *Gateway) applyNetwork(s *settings.Settings) map[string]netcfg.RoleAddr {
	if len(s.Interfaces) == 0 {
		return nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		g.log.Error("network not configured: netlink unavailable", "err", err)
		return map[string]netcfg.RoleAddr{}
	}
	defer h.Close()

	if _, err := netcfg.Configure(h, s.Interfaces, g.resolvConf, g.log); err != nil {
		g.log.Error("network configuration failed", "err", err)
	}
	roles, err := netcfg.RoleAddrs(h, s.Interfaces)
	if err != nil {
		g.log.Error("role disabled: its address is missing", "err", err)
	}
	return roles
}

// InterfaceStatus returns the link state and counters of each configured
// interface, for the web setup.
func (g *Gateway) InterfaceStatus() ([]netcfg.InterfaceStatus, error) {
	g.mu.Lock()
	ifaces := g.settings.Interfaces
	g.mu.Unlock()
	if len(ifaces) == 0 {
		return nil, nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	return netcfg.Status(h, ifaces)
}

// roleMissing reports whether a role is configured on an interface but its
// address is not present, in which case its sockets must not be opened.
func roleMissing(s *settings.Settings, roles map[string]netcfg.RoleAddr, role string) bool {
	if roles == nil || settings.RoleInterface(s.Interfaces, role) == nil {
		return false
	}
	_, ok := roles[role]
	return !ok
}
