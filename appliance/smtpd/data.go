package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/filter"
)

// copyBuffers are reused between messages, so that streaming a message
// costs no allocation per chunk.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Data receives the message content of DATA or BDAT and replies only after
// the message is committed, or deliberately dropped.
//
// For BDAT, go-smtp runs Data in its own goroutine and may call Reset (on
// RSET) while Data still runs, so Data reads the session's fields only
// before it starts reading r, and works on its own env after that.
func (s *session) Data(r io.Reader) error {
	cfg := s.cfg()
	s.conn.beginData(cfg.DataTimeout)
	defer s.conn.endData()
	s.st.mu.Lock()
	s.st.inData = true
	s.st.mu.Unlock()
	defer func() {
		s.st.mu.Lock()
		s.st.inData = false
		s.st.mu.Unlock()
	}()

	env := s.env
	if env == nil {
		s.srv.log.Error("data without transaction", "remote", s.st.remote.String(), "reason", errNoTransaction)
		return errSpool
	}
	env.Received = time.Now()
	verdict, final := s.finalVerdict()

	if (final && verdict.Action == filter.Discard) || allDiscarded(env) {
		// Nothing is spooled, but the content is still read and checked
		// so that the reply means the same as for a spooled message.
		if err := s.copyContent(io.Discard, r); err != nil {
			return s.dataError(err, env)
		}
		s.logReceived(env, "discarded", 0)
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK"}
	}

	w, err := s.srv.deps.Store.Create(env)
	if err != nil {
		return s.storeError("create", err, env)
	}
	if err := s.receive(w, r, env); err != nil {
		_ = w.Abort()
		return err
	}
	env.Size = w.Size()

	quarantine := false
	if !final {
		ctx, cancel := s.filterContext()
		var edits filter.Edits
		verdict, edits = s.srv.deps.Filters.Data(ctx, s.txn(env), w)
		cancel()
		applyEdits(env, edits)
	}
	switch verdict.Action {
	case filter.Reject, filter.Tempfail:
		_ = w.Abort()
		return s.filterReject("data", verdict)
	case filter.Discard:
		_ = w.Abort()
		s.logReceived(env, "discarded", env.Size, pluginAttr(verdict.Filter)...)
		return queuedReply(env.QueueID)
	case filter.Bounce:
		for i := range env.Recipients {
			if env.Recipients[i].State == envelope.StatePending {
				env.Recipients[i].State = envelope.StateBounce
			}
		}
	case filter.Quarantine:
		quarantine = true
	}

	// Shutdown cancels s.srv.ctx at once, but a message whose data has
	// arrived gets its commit (one sync) and its 250. A commit left
	// running by Close ends with the timeout or when the spool closes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.srv.ctx), cfg.CommandTimeout)
	err = w.Commit(ctx, quarantine)
	cancel()
	if err != nil {
		_ = w.Abort()
		return s.storeError("commit", err, env)
	}

	status := "queued"
	if quarantine {
		status = "quarantined"
	}
	s.logReceived(env, status, env.Size, pluginAttr(verdict.Filter)...)
	s.st.mu.Lock()
	s.st.messages++
	s.st.mu.Unlock()
	if !quarantine {
		s.srv.deps.Enqueuer.Enqueue(env)
	}
	return queuedReply(env.QueueID)
}

// receive writes the Received header and the checked content to w.
func (s *session) receive(w MessageWriter, r io.Reader, env *envelope.Envelope) error {
	var rcpts []string
	for _, rc := range env.Recipients {
		rcpts = append(rcpts, rc.Address)
	}
	hdr := receivedHeader(traceInfo{
		Hostname:   s.cfg().Hostname,
		HELO:       s.helo,
		ClientIP:   s.st.remote.Addr(),
		TLS:        s.tls,
		SMTPUTF8:   env.SMTPUTF8,
		QueueID:    env.QueueID,
		Recipients: rcpts,
		Time:       env.Received,
	})
	if _, err := io.WriteString(w, hdr); err != nil {
		return s.storeError("write", err, env)
	}
	if err := s.copyContent(w, r); err != nil {
		return s.dataError(err, env)
	}
	return nil
}

// copyContent streams r through the content checks into w. A BDAT
// transfer that the client reset ends with errTransferReset.
func (s *session) copyContent(w io.Writer, r io.Reader) error {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)

	cfg := s.cfg()
	cw := &contentWriter{w: w, maxHops: cfg.MaxHops, maxSize: cfg.MaxMessageBytes,
		maxLine: cfg.MaxLineLength, inHeader: true, lineStart: true}
	if _, err := io.CopyBuffer(cw, r, *bufp); err != nil {
		return err
	}
	if s.st.takeTransferReset() {
		return errTransferReset
	}
	return cw.finish()
}

