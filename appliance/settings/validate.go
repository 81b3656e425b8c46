package settings

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// FieldError names the settings key that failed validation, so that the
// command line and the web setup can point at it.
type FieldError struct {
	Key     string
	Message string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Message }

// Errors is every validation failure of one settings value.
type Errors []*FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Validate checks every key and returns Errors naming each bad one.
func (s *Settings) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Message: fmt.Sprintf(format, args...)})
	}

	if !validHostname(s.Hostname) {
		bad("hostname", "%q is not a valid host name: use a fully qualified name such as mx.example.org", s.Hostname)
	}

	in := &s.Inbound
	if len(in.Listen) == 0 {
		bad("inbound.listen", "no address: give at least one host:port, such as \"0.0.0.0:25\"")
	}
	for _, a := range in.Listen {
		if err := checkHostPort(a); err != nil {
			bad("inbound.listen", "%q: %v", a, err)
		}
	}
	if (in.TLSCert == "") != (in.TLSKey == "") {
		bad("inbound.tls_cert", "tls_cert and tls_key must be set together, or both left empty for a generated certificate")
	}
	positive := []struct {
		key string
		v   int64
	}{
		{"inbound.max_connections", int64(in.MaxConnections)},
		{"inbound.max_connections_per_ip", int64(in.MaxConnectionsPerIP)},
		{"inbound.max_message_bytes", in.MaxMessageBytes},
		{"inbound.max_recipients", int64(in.MaxRecipients)},
		{"inbound.max_errors", int64(in.MaxErrors)},
		{"inbound.max_hops", int64(in.MaxHops)},
		{"internal.max_connections", int64(s.Internal.MaxConnections)},
		{"bounce.rate_per_domain", int64(s.Bounce.RatePerDomain)},
		{"queue.workers", int64(s.Queue.Workers)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.key, "must be a positive number, got %d", p.v)
		}
	}
	if in.MaxLineLength < 512 {
		bad("inbound.max_line_length", "%d is below the 512 bytes RFC 5321 requires for command lines", in.MaxLineLength)
	}
	if in.MaxConnectionsPerIP > in.MaxConnections && in.MaxConnections > 0 {
		bad("inbound.max_connections_per_ip", "%d is above max_connections (%d)", in.MaxConnectionsPerIP, in.MaxConnections)
	}
	minDuration := []struct {
		key string
		v   Duration
		min time.Duration
	}{
		{"inbound.command_timeout", in.CommandTimeout, time.Second},
		{"inbound.data_timeout", in.DataTimeout, time.Second},
		{"recipients.callout_positive_ttl", s.Recipients.CalloutPositiveTTL, 0},
		{"recipients.callout_negative_ttl", s.Recipients.CalloutNegativeTTL, 0},
		{"internal.timeout", s.Internal.Timeout, time.Second},
		{"bounce.lifetime", s.Bounce.Lifetime, time.Minute},
		{"queue.min_backoff", s.Queue.MinBackoff, time.Second},
		{"queue.max_backoff", s.Queue.MaxBackoff, time.Second},
		{"queue.lifetime", s.Queue.Lifetime, time.Minute},
	}
	for _, d := range minDuration {
		if d.v.D() < d.min {
			bad(d.key, "%s is too short: use at least %s", d.v.D(), d.min)
		}
	}
	if s.Queue.MaxBackoff < s.Queue.MinBackoff {
		bad("queue.max_backoff", "%s is below min_backoff (%s)", s.Queue.MaxBackoff.D(), s.Queue.MinBackoff.D())
	}

	if len(s.Domains.Relay) == 0 {
		bad("domains.relay", "no relay domain: list the domains this gateway accepts mail for")
	}
	seen := map[string]bool{}
	for _, d := range s.Domains.Relay {
		if !validHostname(d) {
			bad("domains.relay", "%q is not a valid domain name", d)
		}
		if seen[strings.ToLower(d)] {
			bad("domains.relay", "%q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}

	r := &s.Recipients
	switch r.Validation {
	case ValidateAcceptAll:
	case ValidateStatic:
		if len(r.Static) == 0 {
			bad("recipients.static", "validation is static but the list is empty: add addresses or \"@domain\" entries")
		}
	case ValidateFile:
		if r.File == "" {
			bad("recipients.file", "validation is file but no file is named")
		}
	case ValidateCallout:
		if s.Internal.Server == "" {
			bad("recipients.validation", "callout needs internal.server: there is no internal server to ask")
		}
	default:
		bad("recipients.validation", "%q is not one of accept-all, static, file, callout", r.Validation)
	}
	for _, a := range r.Static {
		if !strings.Contains(a, "@") {
			bad("recipients.static", "%q is neither an address nor an \"@domain\" entry", a)
		}
	}
	switch r.Unknown {
	case UnknownReject, UnknownBounce, UnknownDiscard:
	default:
		bad("recipients.unknown", "%q is not one of reject, bounce, discard", r.Unknown)
	}

	if s.Internal.Server != "" {
		if err := checkHostPort(s.Internal.Server); err != nil {
			bad("internal.server", "%q: %v", s.Internal.Server, err)
		}
	}
	if a := s.Internal.SourceAddress; a != "" {
		if _, err := netip.ParseAddr(a); err != nil {
			bad("internal.source_address", "%q is not an IP address", a)
		}
	}
	if h := s.Internal.HELO; h != "" && !validHostname(h) {
		bad("internal.helo", "%q is not a valid host name", h)
	}

	b := &s.Bounce
	if a := b.SourceAddress; a != "" {
		if _, err := netip.ParseAddr(a); err != nil {
			bad("bounce.source_address", "%q is not an IP address", a)
		}
	}
	if !validHostname(b.HELO) {
		bad("bounce.helo", "%q is not a valid host name: the bounce role needs a name with A, PTR and SPF records", b.HELO)
	}
	if b.Resolver != "" {
		if err := checkHostPort(b.Resolver); err != nil {
			bad("bounce.resolver", "%q: %v", b.Resolver, err)
		}
	}
	if b.MXPort <= 0 || b.MXPort > 65535 {
		bad("bounce.mx_port", "%d is not a TCP port", b.MXPort)
	}
	if b.RequireSPFPass && !s.Inbound.SPF {
		bad("bounce.require_spf_pass", "needs inbound.spf = true: without a check no sender ever passes, so no DSN would be sent")
	}

	if s.Admin.Listen != "" {
		if err := checkHostPort(s.Admin.Listen); err != nil {
			bad("admin.listen", "%q: %v", s.Admin.Listen, err)
		}
	}
	switch s.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", s.Log.Level)
	}

	errs = append(errs, s.validateInterfaces()...)

	if len(errs) > 0 {
		return errs
	}
	return nil
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && !validHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host %q is neither an IP address nor a host name", host)
		}
	}
	return nil
}

// validHostname checks RFC 1123 syntax: labels of letters, digits and
// hyphens, each 1 to 63 bytes, 253 bytes in all.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
			if !ok {
				return false
			}
		}
	}
	return true
}
