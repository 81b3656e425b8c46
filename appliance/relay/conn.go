package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// ioBufferSize is the size of each connection's read and write buffers. A
// message goes out in writes of this size.
const ioBufferSize = 32 << 10

// conn is one SMTP client connection to the internal server, after EHLO (and
// STARTTLS when configured). It is used by one delivery at a time.
type conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer

	// ext maps each EHLO keyword (upper case) to its parameters; nil after
	// a HELO fallback.
	ext map[string]string
	// relay names the peer for results and logs: "host[ip]:port".
	relay string

	// timeout bounds each read and write; a step of the DATA phase lowers
	// it for its own duration.
	timeout time.Duration

	// messages counts transactions on this connection, and idleSince is
	// when it was last returned to the pool.
	messages  int
	idleSince time.Time
	// resetFirst is set on a reused connection whose server pipelines:
	// the next transaction starts with RSET in the same write, which both
	// clears the session and shows whether the server is still there.
	resetFirst bool

	// mu guards canceled and watchID against the context watcher, so that
	// a deadline set after a cancellation can never undo it, and a watcher
	// of an earlier operation never cancels a later one.
	mu       sync.Mutex
	canceled bool
	watchID  uint64
}

// dial connects to the server, reads the greeting, sends EHLO (HELO when
// EHLO is rejected) and, when cfg.TLS is set, STARTTLS and EHLO again.
func dial(ctx context.Context, cfg Config) (*conn, error) {
	d := Dialer{SourceAddress: cfg.SourceAddress, Device: cfg.Device, Timeout: cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.Server)
	if err != nil {
		return nil, err
	}

	host, port, _ := net.SplitHostPort(cfg.Server)
	ip := nc.RemoteAddr().String()
	if addr, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ip = addr.IP.String()
	}
	c := &conn{
		nc:      nc,
		relay:   fmt.Sprintf("%s[%s]:%s", host, ip, port),
		timeout: cfg.Timeout,
	}
	c.br = bufio.NewReaderSize(connReader{c}, ioBufferSize)
	c.bw = bufio.NewWriterSize(connWriter{c}, ioBufferSize)

	stop := c.watch(ctx)
	err = c.handshake(ctx, cfg, host)
	stop()
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// handshake runs the greeting, EHLO and STARTTLS steps of dial.
func (c *conn) handshake(ctx context.Context, cfg Config, host string) error {
	greeting, err := readReply(c.br)
	if err != nil {
		return c.ioError(ctx, "reading greeting", err)
	}
	if greeting.Code != 220 {
		return fmt.Errorf("%s rejected the connection: %s", c.relay, greeting)
	}

	if err := c.hello(ctx, cfg.HELO); err != nil {
		return err
	}
	if !cfg.TLS {
		return nil
	}

	if _, ok := c.ext["STARTTLS"]; !ok {
		return fmt.Errorf("%s does not offer STARTTLS, but TLS to the internal server is "+
			"required; enable STARTTLS there or turn internal.tls off", c.relay)
	}
	reply, err := c.cmd(ctx, "STARTTLS")
	if err != nil {
		return err
	}
	if reply.Code != 220 {
		return fmt.Errorf("%s rejected STARTTLS: %s", c.relay, reply)
	}
	// Bytes that arrived after the 220 were sent before TLS began and must
	// not be read as protected replies (the STARTTLS injection attack).
	if c.br.Buffered() > 0 {
		return fmt.Errorf("%s sent data after its STARTTLS reply; closing", c.relay)
	}

	tc := tls.Client(c.nc, &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: !cfg.TLSVerify,
		RootCAs:            cfg.RootCAs,
		MinVersion:         tls.VersionTLS12,
	})
	if err := c.armDeadline(c.timeout); err != nil {
		return err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake with %s failed: %w", c.relay, err)
	}
	c.mu.Lock()
	c.nc = tc
	c.mu.Unlock()

	// RFC 3207: the client discards what it learned before TLS and sends
	// EHLO again.
	return c.hello(ctx, cfg.HELO)
}

// hello sends EHLO and records the extensions, falling back to HELO when
// the server rejects EHLO with a permanent error.
func (c *conn) hello(ctx context.Context, name string) error {
	reply, err := c.cmd(ctx, "EHLO "+name)
	if err != nil {
		return err
	}
	if reply.Code == 250 {
		c.ext = make(map[string]string)
		for _, line := range reply.Lines[1:] {
			keyword, params, _ := strings.Cut(line, " ")
			c.ext[strings.ToUpper(keyword)] = params
		}
		return nil
	}
	if reply.Code/100 != 5 {
		return fmt.Errorf("%s rejected EHLO: %s", c.relay, reply)
	}

	reply, err = c.cmd(ctx, "HELO "+name)
	if err != nil {
		return err
	}
	if reply.Code != 250 {
		return fmt.Errorf("%s rejected HELO: %s", c.relay, reply)
	}
	c.ext = nil
	return nil
}

// has reports whether the server offered the EHLO extension keyword.
func (c *conn) has(keyword string) bool {
	_, ok := c.ext[keyword]
	return ok
}

// cmd sends one command line and reads its reply.
func (c *conn) cmd(ctx context.Context, line string) (smtpReply, error) {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return smtpReply{}, c.ioError(ctx, "sending "+commandName(line), err)
	}
	return c.reply(ctx, commandName(line))
}

// reply reads one reply; step names the command for the error message.
func (c *conn) reply(ctx context.Context, step string) (smtpReply, error) {
	r, err := readReply(c.br)
	if err != nil {
		return r, c.ioError(ctx, "reading the reply to "+step, err)
	}
	return r, nil
}

// ioError wraps a failed read or write with the relay and the step, and
// reports a cancellation of ctx as such rather than as a timeout.
func (c *conn) ioError(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s with %s: %w", step, c.relay, context.Cause(ctx))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s with %s timed out after %v: %w", step, c.relay, c.timeout, err)
	}
	return fmt.Errorf("%s with %s failed: %w", step, c.relay, err)
}

// watch makes a cancellation of ctx interrupt any read or write in progress,
// until the returned stop function is called.
func (c *conn) watch(ctx context.Context) (stop func()) {
	c.mu.Lock()
	c.canceled = false
	c.watchID++
	id := c.watchID
	c.mu.Unlock()

	after := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.watchID != id {
			return
		}
		c.canceled = true
		c.nc.SetDeadline(time.Unix(1, 0))
	})
	return func() { after() }
}

// armDeadline sets the deadline of the next read or write to d from now,
// unless the watched context was canceled.
func (c *conn) armDeadline(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return context.Canceled
	}
	return c.nc.SetDeadline(time.Now().Add(d))
}

// quit sends QUIT without waiting long for its reply, then closes.
func (c *conn) quit() {
	c.timeout = 5 * time.Second
	c.bw.WriteString("QUIT\r\n")
	if c.bw.Flush() == nil {
		readReply(c.br)
	}
	c.close()
}

func (c *conn) close() {
	c.nc.Close()
}

// commandName returns the verb of a command line, for messages that must
// not repeat addresses.
func commandName(line string) string {
	verb, _, _ := strings.Cut(line, " ")
	return verb
}

// connReader and connWriter refresh the deadline before every read and
// write, so that each one is bounded by conn.timeout.
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) {
	if err := r.c.armDeadline(r.c.timeout); err != nil {
		return 0, err
	}
	return r.c.nc.Read(p)
}

type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	if err := w.c.armDeadline(w.c.timeout); err != nil {
		return 0, err
	}
	return w.c.nc.Write(p)
}
