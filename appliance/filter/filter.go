// Package filter is the contract between the SMTP session and whatever
// judges mail at each phase of the transaction: the Wasm plugin host, or
// nothing. The session calls a Chain at every phase and acts on the
// Verdict; the chain never writes to the client or the spool itself.
package filter

import (
	"context"
	"io"
	"net/netip"
)

// Action is a filter's decision.
type Action int

const (
	// Continue passes the transaction on to the next filter and phase.
	Continue Action = iota
	// Accept ends filtering for this message with acceptance.
	Accept
	// Reject refuses with a 5xx reply.
	Reject
	// Tempfail refuses with a 4xx reply.
	Tempfail
	// Quarantine accepts the message into quarantine instead of relaying.
	Quarantine
	// Discard accepts and drops the message silently.
	Discard
	// Bounce accepts the message and sends its sender a DSN instead of
	// relaying it.
	Bounce
)

var actionNames = [...]string{"continue", "accept", "reject", "tempfail", "quarantine", "discard", "bounce"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "invalid"
	}
	return actionNames[a]
}

// Final reports whether the action ends filtering for the message.
func (a Action) Final() bool { return a != Continue }

// Verdict is a filter's decision with the reply it wants sent.
type Verdict struct {
	Action Action
	// Code, Enhanced and Text form the SMTP reply for Reject and Tempfail;
	// zero values mean the gateway's default reply for the action.
	Code     int
	Enhanced [3]int
	Text     string
	// Filter names the plugin that decided, for logs and metrics. It is
	// never shown to the client.
	Filter string
}

// Header is one header field to add to the message.
type Header struct {
	Name, Value string
}

// Edits are changes a filter asked for. They are applied only once the
// message's verdict is final and the message is accepted.
type Edits struct {
	AddHeaders []Header
	Tags       []string
}

// Conn describes the client, known from the connect phase on.
type Conn struct {
	ClientIP   netip.Addr
	ClientPort uint16
	HELO       string
	TLS        bool
	// SPF is the sender's SPF result when it was checked, else "".
	SPF string
}

// Txn is the current mail transaction.
type Txn struct {
	Conn       *Conn
	QueueID    string
	From       string
	Recipients []string
}

// Message gives filters random access to the received message (header and
// body as spooled, CRLF line ends) without copying it.
type Message interface {
	io.ReaderAt
	Size() int64
}

// Chain runs the configured filters in order at each phase and returns the
// first final verdict, or Continue.
type Chain interface {
	Connect(ctx context.Context, c *Conn) Verdict
	Helo(ctx context.Context, c *Conn) Verdict
	Mail(ctx context.Context, t *Txn) Verdict
	Rcpt(ctx context.Context, t *Txn, rcpt string) Verdict
	Data(ctx context.Context, t *Txn, m Message) (Verdict, Edits)
}

// None is the chain with no filters: every phase continues.
type None struct{}

func (None) Connect(context.Context, *Conn) Verdict     { return Verdict{} }
func (None) Helo(context.Context, *Conn) Verdict        { return Verdict{} }
func (None) Mail(context.Context, *Txn) Verdict         { return Verdict{} }
func (None) Rcpt(context.Context, *Txn, string) Verdict { return Verdict{} }
func (None) Data(context.Context, *Txn, Message) (Verdict, Edits) {
	return Verdict{}, Edits{}
}
