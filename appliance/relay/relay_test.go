package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/lambgate/lambgate/appliance/envelope"
)

func newRelay(t *testing.T, cfg Config) *Relay {
	t.Helper()
	if cfg.HELO == "" {
		cfg.HELO = "lambgate.example.test"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	r, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newEnvelope(from string, rcpts ...string) *envelope.Envelope {
	env := &envelope.Envelope{
		QueueID:  "0TESTQUEUEID",
		Kind:     envelope.KindInbound,
		From:     from,
		Received: time.Now(),
	}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, envelope.Recipient{Address: r, State: envelope.StatePending})
	}
	return env
}

func body(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }

const simpleBody = "Subject: test\r\n\r\nhello\r\n"

func deliver(t *testing.T, r *Relay, env *envelope.Envelope, msg string) []envelope.Result {
	t.Helper()
	results, err := r.Deliver(context.Background(), env, body(msg))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(results) != len(env.Pending()) {
		t.Fatalf("Deliver returned %d results for %d pending recipients", len(results), len(env.Pending()))
	}
	return results
}

func TestDeliverSendsPrependThenBody(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})

	env := newEnvelope("sender@example.org", "a@example.test", "b@example.test")
	env.Prepend = "X-Filter: checked\r\n"
	results := deliver(t, r, env, simpleBody)

	for _, res := range results {
		if !res.Delivered || res.Code != 250 {
			t.Errorf("result for %s = %+v, want delivered with 250", res.Recipient, res)
		}
		if !strings.HasPrefix(res.Relay, "127.0.0.1[127.0.0.1]:") {
			t.Errorf("Relay = %q, want 127.0.0.1[127.0.0.1]:port", res.Relay)
		}
	}
	msgs := ts.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	if got, want := string(msgs[0].Data), env.Prepend+simpleBody; got != want {
		t.Errorf("server received %q, want %q", got, want)
	}
	if got := msgs[0].From; got != "sender@example.org" {
		t.Errorf("MAIL FROM = %q", got)
	}
	if got := strings.Join(msgs[0].Rcpts, ","); got != "a@example.test,b@example.test" {
		t.Errorf("RCPT TO = %q", got)
	}
}

func TestDeliverDotStuffsLines(t *testing.T) {
	cases := []struct {
		name     string
		prepend  string
		body     string
		wantWire string // the data as sent after the 354 reply
		wantData string // the data as the server reads it back
	}{
		{
			name:     "leading dots doubled",
			body:     ".first\r\nmid\r\n..two\r\n.\r\nend\r\n",
			wantWire: "..first\r\nmid\r\n...two\r\n..\r\nend\r\n.\r\n",
			wantData: ".first\r\nmid\r\n..two\r\n.\r\nend\r\n",
		},
		{
			name:     "missing final CRLF added",
			body:     "a\r\nno end",
			wantWire: "a\r\nno end\r\n.\r\n",
			wantData: "a\r\nno end\r\n",
		},
		{
			name:     "prepend stuffed too",
			prepend:  ".X-Odd: 1\r\n",
			body:     "b\r\n",
			wantWire: "..X-Odd: 1\r\nb\r\n.\r\n",
			wantData: ".X-Odd: 1\r\nb\r\n",
		},
		{
			name:     "empty body",
			body:     "",
			wantWire: ".\r\n",
			wantData: "",
		},
		{
			// A server that ends lines at bare LF must not see "\n.\r\n" as
			// the end of data. go-smtp ends lines only at CRLF, so it keeps
			// the doubled dot: the price of that safety for a body that
			// breaks the CRLF contract.
			name:     "smuggling dot after bare LF",
			body:     "a\n.\r\nMAIL FROM:<x>\r\n",
			wantWire: "a\n..\r\nMAIL FROM:<x>\r\n.\r\n",
			wantData: "a\n..\r\nMAIL FROM:<x>\r\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			r := newRelay(t, Config{Server: ts.Addr})
			env := newEnvelope("s@example.org", "a@example.test")
			env.Prepend = tc.prepend
			deliver(t, r, env, tc.body)
			r.Close()

			wire := ts.Wire(0)
			_, data, ok := strings.Cut(wire, "DATA\r\n")
			if !ok {
				t.Fatalf("no DATA command on the wire: %q", wire)
			}
			if !strings.HasPrefix(data, tc.wantWire) {
				t.Errorf("wire data = %q, want prefix %q", data, tc.wantWire)
			}
			msgs := ts.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages, want 1", len(msgs))
			}
			if got := string(msgs[0].Data); got != tc.wantData {
				t.Errorf("server read %q, want %q", got, tc.wantData)
			}
		})
	}
}

