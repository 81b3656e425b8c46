package relay

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// transaction is one MAIL, RCPT..., DATA exchange on a connection.
type transaction struct {
	c       *conn
	env     *envelope.Envelope
	pending []*envelope.Recipient
	body    envelope.Body

	mail  string   // the MAIL command line
	rcpts []string // one RCPT command line per pending recipient

	// healthy is false once the session is out of step or closing, so the
	// connection must not be reused.
	healthy bool
}

// mailCommand builds the MAIL command with the parameters that the envelope
// requests and the server offers.
func mailCommand(c *conn, env *envelope.Envelope, size int64) string {
	var b strings.Builder
	b.WriteString("MAIL FROM:<")
	b.WriteString(env.From)
	b.WriteString(">")

	if c.has("SIZE") {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(size, 10))
	}
	if envelopeIs8Bit(env) && c.has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if env.SMTPUTF8 && c.has("SMTPUTF8") {
		b.WriteString(" SMTPUTF8")
	}
	if c.has("DSN") {
		if env.DSNReturn != "" {
			b.WriteString(" RET=")
			b.WriteString(strings.ToUpper(env.DSNReturn))
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=")
			b.WriteString(xtext(env.EnvID))
		}
	}
	return b.String()
}

// rcptCommand builds the RCPT command of r, with the RFC 3461 parameters
// when the server offers DSN.
func rcptCommand(c *conn, r *envelope.Recipient) string {
	var b strings.Builder
	b.WriteString("RCPT TO:<")
	b.WriteString(r.Address)
	b.WriteString(">")

	if c.has("DSN") {
		if len(r.Notify) > 0 {
			b.WriteString(" NOTIFY=")
			b.WriteString(strings.ToUpper(strings.Join(r.Notify, ",")))
		}
		if r.ORCPT != "" {
			b.WriteString(" ORCPT=")
			b.WriteString(orcptParam(r.ORCPT))
		}
	}
	return b.String()
}

// orcptParam encodes an original recipient for ORCPT=. The envelope keeps it
// decoded, as "addr-type;address" or as a bare address, which is taken to be
// rfc822.
func orcptParam(orcpt string) string {
	addrType, addr, ok := strings.Cut(orcpt, ";")
	if !ok || addrType == "" || strings.ContainsAny(addrType, "@<> ") {
		addrType, addr = "rfc822", orcpt
	}
	return addrType + ";" + xtext(addr)
}

// xtext encodes s as RFC 3461 xtext: "+", "=", controls, space and
// non-ASCII bytes become "+XX".
func xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unsafeAddress reports whether an address would break the command line it
// is sent in.
func unsafeAddress(addr string) bool {
	return strings.ContainsAny(addr, "\r\n<>")
}

// run sends the transaction, pipelined when the server offers PIPELINING
// (RFC 2920) and in lock-step otherwise, and returns the reply to MAIL, one
// reply per RCPT, and the final reply for the accepted recipients.
func (t *transaction) run(ctx context.Context) (mail smtpReply, rcpts []smtpReply, final smtpReply, err error) {
	t.healthy = false
	if t.c.has("PIPELINING") {
		mail, rcpts, final, err = t.runPipelined(ctx)
	} else {
		mail, rcpts, final, err = t.runLockStep(ctx)
	}
	if err == nil {
		// 421 means the server is closing the session.
		t.healthy = mail.Code != 421 && final.Code != 421
		for _, r := range rcpts {
			if r.Code == 421 {
				t.healthy = false
			}
		}
	}
	return mail, rcpts, final, err
}

