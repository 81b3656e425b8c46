package bounce

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// MXDeliverer implements envelope.Deliverer for DSNs (envelope.KindBounce):
// it sends each pending recipient's copy to the MX of the recipient's
// domain, with the null sender, from the bounce source address and with the
// bounce HELO name. It is safe for concurrent use.
//
// It uses net/smtp rather than go-smtp's client because go-smtp v0.26.0 can
// start TLS on an existing connection only after greeting as "localhost".
type MXDeliverer struct {
	cfg    Config
	source netip.Addr
	lookup lookuper
	log    *slog.Logger
}

var _ envelope.Deliverer = (*MXDeliverer)(nil)

// NewMXDeliverer checks cfg and returns an MXDeliverer.
func NewMXDeliverer(cfg Config, log *slog.Logger) (*MXDeliverer, error) {
	if cfg.helo() == "" {
		return nil, errors.New("bounce: no HELO name: set bounce.helo to a name with A, PTR and SPF records")
	}
	if cfg.MXPort <= 0 || cfg.MXPort > 65535 {
		return nil, fmt.Errorf("bounce: MX port %d is not a TCP port: set bounce.mx_port, normally 25", cfg.MXPort)
	}
	var source netip.Addr
	if cfg.SourceAddress != "" {
		a, err := netip.ParseAddr(cfg.SourceAddress)
		if err != nil {
			return nil, fmt.Errorf("bounce: source address %q is not an IP address: set bounce.source_address", cfg.SourceAddress)
		}
		source = a.Unmap()
	}
	if cfg.Resolver != "" {
		if _, _, err := net.SplitHostPort(cfg.Resolver); err != nil {
			return nil, fmt.Errorf("bounce: resolver %q is not host:port: set bounce.resolver, such as 127.0.0.1:53", cfg.Resolver)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MXDeliverer{
		cfg:    cfg,
		source: source,
		lookup: newLookuper(cfg.Resolver, cfg.dnsTimeout()),
		log:    log,
	}, nil
}

// Deliver sends body to the pending recipients of env, one SMTP
// transaction per recipient domain, and returns one Result per pending
// recipient. It returns an error, and no results, only when the bounce
// role's address or interface cannot be bound, or env is not a DSN.
func (d *MXDeliverer) Deliver(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	if env.Kind != envelope.KindBounce {
		return nil, fmt.Errorf("bounce: message %s is of kind %q: the MX deliverer sends only DSNs (kind %q)", env.QueueID, env.Kind, envelope.KindBounce)
	}

	var domains []string
	byDomain := map[string][]string{}
	for _, r := range env.Pending() {
		domain := strings.ToLower(r.Address[strings.LastIndexByte(r.Address, '@')+1:])
		if _, ok := byDomain[domain]; !ok {
			domains = append(domains, domain)
		}
		byDomain[domain] = append(byDomain[domain], r.Address)
	}

	var results []envelope.Result
	for _, domain := range domains {
		res, err := d.deliverDomain(ctx, env, body, domain, byDomain[domain])
		if err != nil {
			d.log.Error("bounce delivery failed", "queue_id", env.QueueID, "reason", err.Error())
			return nil, err
		}
		for _, r := range res {
			d.logResult(env, r)
		}
		results = append(results, res...)
	}
	return results, nil
}

// logResult writes the Postfix-style trail line of one recipient. The
// delay is the time since the DSN was queued, as in Postfix's delay=.
func (d *MXDeliverer) logResult(env *envelope.Envelope, r envelope.Result) {
	status := "deferred"
	switch {
	case r.Delivered:
		status = "sent"
	case r.Permanent:
		status = "bounced"
	}
	var delay time.Duration
	if !env.Received.IsZero() {
		delay = time.Since(env.Received).Round(time.Millisecond)
	}
	d.log.Debug("bounce delivery",
		"queue_id", env.QueueID,
		"from", "<>",
		"rcpt", r.Recipient,
		"relay", r.Relay,
		"delay", delay.String(),
		"status", status,
		"reason", (&statusError{Code: r.Code, Status: r.Enhanced, Text: r.Text}).Error())
}

// deliverDomain tries the MX addresses of domain in order until one
// completes a transaction, and returns the results of that transaction, or
// of the last failure when none does.
func (d *MXDeliverer) deliverDomain(ctx context.Context, env *envelope.Envelope, body envelope.Body, domain string, rcpts []string) ([]envelope.Result, error) {
	targets, err := resolveMX(ctx, d.lookup, domain, d.source, d.cfg.AllowInternalMX)
	if err != nil {
		return failAll(rcpts, "", asStatusError(err)), nil
	}

	var last *statusError
	var lastRelay string
	for _, target := range targets {
		relay := fmt.Sprintf("%s[%s]:%d", target.Host, target.Addr, d.cfg.MXPort)
		res, err := d.transaction(ctx, env, body, target, rcpts, relay, true)
		var tlsErr *startTLSError
		if errors.As(err, &tlsErr) {
			// Opportunistic TLS (RFC 7435) falls back to plain text
			// when a server offers STARTTLS but fails the handshake.
			d.log.Warn("bounce STARTTLS failed, retrying without TLS",
				"queue_id", env.QueueID, "relay", relay, "reason", tlsErr.Error())
			res, err = d.transaction(ctx, env, body, target, rcpts, relay, false)
		}
		if err == nil {
			return res, nil
		}

		var be *bindError
		if errors.As(err, &be) {
			return nil, be
		}
		if ctx.Err() != nil {
			return failAll(rcpts, relay, temporaryError("4.4.2", "delivery to %s stopped: %v", relay, ctx.Err())), nil
		}
		d.log.Info("bounce MX failed, trying the next",
			"queue_id", env.QueueID, "relay", relay, "reason", err.Error())
		last, lastRelay = asStatusError(err), relay
	}
	return failAll(rcpts, lastRelay, last), nil
}

// startTLSError is a failed STARTTLS; the connection is unusable after it.
type startTLSError struct{ err error }

func (e *startTLSError) Error() string { return "STARTTLS failed: " + e.err.Error() }
func (e *startTLSError) Unwrap() error { return e.err }

// transaction runs one SMTP session with target. A nil error means the
// transaction reached a final outcome for every recipient, which the
// results hold. An error means this MX could not take the message and the
// next one should be tried.
func (d *MXDeliverer) transaction(ctx context.Context, env *envelope.Envelope, body envelope.Body, target mxTarget, rcpts []string, relay string, useTLS bool) ([]envelope.Result, error) {
	dest := netip.AddrPortFrom(target.Addr, uint16(d.cfg.MXPort))
	conn, err := dialFrom(ctx, d.source, d.cfg.Interface, dest, d.cfg.connectTimeout())
	if err != nil {
		var be *bindError
		if errors.As(err, &be) {
			return nil, be
		}
		return nil, temporaryError("4.4.1", "connect to %s failed: %v", relay, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// net/smtp sets no timeouts of its own, so every step gets a deadline.
	deadline := func() { conn.SetDeadline(time.Now().Add(d.cfg.commandTimeout())) }

	c, err := d.hello(conn, target.Host, relay, useTLS, deadline)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	deadline()
	if err := c.Mail(""); err != nil {
		if isPermanent(err) {
			return failAll(rcpts, relay, replyError(relay, "MAIL FROM:<>", err)), nil
		}
		return nil, sessionError(relay, "MAIL FROM:<>", err)
	}

	results := make([]envelope.Result, 0, len(rcpts))
	var accepted []string
	for _, rcpt := range rcpts {
		deadline()
		err := c.Rcpt(rcpt)
		var protoErr *textproto.Error
		switch {
		case err == nil:
			accepted = append(accepted, rcpt)
		case errors.As(err, &protoErr):
			results = append(results, replyError(relay, "RCPT TO", err).result(rcpt, relay))
		default:
			return nil, sessionError(relay, "RCPT TO", err)
		}
	}
	if len(accepted) == 0 {
		c.Quit()
		return results, nil
	}

	rejected, err := sendData(c, env, body, relay, deadline)
	if err != nil {
		return nil, err
	}
	if rejected != nil {
		return append(results, failAll(accepted, relay, rejected)...), nil
	}
	for _, rcpt := range accepted {
		results = append(results, envelope.Result{
			Recipient: rcpt, Code: 250, Enhanced: "2.0.0", Text: "delivered", Relay: relay, Delivered: true,
		})
	}
	return results, nil
}

// hello reads the greeting, sends EHLO with the bounce HELO name, and
// starts TLS when the server offers it and useTLS is set.
func (d *MXDeliverer) hello(conn net.Conn, host, relay string, useTLS bool, deadline func()) (*smtp.Client, error) {
	deadline()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return nil, sessionError(relay, "greeting", err)
	}
	deadline()
	if err := c.Hello(d.cfg.helo()); err != nil {
		c.Close()
		return nil, sessionError(relay, "EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok || !useTLS {
		return c, nil
	}

	deadline()
	// Certificates are not verified, as in opportunistic TLS (RFC
	// 7435): many MX certificates are self-signed or name another host,
	// and without DNSSEC the expected name is unknown anyway. Encryption
	// still keeps passive listeners out.
	if err := c.StartTLS(&tls.Config{ServerName: host, InsecureSkipVerify: true}); err != nil {
		c.Close()
		return nil, &startTLSError{err: err}
	}
	return c, nil
}

// sendData sends DATA, env.Prepend and body. It returns nil, nil when the
// server accepted the message, the server's reply when it rejected it, and
// an error when the connection was lost before the outcome was known.
func sendData(c *smtp.Client, env *envelope.Envelope, body envelope.Body, relay string, deadline func()) (*statusError, error) {
	deadline()
	w, err := c.Data()
	if err != nil {
		if isPermanent(err) || isTemporary(err) {
			return replyError(relay, "DATA", err), nil
		}
		return nil, sessionError(relay, "DATA", err)
	}

	deadline()
	message := io.MultiReader(strings.NewReader(env.Prepend), io.NewSectionReader(body, 0, body.Size()))
	if _, err := io.Copy(w, message); err != nil {
		return nil, sessionError(relay, "message transfer", err)
	}
	deadline()
	if err := w.Close(); err != nil {
		if isPermanent(err) || isTemporary(err) {
			return replyError(relay, "end of data", err), nil
		}
		return nil, sessionError(relay, "end of data", err)
	}

	deadline()
	c.Quit()
	return nil, nil
}
