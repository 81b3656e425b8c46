package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/webui"
)

// The admin listener serves HTTPS and plain HTTP on the one admin address
// ([admin] listen, 127.0.0.1:8443 by default). The first byte of a
// connection distinguishes a TLS handshake from an HTTP request. Plain HTTP
// gets a redirect to the HTTPS URL, except /metrics and /healthz, which
// Prometheus and health checks read without a session or a trusted
// certificate. One port keeps clear of gokrazy's status page on port 80 and
// needs no second settings key.
// TODO: a separate redirect port (so that http://appliance/ works without
// a port number) needs a settings key such as admin.redirect_listen, because
// gokrazy owns port 80 on the appliance.

// adminHandler routes the admin listener's requests.
type adminHandler struct {
	metrics http.Handler
	ui      *webui.Server
}

func (h *adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		h.metrics.ServeHTTP(w, r)
		return
	case "/healthz":
		w.Write([]byte("ok\n"))
		return
	}
	if r.TLS == nil {
		// The target is the address the request arrived on, never the
		// client's Host header, which a client or proxy can set to any
		// name and so turn the redirect towards another site.
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok {
			http.Error(w, "use https", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "https://"+local.String()+r.URL.RequestURI(), http.StatusMovedPermanently)
		return
	}
	h.ui.ServeHTTP(w, r)
}

// startAdmin serves the web setup and the metrics on the admin role's
// address.
func (g *Gateway) startAdmin(s *settings.Settings) error { return g.serveAdmin(s, nil) }

// serveAdmin starts the admin listener. handler is the previous listener's
// handler on a restart, so that sessions and chart history survive a change
// of address.
func (g *Gateway) serveAdmin(s *settings.Settings, handler *adminHandler) error {
	if s.Admin.Listen == "" {
		return nil
	}
	cert, fingerprint, created, err := webui.LoadOrCreateCertificate(webui.CertificateDir(g.dataDir), s.Hostname)
	if err != nil {
		return err
	}
	if handler == nil {
		ui, err := webui.New(webui.Config{
			StateDir: webui.CertificateDir(g.dataDir),
			Backend:  webBackend{g},
			Ring:     g.logRing(),
			Series:   g.logSeries(),
			Log:      g.log,
		})
		if err != nil {
			return fmt.Errorf("web setup: %w", err)
		}
		handler = &adminHandler{
			metrics: promhttp.HandlerFor(g.metrics.registry, promhttp.HandlerOpts{}),
			ui:      ui,
		}
	}

	l, err := net.Listen("tcp", s.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w (choose a free port in [admin] listen)", s.Admin.Listen, err)
	}
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	g.admin = srv
	go func() {
		if err := srv.Serve(newSniffListener(l, tlsConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("admin listener stopped", "addr", s.Admin.Listen, "err", err)
		}
	}()
	if created {
		g.log.Info("generated the admin certificate; compare its fingerprint when the browser warns",
			"fingerprint", fingerprint)
	}
	g.log.Info("web setup listening", "url", "https://"+l.Addr().String()+"/",
		"fingerprint", fingerprint)
	return nil
}

func (g *Gateway) stopAdmin(ctx context.Context) {
	if g.admin == nil {
		return
	}
	g.admin.Shutdown(ctx)
	if h, ok := g.admin.Handler.(*adminHandler); ok {
		h.ui.Close()
	}
	g.admin = nil
}

// restartAdmin moves the admin listener to a new address. The old server
// shuts down in the background, because the request that saved the new
// address may still be running on it.
func (g *Gateway) restartAdmin(s *settings.Settings) {
	old := g.admin
	var handler *adminHandler
	if old != nil {
		handler, _ = old.Handler.(*adminHandler)
	}
	g.admin = nil
	if err := g.serveAdmin(s, handler); err != nil {
		// Keep the web setup where it was rather than lose the only way
		// into an appliance without a shell.
		g.admin = old
		g.log.Error("admin listener not moved, it stays on the old address", "err", err)
		return
	}
	if old != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			old.Shutdown(ctx)
		}()
	}
}

// sniffListener hands out TLS connections for clients that start with a
// TLS handshake and plain ones for the rest. The first byte is read in a
// goroutine per connection, so a silent client cannot stall Accept.
type sniffListener struct {
	net.Listener
	config *tls.Config
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
}

// sniffTimeout bounds the wait for a new connection's first byte.
const sniffTimeout = 10 * time.Second

func newSniffListener(l net.Listener, config *tls.Config) *sniffListener {
	sl := &sniffListener{Listener: l, config: config, conns: make(chan net.Conn), done: make(chan struct{})}
	go sl.acceptLoop()
	return sl
}

func (sl *sniffListener) acceptLoop() {
	for {
		c, err := sl.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			sl.Close()
			return
		}
		if err != nil {
			// Running out of file descriptors must not end the admin
			// listener, so every other error waits and tries again.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go sl.sniff(c)
	}
}

func (sl *sniffListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	// 0x16 is the TLS record type of a handshake.
	if first[0] == 0x16 {
		out = tls.Server(out, sl.config)
	}
	select {
	case sl.conns <- out:
	case <-sl.done:
		c.Close()
	}
}

func (sl *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-sl.conns:
		return c, nil
	case <-sl.done:
		return nil, net.ErrClosed
	}
}

func (sl *sniffListener) Close() error {
	var err error
	sl.once.Do(func() {
		close(sl.done)
		err = sl.Listener.Close()
	})
	return err
}

// peekedConn reads the bytes the sniffer buffered before the rest.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
