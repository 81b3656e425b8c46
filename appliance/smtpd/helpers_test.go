package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/appliance/policy"
	"github.com/lambgate/lambgate/appliance/settings"
)

// memStore is an in-memory Store that records committed messages.
type memStore struct {
	mu        sync.Mutex
	seq       int
	committed []storedMessage
	aborted   int
	commitErr error
}

type storedMessage struct {
	env        *envelope.Envelope
	data       []byte
	quarantine bool
}

func (s *memStore) Create(env *envelope.Envelope) (MessageWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if env.QueueID == "" {
		env.QueueID = fmt.Sprintf("Q%011d", s.seq)
	}
	return &memWriter{store: s, env: env}, nil
}

func (s *memStore) messages() []storedMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storedMessage(nil), s.committed...)
}

type memWriter struct {
	store *memStore
	env   *envelope.Envelope
	buf   bytes.Buffer
	done  bool
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *memWriter) Size() int64                 { return int64(w.buf.Len()) }

func (w *memWriter) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(w.buf.Bytes()).ReadAt(p, off)
}

func (w *memWriter) Commit(_ context.Context, quarantine bool) error {
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	if w.store.commitErr != nil {
		return w.store.commitErr
	}
	w.done = true
	w.store.committed = append(w.store.committed, storedMessage{
		env: w.env.Clone(), data: bytes.Clone(w.buf.Bytes()), quarantine: quarantine})
	return nil
}

func (w *memWriter) Abort() error {
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	if !w.done {
		w.store.aborted++
	}
	w.done = true
	return nil
}

// fileStore is a Store that writes each message to a file in a directory,
// synced and renamed into place on Commit, like the real spool.
type fileStore struct {
	dir string
	mu  sync.Mutex
	seq int
}

func (s *fileStore) Create(env *envelope.Envelope) (MessageWriter, error) {
	s.mu.Lock()
	s.seq++
	if env.QueueID == "" {
		env.QueueID = fmt.Sprintf("F%011d", s.seq)
	}
	s.mu.Unlock()
	f, err := os.CreateTemp(s.dir, "tmp-*")
	if err != nil {
		return nil, err
	}
	return &fileWriter{f: f, final: filepath.Join(s.dir, env.QueueID+".eml")}, nil
}

func (s *fileStore) files(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func (s *fileStore) leftovers(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

type fileWriter struct {
	f     *os.File
	final string
	size  int64
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}
func (w *fileWriter) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }
func (w *fileWriter) Size() int64                             { return w.size }

func (w *fileWriter) Commit(context.Context, bool) error {
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	return os.Rename(w.f.Name(), w.final)
}

func (w *fileWriter) Abort() error {
	w.f.Close()
	return os.Remove(w.f.Name())
}

// nopStore accepts and discards messages (for the benchmark).
type nopStore struct{ seq int64 }

func (s *nopStore) Create(env *envelope.Envelope) (MessageWriter, error) {
	env.QueueID = "N0000000001"
	return nopWriter{}, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error)        { return len(p), nil }
func (nopWriter) ReadAt([]byte, int64) (int, error)  { return 0, io.EOF }
func (nopWriter) Size() int64                        { return 0 }
func (nopWriter) Commit(context.Context, bool) error { return nil }
func (nopWriter) Abort() error                       { return nil }

// recordingQueue records enqueued envelopes.
type recordingQueue struct {
	mu   sync.Mutex
	envs []*envelope.Envelope
}

func (q *recordingQueue) Enqueue(env *envelope.Envelope) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.envs = append(q.envs, env)
}

func (q *recordingQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.envs)
}

// testConfig returns limits small enough for tests.
func testConfig(t testing.TB) Config {
	t.Helper()
	tlsConfig, err := TLSConfig("", "", t.TempDir(), "mx.relay.test")
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Hostname:            "mx.relay.test",
		MaxConnections:      50,
		MaxConnectionsPerIP: 20,
		MaxMessageBytes:     64 << 10,
		MaxRecipients:       5,
		MaxLineLength:       1000,
		MaxErrors:           5,
		MaxHops:             5,
		CommandTimeout:      30 * time.Second,
		DataTimeout:         30 * time.Second,
		TLS:                 tlsConfig,
		Postmaster:          "postmaster@relay.test",
	}
}

