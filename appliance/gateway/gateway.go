// Package gateway assembles the running appliance from its settings: the
// spool, the queue, the relay or Maildir target, the bounce sender, the
// policy checker, the filters and the inbound SMTP server. It owns their
// lifecycle (start, reload, shutdown) and the glue between them, and never
// implements mail handling itself.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lambgate/lambgate/appliance/bounce"
	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/appliance/policy"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/smtpd"
	"github.com/lambgate/lambgate/appliance/spool"
	"github.com/lambgate/lambgate/plugins/host"
)

// Gateway is one running appliance.
type Gateway struct {
	dataDir string
	log     *slog.Logger

	mu       sync.Mutex
	settings *settings.Settings

	spool   *spool.Spool
	queue   *queue.Queue
	smtp    *smtpd.Server
	policy  *policy.Checker
	inbound *switchDeliverer
	mx      *switchDeliverer
	bouncer *switchBouncer
	filters filter.Chain
	plugins *host.Host
	metrics *metrics
	admin   *http.Server

	listeners []net.Listener
	// resolvConf receives the interfaces' DNS servers; see SetResolvConf.
	resolvConf string
	// level is the logger's level, set by a reload; see SetLogLevel.
	level *slog.LevelVar
}

// New builds every component from s without opening any listener, so that
// a bad setting fails before the gateway is reachable.
func New(dataDir string, written *settings.Settings, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{
		dataDir:  dataDir,
		log:      log,
		settings: written,
		metrics:  newMetrics(),
	}
	// Components see the role addresses filled in from the interface
	// section; g.settings keeps the file as written, for the web setup.
	s := written.Bound()

	sp, err := spool.Open(filepath.Join(dataDir, "spool"), log)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	g.spool = sp

	target, err := g.newInboundDeliverer(s)
	if err != nil {
		sp.Close()
		return nil, err
	}
	g.inbound = newSwitchDeliverer(target)

	bcfg := bounce.ConfigFromSettings(s)
	mx, err := bounce.NewMXDeliverer(bcfg, log)
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("bounce sender: %w", err)
	}
	g.mx = newSwitchDeliverer(mx)
	b, err := bounce.NewBouncer(bcfg, g.submitBounce, log)
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("bounce sender: %w", err)
	}
	g.bouncer = newSwitchBouncer(b)

	g.queue = queue.New(sp, map[envelope.Kind]envelope.Deliverer{
		envelope.KindInbound: g.inbound,
		envelope.KindBounce:  g.mx,
	}, g.bouncer, g.queueConfig(s), log)
	g.registerGauges()

	g.policy, err = policy.New(policy.ConfigFrom(s, dataDir), proberFunc(g.probe), log)
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("recipient policy: %w", err)
	}

	g.plugins, err = host.New(context.Background(), host.Config{
		Dir:      filepath.Join(dataDir, "plugins"),
		CacheDir: filepath.Join(dataDir, "cache", "wasm"),
		StateDir: filepath.Join(dataDir, "plugin-state"),
		Resolver: resolver(s),
		Log:      log,
	})
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("plugins: %w", err)
	}
	g.filters = g.plugins

	tlsConfig, err := smtpd.TLSConfig(s.Inbound.TLSCert, s.Inbound.TLSKey, dataDir, s.Hostname)
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("inbound TLS: %w", err)
	}
	g.smtp, err = smtpd.New(smtpd.ConfigFrom(s, tlsConfig), smtpd.Deps{
		Store:    spoolStore{sp},
		Enqueuer: g.queue,
		Policy:   g.policy,
		SPF:      spfChecker(s, log),
		Filters:  g.filters,
		Log:      log,
	})
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("inbound SMTP: %w", err)
	}
	return g, nil
}