func TestDeliverRejectsOneRecipient(t *testing.T) {
	ts := startServer(t)
	ts.SetOnRcpt(func(to string) error {
		if to == "nobody@example.test" {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "User unknown")
		}
		return nil
	})
	r := newRelay(t, Config{Server: ts.Addr})

	env := newEnvelope("s@example.org", "a@example.test", "nobody@example.test", "c@example.test")
	results := deliver(t, r, env, simpleBody)

	want := []struct {
		delivered, permanent bool
		code                 int
		enhanced             string
	}{
		{true, false, 250, "2.0.0"},
		{false, true, 550, "5.1.1"},
		{true, false, 250, "2.0.0"},
	}
	for i, w := range want {
		res := results[i]
		if res.Recipient != env.Recipients[i].Address {
			t.Errorf("result %d is for %s, want %s", i, res.Recipient, env.Recipients[i].Address)
		}
		if res.Delivered != w.delivered || res.Permanent != w.permanent {
			t.Errorf("result for %s: delivered=%v permanent=%v, want %v %v",
				res.Recipient, res.Delivered, res.Permanent, w.delivered, w.permanent)
		}
		if res.Code != w.code || res.Enhanced != w.enhanced {
			t.Errorf("result for %s: %d %s, want %d %s", res.Recipient, res.Code, res.Enhanced, w.code, w.enhanced)
		}
	}
	if got := results[1].Text; got != "User unknown" {
		t.Errorf("rejected recipient text = %q, want %q", got, "User unknown")
	}
	msgs := ts.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].Rcpts, ",") != "a@example.test,c@example.test" {
		t.Errorf("server received %+v, want one message for a and c", msgs)
	}
}

func TestDeliverMailTempfailDefersAll(t *testing.T) {
	ts := startServer(t)
	ts.SetOnMail(func(string) error {
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")
	})
	r := newRelay(t, Config{Server: ts.Addr})

	results := deliver(t, r, newEnvelope("s@example.org", "a@example.test", "b@example.test"), simpleBody)
	for _, res := range results {
		if res.Delivered || res.Permanent {
			t.Errorf("result for %s = %+v, want temporary failure", res.Recipient, res)
		}
		if res.Code != 451 || res.Enhanced != "4.3.0" {
			t.Errorf("result for %s: %d %s, want 451 4.3.0", res.Recipient, res.Code, res.Enhanced)
		}
	}
	if n := len(ts.Messages()); n != 0 {
		t.Errorf("server received %d messages, want 0", n)
	}
}

func TestDeliverAllRecipientsRejected(t *testing.T) {
	for _, opts := range [][]serverOption{nil, {withoutPipelining()}} {
		ts := startServer(t, opts...)
		ts.SetOnRcpt(func(string) error {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "User unknown")
		})
		r := newRelay(t, Config{Server: ts.Addr})

		results := deliver(t, r, newEnvelope("s@example.org", "a@example.test", "b@example.test"), simpleBody)
		for _, res := range results {
			if !res.Permanent || res.Code != 550 {
				t.Errorf("pipelining hidden=%v: result for %s = %+v, want permanent 550",
					ts.HidePipelining, res.Recipient, res)
			}
		}
		// The session must still be in step: the next message goes through.
		ts.SetOnRcpt(nil)
		results = deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
		if !results[0].Delivered {
			t.Errorf("pipelining hidden=%v: delivery after a rejected transaction = %+v",
				ts.HidePipelining, results[0])
		}
		if n := ts.ConnCount(); n != 1 {
			t.Errorf("pipelining hidden=%v: server saw %d connections, want 1", ts.HidePipelining, n)
		}
	}
}

