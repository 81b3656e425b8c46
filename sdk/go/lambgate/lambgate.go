//go:build wasip1

// Package lambgate is the Go SDK for Lambgate filter plugins. It hides ABI
// v1 (sdk/ABI.md) behind typed accessors and verdicts: a plugin registers
// a handler per phase in init and returns an Action from each.
//
// Build a plugin as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o NAME.wasm .
//
// The package must never keep transaction data between calls: any pooled
// instance may serve the next phase, so state lives in the host.
package lambgate

import (
	"errors"
	"strconv"
	"strings"
	"unsafe"
)

// Action is a phase's verdict; the values are fixed by the ABI.
type Action int32

// Actions of ABI v1.
const (
	Continue Action = iota
	Accept
	Reject
	Tempfail
	Quarantine
	Discard
	Bounce
)

type phase int

const (
	phaseConnect phase = iota
	phaseHelo
	phaseMail
	phaseRcpt
	phaseHeaders
	phaseBody
	phaseDone
	numPhases
)

// OnConnect registers the handler for the connect phase. The On functions
// are meant for init; a phase without a handler continues.
func OnConnect(f func() Action) { handlers[phaseConnect] = f }

// OnHelo registers the handler for the helo phase.
func OnHelo(f func() Action) { handlers[phaseHelo] = f }

// OnMail registers the handler for the mail phase (MAIL FROM).
func OnMail(f func() Action) { handlers[phaseMail] = f }

// OnRcpt registers the handler called for each recipient (RCPT TO).
func OnRcpt(f func() Action) { handlers[phaseRcpt] = f }

// OnHeaders registers the handler for the header block.
func OnHeaders(f func() Action) { handlers[phaseHeaders] = f }

// OnBody registers the handler for the body.
func OnBody(f func() Action) { handlers[phaseBody] = f }

// OnDone registers the handler called last for each message.
func OnDone(f func() Action) { handlers[phaseDone] = f }

// Errors for the ABI's status codes.
var (
	ErrNotFound     = errors.New("lambgate: not found")
	ErrBadArgument  = errors.New("lambgate: invalid argument")
	ErrWrongPhase   = errors.New("lambgate: not available in this phase")
	ErrLimit        = errors.New("lambgate: limit exceeded")
	ErrTempFailure  = errors.New("lambgate: temporary failure")
	ErrNotSupported = errors.New("lambgate: not supported by this host")
)

func statusError(s int64) error {
	switch s {
	case -1:
		return ErrNotFound
	case -2:
		return ErrBadArgument
	case -3:
		return ErrWrongPhase
	case -4:
		return ErrLimit
	case -5:
		return ErrTempFailure
	case -6:
		return ErrNotSupported
	}
	if s < 0 {
		return errors.New("lambgate: status " + strconv.FormatInt(s, 10))
	}
	return nil
}

// scratch is the buffer host calls fill; it grows to the largest value
// read and is reused, so most reads allocate only their result string.
var scratch = make([]byte, 512)

// fetch runs a buffer-filling host call, growing scratch and retrying when
// the value did not fit.
func fetch(f func(buf unsafe.Pointer, capacity uint32) int32) ([]byte, error) {
	for {
		n := f(unsafe.Pointer(unsafe.SliceData(scratch)), uint32(len(scratch)))
		if n < 0 {
			return nil, statusError(int64(n))
		}
		if int(n) <= len(scratch) {
			return scratch[:n], nil
		}
		scratch = make([]byte, n)
	}
}

func fetchString(f func(buf unsafe.Pointer, capacity uint32) int32) (string, error) {
	b, err := fetch(f)
	return string(b), err
}

func property(id int32) (string, error) {
	return fetchString(func(b unsafe.Pointer, c uint32) int32 { return hostGetProperty(id, b, c) })
}

func must(s string, _ error) string { return s }

// ClientAddr returns the client's IP address as text, from the connect
// phase on.
func ClientAddr() string { return must(property(1)) }

// ClientPort returns the client's TCP port.
func ClientPort() int {
	n, _ := strconv.Atoi(must(property(2)))
	return n
}

// HELO returns the name the client gave in HELO or EHLO, from the helo
// phase on.
func HELO() (string, error) { return property(3) }

// MailFrom returns the envelope sender ("" for the null sender), from the
// mail phase on.
func MailFrom() (string, error) { return property(4) }

// Rcpt returns the recipient of the current rcpt phase.
func Rcpt() (string, error) { return property(5) }

// QueueID returns the message's queue id, when the gateway assigned one.
func QueueID() string { return must(property(6)) }

// TLS reports whether the session uses STARTTLS.
func TLS() bool { return must(property(7)) == "1" }

// SPF returns the gateway's SPF result for the envelope sender ("pass",
// "fail", ...), or "" when it was not checked.
func SPF() string { return must(property(8)) }

// Phase returns the current phase's name ("connect" ... "done"), or "init"
// during the module's initialisation.
func Phase() string { return must(property(9)) }

// PluginName returns the name in the plugin's manifest.
func PluginName() string { return must(property(10)) }

// Recipients returns the recipients accepted so far, from the mail phase
// on.
func Recipients() []string {
	n := hostRcptCount()
	if n <= 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := range n {
		s, err := fetchString(func(b unsafe.Pointer, c uint32) int32 { return hostGetRcpt(i, b, c) })
		if err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Setting returns the manifest setting name as text; a list setting has
// one element per line.
func Setting(name string) (string, bool) {
	s, err := fetchString(func(b unsafe.Pointer, c uint32) int32 { return hostGetSetting(name, b, c) })
	return s, err == nil
}

// SettingList returns a list setting's elements, without empty ones.
func SettingList(name string) []string {
	s, ok := Setting(name)
	if !ok || s == "" {
		return nil
	}
	var out []string
	for _, e := range strings.Split(s, "\n") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// SettingInt returns an integer setting, or def when it is missing or
// not an integer.
func SettingInt(name string, def int) int {
	s, ok := Setting(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}
