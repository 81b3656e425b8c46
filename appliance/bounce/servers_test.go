package bounce

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
)

// testDNS is an in-process authoritative DNS server on 127.0.0.1.
type testDNS struct {
	addr string

	mu       sync.Mutex
	records  map[string][]dns.RR // by "name type", such as "example.org. MX"
	nxdomain map[string]bool     // names answered with NXDOMAIN
	servfail map[string]bool     // names answered with SERVFAIL
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for DNS: %v", err)
	}
	d := &testDNS{
		addr:     pc.LocalAddr().String(),
		records:  map[string][]dns.RR{},
		nxdomain: map[string]bool{},
		servfail: map[string]bool{},
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

// add stores resource records given in zone file syntax.
func (d *testDNS) add(t *testing.T, lines ...string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, line := range lines {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		key := strings.ToLower(rr.Header().Name) + " " + dns.TypeToString[rr.Header().Rrtype]
		d.records[key] = append(d.records[key], rr)
	}
}

// fail answers name with rcode from now on.
func (d *testDNS) fail(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch rcode {
	case dns.RcodeNameError:
		d.nxdomain[name] = true
	default:
		d.servfail[name] = true
	}
}

func (d *testDNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	name := strings.ToLower(q.Name)

	d.mu.Lock()
	switch {
	case d.servfail[name]:
		m.Rcode = dns.RcodeServerFailure
	case d.nxdomain[name]:
		m.Rcode = dns.RcodeNameError
	default:
		m.Answer = append(m.Answer, d.records[name+" "+dns.TypeToString[q.Qtype]]...)
	}
	d.mu.Unlock()
	w.WriteMsg(m)
}

// transaction is what the test SMTP server received in one session.
type transaction struct {
	HELO   string
	Remote string
	TLS    bool
	From   string
	Rcpts  []string
	Data   string
}

// testMX is an in-process go-smtp server that records every transaction.
type testMX struct {
	addr string

	mu         sync.Mutex
	reject     map[string]*smtp.SMTPError // RCPT replies by address
	rejectMail *smtp.SMTPError
	rejectData *smtp.SMTPError
	txns       []transaction
}

// startMX listens on hostPort (port 0 for a random one) and offers
// STARTTLS when tlsConfig is not nil.
func startMX(t *testing.T, hostPort string, tlsConfig *tls.Config) *testMX {
	t.Helper()
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		t.Fatalf("listen for SMTP on %s: %v", hostPort, err)
	}
	mx := &testMX{addr: ln.Addr().String(), reject: map[string]*smtp.SMTPError{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mxSession{mx: mx, conn: c}, nil
	}))
	srv.Domain = "mx.example.org"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.TLSConfig = tlsConfig
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return mx
}

func (mx *testMX) port(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(mx.addr)
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		t.Fatalf("port of %s: %v", mx.addr, err)
	}
	return p
}

// rejectMailAndData sets the replies to MAIL and to the end of DATA; nil
// accepts.
func (mx *testMX) rejectMailAndData(mail, data *smtp.SMTPError) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	mx.rejectMail = mail
	mx.rejectData = data
}

// rejectRcpt makes RCPT TO:<addr> fail with reply.
func (mx *testMX) rejectRcpt(addr string, reply *smtp.SMTPError) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	mx.reject[addr] = reply
}

func (mx *testMX) transactions() []transaction {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	return append([]transaction(nil), mx.txns...)
}

type mxSession struct {
	mx   *testMX
	conn *smtp.Conn
	txn  transaction
}

func (s *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	s.mx.mu.Lock()
	reply := s.mx.rejectMail
	s.mx.mu.Unlock()
	if reply != nil {
		return reply
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.txn = transaction{
		HELO:   s.conn.Hostname(),
		Remote: s.conn.Conn().RemoteAddr().String(),
		TLS:    isTLS,
		From:   from,
	}
	return nil
}

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mx.mu.Lock()
	reply := s.mx.reject[to]
	s.mx.mu.Unlock()
	if reply != nil {
		return reply
	}
	s.txn.Rcpts = append(s.txn.Rcpts, to)
	return nil
}

func (s *mxSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.txn.Data = string(data)
	s.mx.mu.Lock()
	if reply := s.mx.rejectData; reply != nil {
		s.mx.mu.Unlock()
		return reply
	}
	s.mx.txns = append(s.mx.txns, s.txn)
	s.mx.mu.Unlock()
	return nil
}

func (s *mxSession) Reset()        { s.txn = transaction{} }
func (s *mxSession) Logout() error { return nil }

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.example.org"},
		DNSNames:     []string{"mx.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