func TestDeliverConnectionDroppedMidData(t *testing.T) {
	ts := startServer(t)
	ts.SetOnData(func(c *smtp.Conn, r io.Reader) ([]byte, error) {
		buf := make([]byte, 10)
		io.ReadFull(r, buf)
		c.Conn().Close()
		return nil, errDropped
	})
	r := newRelay(t, Config{Server: ts.Addr})

	big := strings.Repeat("line of body text\r\n", 20000)
	results, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(big))
	if err == nil {
		t.Fatalf("Deliver = %+v, want an error after the connection dropped", results)
	}
	if results != nil {
		t.Errorf("Deliver returned results %+v with its error", results)
	}

	// The broken connection is not reused: the next delivery dials anew.
	ts.SetOnData(nil)
	results = deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	if !results[0].Delivered {
		t.Errorf("delivery after the drop = %+v, want delivered", results[0])
	}
	if n := ts.ConnCount(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

func TestDeliverPipelinesCommands(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})
	deliver(t, r, newEnvelope("s@example.org", "a@example.test", "b@example.test"), simpleBody)

	want := "MAIL FROM:<s@example.org> SIZE=24\r\nRCPT TO:<a@example.test>\r\n" +
		"RCPT TO:<b@example.test>\r\nDATA\r\n"
	var found bool
	for _, chunk := range ts.Reads(0) {
		if chunk == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no read returned MAIL, RCPT and DATA as one batch %q; reads: %q", want, ts.Reads(0))
	}
}

func TestDeliverLockStepWithoutPipelining(t *testing.T) {
	ts := startServer(t, withoutPipelining())
	r := newRelay(t, Config{Server: ts.Addr})
	results := deliver(t, r, newEnvelope("s@example.org", "a@example.test", "b@example.test"), simpleBody)
	if !results[0].Delivered || !results[1].Delivered {
		t.Fatalf("results = %+v, want both delivered", results)
	}

	reads := ts.Reads(0)
	if strings.Contains(strings.Join(reads, ""), "PIPELINING") {
		t.Fatalf("test server still offered PIPELINING")
	}
	for _, chunk := range reads {
		if strings.Count(chunk, "\r\n") > 1 && !strings.HasPrefix(chunk, "Subject:") {
			t.Errorf("read %q holds more than one command without PIPELINING", chunk)
		}
	}
	if got := len(ts.Messages()); got != 1 {
		t.Errorf("server received %d messages, want 1", got)
	}
}

func TestDeliverMailParameters(t *testing.T) {
	ts := startServer(t, withExtensions())
	r := newRelay(t, Config{Server: ts.Addr})

	env := newEnvelope("sénder@example.org", "a@example.test")
	env.SMTPUTF8 = true
	env.BodyType = "8BITMIME"
	env.DSNReturn = "HDRS"
	env.EnvID = "QID+1=x"
	env.Recipients[0].Notify = []string{"FAILURE", "DELAY"}
	env.Recipients[0].ORCPT = "rfc822;orig@example.test"
	env.Prepend = "X-A: b\r\n"
	deliver(t, r, env, simpleBody)

	msgs := ts.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.MailOpts.Size != int64(len(env.Prepend)+len(simpleBody)) {
		t.Errorf("SIZE = %d, want %d", m.MailOpts.Size, len(env.Prepend)+len(simpleBody))
	}
	if m.MailOpts.Body != smtp.Body8BitMIME {
		t.Errorf("BODY = %q, want 8BITMIME", m.MailOpts.Body)
	}
	if !m.MailOpts.UTF8 {
		t.Errorf("SMTPUTF8 missing from MAIL")
	}
	if m.MailOpts.Return != smtp.DSNReturnHeaders {
		t.Errorf("RET = %q, want HDRS", m.MailOpts.Return)
	}
	if m.MailOpts.EnvelopeID != "QID+1=x" {
		t.Errorf("ENVID decoded by the server = %q, want %q", m.MailOpts.EnvelopeID, "QID+1=x")
	}
	if len(m.RcptOpts) != 1 {
		t.Fatalf("server recorded %d RCPT options, want 1", len(m.RcptOpts))
	}
	ro := m.RcptOpts[0]
	if len(ro.Notify) != 2 || ro.Notify[0] != smtp.DSNNotifyFailure || ro.Notify[1] != smtp.DSNNotifyDelayed {
		t.Errorf("NOTIFY = %v, want FAILURE,DELAY", ro.Notify)
	}
	if ro.OriginalRecipientType != smtp.DSNAddressTypeRFC822 || ro.OriginalRecipient != "orig@example.test" {
		t.Errorf("ORCPT = %s;%s, want rfc822;orig@example.test", ro.OriginalRecipientType, ro.OriginalRecipient)
	}
}

