//go:build wasip1

package lambgate

// SetReply records the SMTP reply for a Reject or Tempfail verdict. The
// code must be 400-599, and the enhanced code ("5.7.1", or "" for none)
// must have the same class. The host replaces CR, LF and other control
// characters in text with spaces and cuts it to 400 bytes.
func SetReply(code int, enhanced, text string) error {
	return statusError(int64(hostSetReply(int32(code), enhanced, text)))
}

// RejectWith sets a 5xx reply and returns Reject.
func RejectWith(code int, enhanced, text string) Action {
	SetReply(code, enhanced, text)
	return Reject
}

// TempfailWith sets a 4xx reply and returns Tempfail.
func TempfailWith(code int, enhanced, text string) Action {
	SetReply(code, enhanced, text)
	return Tempfail
}

// AddHeader requests a header field to be added to the message once its
// verdict is final and the message is kept. Allowed in the headers, body and done
// phases.
func AddHeader(name, value string) error {
	return statusError(int64(hostAddHeader(name, value)))
}

// AddTag tags the message for logs and the quarantine view: 1-64 of
// A-Z, a-z, 0-9 and ". _ : - =".
func AddTag(tag string) error { return statusError(int64(hostAddTag(tag))) }

// Log levels, numbered as log/slog's.
const (
	LevelDebug = -4
	LevelInfo  = 0
	LevelWarn  = 4
	LevelError = 8
)

// Log writes a line to the appliance log with the plugin's name. The host
// rate-limits each plugin's lines.
func Log(level int, msg string) { hostLog(int32(level), msg) }
