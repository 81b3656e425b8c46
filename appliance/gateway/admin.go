package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lambgate/lambgate/appliance/settings"
)

// startAdmin serves the metrics endpoint on the admin role's address.
// TODO: the web setup (HTTPS, login, pages) is served here once it exists.
func (g *Gateway) startAdmin(s *settings.Settings) error {
	if s.Admin.Listen == "" {
		return nil
	}
	l, err := net.Listen("tcp", s.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", s.Admin.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.admin = srv
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("admin listener stopped", "addr", s.Admin.Listen, "err", err)
		}
	}()
	return nil
}

func (g *Gateway) stopAdmin(ctx context.Context) {
	if g.admin != nil {
		g.admin.Shutdown(ctx)
		g.admin = nil
	}
}

func (g *Gateway) restartAdmin(s *settings.Settings) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.stopAdmin(ctx)
	if err := g.startAdmin(s); err != nil {
		g.log.Error("admin listener not restarted", "err", err)
	}
}
