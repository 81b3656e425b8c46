package webui

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/spool"
)

//go:embed templates static
var assets embed.FS

// Backend is the web UI's access to the running gateway. The gateway
// package implements it, and tests use a fake.
type Backend interface {
	// Settings returns a copy of the settings in force.
	Settings() *settings.Settings
	// ApplySettings validates s, saves it atomically and applies it
	// without dropping mail. A validation failure is a settings.Errors.
	ApplySettings(s *settings.Settings) error
	// Messages lists the envelopes of an area, oldest first.
	Messages(area spool.Area) ([]*envelope.Envelope, error)
	// Message returns one message's envelope and its header section.
	Message(area spool.Area, queueID string) (*envelope.Envelope, []byte, error)
	// RetryNow makes every deferred message due now.
	RetryNow()
	// Retry makes one queued message due now. A message that is not
	// waiting in the queue gives an error wrapping spool.ErrNotFound.
	// Retry, Delete and Bounce return an error wrapping
	// queue.ErrAttemptRunning while a delivery attempt of the message
	// runs.
	Retry(queueID string) error
	// Delete removes a message from an area without a DSN.
	Delete(area spool.Area, queueID string) error
	// Bounce sends a DSN for a queued message's pending recipients, through
	// the backscatter safeguards, and removes the message.
	Bounce(ctx context.Context, queueID string) error
	// Release moves a quarantined message to the queue for delivery.
	Release(queueID string) error
	// QueueStats returns the queue's depth and counters.
	QueueStats() queue.Stats
}

// Config configures a Server.
type Config struct {
	// StateDir holds the password hash, the sessions and the admin
	// certificate; the gateway uses DATA/webui.
	StateDir string
	Backend  Backend
	// Ring is the log ring the main program installed; nil shows no logs.
	Ring *LogRing
	// Series feeds the charts; nil starts an empty one.
	Series *Series
	Log    *slog.Logger
	// BcryptCost is the bcrypt work factor of new password hashes
	// (default 12). Tests lower it.
	BcryptCost int
	// LoginAttempts failed logins from one address within LoginWindow
	// block further attempts until the window passes (default 5 in 15
	// minutes).
	LoginAttempts int
	LoginWindow   time.Duration
	// Now replaces the clock, for tests.
	Now func() time.Time
}

// Server is the web UI's HTTP handler. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	auth    *authStore
	limiter *loginLimiter
	pages   *pages
	mux     *http.ServeMux
	stop    chan struct{}
}

const (
	sessionCookie = "lambgate_session"
	// preSessionCookie carries the CSRF token of the login and setup forms,
	// which are posted before a session exists.
	preSessionCookie = "lambgate_presession"
	csrfField        = "csrf"
	// maxFormBytes bounds every request body: a settings file or a form is
	// far smaller.
	maxFormBytes = 1 << 20
)

// New opens the state directory and builds the handler.
func New(cfg Config) (*Server, error) {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 12
	}
	if cfg.LoginAttempts == 0 {
		cfg.LoginAttempts = 5
	}
	if cfg.LoginWindow == 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Series == nil {
		cfg.Series = NewSeries()
	}
	if cfg.Ring == nil {
		cfg.Ring = NewLogRing(1, nil)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}

	auth, err := openAuthStore(cfg.StateDir, cfg.BcryptCost, cfg.Now)
	if err != nil {
		return nil, err
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}

	s := &Server{
		cfg:     cfg,
		log:     cfg.Log,
		auth:    auth,
		limiter: newLoginLimiter(cfg.LoginAttempts, cfg.LoginWindow, cfg.Now),
		pages:   pg,
		stop:    make(chan struct{}),
	}
	s.routes()
	go s.sampleQueueDepth()
	return s, nil
}

// Close stops the queue depth sampler.
func (s *Server) Close() { close(s.stop) }

// CertificateDir returns where the admin certificate belongs.
func CertificateDir(dataDir string) string { return filepath.Join(dataDir, "webui") }

