package netcfg

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dadTimeout bounds the wait for IPv6 duplicate address detection. With
// the kernel's defaults (one probe, a one-second retransmission timer,
// RFC 4862) it takes about a second once the link has carrier.
const dadTimeout = 5 * time.Second

// dadPoll is the interval between reads of the address flags.
const dadPoll = 50 * time.Millisecond

// waitDAD waits until no planned IPv6 address is tentative, because the
// kernel rejects a route whose source address is still tentative. It
// returns the addresses still tentative after dadTimeout, so that routes
// from them are skipped rather than failing every other route, and an error
// for an address that failed detection: another host on the link uses it.
func (a *applier) waitDAD(links []LinkPlan) (map[netip.Addr]string, error) {
	deadline := time.Now().Add(dadTimeout)
	for {
		tentative := map[netip.Addr]string{}
		for _, lp := range links {
			if lp.DHCP {
				continue
			}
			if err := a.tentative(lp, tentative); err != nil {
				return nil, err
			}
		}
		if len(tentative) == 0 || time.Now().After(deadline) {
			return tentative, nil
		}
		time.Sleep(dadPoll)
	}
}

func (a *applier) tentative(lp LinkPlan, out map[netip.Addr]string) error {
	link, err := a.h.LinkByName(lp.Name)
	if err != nil {
		return fmt.Errorf("netcfg: interface %s: %w", lp.Name, err)
	}
	list, err := dump(func() ([]netlink.Addr, error) { return a.h.AddrList(link, netlink.FAMILY_V6) })
	if err != nil {
		return fmt.Errorf("netcfg: interface %s: list addresses: %w", lp.Name, err)
	}
	for _, addr := range list {
		p, ok := prefixOf(addr.IPNet)
		if !ok || !containsPrefix(lp.Addrs, p) {
			continue
		}
		if addr.Flags&unix.IFA_F_DADFAILED != 0 {
			return fmt.Errorf("netcfg: interface %s: address %s failed IPv6 duplicate address detection: "+
				"another host on the link uses it", lp.Name, p.Addr())
		}
		if addr.Flags&unix.IFA_F_TENTATIVE != 0 {
			out[p.Addr()] = lp.Name
		}
	}
	return nil
}
