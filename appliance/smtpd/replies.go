package smtpd

import "bytes"

// replyTooManyErrors replaces the error reply that reaches MaxErrors.
var replyTooManyErrors = []byte("421 4.7.0 Too many errors, closing connection\r\n")

// badSequenceReplies maps go-smtp v0.26.0's 502 replies to commands out of
// sequence to 503 5.5.1, which RFC 5321 defines as "bad sequence of
// commands"; 502 means "command not implemented".
var badSequenceReplies = func() map[string][]byte {
	texts := []string{
		"Please introduce yourself first.",
		"Missing MAIL FROM command.",
		"Missing RCPT TO command.",
		"MAIL not allowed during message transfer",
		"RCPT not allowed during message transfer",
		"DATA not allowed during message transfer",
	}
	m := make(map[string][]byte, len(texts))
	for _, t := range texts {
		m["502 5.5.1 "+t+"\r\n"] = []byte("503 5.5.1 Bad sequence of commands: " + t + "\r\n")
	}
	return m
}()

// idleTimeoutReply starts go-smtp's reply to a command read that timed out.
var idleTimeoutReply = []byte("421 4.4.2 ")

// replyShuttingDown replaces it during a stop.
var replyShuttingDown = []byte("421 4.3.2 Service shutting down, try again later\r\n")

// writeErrorReply writes the last line of a 4xx or 5xx reply, from go-smtp
// or from the scanner, and counts it against MaxErrors. The reply that
// reaches MaxErrors is replaced by 421 4.7.0, and the connection closes
// after it. During a stop, go-smtp's idle timeout reply is replaced by one
// that gives the stop as the reason.
func (c *strictConn) writeErrorReply(p []byte) (int, error) {
	out := p
	if r, ok := badSequenceReplies[string(p)]; ok {
		out = r
	}
	if c.state.srv.stopping.Load() && bytes.HasPrefix(p, idleTimeoutReply) {
		// go-smtp's read timed out because the gateway is stopping, not
		// because the client was idle for too long.
		out = replyShuttingDown
	}
	if countsAsError(p) && c.state.addError() >= c.state.cfg.MaxErrors {
		c.state.logReject("command", "too many errors")
		out = replyTooManyErrors
		c.closeAfter.Store(true)
	}
	_, err := c.Conn.Write(out)
	if c.closeAfter.Load() {
		_ = c.Close()
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// countsAsError reports whether an error reply counts against MaxErrors.
// 421 closes the connection anyway. 451 (local error in processing) and
// 452 (insufficient storage, or too many recipients, after which the
// client sends the rest in a later transaction) report a condition of the
// gateway rather than a client's mistake, so they do not count.
func countsAsError(p []byte) bool {
	if p[0] != '4' {
		return true
	}
	code := string(p[:3])
	return code != "421" && code != "451" && code != "452"
}
