package smtpd

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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

// strictConn sits between the client's connection and go-smtp and reads
// every command, content byte and reply in plaintext: STARTTLS runs here,
// below go-smtp, and a connection continues after it as a new strictConn
// over the TLS connection (see startTLS).
//
// It enforces strict CRLF framing on every byte the client sends: on the
// first bare CR or LF it hands go-smtp the complete lines before it, then
// replies 500 and closes, so that no command or message end hidden behind
// a bare line end is ever read (SMTP smuggling). It replies itself to the
// lines that go-smtp would count against its own fixed error limit, and it
// counts every error reply against MaxErrors (see Write). It applies the
// configured command and data timeouts and makes read errors sticky, so
// that go-smtp cannot resume reading in the middle of a message after a
// timeout.
//
// Reads and writes come from the go-smtp connection goroutine only; the
// deadline and close methods may be called from others.
type strictConn struct {
	net.Conn // the TCP connection, or after STARTTLS the TLS connection over it
	state    *connState
	tls      bool

	// Scanner, used by the reading goroutine only.
	buf         []byte // bytes read from the network and not yet delivered
	readyEnd    int    // buf[:readyEnd] is checked and may be delivered
	scanPos     int    // buf[:scanPos] has been scanned
	prevCR      bool
	mode        int
	chunkLeft   int64
	bdatOpen    bool // a BDAT chunk without LAST may have opened a transfer
	action      int  // the action at the line buf[readyEnd:actionEnd]
	actionEnd   int
	actionReply []byte // the reply of actionReply
	rejectMsg   string // set once a framing error was found
	readErr     error  // sticky: every read after an error returns it

	chunkDiscarded bool // go-smtp discards the current chunk (see blankChunk)

	// Reply side, used by the reading goroutine only.
	swallow      int  // replies to drop: those to lines the scanner made up
	dataReply    byte // first byte of the reply to the last DATA command
	chunkReplied bool // go-smtp replied to the BDAT line before its chunk

	closeAfter atomic.Bool // close the connection after the next write
	handedOff  atomic.Bool // STARTTLS moved the connection to a new strictConn

	mu           sync.Mutex
	dataDeadline time.Time // zero outside DATA and BDAT transfers

	closeOnce sync.Once
}

func newStrictConn(c net.Conn, st *connState) *strictConn {
	sc := &strictConn{Conn: c, state: st, buf: make([]byte, 0, 4096)}
	st.current.Store(sc)
	return sc
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
		if c.action != actionNone {
			// go-smtp reads again only after it has handled and
			// replied to every line before the action's line.
			c.runAction()
			if c.readErr != nil {
				return 0, c.readErr
			}
			c.scan()
			continue
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
	c.actionEnd -= n
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
	c.closeAfter.Store(true)
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

// Write sends one reply line of go-smtp, which writes each line with a
// separate call. It drops the replies to lines that the scanner made up,
// and passes error replies to writeErrorReply.
func (c *strictConn) Write(p []byte) (int, error) {
	if c.swallow > 0 {
		c.swallow--
		// A made-up BDAT that found no transfer to finish leaves the
		// mark set, and it must not abort the next transfer.
		c.state.takeTransferReset()
		return len(p), nil
	}
	if c.action == actionAwaitData && len(p) > 0 {
		c.dataReply = p[0]
	}
	if c.action == actionChunk {
		c.chunkReplied = true
	}
	if len(p) > 3 && (p[0] == '4' || p[0] == '5') && p[3] == ' ' {
		return c.writeErrorReply(p)
	}
	n, err := c.Conn.Write(p)
	if c.closeAfter.Load() {
		_ = c.Close()
	}
	return n, err
}

// closeAfterNextWrite makes the next reply the last one.
func (c *strictConn) closeAfterNextWrite() {
	c.closeAfter.Store(true)
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
	if c.state.srv.stopping.Load() {
		// A stop is under way: the next command read times out at once,
		// and the client gets 421 instead of holding the stop up.
		return c.Conn.SetReadDeadline(time.Now())
	}
	return c.Conn.SetReadDeadline(time.Now().Add(c.state.cfg.CommandTimeout))
}

// endIfIdle ends a session that waits for a command, during a stop: its
// read times out and go-smtp replies 421. A session inside a transfer is
// left to finish its message. It may run on any goroutine.
func (c *strictConn) endIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dataDeadline.IsZero() {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
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
// and logs the disconnect. After STARTTLS handed the connection on, it
// leaves the connection to the new strictConn.
func (c *strictConn) Close() error {
	if c.handedOff.Load() {
		return nil
	}
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.state.closed()
	})
	return err
}

// connOf returns the strictConn under a go-smtp connection.
func connOf(sc *smtp.Conn) *strictConn {
	c, _ := sc.Conn().(*strictConn)
	return c
}