func TestDeliverWithoutDSNOmitsParameters(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})

	env := newEnvelope("s@example.org", "a@example.test")
	env.DSNReturn = "FULL"
	env.EnvID = "ID1"
	env.Recipients[0].Notify = []string{"NEVER"}
	results := deliver(t, r, env, simpleBody)
	if !results[0].Delivered {
		t.Fatalf("result = %+v, want delivered (go-smtp rejects DSN parameters it did not offer)", results[0])
	}
	wire := ts.Wire(0)
	for _, param := range []string{"RET=", "ENVID=", "NOTIFY="} {
		if strings.Contains(wire, param) {
			t.Errorf("wire contains %s although the server did not offer DSN", param)
		}
	}
}

func TestDeliverSMTPUTF8UnsupportedFails(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})

	env := newEnvelope("sénder@example.org", "a@example.test", "b@example.test")
	env.SMTPUTF8 = true
	results := deliver(t, r, env, simpleBody)
	for _, res := range results {
		if !res.Permanent || res.Code != 554 || res.Enhanced != "5.6.7" {
			t.Errorf("result for %s = %+v, want permanent 554 5.6.7", res.Recipient, res)
		}
	}
	if strings.Contains(ts.Wire(0), "MAIL FROM") {
		t.Errorf("MAIL was sent for an SMTPUTF8 message to a server without SMTPUTF8")
	}
}

func TestDeliverASCIISMTPUTF8WithoutExtension(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})

	// Clients ask for SMTPUTF8 whenever a server offers it; an ASCII
	// message must still reach a server without the extension.
	env := newEnvelope("sender@example.org", "a@example.test")
	env.SMTPUTF8 = true
	results := deliver(t, r, env, simpleBody)
	if len(results) != 1 || !results[0].Delivered {
		t.Fatalf("results = %+v, want delivered", results)
	}
	if strings.Contains(ts.Wire(0), "SMTPUTF8") {
		t.Errorf("MAIL carried SMTPUTF8 to a server that does not offer it:\n%s", ts.Wire(0))
	}
}

func TestDeliverUTF8HeaderWithoutExtensionFails(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})

	env := newEnvelope("sender@example.org", "a@example.test")
	env.SMTPUTF8 = true
	results := deliver(t, r, env, "From: J\u00f6rg <sender@example.org>\r\n\r\nhello\r\n")
	if len(results) != 1 || results[0].Enhanced != "5.6.7" || !results[0].Permanent {
		t.Errorf("results = %+v, want permanent 5.6.7", results)
	}
}

func TestDeliverStartTLS(t *testing.T) {
	cert, roots := selfSignedCert(t)
	cases := []struct {
		name    string
		verify  bool
		roots   bool
		wantErr string
	}{
		{name: "unverified self-signed", verify: false},
		{name: "verified with root", verify: true, roots: true},
		{name: "verified without root", verify: true, wantErr: "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, withTLS(cert))
			cfg := Config{Server: ts.Addr, TLS: true, TLSVerify: tc.verify}
			if tc.roots {
				cfg.RootCAs = roots
			}
			r := newRelay(t, cfg)

			results, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Deliver error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if !results[0].Delivered {
				t.Fatalf("result = %+v, want delivered", results[0])
			}
			msgs := ts.Messages()
			if len(msgs) != 1 || !msgs[0].TLS {
				t.Errorf("server received %+v, want one message over TLS", msgs)
			}
		})
	}
}

