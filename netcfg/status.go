package netcfg

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/settings"
)

// InterfaceStatus is the live state of one configured interface, as the web
// setup shows it. Counters are those of the kernel since the device
// appeared.
type InterfaceStatus struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	// Found is false when the device does not exist; the other fields are
	// then zero.
	Found     bool     `json:"found"`
	Addresses []string `json:"addresses"`
	// Up is the administrative state; Carrier is the physical link
	// (IFF_LOWER_UP); OperState is the kernel's RFC 2863 state.
	Up        bool   `json:"up"`
	Carrier   bool   `json:"carrier"`
	OperState string `json:"oper_state"`
	MTU       int    `json:"mtu"`
	MAC       string `json:"mac"`

	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
}

// Status returns the state of each interface in the settings, in their
// order. A missing device is reported with Found false rather than as an
// error, so the web setup can show it; other netlink failures are errors.
func Status(h Handle, ifaces []settings.Interface) ([]InterfaceStatus, error) {
	out := make([]InterfaceStatus, 0, len(ifaces))
	for _, i := range ifaces {
		st := InterfaceStatus{Name: i.Name, Roles: i.Roles, Addresses: []string{}}
		link, err := h.LinkByName(i.Name)
		if isNotFound(err) {
			out = append(out, st)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netcfg: status of %s: %w", i.Name, err)
		}
		list, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
		if err != nil {
			return nil, fmt.Errorf("netcfg: status of %s: list addresses: %w", i.Name, err)
		}

		attrs := link.Attrs()
		st.Found = true
		for _, a := range list {
			if p, ok := prefixOf(a.IPNet); ok {
				st.Addresses = append(st.Addresses, p.String())
			}
		}
		st.Up = attrs.RawFlags&unix.IFF_UP != 0
		st.Carrier = attrs.RawFlags&unix.IFF_LOWER_UP != 0
		st.OperState = attrs.OperState.String()
		st.MTU = attrs.MTU
		st.MAC = attrs.HardwareAddr.String()
		if s := attrs.Statistics; s != nil {
			st.RxBytes, st.TxBytes = s.RxBytes, s.TxBytes
			st.RxPackets, st.TxPackets = s.RxPackets, s.TxPackets
			st.RxErrors, st.TxErrors = s.RxErrors, s.TxErrors
		}
		out = append(out, st)
	}
	return out, nil
}