// Start configures the interfaces, resumes the spooled queue and opens the
// inbound listeners. On a development machine (no interface settings) a
// listener that cannot bind stops the start, because a gateway that
// silently listens on fewer addresses than configured loses mail to
// retries. On the appliance, a role whose address is missing is logged and
// left closed while the others, the web setup above all, keep running, so
// that the administrator can fix it.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	s := g.settings.Bound()
	g.mu.Unlock()
	roles := g.applyNetwork(s)
	appliance := roles != nil

	if err := g.queue.Start(ctx); err != nil {
		return fmt.Errorf("start queue: %w", err)
	}
	// Plugins dropped into the directory, or installed from the web setup,
	// go live without a restart.
	go g.plugins.Watch(ctx, 2*time.Second)

	if roleMissing(s, roles, settings.RoleInbound) {
		g.log.Error("inbound role not started: its address is missing", "listen", strings.Join(s.Inbound.Listen, ","))
	} else {
		for _, addr := range s.Inbound.Listen {
			l, err := net.Listen("tcp", addr)
			if err != nil && appliance {
				g.log.Error("inbound listener not started", "addr", addr, "err", err)
				continue
			}
			if err != nil {
				g.closeListeners()
				return fmt.Errorf("inbound listener %s: %w", addr, err)
			}
			g.listeners = append(g.listeners, l)
		}
	}
	for _, l := range g.listeners {
		go g.serve(l)
	}

	if roleMissing(s, roles, settings.RoleAdmin) {
		g.log.Error("admin role not started: its address is missing", "listen", s.Admin.Listen)
	} else if err := g.startAdmin(s); err != nil {
		if !appliance {
			g.closeListeners()
			return err
		}
		g.log.Error("admin listener not started", "err", err)
	}

	g.logReady(s)
	return nil
}

func (g *Gateway) serve(l net.Listener) {
	if err := g.smtp.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
		g.log.Error("inbound listener stopped", "addr", l.Addr().String(), "err", err)
	}
}

func (g *Gateway) closeListeners() {
	for _, l := range g.listeners {
		l.Close()
	}
	g.listeners = nil
}

// logReady prints where the gateway listens and where accepted mail goes,
// which is what a new user needs after "make run".
func (g *Gateway) logReady(s *settings.Settings) {
	addrs := make([]string, len(g.listeners))
	for i, l := range g.listeners {
		addrs[i] = l.Addr().String()
	}
	target := "relay to " + s.Internal.Server
	if s.Internal.Server == "" {
		target = "Maildir " + filepath.Join(g.dataDir, "maildir", "new")
	}
	g.log.Info("accepting mail",
		"listen", strings.Join(addrs, ","),
		"domains", strings.Join(s.Domains.Relay, ","),
		"delivery", target,
		"admin", "https://"+s.Admin.Listen+"/")
}

// Shutdown stops accepting mail and lets open sessions finish within ctx.
// At the same time it stops the queue, which cancels the running delivery
// attempts, so that a hung internal server cannot hold the stop. Accepted
// mail stays in the spool for the next start.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopAdmin(ctx)
	// Sessions that end after the queue stopped still spool and enqueue
	// their message, which the next start delivers.
	queueStopped := make(chan error, 1)
	go func() { queueStopped <- g.queue.Stop(ctx) }()

	err := g.smtp.Shutdown(ctx)
	if errors.Is(err, net.ErrClosed) {
		// A reload that moved the listeners closed the old ones already.
		err = nil
	}
	if err != nil {
		g.smtp.Close()
	}
	if qerr := <-queueStopped; qerr != nil && err == nil {
		err = qerr
	}
	g.inbound.close()
	if perr := g.plugins.Close(ctx); perr != nil && err == nil {
		err = perr
	}
	g.spool.Close()
	return err
}

// Queue exposes the delivery queue, for the web setup and tests.
func (g *Gateway) Queue() *queue.Queue { return g.queue }

// Plugins exposes the Wasm plugin host, for the web setup.
func (g *Gateway) Plugins() *host.Host { return g.plugins }

// Spool exposes the spool, for the web setup and tests.
func (g *Gateway) Spool() *spool.Spool { return g.spool }