func (s *Server) sampleQueueDepth() {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		s.cfg.Series.SetMax(GaugeQueueDepth, s.cfg.Now(), uint64(s.cfg.Backend.QueueStats().Depth))
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))

	m.HandleFunc("GET /setup", s.setupPage)
	m.HandleFunc("POST /setup", s.setupSubmit)
	m.HandleFunc("POST /setup/probe", s.setupProbe)
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.loginSubmit)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("POST /password", s.changePassword)

	m.HandleFunc("GET /{$}", s.dashboard)
	m.HandleFunc("GET /queue", s.messageList(spool.AreaQueue))
	m.HandleFunc("GET /quarantine", s.messageList(spool.AreaQuarantine))
	m.HandleFunc("GET /queue/{id}", s.messageView(spool.AreaQueue))
	m.HandleFunc("GET /quarantine/{id}", s.messageView(spool.AreaQuarantine))
	m.HandleFunc("POST /queue/retry", s.retryAll)
	m.HandleFunc("POST /queue/{id}/{action}", s.messageAction(spool.AreaQueue))
	m.HandleFunc("POST /quarantine/{id}/{action}", s.messageAction(spool.AreaQuarantine))
	m.HandleFunc("GET /logs", s.logs)
	m.HandleFunc("GET /settings", s.settingsPage)
	m.HandleFunc("POST /settings", s.settingsSubmit)
	m.HandleFunc("POST /settings/probe", s.settingsProbe)
	m.HandleFunc("GET /settings/export", s.settingsExport)
	m.HandleFunc("POST /settings/import", s.settingsImport)
	m.HandleFunc("GET /plugins", s.plugins)
	m.HandleFunc("POST /plugins", s.pluginUpload)
	m.HandleFunc("GET /plugins/{name}/edit", s.pluginEdit)
	m.HandleFunc("POST /plugins/{name}/{action}", s.pluginAction)
	s.mux = m
}

// publicPaths are reachable without a session.
var publicPaths = map[string]bool{"/login": true, "/setup": true, "/setup/probe": true}

// ServeHTTP applies the security headers, the setup and session gate and
// the CSRF check, then routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())

	if len(r.URL.Path) >= 8 && r.URL.Path[:8] == "/static/" {
		s.mux.ServeHTTP(w, r)
		return
	}

	// Until the admin password exists, the wizard is the only page, and
	// once it exists the wizard is gone for good.
	setupDone := s.auth.hasPassword()
	isSetup := r.URL.Path == "/setup" || r.URL.Path == "/setup/probe"
	if !setupDone && !isSetup {
		s.deny(w, r, "/setup", "Finish the setup wizard first.")
		return
	}
	if setupDone && isSetup {
		s.deny(w, r, "/login", "Setup is complete; log in instead.")
		return
	}

	sess := s.auth.lookup(cookieValue(r, sessionCookie))
	if setupDone && sess == nil && !publicPaths[r.URL.Path] {
		s.deny(w, r, "/login", "Log in first: the session is missing or expired.")
		return
	}

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		limit := int64(maxFormBytes)
		if r.URL.Path == "/plugins" {
			limit = maxPluginUploadBytes
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		// Parse here, so that a body over the limit gets its own reply
		// instead of looking like a missing token.
		var tooLarge *http.MaxBytesError
		err := r.ParseForm()
		if err == nil && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(limit)
		}
		if errors.As(err, &tooLarge) {
			s.log.Warn("web request rejected", "remote", r.RemoteAddr, "path", r.URL.Path,
				"reason", "request body too large", "limit", limit)
			http.Error(w, fmt.Sprintf("Request Entity Too Large: the limit is %d bytes.", limit),
				http.StatusRequestEntityTooLarge)
			return
		}
		if !s.checkCSRF(r, sess) {
			s.log.Warn("web request rejected", "remote", r.RemoteAddr, "path", r.URL.Path,
				"reason", "missing or wrong CSRF token")
			http.Error(w, "Forbidden: the form's security token is missing or stale. Reload the page and try again.",
				http.StatusForbidden)
			return
		}
	}
	s.mux.ServeHTTP(w, r.WithContext(withSession(r.Context(), sess)))
}

// deny redirects a page request and rejects anything else, so that a script
// or a form post never receives a login page as its response.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, to, msg string) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	http.Error(w, "Unauthorized: "+msg, http.StatusUnauthorized)
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// checkCSRF compares the form's token with the session's, or with the
// pre-session cookie before login. A cross-site page can neither read the
// token nor, with SameSite=Strict, send the cookies along.
func (s *Server) checkCSRF(r *http.Request, sess *session) bool {
	want := cookieValue(r, preSessionCookie)
	if sess == nil && !wellFormedToken(want) {
		// A cookie this server did not make, planted for the admin host
		// by another service, must not validate a form of the attacker's
		// choosing.
		return false
	}
	if sess != nil {
		want = sess.CSRF
	}
	got := r.PostFormValue(csrfField)
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	if want == "" || got == "" {
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// csrfToken returns the token a page's forms must carry, setting the
// pre-session cookie when there is no session yet.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if sess := sessionFrom(r.Context()); sess != nil {
		return sess.CSRF
	}
	if v := cookieValue(r, preSessionCookie); wellFormedToken(v) {
		return v
	}
	v := randomToken()
	http.SetCookie(w, &http.Cookie{Name: preSessionCookie, Value: v, Path: "/",
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	return v
}

// wellFormedToken reports whether v has the form of randomToken's output:
// 64 lower-case hexadecimal digits.
func wellFormedToken(v string) bool {
	if len(v) != 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type sessionKey struct{}

func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}
