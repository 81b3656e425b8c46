package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/maildir"
	"github.com/lambgate/lambgate/appliance/policy"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/relay"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/smtpd"
	"github.com/lambgate/lambgate/appliance/spool"
)

// spoolStore adapts the spool to the SMTP server's Store interface.
type spoolStore struct{ sp *spool.Spool }

func (s spoolStore) Create(env *envelope.Envelope) (smtpd.MessageWriter, error) {
	w, err := s.sp.Create(env)
	if err != nil {
		return nil, err
	}
	return spoolWriter{w}, nil
}

type spoolWriter struct{ *spool.Writer }

func (w spoolWriter) Commit(ctx context.Context, quarantine bool) error {
	area := spool.AreaQueue
	if quarantine {
		area = spool.AreaQuarantine
	}
	return w.Writer.Commit(ctx, area)
}

// submitBounce spools a DSN built by the bounce sender and queues it. The
// DSN is durable before Bounce returns, so the original can be removed.
func (g *Gateway) submitBounce(ctx context.Context, env *envelope.Envelope, msg []byte) error {
	w, err := g.spool.Create(env)
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(ctx, spool.AreaQueue); err != nil {
		return err
	}
	g.queue.Enqueue(env)
	return nil
}

// closer is implemented by deliverers that hold connections.
type closer interface{ Close() error }

// switchDeliverer lets a reload replace the delivery target while the queue
// keeps its reference; attempts in flight finish on the old target.
type switchDeliverer struct {
	cur atomic.Pointer[envelope.Deliverer]
}

func newSwitchDeliverer(d envelope.Deliverer) *switchDeliverer {
	s := &switchDeliverer{}
	s.cur.Store(&d)
	return s
}

func (s *switchDeliverer) Deliver(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	return (*s.cur.Load()).Deliver(ctx, env, body)
}

func (s *switchDeliverer) get() envelope.Deliverer { return *s.cur.Load() }

// swap installs d and closes the previous target's idle connections.
func (s *switchDeliverer) swap(d envelope.Deliverer) {
	old := s.cur.Swap(&d)
	if c, ok := (*old).(closer); ok {
		c.Close()
	}
}

func (s *switchDeliverer) close() {
	if c, ok := s.get().(closer); ok {
		c.Close()
	}
}

type switchBouncer struct {
	cur atomic.Pointer[envelope.Bouncer]
}

func newSwitchBouncer(b envelope.Bouncer) *switchBouncer {
	s := &switchBouncer{}
	s.cur.Store(&b)
	return s
}

func (s *switchBouncer) Bounce(ctx context.Context, env *envelope.Envelope, body envelope.Body, failed []envelope.Recipient) error {
	return (*s.cur.Load()).Bounce(ctx, env, body, failed)
}

func (s *switchBouncer) swap(b envelope.Bouncer) { s.cur.Store(&b) }

// proberFunc adapts the current relay's RCPT probe to policy.Prober.
type proberFunc func(ctx context.Context, rcpt string) (bool, error)

func (f proberFunc) Probe(ctx context.Context, rcpt string) (bool, error) { return f(ctx, rcpt) }

var errNoInternalServer = errors.New("recipient callout needs internal.server")

func (g *Gateway) probe(ctx context.Context, rcpt string) (bool, error) {
	r, ok := g.inbound.get().(*relay.Relay)
	if !ok {
		return false, errNoInternalServer
	}
	return r.Probe(ctx, rcpt)
}

// newInboundDeliverer returns the relay to the internal server, or the
// Maildir in the data directory when no server is configured.
func (g *Gateway) newInboundDeliverer(s *settings.Settings) (envelope.Deliverer, error) {
	if s.Internal.Server == "" {
		m, err := maildir.New(filepath.Join(g.dataDir, "maildir"), g.log)
		if err != nil {
			return nil, fmt.Errorf("maildir: %w", err)
		}
		return m, nil
	}
	helo := s.Internal.HELO
	if helo == "" {
		helo = s.Hostname
	}
	r, err := relay.New(relay.Config{
		Server:         s.Internal.Server,
		HELO:           helo,
		TLS:            s.Internal.TLS,
		TLSVerify:      s.Internal.TLSVerify,
		SourceAddress:  s.Internal.SourceAddress,
		MaxConnections: s.Internal.MaxConnections,
		Timeout:        s.Internal.Timeout.D(),
	}, g.log)
	if err != nil {
		return nil, fmt.Errorf("relay to %s: %w", s.Internal.Server, err)
	}
	return r, nil
}

func (g *Gateway) queueConfig(s *settings.Settings) queue.Config {
	return queue.Config{
		MinBackoff:     s.Queue.MinBackoff.D(),
		MaxBackoff:     s.Queue.MaxBackoff.D(),
		Lifetime:       s.Queue.Lifetime.D(),
		BounceLifetime: s.Bounce.Lifetime.D(),
		Workers:        s.Queue.Workers,
		OnEvent:        g.metrics.queueEvent,
	}
}

// spfChecker resolves through the configured DNS server when one is set,
// so that SPF results and MX lookups come from the same view of DNS.
func spfChecker(s *settings.Settings, log *slog.Logger) *policy.SPFChecker {
	return &policy.SPFChecker{Log: log, Resolver: resolver(s)}
}

// resolver returns a resolver that queries the configured DNS server, or the
// system resolver when none is set.
func resolver(s *settings.Settings) *net.Resolver {
	addr := s.Bounce.Resolver
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
