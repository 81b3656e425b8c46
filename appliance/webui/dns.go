package webui

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/lambgate/lambgate/appliance/settings"
)

// dnsRecord is one record the bounce identity needs, in zone-file syntax.
type dnsRecord struct {
	Purpose string
	Record  string
}

// bounceRecords returns the A (or AAAA), PTR and SPF records for the bounce
// HELO name. A DSN has the null sender, so receivers check SPF against the
// HELO name (RFC 7208 section 2.3), and many reject a HELO whose A and PTR
// records do not match the connecting address.
func bounceRecords(s *settings.Settings) (records []dnsRecord, missing string) {
	helo := strings.TrimSuffix(s.Bounce.HELO, ".")
	addrText := s.Bounce.SourceAddress
	if addrText == "" {
		if iface := settings.RoleInterface(s.Interfaces, settings.RoleBounce); iface != nil {
			if a, ok := iface.RoleAddress(settings.RoleBounce); ok {
				addrText = a.String()
			}
		}
	}
	addr, err := netip.ParseAddr(addrText)
	if helo == "" || err != nil {
		return nil, "Set the bounce HELO name and the bounce source address to see the DNS records they need."
	}
	a, spf := "A", "ip4"
	if addr.Is6() {
		a, spf = "AAAA", "ip6"
	}
	return []dnsRecord{
		{"address of the bounce HELO name", fmt.Sprintf("%s. IN %s %s", helo, a, addr)},
		{"reverse DNS (set by whoever owns the address, often the ISP)",
			fmt.Sprintf("%s IN PTR %s.", reverseName(addr), helo)},
		{"SPF for the HELO name, which is what DSNs are checked against",
			fmt.Sprintf("%s. IN TXT \"v=spf1 %s:%s -all\"", helo, spf, addr)},
	}, ""
}

func reverseName(addr netip.Addr) string {
	if addr.Is4() {
		b := addr.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa.", b[3], b[2], b[1], b[0])
	}
	b := addr.As16()
	var parts []string
	for i := len(b) - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%x", b[i]&0xf), fmt.Sprintf("%x", b[i]>>4))
	}
	return strings.Join(parts, ".") + ".ip6.arpa."
}
