package smtpd

import (
	"bytes"
	"io"
)

// contentWriter checks message content on its way to the spool: strict
// CRLF line ends, the Received header count and the size. A bare CR or LF
// anywhere rejects the message, because MTAs disagree on where such a line
// ends, and a smuggled end of data could follow it. The checks see the
// decrypted stream, so they cover content sent after STARTTLS too.
type contentWriter struct {
	w       io.Writer
	maxHops int
	maxSize int64
	// maxLine is the longest line in bytes, CRLF included. go-smtp checks
	// it for DATA but not inside BDAT chunks, and a longer line would be
	// relayed with DATA against RFC 5321's limit.
	maxLine int
	lineLen int

	size      int64
	prevCR    bool
	lastLF    bool
	inHeader  bool
	lineStart bool
	prefix    []byte // start of the current header line, lower-cased
	hops      int
}

// receivedPrefix starts a Received header field, compared lower-cased.
var receivedPrefix = []byte("received:")

func (c *contentWriter) Write(p []byte) (int, error) {
	c.size += int64(len(p))
	if c.size > c.maxSize {
		return 0, errTooLarge
	}
	rest := p
	for len(rest) > 0 && c.inHeader {
		if err := c.step(rest[0]); err != nil {
			return 0, err
		}
		rest = rest[1:]
	}
	if err := c.scanBody(rest); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		c.lastLF = p[len(p)-1] == '\n'
	}
	if _, err := c.w.Write(p); err != nil {
		return 0, errWrite{err}
	}
	return len(p), nil
}

// step checks one byte. Past the header only the CR and LF checks remain.
func (c *contentWriter) step(b byte) error {
	switch {
	case c.prevCR && b != '\n':
		return errBareLineInContent
	case b == '\n' && !c.prevCR:
		return errBareLineInContent
	}
	c.prevCR = b == '\r'
	switch {
	case b == '\n':
		c.lineLen = 0
	case b != '\r':
		c.lineLen++
		if c.maxLine > 0 && c.lineLen > c.maxLine-2 {
			return errContentLineTooLong
		}
	}
	if !c.inHeader {
		return nil
	}

	switch {
	case b == '\n':
		c.lineStart = true
		c.prefix = c.prefix[:0]
		return nil
	case b == '\r':
		if c.lineStart {
			// An empty line ends the header section.
			c.inHeader = false
		}
		return nil
	}
	c.lineStart = false
	if len(c.prefix) < len(receivedPrefix) {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		c.prefix = append(c.prefix, b)
		if bytes.Equal(c.prefix, receivedPrefix) {
			c.hops++
			if c.hops >= c.maxHops {
				return errMailLoop
			}
		}
	}
	return nil
}

// scanBody applies step's checks to body bytes a run at a time. A byte
// loop over a 100 KB body was a fifth of the gateway's CPU per message,
// and between two line ends only the line length changes. It must agree
// with step on every input, and content_test.go compares the two.
func (c *contentWriter) scanBody(p []byte) error {
	for len(p) > 0 {
		if c.prevCR {
			if p[0] != '\n' {
				return errBareLineInContent
			}
			c.prevCR = false
			c.lineLen = 0
			p = p[1:]
			continue
		}
		plain := p
		if i := bytes.IndexByte(p, '\r'); i >= 0 {
			plain = p[:i]
		}
		if j := bytes.IndexByte(plain, '\n'); j >= 0 {
			if err := c.addLine(j); err != nil {
				return err
			}
			return errBareLineInContent
		}
		if err := c.addLine(len(plain)); err != nil {
			return err
		}
		p = p[len(plain):]
		if len(p) > 0 {
			// p[0] is the CR; the next byte must be its LF.
			c.prevCR = true
			p = p[1:]
		}
	}
	return nil
}

// addLine counts n bytes that are neither CR nor LF into the current line.
func (c *contentWriter) addLine(n int) error {
	if n == 0 {
		return nil
	}
	c.lineLen += n
	if c.maxLine > 0 && c.lineLen > c.maxLine-2 {
		return errContentLineTooLong
	}
	return nil
}

// finish checks the end of the content and ends the last line with CRLF
// if a BDAT client left it open (DATA content always ends in CRLF).
func (c *contentWriter) finish() error {
	if c.prevCR {
		return errBareLineInContent
	}
	if c.size > 0 && !c.lastLF {
		if _, err := io.WriteString(c.w, "\r\n"); err != nil {
			return errWrite{err}
		}
	}
	return nil
}
