//go:build wasip1

package main

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lambgate/lambgate/sdk/go/lambgate"
)

// SPF results (RFC 7208 section 2.6).
const (
	resultNone      = "none"
	resultNeutral   = "neutral"
	resultPass      = "pass"
	resultFail      = "fail"
	resultSoftfail  = "softfail"
	resultTemperror = "temperror"
	resultPermerror = "permerror"
)

// RFC 7208 section 4.6.4 limits per check.
const (
	maxDNSMechanisms = 10
	maxVoidLookups   = 2
	maxMXHosts       = 10
)

// evaluation is one check_host run with its lookup budget, shared by
// include and redirect.
type evaluation struct {
	ip       netip.Addr
	sender   string // local@domain
	helo     string
	dnsTerms int
	voids    int
}

var errPerm = errors.New("permerror")

// checkHost evaluates the SPF record of domain for the client address
// (RFC 7208 section 4).
func (e *evaluation) checkHost(domain string) string {
	record, result := e.record(domain)
	if result != "" {
		return result
	}

	var redirect string
	for _, term := range strings.Fields(record)[1:] {
		lower := strings.ToLower(term)
		if name, _, ok := strings.Cut(lower, "="); ok && !strings.ContainsAny(name, ":/") {
			// exp= and unknown modifiers are ignored (section 6).
			if name == "redirect" {
				redirect = term[len(name)+1:]
			}
			continue
		}

		qualifier := resultPass
		switch term[0] {
		case '+':
			term = term[1:]
		case '-':
			qualifier, term = resultFail, term[1:]
		case '~':
			qualifier, term = resultSoftfail, term[1:]
		case '?':
			qualifier, term = resultNeutral, term[1:]
		}
		match, err := e.mechanism(term, domain)
		switch {
		case errors.Is(err, errPerm):
			return resultPermerror
		case err != nil:
			return resultTemperror
		case match:
			return qualifier
		}
	}

	if redirect == "" {
		return resultNeutral
	}
	if e.dnsTerms++; e.dnsTerms > maxDNSMechanisms {
		return resultPermerror
	}
	target, err := e.expand(redirect, domain)
	if err != nil {
		return resultPermerror
	}
	if r := e.checkHost(target); r != resultNone {
		return r
	}
	return resultPermerror
}

