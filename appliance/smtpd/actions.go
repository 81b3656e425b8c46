package smtpd

import (
	"crypto/tls"
	"io"
	"net"
	"time"
)

// bdatFinish is the command that the scanner makes up to finish an open
// BDAT transfer before a command that resets the transaction. It makes
// go-smtp v0.26.0 wait for the transfer's goroutine and its result before
// the reset. After a reset while the goroutine runs, the goroutine could
// send its result into the next transfer's channel (Conn.dataResult).
var bdatFinish = []byte("BDAT 0 LAST\r\n")

// replyReadyTLS is the reply to STARTTLS, as go-smtp v0.26.0 words it.
var replyReadyTLS = []byte("220 2.0.0 Ready to start TLS\r\n")

// runAction runs the action that stopped the scanner, once go-smtp has
// handled every line before it. It sets readErr when the connection ends.
func (c *strictConn) runAction() {
	action := c.action
	c.action = actionNone
	switch action {
	case actionAwaitData:
		// go-smtp reads message content only after its 354 reply.
		if c.dataReply == '3' {
			c.mode = modeData
		}
		c.dataReply = 0
	case actionReply:
		c.discardLine()
		if _, err := c.writeErrorReply(c.actionReply); err != nil || c.closeAfter.Load() {
			c.readErr = net.ErrClosed
		}
	case actionFinish:
		c.finishTransfer()
	case actionStartTLS:
		c.startTLS()
	case actionBDAT:
		// go-smtp v0.26.0 (Conn.handleBdat) turns its line limit off
		// only after it has parsed the BDAT line, so the chunk's bytes
		// must not reach it in the same read. The line is delivered
		// alone, and the chunk only once go-smtp reads again.
		c.readyEnd = c.actionEnd
		c.chunkReplied = false
		c.action = actionChunk
	case actionChunk:
		// go-smtp replies before it reads the chunk only when it
		// rejected the command and discards the chunk.
		c.chunkDiscarded = c.chunkReplied
	}
}

// discardLine removes the action's line, which go-smtp never reads.
func (c *strictConn) discardLine() {
	n := c.actionEnd
	rest := copy(c.buf, c.buf[n:])
	c.buf = c.buf[:rest]
	c.scanPos -= n
	c.actionEnd = 0
}

// finishTransfer puts bdatFinish before the action's line, which is then
// scanned again. The transfer's Data call aborts instead of storing the
// message (see connState.takeTransferReset), and the reply to the made-up
// command is dropped.
func (c *strictConn) finishTransfer() {
	n := len(bdatFinish)
	c.buf = append(c.buf, bdatFinish...)
	copy(c.buf[n:], c.buf[:len(c.buf)-n])
	copy(c.buf, bdatFinish)
	c.readyEnd = n
	c.scanPos = n
	c.prevCR = false
	c.bdatOpen = false
	c.swallow++
	c.state.setTransferReset()
	c.state.logReject("data", "BDAT transfer aborted by the client")
}

// startTLS replies to STARTTLS and runs the TLS handshake below go-smtp, then
// hands the connection over TLS to the generation's go-smtp server for
// TLS connections, as a new strictConn. That server starts with no HELO,
// session or transaction, which is the reset that RFC 3207 requires, and
// does not offer STARTTLS again. This connection's go-smtp session reads
// an end of stream and ends.
func (c *strictConn) startTLS() {
	c.discardLine()
	cfg := c.state.cfg
	_ = c.Conn.SetDeadline(time.Now().Add(cfg.CommandTimeout))
	if _, err := c.Conn.Write(replyReadyTLS); err != nil {
		c.readErr = err
		return
	}
	tc := tls.Server(c.Conn, cfg.TLS)
	if err := tc.Handshake(); err != nil {
		// Plaintext is no longer possible, so there is no reply.
		c.state.logReject("starttls", "TLS handshake failed: "+err.Error())
		_ = c.Close()
		c.readErr = net.ErrClosed
		return
	}

	next := newStrictConn(tc, c.state)
	next.tls = true
	next.swallow = 1 // go-smtp's greeting, which the client does not expect
	c.handedOff.Store(true)
	if !c.state.gen.tlsLn.deliver(next) {
		_ = next.Close()
	}
	c.readErr = io.EOF
}
