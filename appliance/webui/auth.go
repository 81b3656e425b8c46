package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lambgate/lambgate/appliance/settings"
)

// Files of the web UI's state directory. They live beside the settings file
// but never in it, so a settings export carries no password hash or session.
const (
	adminFile    = "admin.json"
	sessionsFile = "sessions.json"
)

// Password rules. bcrypt reads only the first 72 bytes, so a longer
// password would be silently cut; it is rejected instead.
const (
	MinPasswordLength = 10
	maxPasswordBytes  = 72
)

// Session lifetimes: a session ends after SessionIdle without a request, or
// SessionMax after login whatever the activity.
const (
	SessionIdle = 2 * time.Hour
	SessionMax  = 24 * time.Hour
	// seenSaveInterval limits session-file writes to one per session in
	// this interval, to spare the appliance's SD card.
	seenSaveInterval = 5 * time.Minute
)

// session is one logged-in browser. The map key is the SHA-256 of the
// cookie value, so the sessions file alone does not let anyone log in.
type session struct {
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
	saved   time.Time
}

type adminRecord struct {
	PasswordHash string    `json:"password_hash"`
	Changed      time.Time `json:"changed"`
}

// authStore holds the admin password hash and the sessions, both saved
// atomically in dir.
type authStore struct {
	dir  string
	cost int
	now  func() time.Time

	mu       sync.Mutex
	hash     []byte
	sessions map[string]*session
}

func openAuthStore(dir string, cost int, now func() time.Time) (*authStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create web UI state directory: %w", err)
	}
	a := &authStore{dir: dir, cost: cost, now: now, sessions: map[string]*session{}}

	var rec adminRecord
	if err := readJSON(filepath.Join(dir, adminFile), &rec); err != nil {
		return nil, err
	}
	a.hash = []byte(rec.PasswordHash)
	if err := readJSON(filepath.Join(dir, sessionsFile), &a.sessions); err != nil {
		return nil, err
	}
	if a.sessions == nil {
		a.sessions = map[string]*session{}
	}
	return a, nil
}

// readJSON decodes path into v; a missing file leaves v untouched.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s is corrupt: %w (delete it to start over)", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return settings.WriteFileAtomic(path, data, 0o600)
}

// hasPassword reports whether setup has set the admin password.
func (a *authStore) hasPassword() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.hash) > 0
}

// checkPasswordRules returns a message for a password that breaks the rules.
func checkPasswordRules(pw, confirm string) string {
	switch {
	case len([]rune(pw)) < MinPasswordLength:
		return fmt.Sprintf("The password needs at least %d characters.", MinPasswordLength)
	case distinctRunes(pw) < minDistinctRunes:
		return fmt.Sprintf("The password needs at least %d different characters.", minDistinctRunes)
	case len(pw) > maxPasswordBytes:
		return fmt.Sprintf("The password may have at most %d bytes (bcrypt ignores the rest).", maxPasswordBytes)
	case pw != confirm:
		return "The two passwords differ."
	}
	return ""
}

// minDistinctRunes rejects passwords such as ten spaces or "aaaaaaaaaa".
const minDistinctRunes = 5

func distinctRunes(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}

// setPassword hashes pw with bcrypt and saves it. It also ends every
// existing session, so that a changed password locks out anyone logged in
// with the old one.
func (a *authStore) setPassword(pw string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), a.cost)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := adminRecord{PasswordHash: string(hash), Changed: a.now().UTC()}
	if err := writeJSON(filepath.Join(a.dir, adminFile), rec); err != nil {
		return fmt.Errorf("save admin password: %w", err)
	}
	a.hash = hash
	a.sessions = map[string]*session{}
	return a.saveSessionsLocked()
}

// checkPassword compares pw with the stored hash in constant time.
func (a *authStore) checkPassword(pw string) bool {
	a.mu.Lock()
	hash := a.hash
	a.mu.Unlock()
	if len(hash) == 0 {
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil
}

// newSession creates a session and returns its cookie value.
func (a *authStore) newSession() (token string, s *session, err error) {
	token = randomToken()
	now := a.now()
	s = &session{CSRF: randomToken(), Created: now, Seen: now, saved: now}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expireLocked(now)
	a.sessions[tokenKey(token)] = s
	if err := a.saveSessionsLocked(); err != nil {
		delete(a.sessions, tokenKey(token))
		return "", nil, fmt.Errorf("save session: %w", err)
	}
	return token, s, nil
}

// lookup returns the live session of token and marks it seen, or nil.
func (a *authStore) lookup(token string) *session {
	if token == "" {
		return nil
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[tokenKey(token)]
	if s == nil {
		return nil
	}
	if now.Sub(s.Seen) > SessionIdle || now.Sub(s.Created) > SessionMax {
		delete(a.sessions, tokenKey(token))
		a.saveSessionsLocked()
		return nil
	}
	s.Seen = now
	if now.Sub(s.saved) > seenSaveInterval {
		s.saved = now
		a.saveSessionsLocked()
	}
	c := *s
	return &c
}

// endSession deletes the session of token.
func (a *authStore) endSession(token string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, tokenKey(token))
	return a.saveSessionsLocked()
}

func (a *authStore) expireLocked(now time.Time) {
	for k, s := range a.sessions {
		if now.Sub(s.Seen) > SessionIdle || now.Sub(s.Created) > SessionMax {
			delete(a.sessions, k)
		}
	}
}

func (a *authStore) saveSessionsLocked() error {
	return writeJSON(filepath.Join(a.dir, sessionsFile), a.sessions)
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// randomToken returns 256 random bits as hex.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loginLimiter counts failed logins per client address.
type loginLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newLoginLimiter(max int, window time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{max: max, window: window, now: now, failures: map[string][]time.Time{}}
}

// blocked returns how long ip must wait before its next attempt, or 0.
func (l *loginLimiter) blocked(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.pruneLocked(ip)
	if len(recent) < l.max {
		return 0
	}
	return recent[0].Add(l.window).Sub(l.now())
}

// maxTrackedAddresses bounds the limiter's memory under a login flood from
// many addresses: past it, every address's stale failures are dropped.
const maxTrackedAddresses = 10000

func (l *loginLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxTrackedAddresses {
		for addr := range l.failures {
			l.pruneLocked(addr)
		}
	}
	l.failures[ip] = append(l.pruneLocked(ip), l.now())
}

func (l *loginLimiter) succeed(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, ip)
}

func (l *loginLimiter) pruneLocked(ip string) []time.Time {
	cutoff := l.now().Add(-l.window)
	kept := l.failures[ip][:0]
	for _, t := range l.failures[ip] {
		if t.After(cutoff) {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(l.failures, ip)
		return nil
	}
	l.failures[ip] = kept
	return kept
}
