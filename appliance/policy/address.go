package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Length limits of RFC 5321 section 4.5.3.1: a local part of at most 64
// octets, a domain of at most 255 and a path of at most 256 including the
// angle brackets, so an address of at most 254.
const (
	maxLocalPart = 64
	maxDomain    = 255
	maxAddress   = 254
)

// AddressError is a recipient or sender address that ParseAddress rejected.
type AddressError struct {
	Address string
	Reason  string
	// Routing marks a form that a downstream MTA could read as a route to
	// another host (percent hack, bang path, source route, quoted or
	// second "@", IP literal), as opposed to plain bad syntax.
	Routing bool
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("invalid address %q: %s", e.Address, e.Reason)
}

// IsRouting reports whether err is an AddressError for a routing form.
func IsRouting(err error) bool {
	var ae *AddressError
	return errors.As(err, &ae) && ae.Routing
}

// domainProfile maps a domain to its lower-case A-label form and checks the
// STD3 host name rules (letters, digits and hyphens) on every label.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
)

// ParseRecipient parses an envelope address from a client that did not ask
// for SMTPUTF8. See ParseAddress.
func ParseRecipient(s string) (local, domain string, err error) {
	return ParseAddress(s, false)
}

// ParseAddress parses an envelope address of the form local@domain, with or
// without angle brackets, and accepts only what every MTA downstream reads
// the same way: a dot-atom local part without "%" or "!", and a host name
// domain. Every other form is rejected rather than interpreted, because
// MTAs disagree on routes hidden in addresses, and a disagreement between
// this gateway and the internal server is an open relay.
//
// The domain is returned in lower-case A-label (punycode) form. Non-ASCII
// characters are accepted only when smtputf8 is true, which the session
// sets when the client sent MAIL FROM with the SMTPUTF8 parameter.
func ParseAddress(s string, smtputf8 bool) (local, domain string, err error) {
	fail := func(routing bool, format string, args ...any) (string, string, error) {
		return "", "", &AddressError{Address: s, Reason: fmt.Sprintf(format, args...), Routing: routing}
	}

	addr := s
	if strings.HasPrefix(addr, "<") && strings.HasSuffix(addr, ">") && len(addr) >= 2 {
		addr = addr[1 : len(addr)-1]
	}

	if len(addr) > maxAddress {
		return fail(false, "longer than %d octets", maxAddress)
	}
	if !utf8.ValidString(addr) {
		return fail(false, "not valid UTF-8")
	}
	for _, r := range addr {
		switch {
		case r < 0x20 || r == 0x7f || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co):
			return fail(false, "contains a control or format character")
		case r == ' ' || unicode.IsSpace(r):
			return fail(false, "contains a space")
		case r >= 0x80 && !smtputf8:
			return fail(false, "contains non-ASCII characters without SMTPUTF8")
		}
	}

	if strings.HasPrefix(addr, "@") {
		return fail(true, "source routes are not accepted")
	}
	if strings.HasPrefix(addr, `"`) {
		return fail(true, "quoted local parts are not accepted")
	}

	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return fail(false, "missing @domain")
	}
	if strings.IndexByte(addr, '@') != at {
		return fail(true, "more than one @")
	}
	local, domain = addr[:at], addr[at+1:]

	if err := checkLocalPart(local); err != nil {
		routing := strings.ContainsAny(local, `%!"\:,[]`)
		return fail(routing, "local part: %v", err)
	}

	domain, err = normalizeDomain(domain)
	if err != nil {
		routing := strings.HasPrefix(addr[at+1:], "[")
		return fail(routing, "domain: %v", err)
	}
	return local, domain, nil
}

// checkLocalPart accepts an RFC 5322 dot-atom without the characters that
// old MTAs treat as routing: "%" (the percent hack) and "!" (UUCP bang paths).
func checkLocalPart(local string) error {
	switch {
	case local == "":
		return errors.New("empty")
	case len(local) > maxLocalPart:
		return fmt.Errorf("longer than %d octets", maxLocalPart)
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, "."):
		return errors.New("starts or ends with a dot")
	case strings.Contains(local, ".."):
		return errors.New("contains two dots in a row")
	}

	for _, r := range local {
		switch {
		case r == '%':
			return errors.New(`contains "%" (percent hack routing)`)
		case r == '!':
			return errors.New(`contains "!" (bang path routing)`)
		case r >= 0x80:
			// Only reachable with SMTPUTF8: RFC 6531 extends atext with
			// UTF-8, and control characters were rejected earlier.
		case isAtext(byte(r)) || r == '.':
		default:
			return fmt.Errorf("contains %q, which a dot-atom does not allow", r)
		}
	}
	return nil
}

// isAtext reports whether c is RFC 5322 atext.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// normalizeDomain returns d in lower-case A-label form, or an error for an
// IP literal, a trailing dot, an empty label or anything that is not a host
// name.
func normalizeDomain(d string) (string, error) {
	switch {
	case d == "":
		return "", errors.New("empty")
	case strings.HasPrefix(d, "["):
		return "", errors.New("address literals are not accepted")
	case len(d) > maxDomain:
		return "", fmt.Errorf("longer than %d octets", maxDomain)
	case strings.HasSuffix(d, "."):
		return "", errors.New("ends with a dot")
	case strings.HasPrefix(d, ".") || strings.Contains(d, ".."):
		return "", errors.New("has an empty label")
	}

	ascii, err := domainProfile.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("not a valid host name: %v", err)
	}
	// The mapping turns some characters into dots or removes them (U+3002,
	// soft hyphens). The result is checked again, so that a mapped form
	// cannot bring back a trailing dot or an empty label.
	if ascii == "" || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", errors.New("maps to an invalid host name")
	}
	return strings.ToLower(ascii), nil
}

// NormalizeDomain returns a configured domain in the form that ParseAddress
// returns, so that relay domains and recipient lists compare exactly.
func NormalizeDomain(d string) (string, error) {
	return normalizeDomain(d)
}
