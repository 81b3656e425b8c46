package smtpd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/appliance/policy"
)

// backend creates a session at every HELO or EHLO, including the one
// after STARTTLS.
type backend struct{ srv *Server }

// session is one go-smtp session: the client's state between HELO and
// STARTTLS or the end of the connection.
type session struct {
	srv  *Server
	conn *strictConn
	st   *connState
	helo string
	tls  bool

	// The current transaction; env is nil outside one.
	env     *envelope.Envelope
	seen    map[string]bool
	verdict filter.Verdict // a final verdict of the MAIL or RCPT phase
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	conn := connOf(c)
	if conn == nil {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "Internal error, closing connection"}
	}
	// NOTE: go-smtp's Conn.TLSConnectionState reports no TLS, because
	// STARTTLS runs in strictConn below go-smtp.
	isTLS := conn.tls
	s := &session{srv: b.srv, conn: conn, st: conn.state, helo: c.Hostname(), tls: isTLS}

	if strings.ContainsAny(s.helo, "\r\n") {
		return nil, s.reject("helo", errBareLineInCommand, "CR or LF in HELO")
	}

	st := s.st
	st.mu.Lock()
	st.fconn.HELO = s.helo
	st.fconn.TLS = isTLS
	fc := st.fconn
	final := st.verdict.Action.Final()
	st.mu.Unlock()
	if final {
		return s, nil
	}

	ctx, cancel := s.filterContext()
	defer cancel()
	v := s.srv.deps.Filters.Helo(ctx, &fc)
	if err := s.filterReject("helo", v); err != nil {
		return nil, err
	}
	if v.Action.Final() {
		st.mu.Lock()
		st.verdict = v
		st.mu.Unlock()
	}
	return s, nil
}

func (s *session) cfg() *Config { return s.st.cfg }

func (s *session) filterContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.srv.ctx, s.cfg().CommandTimeout)
}

// reject logs a rejected command and returns its reply. strictConn counts
// the reply against MaxErrors when it writes it.
func (s *session) reject(phase string, e *smtp.SMTPError, reason string, attrs ...any) error {
	attrs = append(attrs, "status", fmt.Sprintf("%d %d.%d.%d", e.Code,
		e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2]))
	s.st.logReject(phase, reason, attrs...)
	return e
}

// filterReject returns the reply for a Reject or Tempfail verdict, or nil.
func (s *session) filterReject(phase string, v filter.Verdict) error {
	if v.Action != filter.Reject && v.Action != filter.Tempfail {
		return nil
	}
	return s.reject(phase, verdictError(v), "filter "+v.Action.String(), "plugin", v.Filter)
}