func testPolicy(t testing.TB, cfg policy.Config) *policy.Checker {
	t.Helper()
	if cfg.RelayDomains == nil {
		cfg.RelayDomains = []string{"relay.test"}
	}
	if cfg.Validation == "" {
		cfg.Validation = settings.ValidateAcceptAll
	}
	if cfg.Unknown == "" {
		cfg.Unknown = settings.UnknownReject
	}
	c, err := policy.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testServer is a running server on a loopback port.
type testServer struct {
	srv   *Server
	addr  string
	store *memStore
	queue *recordingQueue
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type serverOption func(*Config, *Deps)

func startServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	cfg := testConfig(t)
	ts := &testServer{store: &memStore{}, queue: &recordingQueue{}, logs: &syncBuffer{}}
	deps := Deps{
		Store:    ts.store,
		Enqueuer: ts.queue,
		Log:      slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	if deps.Policy == nil {
		deps.Policy = testPolicy(t, policy.Config{})
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs.String())
		}
	})
	ts.srv = srv
	ts.addr = l.Addr().String()
	return ts
}

// client is a raw SMTP client that writes exact bytes and reads replies.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one reply (all its lines) and returns it; "" at EOF.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if line != "" {
				lines = append(lines, line)
			}
			return strings.Join(lines, "")
		}
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "")
		}
	}
}

// expect reads one reply and fails unless it starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

// cmd sends one command line and expects a reply prefix.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// startTLS upgrades the connection after a successful STARTTLS reply.
func (c *client) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.relay.test"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// closed reports whether the server closed the connection: a read returns
// EOF or a reset rather than a reply.
func (c *client) closed() bool {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	return err != nil && line == ""
}

// greet reads the banner and sends EHLO.
func (c *client) greet() {
	c.t.Helper()
	c.expect("220 ")
	c.cmd("EHLO client.example", "250")
}

// message is a small valid message body with CRLF line ends.
const message = "From: a@sender.example\r\nTo: b@relay.test\r\nSubject: test\r\n\r\nHello.\r\n"

// sendMessage runs one whole transaction and returns the final reply.
func (c *client) sendMessage(from, to, body string) string {
	c.t.Helper()
	c.cmd("MAIL FROM:<"+from+">", "250")
	c.cmd("RCPT TO:<"+to+">", "250")
	c.cmd("DATA", "354")
	c.send(body + ".\r\n")
	return c.reply()
}

// stubChain is a filter chain with fixed verdicts per phase.
type stubChain struct {
	connect, helo, mail, rcpt, data filter.Verdict
	edits                           filter.Edits
	mu                              sync.Mutex
	sawMessage                      []byte
}

func (s *stubChain) Connect(context.Context, *filter.Conn) filter.Verdict { return s.connect }
func (s *stubChain) Helo(context.Context, *filter.Conn) filter.Verdict    { return s.helo }
func (s *stubChain) Mail(context.Context, *filter.Txn) filter.Verdict     { return s.mail }
func (s *stubChain) Rcpt(context.Context, *filter.Txn, string) filter.Verdict {
	return s.rcpt
}

func (s *stubChain) Data(_ context.Context, _ *filter.Txn, m filter.Message) (filter.Verdict, filter.Edits) {
	buf := make([]byte, m.Size())
	_, _ = m.ReadAt(buf, 0)
	s.mu.Lock()
	s.sawMessage = buf
	s.mu.Unlock()
	return s.data, s.edits
}

// policyStatic is a policy config with a static recipient list.
func policyStatic(addrs ...string) policy.Config {
	return policy.Config{Validation: settings.ValidateStatic, Static: addrs}
}

// proberFunc adapts a function to policy.Prober.
type proberFunc func(rcpt string) (bool, error)

func (f proberFunc) Probe(_ context.Context, rcpt string) (bool, error) { return f(rcpt) }

func policyConfigAll() policy.Config { return policy.Config{} }
