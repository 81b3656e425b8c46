// Package smtpd is the gateway's inbound SMTP server, built on go-smtp. It
// accepts internet mail for the relay domains, enforces every protocol
// limit, strict CRLF framing and the recipient policy, and calls the
// filters at each phase. It adds the Received header and streams each
// message into the spool before it replies 250. Its connection layer
// (strictConn) runs STARTTLS itself, so that its checks see the decrypted
// commands, content and replies that go-smtp exchanges.
//
// It never delivers, bounces or retries mail itself, never buffers a whole
// message in memory, and never replies 250 to a message that is neither
// durably committed nor deliberately discarded.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/appliance/policy"
)

// Deps are the server's collaborators.
type Deps struct {
	Store    Store
	Enqueuer Enqueuer
	Policy   *policy.Checker
	// SPF checks the envelope sender when Config.SPF is set; nil uses
	// the system resolver with policy.DefaultSPFTimeout.
	SPF     *policy.SPFChecker
	Filters filter.Chain // nil means filter.None
	Log     *slog.Logger // nil discards logs
}

// Server is the inbound SMTP server.
type Server struct {
	deps Deps
	log  *slog.Logger
	cfg  atomic.Pointer[Config]

	ctx    context.Context // canceled by Close and Shutdown
	cancel context.CancelFunc
	limits connLimits

	mu        sync.Mutex
	current   *generation
	gens      []*generation
	listeners []net.Listener
	closed    bool
	serving   sync.WaitGroup
	// conns holds every open connection, for Close: go-smtp closes its
	// connections only when Close comes first, not after a Shutdown.
	conns map[*connState]struct{}
	// stopping is set by Shutdown, so that sessions waiting for a command
	// end at once with 421 instead of holding the stop up.
	stopping atomic.Bool
}

func (s *Server) track(st *connState) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*connState]struct{})
	}
	s.conns[st] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) untrack(st *connState) {
	s.mu.Lock()
	delete(s.conns, st)
	s.mu.Unlock()
}

// generation is the pair of go-smtp servers built from one Config. SetConfig
// starts a new generation for new connections and lets the old one finish
// its connections, because go-smtp reads its settings without locks.
// Connections arrive at smtp, and after STARTTLS (which strictConn runs)
// at tls, which does not offer STARTTLS. The tls listener stays open until
// Close or Shutdown, so that an old generation's connections can still
// start TLS after a reload.
type generation struct {
	smtp  *smtp.Server
	ln    *handOffListener
	tls   *smtp.Server
	tlsLn *handOffListener
}

// New validates cfg and deps and returns a server that is not yet
// listening.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, errors.New("smtpd: Deps.Store is missing: pass the spool adapter")
	}
	if deps.Enqueuer == nil {
		return nil, errors.New("smtpd: Deps.Enqueuer is missing: pass the queue")
	}
	if deps.Policy == nil {
		return nil, errors.New("smtpd: Deps.Policy is missing: pass a policy.Checker")
	}
	if deps.Filters == nil {
		deps.Filters = filter.None{}
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.SPF == nil {
		deps.SPF = &policy.SPFChecker{Log: deps.Log}
	}

	s := &Server{deps: deps, log: deps.Log}
	s.limits.perIP = make(map[netip.Addr]int)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	c := cfg
	s.cfg.Store(&c)
	s.current = s.newGeneration(&c)
	return s, nil
}

// SetConfig applies a new configuration without dropping connections:
// connections accepted from now on use it, and open ones finish under the
// configuration they were accepted with.
func (s *Server) SetConfig(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	c := cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return smtp.ErrServerClosed
	}
	old := s.current
	s.cfg.Store(&c)
	s.current = s.newGeneration(&c)
	old.ln.Close()
	s.log.Info("smtpd configuration applied", "hostname", c.Hostname,
		"max_connections", c.MaxConnections, "max_message_bytes", c.MaxMessageBytes)
	return nil
}

// newGeneration builds and starts the go-smtp servers for cfg; s.mu is
// held or s is not yet shared.
func (s *Server) newGeneration(cfg *Config) *generation {
	g := &generation{
		smtp:  s.newSMTPServer(cfg, cfg.TLS),
		ln:    newHandOffListener(),
		tls:   s.newSMTPServer(cfg, nil),
		tlsLn: newHandOffListener(),
	}
	s.gens = append(s.gens, g)
	go func() {
		// Serve returns once the hand-off listener is closed.
		_ = g.smtp.Serve(g.ln)
	}()
	go func() { _ = g.tls.Serve(g.tlsLn) }()
	return g
}