// finalVerdict returns the connection's or the transaction's final verdict,
// if a filter gave one before DATA.
func (s *session) finalVerdict() (filter.Verdict, bool) {
	if s.verdict.Action.Final() {
		return s.verdict, true
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.verdict, s.st.verdict.Action.Final()
}

func (s *session) txn(env *envelope.Envelope) *filter.Txn {
	s.st.mu.Lock()
	fc := s.st.fconn
	s.st.mu.Unlock()
	t := &filter.Txn{Conn: &fc, From: env.From, QueueID: env.QueueID}
	for _, r := range env.Recipients {
		t.Recipients = append(t.Recipients, r.Address)
	}
	return t
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.env != nil {
		// go-smtp v0.26.0 would start a new transaction in place of the
		// open one.
		return s.reject("mail", errNestedMail, "MAIL inside a transaction", "from", printable(from))
	}
	s.Reset()
	if strings.ContainsAny(from, "\r\n") {
		return s.reject("mail", errBareLineInCommand, "CR or LF in MAIL FROM")
	}

	if from != "" {
		local, domain, err := policy.ParseAddress(from, opts.UTF8)
		if err != nil {
			return s.reject("mail", errBadSender, err.Error(), "from", printable(from))
		}
		from = local + "@" + domain
	}

	env := &envelope.Envelope{
		Kind:       envelope.KindInbound,
		From:       from,
		ClientIP:   s.st.remote.Addr().String(),
		ClientHELO: s.helo,
		TLS:        s.tls,
		SMTPUTF8:   opts.UTF8,
		BodyType:   string(opts.Body),
		EnvID:      opts.EnvelopeID,
		DSNReturn:  string(opts.Return),
	}
	if env.BodyType == "" {
		env.BodyType = string(smtp.Body7Bit)
	}

	if s.cfg().SPF {
		env.SPF = s.srv.deps.SPF.Check(s.srv.ctx, s.st.remote.Addr(), s.helo, from)
		s.st.mu.Lock()
		s.st.fconn.SPF = env.SPF
		s.st.mu.Unlock()
	}

	s.env = env
	s.seen = make(map[string]bool)
	if _, final := s.finalVerdict(); final {
		return nil
	}

	ctx, cancel := s.filterContext()
	defer cancel()
	v := s.srv.deps.Filters.Mail(ctx, s.txn(s.env))
	if err := s.filterReject("mail", v); err != nil {
		s.env = nil
		return err
	}
	if v.Action.Final() {
		s.verdict = v
	}
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.env == nil {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
			Message: "Need MAIL before RCPT"}
	}
	if strings.ContainsAny(to, "\r\n") {
		return s.reject("rcpt", errBareLineInCommand, "CR or LF in RCPT TO")
	}
	if len(s.env.Recipients) >= s.cfg().MaxRecipients {
		s.st.logReject("rcpt", "too many recipients", "rcpt", printable(to))
		return errTooManyRecipients
	}
	// NOTE: go-smtp v0.26.0 passes the address without a source route
	// ("<@a,@b:user@domain>" arrives as "user@domain") and with quoted
	// local parts unquoted, so policy.ParseAddress judges the mailbox
	// that a relay would deliver to, and rejects an unquoted "@" or "%".
	if strings.EqualFold(to, "postmaster") && s.cfg().Postmaster != "" {
		to = s.cfg().Postmaster
	}

	ctx, cancel := s.filterContext()
	defer cancel()
	d, err := s.srv.deps.Policy.CheckRecipient(ctx, to, s.env.SMTPUTF8)
	if err != nil {
		s.srv.log.Warn("recipient check failed", "rcpt", printable(to), "reason", err)
	}
	switch d.Action {
	case policy.Reject, policy.Tempfail:
		return s.reject("rcpt", policyError(d.Code, d.Enhanced, d.Text), d.Reason,
			"from", s.env.From, "rcpt", printable(to))
	}

	state := envelope.StatePending
	switch d.Action {
	case policy.Bounce:
		state = envelope.StateBounce
	case policy.Discard:
		state = envelope.StateDiscarded
	}

	if _, final := s.finalVerdict(); !final {
		v := s.srv.deps.Filters.Rcpt(ctx, s.txn(s.env), d.Address)
		if err := s.filterReject("rcpt", v); err != nil {
			return err
		}
		if v.Action.Final() {
			s.verdict = v
		}
	}

	key := strings.ToLower(d.Address)
	if s.seen[key] {
		return nil
	}
	s.seen[key] = true
	rcpt := envelope.Recipient{Address: d.Address, State: state, ORCPT: orcpt(opts)}
	for _, n := range opts.Notify {
		rcpt.Notify = append(rcpt.Notify, string(n))
	}
	s.env.Recipients = append(s.env.Recipients, rcpt)
	return nil
}

// orcpt returns the RFC 3461 ORCPT parameter as "type;address", or "" when
// absent or not printable.
func orcpt(opts *smtp.RcptOptions) string {
	if opts.OriginalRecipient == "" {
		return ""
	}
	v := string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return v
}

func (s *session) Reset() {
	s.endAbortedTransfer()
	s.env = nil
	s.seen = nil
	s.verdict = filter.Verdict{}
}

// Logout runs at STARTTLS and when the connection closes.
func (s *session) Logout() error {
	s.endAbortedTransfer()
	return nil
}

// endAbortedTransfer closes the connection after the current command's
// reply if a BDAT transfer is still running. go-smtp v0.26.0's transfer
// goroutine reads Conn.dataResult after Data returns, unsynchronized, so
// a next transfer on this connection could receive the aborted one's
// result. strictConn finishes the transfer before RSET, HELO, EHLO and
// STARTTLS, so this is left for the resets it cannot foresee, such as
// go-smtp's own reset after a chunk over the size limit.
func (s *session) endAbortedTransfer() {
	s.st.mu.Lock()
	inData := s.st.inData
	s.st.mu.Unlock()
	if inData {
		s.st.logReject("data", "BDAT transfer aborted, closing connection")
		s.conn.closeAfterNextWrite()
	}
}

// printable quotes a client value for logs if it has unusual bytes.
func printable(v string) string {
	if isPrintableASCII(v) {
		return v
	}
	return fmt.Sprintf("%q", v)
}

var errNoTransaction = errors.New("smtpd: DATA without a transaction")
