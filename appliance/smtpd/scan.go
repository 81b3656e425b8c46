package smtpd

import (
	"bytes"
	"strconv"
	"strings"
)

// Stream modes of the scanner.
const (
	modeCommand = iota // command lines
	modeData           // DATA content lines, until a line with a single dot
	modeChunk          // BDAT chunk bytes, passed through without scanning
)

// Actions that the scanner stops at. Read runs the action once go-smtp has
// handled every line before it, so that a reply the action writes comes in
// order, and the scanner then resumes.
const (
	actionNone      = iota
	actionAwaitData // the DATA line was delivered: the reply decides the mode
	actionReply     // write actionReply in place of go-smtp's handling
	actionFinish    // finish an open BDAT transfer before the line
	actionStartTLS  // run STARTTLS below go-smtp
	actionBDAT      // release the BDAT line on its own, then set actionChunk
	actionChunk     // the BDAT line was delivered: resume with its chunk
)

// Replies that the scanner writes for lines it keeps from go-smtp.
var (
	replyUnrecognized = []byte("500 5.5.2 Syntax error, command unrecognized\r\n")
	replyTLSActive    = []byte("503 5.5.1 Bad sequence of commands: TLS is already active\r\n")
	replyNoParameters = []byte("501 5.5.4 Syntax error (no parameters allowed)\r\n")
)

// Command verbs, the first four bytes of a line upper-cased.
const (
	verbData = "DATA"
	verbBdat = "BDAT"
	verbRset = "RSET"
	verbHelo = "HELO"
	verbEhlo = "EHLO"
)

// knownVerbs are the commands go-smtp v0.26.0 dispatches (Conn.handle).
// It replies to any other verb, an empty line and a line it cannot split
// into verb and argument with protocolError, which counts towards its own
// fixed limit of three errors rather than MaxErrors. The scanner replies to
// those lines itself.
var knownVerbs = [...]string{"SEND", "SOML", "SAML", "EXPN", "HELP", "TURN", "HELO", "EHLO",
	"LHLO", "MAIL", "RCPT", "VRFY", "NOOP", "RSET", "BDAT", "DATA", "QUIT", "AUTH"}