// newSMTPServer builds a go-smtp server for cfg that offers STARTTLS when
// tlsConfig is set. go-smtp never runs the handshake itself, because
// strictConn keeps the command from it.
func (s *Server) newSMTPServer(cfg *Config, tlsConfig *tls.Config) *smtp.Server {
	ss := smtp.NewServer(&backend{srv: s})
	ss.Domain = cfg.Hostname
	ss.MaxMessageBytes = cfg.MaxMessageBytes
	ss.MaxRecipients = cfg.MaxRecipients
	ss.MaxLineLength = cfg.MaxLineLength
	// strictConn replaces these values with the configured timeouts;
	// they must only be non-zero so that go-smtp sets deadlines at all.
	ss.ReadTimeout = cfg.CommandTimeout
	ss.WriteTimeout = cfg.CommandTimeout
	ss.EnableSMTPUTF8 = true
	ss.EnableDSN = true
	ss.TLSConfig = tlsConfig
	ss.ErrorLog = slogErrorLog{s.log}
	return ss
}

// Serve accepts connections on l until Close or Shutdown. It returns nil
// after those, and the accept error otherwise.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return smtp.ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	s.log.Info("smtpd listening", "addr", l.Addr().String())
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("smtpd: listener %s closed: %w", l.Addr(), err)
			}
			// Errors such as EMFILE pass once connections close, so the
			// listener keeps trying, with a growing pause.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "addr", l.Addr().String(), "reason", err,
				"delay", delay.String())
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.admit(c)
	}
}

// ListenAndServe listens on every address (host:port) and serves them all.
// It returns the first error from listening or serving.
func (s *Server) ListenAndServe(addrs []string) error {
	var listeners []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("smtpd: listen on %s failed: %w (is another program on that port?)", a, err)
		}
		listeners = append(listeners, l)
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- s.Serve(l) }()
	}
	for range listeners {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

// handOff passes an admitted connection to the current generation.
func (s *Server) handOff(c *strictConn) bool {
	for {
		s.mu.Lock()
		g, closed := s.current, s.closed
		s.mu.Unlock()
		if closed {
			return false
		}
		c.state.gen = g
		if g.ln.deliver(c) {
			return true
		}
		// The generation was replaced meanwhile; try the new one.
	}
}

// stopAccepting closes the listeners; s.mu must not be held.
func (s *Server) stopAccepting() ([]*generation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, smtp.ErrServerClosed
	}
	s.closed = true
	s.cancel()
	var err error
	for _, l := range s.listeners {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return s.gens, err
}

// Close closes the listeners and every connection at once. A message being
// received is aborted and never acknowledged, so its sender retries it.
func (s *Server) Close() error {
	gens, err := s.stopAccepting()
	if errors.Is(err, smtp.ErrServerClosed) {
		// A Shutdown that ran out of time stopped accepting already, and
		// go-smtp's Close then leaves the sessions open: they are closed
		// here, which is why the caller came.
		err = nil
	}
	for _, g := range gens {
		_ = g.smtp.Close()
		_ = g.tls.Close()
	}
	s.mu.Lock()
	for st := range s.conns {
		_ = st.raw.Close()
	}
	s.mu.Unlock()
	s.serving.Wait()
	return err
}

// Shutdown closes the listeners and waits until every client has ended its
// session. If ctx ends first, Shutdown returns ctx's error, and the caller
// should then call Close.
func (s *Server) Shutdown(ctx context.Context) error {
	gens, err := s.stopAccepting()
	if errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	s.stopping.Store(true)
	s.mu.Lock()
	for st := range s.conns {
		if sc := st.current.Load(); sc != nil {
			sc.endIfIdle()
		}
	}
	s.mu.Unlock()
	// The plaintext server first: its connections may still hand over
	// to the TLS server until they end.
	for _, g := range gens {
		for _, ss := range []*smtp.Server{g.smtp, g.tls} {
			if serr := ss.Shutdown(ctx); serr != nil && !errors.Is(serr, smtp.ErrServerClosed) {
				return serr
			}
		}
	}
	s.serving.Wait()
	return err
}

// handOffListener is the net.Listener that a go-smtp generation serves:
// admitted connections arrive through a channel.
type handOffListener struct {
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newHandOffListener() *handOffListener {
	return &handOffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to the generation's Serve loop, or returns false once the
// listener is closed.
func (l *handOffListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handOffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handOffListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *handOffListener) Addr() net.Addr { return &net.TCPAddr{} }

// slogErrorLog routes go-smtp's internal error messages to the log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Printf(format string, v ...any) {
	l.log.Warn("smtp library error", "reason", fmt.Sprintf(format, v...))
}

func (l slogErrorLog) Println(v ...any) {
	l.log.Warn("smtp library error", "reason", fmt.Sprint(v...))
}
