package envelope

import (
	"context"
	"io"
)

// Body is read-only random access to the spooled bytes of a message. The
// bytes have CRLF line ends and are not dot-stuffed; delivery sends
// Envelope.Prepend first, then Body.
type Body interface {
	io.ReaderAt
	Size() int64
}

// Result is the outcome of one delivery attempt for one recipient.
type Result struct {
	Recipient string
	// Code is the SMTP reply code of the next hop, 250 when delivered.
	Code int
	// Enhanced is the RFC 3463 status code, such as "5.1.1".
	Enhanced string
	Text     string
	// Relay names the next hop ("mx.example.org[192.0.2.5]:25").
	Relay     string
	Delivered bool
	// Permanent marks a failure that retrying cannot fix (a 5xx reply).
	Permanent bool
}

// Deliverer sends a spooled message to the next hop.
type Deliverer interface {
	// Deliver sends body to the pending recipients of env and returns one
	// Result per pending recipient. An error means the whole attempt
	// failed temporarily (connection refused, timeout) and no recipient
	// was delivered.
	Deliver(ctx context.Context, env *Envelope, body Body) ([]Result, error)
}

// Bouncer reports failed recipients of an inbound message to its sender.
type Bouncer interface {
	// Bounce decides, through its backscatter safeguards, whether a DSN
	// is sent for failed, and if so spools it. A nil error means the
	// decision is final: the DSN is durably queued or was suppressed.
	Bounce(ctx context.Context, env *Envelope, body Body, failed []Recipient) error
}