func TestDeliverRequiredTLSMissing(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr, TLS: true})

	_, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("Deliver error = %v, want one saying STARTTLS is not offered", err)
	}
	if strings.Contains(ts.Wire(0), "MAIL FROM") {
		t.Errorf("MAIL was sent in plaintext although TLS is required")
	}
}

func TestPoolReusesConnection(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})
	for range 3 {
		deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	}
	if n := ts.ConnCount(); n != 1 {
		t.Errorf("server saw %d connections for 3 messages, want 1", n)
	}
	if n := strings.Count(ts.Wire(0), "RSET\r\n"); n != 2 {
		t.Errorf("server saw %d RSET commands, want 2 (one before each reuse)", n)
	}
	// The RSET travels in the pipelined group of the next transaction.
	if n := strings.Count(ts.Wire(0), "RSET\r\nMAIL FROM:"); n != 2 {
		t.Errorf("server saw %d RSET commands followed by MAIL in one group, want 2", n)
	}
	if n := len(ts.Messages()); n != 3 {
		t.Errorf("server received %d messages, want 3", n)
	}
}

func TestPoolHonoursMaxMessages(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr, MaxMessages: 2})
	for range 4 {
		deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	}
	if n := ts.ConnCount(); n != 2 {
		t.Errorf("server saw %d connections for 4 messages at 2 per connection, want 2", n)
	}
	if !strings.Contains(ts.Wire(0), "QUIT\r\n") {
		t.Errorf("the retired connection was closed without QUIT")
	}
}

func TestPoolDropsExpiredIdleConnection(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})
	deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)

	// Age the idle connection instead of sleeping past the idle timeout.
	var c *conn
	select {
	case c = <-r.pool.idle:
	default:
		t.Fatal("no idle connection in the pool after a delivery")
	}
	c.idleSince = time.Now().Add(-time.Hour)
	r.pool.idle <- c

	deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	if n := ts.ConnCount(); n != 2 {
		t.Errorf("server saw %d connections, want 2 after the idle one expired", n)
	}
}

func TestPoolReplacesClosedIdleConnection(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})
	deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)

	ts.CloseConns()
	results := deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)
	if !results[0].Delivered {
		t.Errorf("result after the server closed the idle connection = %+v", results[0])
	}
	if n := ts.ConnCount(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

func TestPoolCapsOpenConnections(t *testing.T) {
	ts := startServer(t)
	inData := make(chan struct{})
	release := make(chan struct{})
	ts.SetOnData(func(_ *smtp.Conn, r io.Reader) ([]byte, error) {
		inData <- struct{}{}
		<-release
		return io.ReadAll(r)
	})
	r := newRelay(t, Config{Server: ts.Addr, MaxConnections: 1})

	first := make(chan error, 1)
	go func() {
		_, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
		first <- err
	}()
	<-inData

	// With the only connection busy, a second delivery waits until its
	// context ends and never opens a second connection.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := r.Deliver(ctx, newEnvelope("s@example.org", "b@example.test"), body(simpleBody))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Deliver error = %v, want the context deadline", err)
	}
	if n := ts.ConnCount(); n != 1 {
		t.Errorf("server saw %d connections with MaxConnections 1", n)
	}

	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first Deliver: %v", err)
	}
	ts.SetOnData(nil)
	deliver(t, r, newEnvelope("s@example.org", "c@example.test"), simpleBody)
	if n := ts.ConnCount(); n != 1 {
		t.Errorf("server saw %d connections after the wait, want 1", n)
	}
}

func TestDeliverBindsSourceAddress(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr, SourceAddress: "127.0.0.2"})
	deliver(t, r, newEnvelope("s@example.org", "a@example.test"), simpleBody)

	msgs := ts.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	host, _, _ := net.SplitHostPort(msgs[0].Remote)
	if host != "127.0.0.2" {
		t.Errorf("server saw the client at %s, want 127.0.0.2", host)
	}
}

