package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrProbeInconclusive is wrapped by Probe errors for a reply that shows
// neither "exists" nor "does not exist", such as a 4xx or a policy reject.
var ErrProbeInconclusive = errors.New("recipient probe inconclusive")

// Probe checks with the internal server whether rcpt exists, by a callout: MAIL
// FROM:<>, RCPT TO:<rcpt> and RSET on a pooled connection, so no message is
// sent. A 250 or 251 reply means true; a 550, 551 or 553 reply whose enhanced
// status code (if any) is 5.1.x means false. Any other reply, and any
// connection failure, is an error, because a caller that read it as "unknown"
// would reject mail for a recipient that may well exist.
func (r *Relay) Probe(ctx context.Context, rcpt string) (exists bool, err error) {
	if unsafeAddress(rcpt) {
		return false, fmt.Errorf("probe of %q: %s", rcpt, describeUnsafe(rcpt))
	}

	c, err := r.pool.get(ctx, false)
	if err != nil {
		return false, fmt.Errorf("probe of %s at %s: %w", rcpt, r.cfg.Server, err)
	}

	mail := "MAIL FROM:<>"
	if !isASCII(rcpt) {
		if !c.has("SMTPUTF8") {
			r.pool.put(c, true)
			return false, fmt.Errorf("probe of %s at %s: %w: the server does not support "+
				"SMTPUTF8, so it cannot take this address", rcpt, c.relay, ErrProbeInconclusive)
		}
		mail += " SMTPUTF8"
	}

	stop := c.watch(ctx)
	mailReply, rcptReply, err := probeExchange(ctx, c, mail, "RCPT TO:<"+rcpt+">")
	if err == nil {
		// RSET ends the transaction so that no message follows the probe.
		var rset smtpReply
		rset, err = c.cmd(ctx, "RSET")
		if err == nil && rset.Code != 250 {
			err = fmt.Errorf("%s rejected RSET: %s", c.relay, rset)
		}
	}
	stop()
	if err != nil {
		r.log.Warn("relay connection error", "rcpt", rcpt, "relay", c.relay, "reason", err.Error())
		r.pool.put(c, false)
		return false, fmt.Errorf("probe of %s: %w", rcpt, err)
	}
	r.pool.put(c, mailReply.Code != 421 && rcptReply.Code != 421)

	if mailReply.Code/100 != 2 {
		return false, fmt.Errorf("probe of %s: %w: %s rejected MAIL FROM:<>: %s",
			rcpt, ErrProbeInconclusive, c.relay, mailReply)
	}
	switch rcptReply.Code {
	case 250, 251:
		return true, nil
	case 550, 551, 553:
		if rcptReply.Enhanced == "" || strings.HasPrefix(rcptReply.Enhanced, "5.1.") {
			return false, nil
		}
	}
	return false, fmt.Errorf("probe of %s: %w: %s replied %s",
		rcpt, ErrProbeInconclusive, c.relay, rcptReply)
}

// probeExchange sends MAIL and RCPT, in one write when the server offers
// PIPELINING.
func probeExchange(ctx context.Context, c *conn, mail, rcpt string) (smtpReply, smtpReply, error) {
	if !c.has("PIPELINING") {
		mailReply, err := c.cmd(ctx, mail)
		if err != nil || mailReply.Code/100 != 2 {
			return mailReply, smtpReply{}, err
		}
		rcptReply, err := c.cmd(ctx, rcpt)
		return mailReply, rcptReply, err
	}

	c.bw.WriteString(mail + "\r\n" + rcpt + "\r\n")
	if err := c.bw.Flush(); err != nil {
		return smtpReply{}, smtpReply{}, c.ioError(ctx, "sending MAIL and RCPT", err)
	}
	mailReply, err := c.reply(ctx, "MAIL")
	if err != nil {
		return mailReply, smtpReply{}, err
	}
	rcptReply, err := c.reply(ctx, "RCPT")
	return mailReply, rcptReply, err
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
