package webui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"time"
)

// probeTimeout bounds a whole "test connection" run.
const probeTimeout = 15 * time.Second

// ProbeInternal runs a real SMTP dialogue with the internal server: EHLO,
// MAIL FROM:<>, RCPT TO:<rcpt>, RSET, QUIT, from sourceAddr when it is set.
// It returns the transcript ("C:" client lines, "S:" server lines) and the
// first failure, if any. No message is sent.
func ProbeInternal(ctx context.Context, server, sourceAddr, helo, rcpt string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()

	var rec transcript
	rec.note("connecting to %s", server)
	d := net.Dialer{}
	if sourceAddr != "" {
		ip := net.ParseIP(sourceAddr)
		if ip == nil {
			err := fmt.Errorf("source address %q is not an IP address", sourceAddr)
			rec.note("%v", err)
			return rec.String(), err
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		rec.note("connection failed: %v", err)
		return rec.String(), err
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(server)

	c, err := smtp.NewClient(&recordingConn{Conn: conn, rec: &rec}, host)
	if err != nil {
		conn.Close()
		// net/smtp's error quotes what the server sent, which need not
		// be SMTP at all, so it is replaced rather than shown.
		err = errors.New("no SMTP greeting: the server did not reply with 220")
		rec.note("%v", err)
		return rec.String(), err
	}
	defer c.Close()
	steps := []func() error{
		func() error { return c.Hello(helo) },
		func() error { return c.Mail("") },
		func() error { return c.Rcpt(rcpt) },
		c.Reset,
		c.Quit,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			rec.note("failed: %v", err)
			return rec.String(), err
		}
	}
	rec.note("the internal server accepted %s", rcpt)
	return rec.String(), nil
}

type transcript struct {
	mu sync.Mutex
	b  strings.Builder
}

func (t *transcript) note(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(&t.b, "-- "+format+"\n", args...)
}

func (t *transcript) lines(prefix string, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		line = strings.TrimRight(line, "\r\n")
		// The probe may be pointed at any port, so only what looks like
		// an SMTP reply is shown: the page must not become a way to read
		// other services' replies.
		if prefix == "S: " && !smtpReplyLine(line) {
			fmt.Fprintf(&t.b, "-- the server sent %d bytes that are not an SMTP reply (not shown)\n", len(line))
			continue
		}
		t.b.WriteString(prefix + line + "\n")
	}
}

// smtpReplyLine reports whether line starts like an RFC 5321 reply: three
// digits, then a space, a hyphen or the end of the line, in printable ASCII.
func smtpReplyLine(line string) bool {
	if len(line) < 3 || len(line) > 512 {
		return false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return false
		}
	}
	if len(line) > 3 && line[3] != ' ' && line[3] != '-' {
		return false
	}
	for i := 0; i < len(line); i++ {
		if line[i] < 0x20 || line[i] > 0x7e {
			return false
		}
	}
	return true
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// recordingConn copies both directions of an SMTP connection into a
// transcript. net/smtp reads through a bufio.Reader, so server lines are
// recorded as the reads arrive, which may join several lines in one read.
type recordingConn struct {
	net.Conn
	rec *transcript
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.lines("S: ", p[:n])
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.rec.lines("C: ", p)
	return c.Conn.Write(p)
}
