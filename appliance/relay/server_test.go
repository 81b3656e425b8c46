package relay

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// received is one message as the test server got it.
type received struct {
	From     string
	MailOpts smtp.MailOptions
	Rcpts    []string
	RcptOpts []smtp.RcptOptions
	Data     []byte
	Remote   string
	TLS      bool
}

// testServer is an in-process go-smtp server whose replies the test scripts
// and which records what arrives, down to the raw bytes of each read.
type testServer struct {
	t    *testing.T
	Addr string
	srv  *smtp.Server

	// Hooks run by the session, set through SetOnMail and friends because
	// sessions read them from their own goroutines; nil accepts.
	onMail func(from string) error
	onRcpt func(to string) error
	onData func(c *smtp.Conn, r io.Reader) ([]byte, error)
	// HidePipelining removes PIPELINING from the EHLO reply, because
	// go-smtp always offers it.
	HidePipelining bool

	mu       sync.Mutex
	messages []received
	conns    []*recordingConn
}

type serverOption func(*smtp.Server, *testServer)

func withTLS(cert tls.Certificate) serverOption {
	return func(s *smtp.Server, _ *testServer) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
}

func withExtensions() serverOption {
	return func(s *smtp.Server, _ *testServer) {
		s.EnableSMTPUTF8 = true
		s.EnableDSN = true
	}
}

func withoutPipelining() serverOption {
	return func(_ *smtp.Server, ts *testServer) { ts.HidePipelining = true }
}

// startServer listens on 127.0.0.1 and serves until the test ends.
func startServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	ts := &testServer{t: t}
	ts.srv = smtp.NewServer(smtp.BackendFunc(ts.newSession))
	ts.srv.Domain = "internal.example.test"
	ts.srv.MaxMessageBytes = 10 << 20
	ts.srv.ReadTimeout = 30 * time.Second
	ts.srv.WriteTimeout = 30 * time.Second
	ts.srv.ErrorLog = discardLogger{}
	for _, o := range opts {
		o(ts.srv, ts)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	ts.Addr = l.Addr().String()
	go ts.srv.Serve(&recordingListener{Listener: l, ts: ts})
	t.Cleanup(func() { ts.srv.Close() })
	return ts
}

func (ts *testServer) SetOnMail(f func(from string) error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.onMail = f
}

func (ts *testServer) SetOnRcpt(f func(to string) error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.onRcpt = f
}

func (ts *testServer) SetOnData(f func(c *smtp.Conn, r io.Reader) ([]byte, error)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.onData = f
}

func (ts *testServer) hooks() (
	func(string) error, func(string) error, func(*smtp.Conn, io.Reader) ([]byte, error),
) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.onMail, ts.onRcpt, ts.onData
}

func (ts *testServer) Messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.messages...)
}

// ConnCount returns how many connections the server accepted.
func (ts *testServer) ConnCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.conns)
}

// Reads returns the raw chunks that each read on connection i returned.
func (ts *testServer) Reads(i int) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	c := ts.conns[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reads...)
}

// Wire returns everything the client sent on connection i.
func (ts *testServer) Wire(i int) string {
	return strings.Join(ts.Reads(i), "")
}

// CloseConns closes every accepted connection from the server side.
func (ts *testServer) CloseConns() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.conns {
		c.Conn.Close()
	}
}

func (ts *testServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{ts: ts, conn: c, msg: received{
		Remote: c.Conn().RemoteAddr().String(),
		TLS:    isTLS,
	}}, nil
}

type session struct {
	ts   *testServer
	conn *smtp.Conn
	msg  received
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if onMail, _, _ := s.ts.hooks(); onMail != nil {
		if err := onMail(from); err != nil {
			return err
		}
	}
	s.msg.From = from
	if opts != nil {
		s.msg.MailOpts = *opts
	}
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if _, onRcpt, _ := s.ts.hooks(); onRcpt != nil {
		if err := onRcpt(to); err != nil {
			return err
		}
	}
	s.msg.Rcpts = append(s.msg.Rcpts, to)
	if opts != nil {
		s.msg.RcptOpts = append(s.msg.RcptOpts, *opts)
	}
	return nil
}

func (s *session) Data(r io.Reader) error {
	var data []byte
	var err error
	if _, _, onData := s.ts.hooks(); onData != nil {
		data, err = onData(s.conn, r)
	} else {
		data, err = io.ReadAll(r)
	}
	if err != nil {
		return err
	}
	s.msg.Data = data
	s.ts.mu.Lock()
	s.ts.messages = append(s.ts.messages, s.msg)
	s.ts.mu.Unlock()
	return nil
}

func (s *session) Reset() {
	remote, isTLS := s.msg.Remote, s.msg.TLS
	s.msg = received{Remote: remote, TLS: isTLS}
}

func (s *session) Logout() error { return nil }

// recordingListener wraps accepted connections in recordingConn.
type recordingListener struct {
	net.Listener
	ts *testServer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c, hidePipelining: l.ts.HidePipelining}
	l.ts.mu.Lock()
	l.ts.conns = append(l.ts.conns, rc)
	l.ts.mu.Unlock()
	return rc, nil
}

// recordingConn keeps each chunk that a read returns, so a test can tell
// which commands arrived together.
type recordingConn struct {
	net.Conn
	hidePipelining bool

	mu    sync.Mutex
	reads []string
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.reads = append(c.reads, string(p[:n]))
		c.mu.Unlock()
	}
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.hidePipelining {
		q := bytes.Replace(p, []byte("250-PIPELINING\r\n"), nil, 1)
		if _, err := c.Conn.Write(q); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// selfSignedCert returns a certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "internal.example.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// smtpErr builds a scripted reply for a hook.
func smtpErr(code int, enhanced smtp.EnhancedCode, text string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}

// testLogger sends the relay's log lines to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var errDropped = errors.New("connection dropped by the test server")