func TestDeliverBindFailureNamesAddress(t *testing.T) {
	ts := startServer(t)
	// 192.0.2.1 (TEST-NET-1) is not on any interface here, so bind fails
	// before a packet is sent.
	r := newRelay(t, Config{Server: ts.Addr, SourceAddress: "192.0.2.1"})
	_, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
	if err == nil {
		t.Fatal("Deliver succeeded although the source address cannot be bound")
	}
	if !strings.Contains(err.Error(), "bind source address 192.0.2.1") {
		t.Errorf("error = %q, want it to name the source address", err)
	}
	if n := ts.ConnCount(); n != 0 {
		t.Errorf("server saw %d connections, want 0 (no fallback address)", n)
	}
}

func TestDialerBindsDevice(t *testing.T) {
	ts := startServer(t)

	c, err := Dialer{Device: "lo", Timeout: 5 * time.Second}.DialContext(context.Background(), "tcp", ts.Addr)
	if err != nil {
		t.Fatalf("dial bound to lo: %v", err)
	}
	c.Close()

	_, err = Dialer{Device: "nosuchdev0"}.DialContext(context.Background(), "tcp", ts.Addr)
	if err == nil || !strings.Contains(err.Error(), `"nosuchdev0"`) {
		t.Errorf("dial bound to a missing device: error = %v, want one naming the device", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty server", Config{HELO: "h"}, "internal server address is empty"},
		{"server without port", Config{Server: "mail.example.test", HELO: "h"}, "use host:port"},
		{"source not an IP", Config{Server: "a:25", HELO: "h", SourceAddress: "lan0"}, "not an IP address"},
		{"empty HELO", Config{Server: "a:25"}, "HELO name is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDeliverRejectsUnsafeAddress(t *testing.T) {
	ts := startServer(t)
	r := newRelay(t, Config{Server: ts.Addr})
	env := newEnvelope("s@example.org", "a@example.test", "b@example.test>\r\nRCPT TO:<c@example.test")
	results := deliver(t, r, env, simpleBody)
	if !results[0].Delivered {
		t.Errorf("safe recipient result = %+v, want delivered", results[0])
	}
	if !results[1].Permanent || results[1].Enhanced != "5.1.3" {
		t.Errorf("unsafe recipient result = %+v, want permanent 5.1.3", results[1])
	}
	if strings.Contains(ts.Wire(0), "c@example.test") {
		t.Errorf("the injected command reached the server")
	}
}

func TestDeliverTimesOutStalledServer(t *testing.T) {
	ts := startServer(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ts.SetOnData(func(_ *smtp.Conn, r io.Reader) ([]byte, error) {
		<-release
		return io.ReadAll(r)
	})
	r := newRelay(t, Config{Server: ts.Addr, Timeout: 300 * time.Millisecond})

	_, err := r.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Deliver error = %v, want a timeout", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Deliver error %v does not wrap a net.Error timeout", err)
	}
}

func TestDeliverCanceledMidTransaction(t *testing.T) {
	ts := startServer(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The server cancels the delivery's context once the data arrives, so
	// the cancellation lands while the relay waits for the final reply.
	ts.SetOnData(func(_ *smtp.Conn, r io.Reader) ([]byte, error) {
		cancel()
		<-release
		return io.ReadAll(r)
	})
	r := newRelay(t, Config{Server: ts.Addr})

	_, err := r.Deliver(ctx, newEnvelope("s@example.org", "a@example.test"), body(simpleBody))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver error = %v, want context.Canceled", err)
	}
}

func TestDeliverFallsBackToHELO(t *testing.T) {
	addr := startRawSink(t, true)
	r := newRelay(t, Config{Server: addr})

	env := newEnvelope("s@example.org", "a@example.test")
	env.BodyType = "8BITMIME"
	env.DSNReturn = "FULL"
	results := deliver(t, r, env, simpleBody)
	if !results[0].Delivered {
		t.Errorf("result after the HELO fallback = %+v, want delivered", results[0])
	}
}