// runPipelined writes MAIL, every RCPT and DATA in one flush and then reads
// the replies in order. RFC 2920 allows DATA as the last command of a batch.
func (t *transaction) runPipelined(ctx context.Context) (smtpReply, []smtpReply, smtpReply, error) {
	c := t.c
	reset := c.resetFirst
	c.resetFirst = false
	if reset {
		c.bw.WriteString("RSET\r\n")
	}
	c.bw.WriteString(t.mail)
	c.bw.WriteString("\r\n")
	for _, line := range t.rcpts {
		c.bw.WriteString(line)
		c.bw.WriteString("\r\n")
	}
	c.bw.WriteString("DATA\r\n")
	if err := c.bw.Flush(); err != nil {
		err = c.ioError(ctx, "sending MAIL, RCPT and DATA", err)
		if reset {
			err = staleError{err}
		}
		return smtpReply{}, nil, smtpReply{}, err
	}
	if reset {
		// A server that closed the idle connection fails here, before it
		// could have accepted anything, so the caller may retry elsewhere.
		rset, err := c.reply(ctx, "RSET")
		if err == nil && rset.Code != 250 {
			err = fmt.Errorf("RSET on a reused connection: %s", rset.String())
		}
		if err != nil {
			return smtpReply{}, nil, smtpReply{}, staleError{err}
		}
	}

	mail, err := c.reply(ctx, "MAIL")
	if err != nil || mail.Code == 421 {
		return mail, nil, smtpReply{}, err
	}
	rcpts := make([]smtpReply, len(t.rcpts))
	accepted := 0
	for i := range t.rcpts {
		if rcpts[i], err = c.reply(ctx, "RCPT"); err != nil {
			return mail, nil, smtpReply{}, err
		}
		if rcpts[i].Code == 421 {
			return mail, closing(rcpts, i), rcpts[i], nil
		}
		if mail.Code/100 == 2 && rcpts[i].Code/100 == 2 {
			accepted++
		}
	}

	data, err := c.withTimeout(dataInitTimeout, func() (smtpReply, error) { return c.reply(ctx, "DATA") })
	if err != nil {
		return mail, rcpts, data, err
	}
	if data.Code != 354 {
		return mail, rcpts, data, nil
	}
	if accepted == 0 {
		// The server took DATA although no recipient was accepted. A lone
		// "." keeps the session in step without sending the message.
		final, err := t.sendData(ctx, "", nil, 0)
		return mail, rcpts, final, err
	}
	final, err := t.sendData(ctx, t.env.Prepend, t.body, t.body.Size())
	return mail, rcpts, final, err
}

// staleError is a reused connection that failed its RSET: the server
// accepted nothing on it, so the transaction can go to another connection.
type staleError struct{ err error }

func (e staleError) Error() string { return "stale connection: " + e.err.Error() }
func (e staleError) Unwrap() error { return e.err }

// runLockStep sends each command and waits for its reply before the next,
// stopping early when MAIL or every RCPT is rejected.
func (t *transaction) runLockStep(ctx context.Context) (smtpReply, []smtpReply, smtpReply, error) {
	c := t.c
	mail, err := c.cmd(ctx, t.mail)
	if err != nil || mail.Code/100 != 2 {
		return mail, nil, smtpReply{}, err
	}

	rcpts := make([]smtpReply, len(t.rcpts))
	accepted := 0
	for i, line := range t.rcpts {
		if rcpts[i], err = c.cmd(ctx, line); err != nil {
			return mail, nil, smtpReply{}, err
		}
		if rcpts[i].Code == 421 {
			return mail, closing(rcpts, i), rcpts[i], nil
		}
		if rcpts[i].Code/100 == 2 {
			accepted++
		}
	}
	if accepted == 0 {
		return mail, rcpts, smtpReply{}, nil
	}

	data, err := c.withTimeout(dataInitTimeout, func() (smtpReply, error) { return c.cmd(ctx, "DATA") })
	if err != nil || data.Code != 354 {
		return mail, rcpts, data, err
	}
	final, err := t.sendData(ctx, t.env.Prepend, t.body, t.body.Size())
	return mail, rcpts, final, err
}

// closing gives the recipients from index i on the 421 reply at rcpts[i],
// because a server that sent 421 closes the session without replying to
// the rest. The caller passes the same reply as the final one, so that the
// recipients accepted before it are deferred too.
func closing(rcpts []smtpReply, i int) []smtpReply {
	for j := i + 1; j < len(rcpts); j++ {
		rcpts[j] = rcpts[i]
	}
	return rcpts
}

// sendData writes the message after a 354 reply and reads the final reply.
func (t *transaction) sendData(ctx context.Context, prepend string, body envelope.Body, size int64) (smtpReply, error) {
	c := t.c

	_, err := c.withTimeout(dataBlockTimeout, func() (smtpReply, error) {
		if body == nil {
			_, err := c.bw.WriteString(".\r\n")
			if err == nil {
				err = c.bw.Flush()
			}
			return smtpReply{}, err
		}
		err := writeMessage(c.bw, prepend, body, size)
		if err == nil {
			err = c.bw.Flush()
		}
		return smtpReply{}, err
	})
	if err != nil {
		return smtpReply{}, c.ioError(ctx, "sending message data", err)
	}

	return c.withTimeout(dataTermTimeout, func() (smtpReply, error) { return c.reply(ctx, "end of data") })
}

// withTimeout runs step with the connection timeout lowered to limit when
// limit is shorter.
func (c *conn) withTimeout(limit time.Duration, step func() (smtpReply, error)) (smtpReply, error) {
	saved := c.timeout
	c.timeout = min(saved, limit)
	defer func() { c.timeout = saved }()
	return step()
}

// describeUnsafe explains why an address was rejected before any command
// was built from it.
func describeUnsafe(addr string) string {
	return fmt.Sprintf("address %q contains CR, LF or angle brackets", addr)
}
