package smtpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Replies that the connection layer writes itself, below go-smtp.
const (
	replyBareLine    = "500 5.5.2 Bare CR or LF received, lines must end in CRLF\r\n"
	replyLineTooLong = "500 5.5.2 Line too long\r\n"
)

// errDataTimeout is what a read returns when the whole-transfer deadline of
// a DATA or BDAT transfer passed. go-smtp sends it to the client as the
// reply to that transfer, and the connection is then closed.
var errDataTimeout = &smtp.SMTPError{
	Code:         421,
	EnhancedCode: smtp.EnhancedCode{4, 4, 2},
	Message:      "Data transfer timed out, closing connection",
}

// Stream modes of the plaintext scanner.
const (
	modeCommand = iota // command lines
	modeData           // DATA content lines, until a line with a single dot
	modeChunk          // BDAT chunk bytes, passed through without scanning
	modeTLS            // after STARTTLS: ciphertext, passed through
)

// strictConn sits between the TCP connection and go-smtp. Before STARTTLS
// it enforces strict CRLF framing on every byte the client sends: on the
// first bare CR or LF it hands go-smtp the complete lines before it, then
// replies 500 and closes, so that no command or message end hidden behind
// a bare line end is ever read (SMTP smuggling). It also drops bytes that a
// client pipelined after STARTTLS, applies the configured command and data
// timeouts, and makes read errors sticky, so that go-smtp cannot resume
// reading in the middle of a message after a timeout.
//
// Reads and writes come from the go-smtp connection goroutine only; the
// deadline and close methods may be called from others.
type strictConn struct {
	net.Conn
	state *connState

	// Plaintext scanner, used by the reading goroutine only.
	buf       []byte // bytes read from the network and not yet delivered
	readyEnd  int    // buf[:readyEnd] is checked and may be delivered
	scanPos   int    // buf[:scanPos] has been scanned
	prevCR    bool
	mode      int
	chunkLeft int64
	rejectMsg string // set once a framing error was found
	readErr   error  // sticky: every read after an error returns it

	mu           sync.Mutex
	dataDeadline time.Time // zero outside DATA and BDAT transfers
	closeAfter   bool      // close the connection after the next write
	tlsStage     int       // write-side view of STARTTLS, see Write

	closeOnce sync.Once
}

// Write-side STARTTLS stages.
const (
	tlsNone = iota
	tlsRequested
	tlsHandshake
)

func newStrictConn(c net.Conn, st *connState) *strictConn {
	return &strictConn{Conn: c, state: st, buf: make([]byte, 0, 4096)}
}

// Read delivers checked bytes to go-smtp. See strictConn.
func (c *strictConn) Read(p []byte) (int, error) {
	for {
		if c.readErr != nil {
			return 0, c.readErr
		}
		if c.readyEnd > 0 {
			n := copy(p, c.buf[:c.readyEnd])
			c.consume(n)
			return n, nil
		}
		if c.rejectMsg != "" {
			c.rejectFraming()
			return 0, c.readErr
		}
		if c.mode == modeTLS && len(c.buf) == 0 {
			n, err := c.Conn.Read(p)
			if err != nil {
				c.readErr = c.mapReadError(err)
				return n, c.readErr
			}
			return n, nil
		}
		if err := c.fill(); err != nil {
			c.readErr = c.mapReadError(err)
			// Bytes of an unfinished line are dropped with the error:
			// go-smtp would otherwise run them as a complete command.
			return 0, c.readErr
		}
	}
}

// consume removes n delivered bytes from the front of the buffer.
func (c *strictConn) consume(n int) {
	rest := copy(c.buf, c.buf[n:])
	c.buf = c.buf[:rest]
	c.readyEnd -= n
	c.scanPos -= n
}

// fill reads more bytes from the network and scans them.
func (c *strictConn) fill() error {
	if cap(c.buf)-len(c.buf) < 1024 {
		grown := make([]byte, len(c.buf), 2*cap(c.buf)+1024)
		copy(grown, c.buf)
		c.buf = grown
	}
	n, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	c.scan()
	if n > 0 {
		return nil
	}
	return err
}

// scan advances scanPos over the new bytes, moving readyEnd to the end of
// each complete line or chunk, and records a framing error.
func (c *strictConn) scan() {
	maxLine := c.state.cfg.MaxLineLength
	for c.scanPos < len(c.buf) && c.rejectMsg == "" {
		switch c.mode {
		case modeTLS:
			// Whatever followed the STARTTLS line in the same read is
			// plaintext that a client must not send before the 220
			// reply, and that a man in the middle could have injected,
			// so it is dropped here.
			c.buf = c.buf[:c.scanPos]
			return
		case modeChunk:
			k := min(int64(len(c.buf)-c.scanPos), c.chunkLeft)
			c.scanPos += int(k)
			c.readyEnd = c.scanPos
			c.chunkLeft -= k
			if c.chunkLeft == 0 {
				c.mode = modeCommand
			}
			continue
		}

		b := c.buf[c.scanPos]
		c.scanPos++
		switch {
		case c.prevCR && b != '\n':
			c.rejectMsg = replyBareLine
		case c.prevCR:
			c.prevCR = false
			line := c.buf[c.readyEnd : c.scanPos-2]
			c.readyEnd = c.scanPos
			c.lineDone(line)
		case b == '\r':
			c.prevCR = true
		case b == '\n':
			c.rejectMsg = replyBareLine
		case c.scanPos-c.readyEnd > maxLine-2:
			// maxLine counts the CRLF, as go-smtp's own limit does, so
			// both reject the same lines and the client gets one reply.
			c.rejectMsg = replyLineTooLong
		}
	}
}