// errWrite marks an error of the spool writer, as opposed to one of the
// client's content.
type errWrite struct{ err error }

func (e errWrite) Error() string { return "writing the spool failed: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// dataError turns an error of copyContent into the reply.
func (s *session) dataError(err error, env *envelope.Envelope) error {
	queueID := env.QueueID
	var we errWrite
	switch {
	case errors.As(err, &we):
		return s.storeError("write", we.err, env)
	case errors.Is(err, errBareLineInContent):
		return s.reject("data", errBareLineInContent, "bare CR or LF in content", "queue_id", queueID)
	case errors.Is(err, errContentLineTooLong):
		return s.reject("data", errContentLineTooLong, "line too long in content", "queue_id", queueID)
	case errors.Is(err, errMailLoop):
		return s.reject("data", errMailLoop, "too many Received headers", "queue_id", queueID)
	case errors.Is(err, errTooLarge), errors.Is(err, smtp.ErrDataTooLarge):
		s.st.logReject("data", "message too large", "queue_id", queueID)
		return errTooLarge
	case errors.Is(err, errDataTimeout):
		return errDataTimeout
	case errors.Is(err, errTransferReset):
		return errTransferReset
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	// The client went away or reset the transfer; the reply is not read.
	s.st.logReject("data", "transfer aborted: "+err.Error(), "queue_id", queueID)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Transfer aborted"}
}

// storeError logs a spool failure and returns its reply: 452 4.3.1 for a
// full disk, 451 4.3.0 otherwise.
func (s *session) storeError(step string, err error, env *envelope.Envelope) error {
	queueID, from := "", ""
	if env != nil {
		queueID, from = env.QueueID, env.From
	}
	s.srv.log.Error("spool failed", "queue_id", queueID, "from", from,
		"remote", s.st.remote.String(), "step", step, "reason", err)
	if errors.Is(err, syscall.ENOSPC) {
		return errNoSpace
	}
	return errSpool
}

func queuedReply(queueID string) error {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "OK: queued as " + queueID}
}

// allDiscarded reports whether no recipient of env is kept.
func allDiscarded(env *envelope.Envelope) bool {
	for _, r := range env.Recipients {
		if r.State != envelope.StateDiscarded {
			return false
		}
	}
	return true
}

// applyEdits adds the filters' header fields to env.Prepend and their tags
// to env.Tags. Names must be RFC 5322 field names and values may not contain
// control characters, so that an edit cannot start another header field.
func applyEdits(env *envelope.Envelope, e filter.Edits) {
	var b strings.Builder
	b.WriteString(env.Prepend)
	for _, h := range e.AddHeaders {
		if !validFieldName(h.Name) || !isPrintableText(h.Value) {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, strings.TrimSpace(h.Value))
	}
	env.Prepend = b.String()
	for _, t := range e.Tags {
		if t != "" && len(t) <= 100 && isPrintableASCII(t) {
			env.Tags = append(env.Tags, t)
		}
	}
}

// validFieldName checks RFC 5322 ftext: printable ASCII except colon.
func validFieldName(name string) bool {
	if name == "" || len(name) > 76 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

// isPrintableText accepts text without control characters and of at most
// 900 bytes, so that a field stays within the RFC 5322 line limit of 998.
func isPrintableText(v string) bool {
	if len(v) > 900 {
		return false
	}
	for _, r := range v {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

// logReceived writes the one line per message that administrators grep.
// pluginAttr names the plugin whose verdict decided a message, and is
// empty when no plugin did, so that the log line carries no empty value.
func pluginAttr(name string) []any {
	if name == "" {
		return nil
	}
	return []any{"plugin", name}
}

func (s *session) logReceived(env *envelope.Envelope, status string, size int64, attrs ...any) {
	rcpts := make([]string, len(env.Recipients))
	for i, r := range env.Recipients {
		rcpts[i] = r.Address
	}
	args := []any{"queue_id", env.QueueID, "from", env.From, "rcpt", strings.Join(rcpts, ","),
		"rcpt_count", len(env.Recipients),
		"size", size, "remote", s.st.remote.String(), "helo", printable(s.helo), "tls", s.tls,
		"spf", env.SPF, "status", status}
	s.srv.log.Info("received", append(args, attrs...)...)
}
