package policy

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"blitiri.com.ar/go/spf"
)

// DefaultSPFTimeout bounds one SPF evaluation, all of its DNS lookups
// included. The client waits for the MAIL FROM reply meanwhile, and a
// timeout only yields "temperror", which rejects nothing.
const DefaultSPFTimeout = 10 * time.Second

// SPFChecker evaluates the envelope sender's SPF record (RFC 7208).
type SPFChecker struct {
	// Resolver answers the DNS queries; nil uses net.DefaultResolver.
	Resolver spf.DNSResolver
	// Timeout bounds one evaluation; zero means DefaultSPFTimeout.
	Timeout time.Duration
	// Log receives one debug line per check; nil discards it.
	Log *slog.Logger
}

// Check returns the SPF result of sender for the client ip: "pass", "fail",
// "softfail", "neutral", "none", "temperror" or "permerror". An empty
// sender (the null sender) is checked as postmaster@helo, the identity that
// SPF defines for it. Check never rejects anything itself: the bounce
// sender's safeguard reads the result.
func (c *SPFChecker) Check(ctx context.Context, ip netip.Addr, helo, sender string) string {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultSPFTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if sender == "" {
		sender = "postmaster@" + helo
	}
	opts := []spf.Option{spf.WithContext(ctx)}
	if c.Resolver != nil {
		opts = append(opts, spf.WithResolver(c.Resolver))
	}

	res, err := spf.CheckHostWithSender(net.IP(ip.Unmap().AsSlice()), helo, sender, opts...)
	if ctx.Err() != nil && res != spf.Pass && res != spf.Fail {
		// The library maps some lookup failures to "none", but a check
		// cut short by the deadline is a temporary error.
		res = spf.TempError
	}
	if c.Log != nil {
		c.Log.Debug("spf checked", "from", sender, "remote", ip.String(), "status", string(res),
			"reason", errString(err))
	}
	return string(res)
}

// CheckSPF evaluates sender's SPF with the system resolver and the default
// timeout. See SPFChecker.Check.
func CheckSPF(ctx context.Context, ip netip.Addr, helo, sender string) string {
	var c SPFChecker
	return c.Check(ctx, ip, helo, sender)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