// lineDone updates the mode after a complete line, mirroring how go-smtp
// v0.26.0 reads its commands (parseCmd and handleBdat). Where the two could
// differ, the scanner errs towards checking bytes that go-smtp passes on.
func (c *strictConn) lineDone(line []byte) {
	if c.mode == modeData {
		if len(line) == 1 && line[0] == '.' {
			c.mode = modeCommand
		}
		return
	}

	upper := strings.ToUpper(string(line[:min(len(line), 8)]))
	switch {
	case strings.HasPrefix(upper, "STARTTLS") && c.state.cfg.TLS != nil:
		// Without a TLS configuration go-smtp rejects STARTTLS, and the
		// lines after it stay plaintext commands.
		c.mode = modeTLS
		c.mu.Lock()
		c.tlsStage = tlsRequested
		c.mu.Unlock()
	case strings.HasPrefix(upper, "DATA"):
		// Content follows if go-smtp accepts the command. If it rejects
		// it, the lines that follow are commands, checked the same way,
		// but STARTTLS and BDAT are then not recognized until a line
		// with a single dot: such a client gets stricter checks, never
		// weaker ones.
		c.mode = modeData
	case strings.HasPrefix(upper, "BDAT") && len(line) > 5 && line[4] == ' ':
		if size, ok := parseBDATSize(string(line[5:])); ok && size > 0 {
			c.mode = modeChunk
			c.chunkLeft = size
		}
	}
}

// parseBDATSize returns the chunk size of a BDAT argument when go-smtp
// v0.26.0 would read a chunk after it: one size that fits 32 bits, then
// optionally LAST.
func parseBDATSize(arg string) (int64, bool) {
	args := strings.Fields(strings.TrimSpace(arg))
	if len(args) == 0 || len(args) > 2 {
		return 0, false
	}
	if len(args) == 2 && !strings.EqualFold(args[1], "LAST") {
		return 0, false
	}
	size, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0, false
	}
	return int64(size), true
}

// rejectFraming sends the framing error reply and closes the connection.
// It runs only once go-smtp has consumed the complete lines before the bad
// byte, so its replies to them come first.
func (c *strictConn) rejectFraming() {
	c.state.logReject("framing", strings.TrimSpace(c.rejectMsg))
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Conn.Write([]byte(c.rejectMsg))
	_ = c.Close()
	c.readErr = net.ErrClosed
}

// mapReadError turns a timeout during a data transfer into errDataTimeout,
// which go-smtp sends as the transfer's reply, and arranges for the
// connection to close after that reply.
func (c *strictConn) mapReadError(err error) error {
	if errors.Is(err, io.EOF) && c.inTransfer() {
		// go-smtp copies a BDAT chunk through an io.LimitReader, which
		// takes an early end of stream for the chunk's end, so a client
		// that closed mid-chunk would have its cut-short message
		// accepted. An end of stream inside a transfer is an abort.
		c.state.logReject("data", "connection closed during the transfer")
		return io.ErrUnexpectedEOF
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dataDeadline.IsZero() {
		return err
	}
	c.closeAfter = true
	c.state.logReject("data", "data transfer timed out")
	return errDataTimeout
}

// inTransfer reports whether the client is sending message content: a
// BDAT chunk the plaintext scanner is inside, or a DATA or BDAT transfer
// the session has begun.
func (c *strictConn) inTransfer() bool {
	if c.chunkLeft > 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.dataDeadline.IsZero()
}

// Write sends a reply and follows STARTTLS. After "220 Ready to start TLS"
// every write is a TLS record, whose first byte (the record type, 20 to 24)
// is never an ASCII digit. A write that starts with a digit is go-smtp's
// plaintext reply to a failed handshake, and the connection is closed
// after it, because the scanner stopped checking at STARTTLS.
func (c *strictConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	switch {
	case c.tlsStage == tlsRequested && bytes.HasPrefix(p, []byte("220")):
		c.tlsStage = tlsHandshake
	case c.tlsStage == tlsHandshake && len(p) > 0 && p[0] >= '0' && p[0] <= '9':
		c.closeAfter = true
	}
	closeAfter := c.closeAfter
	c.mu.Unlock()

	n, err := c.Conn.Write(p)
	if closeAfter {
		_ = c.Close()
	}
	return n, err
}

// closeAfterNextWrite makes the next reply the last one.
func (c *strictConn) closeAfterNextWrite() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
}

// SetReadDeadline replaces go-smtp's per-command deadline with the current
// configuration's: the data deadline during a transfer, else the command
// timeout from now. go-smtp's own value only marks the start of a command.
func (c *strictConn) SetReadDeadline(time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dataDeadline.IsZero() {
		return c.Conn.SetReadDeadline(c.dataDeadline)
	}
	return c.Conn.SetReadDeadline(time.Now().Add(c.state.cfg.CommandTimeout))
}

// SetWriteDeadline applies the command timeout to each reply.
func (c *strictConn) SetWriteDeadline(time.Time) error {
	return c.Conn.SetWriteDeadline(time.Now().Add(c.state.cfg.CommandTimeout))
}

// SetDeadline sets both deadlines as above.
func (c *strictConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// beginData bounds the whole DATA or BDAT transfer that starts now.
func (c *strictConn) beginData(timeout time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dataDeadline = time.Now().Add(timeout)
	_ = c.Conn.SetReadDeadline(c.dataDeadline)
}

// endData returns to the command timeout.
func (c *strictConn) endData() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dataDeadline = time.Time{}
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.state.cfg.CommandTimeout))
}

// Close closes the connection once, releases its connection-limit slots
// and logs the disconnect.
func (c *strictConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.state.closed()
	})
	return err
}

// connOf returns the strictConn under a go-smtp connection, looking through
// TLS after STARTTLS.
func connOf(sc *smtp.Conn) *strictConn {
	nc := sc.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*strictConn)
	return c
}
