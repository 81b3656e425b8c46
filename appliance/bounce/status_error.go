package bounce

import (
	"errors"
	"fmt"
	"net/textproto"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// statusError is a delivery failure with its RFC 3463 status.
type statusError struct {
	// Code is the remote SMTP reply code, 0 for a local failure (DNS,
	// connect, timeout).
	Code      int
	Status    string
	Text      string
	Permanent bool
}

func (e *statusError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%d %s %s", e.Code, e.Status, e.Text)
	}
	return e.Status + " " + e.Text
}

func (e *statusError) result(rcpt, relay string) envelope.Result {
	return envelope.Result{
		Recipient: rcpt,
		Code:      e.Code,
		Enhanced:  e.Status,
		Text:      e.Text,
		Relay:     relay,
		Permanent: e.Permanent,
	}
}

func permanentError(status, format string, args ...any) *statusError {
	return &statusError{Status: status, Text: fmt.Sprintf(format, args...), Permanent: true}
}

func temporaryError(status, format string, args ...any) *statusError {
	return &statusError{Status: status, Text: fmt.Sprintf(format, args...)}
}

// asStatusError returns err as a *statusError, a temporary 4.4.0 for any
// other error.
func asStatusError(err error) *statusError {
	var se *statusError
	if errors.As(err, &se) {
		return se
	}
	return temporaryError("4.4.0", "%v", err)
}

// replyError turns a reply error of the remote server to command into a
// statusError carrying the server's code, enhanced code and text.
func replyError(relay, command string, err error) *statusError {
	var protoErr *textproto.Error
	if !errors.As(err, &protoErr) {
		return temporaryError("4.4.2", "%s: %s failed: %v", relay, command, err)
	}
	text := sanitizeText(protoErr.Msg, maxDiagnosticBytes)
	status, rest := splitEnhancedCode(text)
	if status == "" {
		status = defaultStatus(protoErr.Code)
	}
	return &statusError{
		Code:      protoErr.Code,
		Status:    status,
		Text:      rest,
		Permanent: protoErr.Code >= 500,
	}
}

// sessionError describes a failure that ends the session with one MX
// before any recipient's outcome is known: a reply to the greeting, EHLO
// or MAIL, or a lost connection.
func sessionError(relay, step string, err error) error {
	var protoErr *textproto.Error
	if errors.As(err, &protoErr) {
		return replyError(relay, step, err)
	}
	return temporaryError("4.4.2", "%s: connection lost at %s: %v", relay, step, err)
}

func isPermanent(err error) bool {
	var protoErr *textproto.Error
	return errors.As(err, &protoErr) && protoErr.Code >= 500 && protoErr.Code < 600
}

func isTemporary(err error) bool {
	var protoErr *textproto.Error
	return errors.As(err, &protoErr) && protoErr.Code >= 400 && protoErr.Code < 500
}

// failAll returns the same failure for every recipient.
func failAll(rcpts []string, relay string, e *statusError) []envelope.Result {
	results := make([]envelope.Result, len(rcpts))
	for i, rcpt := range rcpts {
		results[i] = e.result(rcpt, relay)
	}
	return results
}