// scan advances scanPos over the buffered bytes, moving readyEnd to the end
// of each complete line or chunk. It stops at a framing error and at a line
// with an action.
func (c *strictConn) scan() {
	maxLine := c.state.cfg.MaxLineLength
	for c.scanPos < len(c.buf) && c.rejectMsg == "" && c.action == actionNone {
		if c.mode == modeChunk {
			k := min(int64(len(c.buf)-c.scanPos), c.chunkLeft)
			if c.chunkDiscarded {
				blankChunk(c.buf[c.scanPos : c.scanPos+int(k)])
			}
			c.scanPos += int(k)
			c.readyEnd = c.scanPos
			c.chunkLeft -= k
			if c.chunkLeft == 0 {
				c.mode = modeCommand
				c.chunkDiscarded = false
			}
			continue
		}

		if c.mode == modeData && !c.prevCR && fastDataScan && c.skipDataRun(maxLine) {
			continue
		}

		b := c.buf[c.scanPos]
		c.scanPos++
		switch {
		case c.prevCR && b != '\n':
			c.rejectMsg = replyBareLine
		case c.prevCR:
			c.prevCR = false
			c.lineDone(c.buf[c.readyEnd : c.scanPos-2])
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

// fastDataScan lets scan skip DATA content between line ends with
// bytes.IndexByte. The byte loop over 100 KB messages took about an eighth
// of the gateway's CPU. Tests turn it off to compare the two.
var fastDataScan = true

// skipDataRun moves scanPos over the DATA content bytes before the next
// CR, as the byte loop would: a bare LF or a line longer than maxLine
// stops it with the same reject at the same position. It reports whether
// it moved or rejected; at a CR it leaves the byte to the loop.
func (c *strictConn) skipDataRun(maxLine int) bool {
	rest := c.buf[c.scanPos:]
	plain := rest
	if i := bytes.IndexByte(rest, '\r'); i >= 0 {
		plain = rest[:i]
	}
	n, bareLF := len(plain), false
	if j := bytes.IndexByte(plain, '\n'); j >= 0 {
		n, bareLF = j, true
	}
	if over := c.scanPos + n - c.readyEnd - (maxLine - 2); n > 0 && over > 0 {
		// The byte loop stops at the first byte past the limit.
		c.scanPos += max(1, n-over+1)
		c.rejectMsg = replyLineTooLong
		return true
	}
	c.scanPos += n
	if bareLF {
		c.scanPos++
		c.rejectMsg = replyBareLine
		return true
	}
	return n > 0
}

// lineDone handles a complete line, which starts at readyEnd and ends at
// scanPos. It either releases the line to go-smtp by moving readyEnd to
// scanPos, or sets an action. The command parsing mirrors go-smtp v0.26.0
// (parseCmd and Conn.handle).
func (c *strictConn) lineDone(line []byte) {
	if c.mode == modeData {
		if len(line) == 1 && line[0] == '.' {
			c.mode = modeCommand
		}
		c.readyEnd = c.scanPos
		return
	}

	if hasPrefixFold(line, "STARTTLS") {
		// go-smtp v0.26.0 (parseCmd) takes every line that starts with
		// STARTTLS for the command, whatever follows, so none of these
		// lines may reach it but a plain STARTTLS.
		c.startTLSVerbLine(line[len("STARTTLS"):])
		return
	}
	verb, ok := commandVerb(line)
	if !ok {
		c.setAction(actionReply)
		c.actionReply = replyUnrecognized
		return
	}

	switch verb {
	case verbRset, verbHelo, verbEhlo:
		// go-smtp resets the transaction on each of these. Inside an
		// open BDAT transfer that reset would race with the transfer's
		// goroutine, so the transfer is finished first.
		if c.bdatOpen {
			c.setAction(actionFinish)
			return
		}
	case verbData:
		c.readyEnd = c.scanPos
		c.action = actionAwaitData
		return
	case verbBdat:
		if len(line) > 5 {
			if size, last, ok := parseBDAT(string(line[5:])); ok {
				// go-smtp reads the chunk after the command even when
				// it rejects the command for its place in the session.
				c.bdatOpen = !last
				if size > 0 {
					c.mode = modeChunk
					c.chunkLeft = size
					c.setAction(actionBDAT)
					return
				}
			}
		}
	}
	c.readyEnd = c.scanPos
}

// blankChunk replaces the bytes of a chunk that go-smtp discards with LF.
// go-smtp v0.26.0 (Conn.handleBdat) discards the chunk of a BDAT that it
// rejects with its line limit still on. A line longer than that limit
// would end the session with 500 5.4.0, although a BDAT that go-smtp
// accepts gets the content check's 554 for the same chunk.
func blankChunk(b []byte) {
	for i := range b {
		b[i] = '\n'
	}
}

// startTLSVerbLine handles a line that starts with STARTTLS, given the
// rest of the line after those 8 bytes. STARTTLS takes no parameters
// (RFC 3207), and trailing spaces count as none. A longer verb such as
// STARTTLSX is an unknown command.
func (c *strictConn) startTLSVerbLine(rest []byte) {
	switch {
	case len(bytes.TrimLeft(rest, " ")) == 0:
		c.startTLSLine()
	case rest[0] == ' ':
		c.setAction(actionReply)
		c.actionReply = replyNoParameters
	default:
		c.setAction(actionReply)
		c.actionReply = replyUnrecognized
	}
}

// startTLSLine sets the action for a STARTTLS line. Bytes after it in the
// buffer are dropped: a client must not send anything before the 220 reply,
// and a man in the middle could have injected them.
func (c *strictConn) startTLSLine() {
	switch {
	case c.bdatOpen:
		c.setAction(actionFinish)
	case c.tls:
		c.setAction(actionReply)
		c.actionReply = replyTLSActive
	case c.state.cfg.TLS == nil:
		// go-smtp rejects STARTTLS without a TLS configuration.
		c.readyEnd = c.scanPos
	default:
		c.buf = c.buf[:c.scanPos]
		c.setAction(actionStartTLS)
	}
}

// setAction stops the scanner at the line that ends at scanPos. readyEnd
// stays at the start of the line.
func (c *strictConn) setAction(action int) {
	c.action = action
	c.actionEnd = c.scanPos
}

// commandVerb returns the upper-cased verb of a command line and whether
// go-smtp would dispatch the line to a handler: one of its verbs, alone or
// followed by a space and an argument.
func commandVerb(line []byte) (string, bool) {
	if len(line) != 4 && (len(line) < 6 || line[4] != ' ') {
		return "", false
	}
	for _, v := range knownVerbs {
		if hasPrefixFold(line, v) {
			return v, true
		}
	}
	return "", false
}

// hasPrefixFold reports whether line starts with the upper-case prefix,
// ignoring ASCII case.
func hasPrefixFold(line []byte, prefix string) bool {
	if len(line) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		b := line[i]
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		if b != prefix[i] {
			return false
		}
	}
	return true
}

// parseBDAT returns the chunk size and the LAST flag of a BDAT argument
// when go-smtp v0.26.0 would read a chunk after it: one size that fits 32
// bits, then optionally LAST.
func parseBDAT(arg string) (size int64, last, ok bool) {
	args := strings.Fields(arg)
	if len(args) == 0 || len(args) > 2 {
		return 0, false, false
	}
	if len(args) == 2 {
		if !strings.EqualFold(args[1], "LAST") {
			return 0, false, false
		}
		last = true
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0, false, false
	}
	return int64(n), last, true
}