// record returns the domain's single v=spf1 record, or the result that
// ends the check when there is none.
func (e *evaluation) record(domain string) (string, string) {
	txts, err := lambgate.Lookup(lambgate.TypeTXT, domain)
	if errors.Is(err, lambgate.ErrNotFound) {
		return "", resultNone
	}
	if err != nil {
		return "", resultTemperror
	}
	var found []string
	for _, t := range txts {
		if strings.EqualFold(t, "v=spf1") || len(t) > 7 && strings.EqualFold(t[:7], "v=spf1 ") {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return "", resultNone
	case 1:
		return found[0], ""
	}
	return "", resultPermerror
}

// mechanism reports whether one mechanism matches; errPerm and other
// errors end the check with permerror and temperror.
func (e *evaluation) mechanism(term, domain string) (bool, error) {
	name, arg, _ := strings.Cut(term, ":")
	name = strings.ToLower(name)
	cidr := ""
	if base, bits, ok := strings.Cut(name, "/"); ok {
		name, cidr = base, "/"+bits // "a/24", "mx//64"
	}
	if (name == "a" || name == "mx") && arg != "" {
		if i := strings.IndexByte(arg, '/'); i >= 0 {
			arg, cidr = arg[:i], arg[i:]
		}
	}

	switch name {
	case "all":
		return true, nil
	case "ip4", "ip6":
		prefix, err := parsePrefix(arg)
		if err != nil {
			return false, errPerm
		}
		return prefix.Contains(e.ip), nil
	}

	if e.dnsTerms++; e.dnsTerms > maxDNSMechanisms {
		return false, errPerm
	}
	target := domain
	if arg != "" {
		var err error
		if target, err = e.expand(arg, domain); err != nil {
			return false, err
		}
	}
	switch name {
	case "include":
		if arg == "" {
			return false, errPerm
		}
		switch e.checkHost(target) {
		case resultPass:
			return true, nil
		case resultTemperror:
			return false, errors.New("temperror")
		case resultPermerror, resultNone:
			return false, errPerm
		}
		return false, nil
	case "a":
		return e.addressMatch(target, cidr)
	case "mx":
		hosts, err := e.lookup(lambgate.TypeMX, target)
		if err != nil {
			return false, err
		}
		if len(hosts) > maxMXHosts {
			return false, errPerm
		}
		for _, h := range hosts {
			_, host, _ := strings.Cut(h, " ")
			if ok, err := e.addressMatch(strings.TrimSuffix(host, "."), cidr); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case "exists":
		addrs, err := e.lookup(lambgate.TypeA, target)
		return len(addrs) > 0, err
	case "ptr":
		// RFC 7208 section 5.5 asks senders not to use ptr, so it never
		// matches here.
		return false, nil
	}
	return false, errPerm
}

// addressMatch reports whether the client is among the host's addresses
// of its own family, widened to the dual CIDR length.
func (e *evaluation) addressMatch(host, cidr string) (bool, error) {
	bits4, bits6, err := dualCIDR(cidr)
	if err != nil {
		return false, errPerm
	}
	rtype, bits := lambgate.TypeA, bits4
	if e.ip.Is6() {
		rtype, bits = lambgate.TypeAAAA, bits6
	}
	addrs, err := e.lookup(rtype, host)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		ip, perr := netip.ParseAddr(a)
		if perr != nil {
			continue
		}
		if p, perr := ip.Prefix(bits); perr == nil && p.Contains(e.ip) {
			return true, nil
		}
	}
	return false, nil
}

// lookup resolves a name and counts an empty result or NXDOMAIN against
// the void lookup limit.
func (e *evaluation) lookup(rtype int, name string) ([]string, error) {
	answers, err := lambgate.Lookup(rtype, name)
	if errors.Is(err, lambgate.ErrNotFound) {
		if e.voids++; e.voids > maxVoidLookups {
			return nil, errPerm
		}
		return nil, nil
	}
	return answers, err
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// dualCIDR parses "/24", "//64" or "/24//64" into IPv4 and IPv6 lengths.
func dualCIDR(s string) (int, int, error) {
	bits4, bits6 := 32, 128
	if s == "" {
		return bits4, bits6, nil
	}
	v4, v6, dual := strings.Cut(s, "//")
	if v4 != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(v4, "/"))
		if err != nil || n < 0 || n > 32 {
			return 0, 0, errPerm
		}
		bits4 = n
	}
	if dual {
		n, err := strconv.Atoi(v6)
		if err != nil || n < 0 || n > 128 {
			return 0, 0, errPerm
		}
		bits6 = n
	}
	return bits4, bits6, nil
}

// expand applies the macros of RFC 7208 section 7 that need no
// transformers: %{s} %{l} %{o} %{d} %{i} %{h} %{v}, and %% %_ %-.
func (e *evaluation) expand(spec, domain string) (string, error) {
	if !strings.Contains(spec, "%") {
		return spec, nil
	}
	local, senderDomain, _ := strings.Cut(e.sender, "@")
	var sb strings.Builder
	for i := 0; i < len(spec); i++ {
		if spec[i] != '%' {
			sb.WriteByte(spec[i])
			continue
		}
		if i+1 >= len(spec) {
			return "", errPerm
		}
		i++
		switch spec[i] {
		case '%':
			sb.WriteByte('%')
			continue
		case '_':
			sb.WriteByte(' ')
			continue
		case '-':
			sb.WriteString("%20")
			continue
		case '{':
		default:
			return "", errPerm
		}
		end := strings.IndexByte(spec[i:], '}')
		if end != 2 {
			// TODO: macro transformers ("%{ir}", "%{d2}") and delimiters
			// are not supported; such records evaluate to permerror.
			return "", errPerm
		}
		switch spec[i+1] {
		case 's':
			sb.WriteString(e.sender)
		case 'l':
			sb.WriteString(local)
		case 'o':
			sb.WriteString(senderDomain)
		case 'd':
			sb.WriteString(domain)
		case 'i':
			sb.WriteString(macroIP(e.ip))
		case 'h':
			sb.WriteString(e.helo)
		case 'v':
			if e.ip.Is4() {
				sb.WriteString("in-addr")
			} else {
				sb.WriteString("ip6")
			}
		default:
			return "", errPerm
		}
		i += end
	}
	return sb.String(), nil
}

// macroIP writes an address as %{i} expands it: dotted IPv4, or IPv6 as
// 32 dot-separated nibbles.
func macroIP(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	b := ip.As16()
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteByte(digits[x>>4])
		sb.WriteByte('.')
		sb.WriteByte(digits[x&15])
	}
	return sb.String()
}
