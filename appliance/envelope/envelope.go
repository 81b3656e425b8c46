// Package envelope defines the record that travels with every accepted
// message: who sent it, to whom, from which client, and the delivery state of
// each recipient. It is shared by the SMTP server, the spool, the queue,
// the relay and the bounce sender, and holds no behaviour of its own beyond
// small helpers, so that none of those packages depends on another.
package envelope

import "time"

// Kind is the origin of a message, which decides its delivery path.
type Kind string

const (
	// KindInbound is mail accepted from the internet for a relay domain.
	KindInbound Kind = "inbound"
	// KindBounce is a delivery status notification that Lambgate generated.
	// It is delivered through the bounce role and is never bounced itself.
	KindBounce Kind = "bounce"
)

// RecipientState is the delivery state of one recipient.
type RecipientState string

const (
	// StatePending recipients still need a delivery attempt.
	StatePending RecipientState = "pending"
	// StateDelivered recipients were accepted by the next hop.
	StateDelivered RecipientState = "delivered"
	// StateFailed recipients failed permanently or expired; a DSN was queued
	// for them unless a backscatter safeguard stopped it.
	StateFailed RecipientState = "failed"
	// StateBounce recipients wait for a DSN: unknown recipients under the
	// "bounce" policy, and recipients that failed permanently or expired
	// until the bouncer has taken them. They are never relayed.
	StateBounce RecipientState = "bounce"
	// StateDiscarded recipients were dropped by policy or by a plugin.
	StateDiscarded RecipientState = "discarded"
)

// Recipient is one envelope recipient with its delivery state.
type Recipient struct {
	Address     string         `json:"address"`
	State       RecipientState `json:"state"`
	Attempts    int            `json:"attempts,omitempty"`
	LastCode    int            `json:"last_code,omitempty"`
	LastError   string         `json:"last_error,omitempty"`
	DeliveredAt time.Time      `json:"delivered_at,omitzero"`
	// Notify and ORCPT carry the client's RFC 3461 DSN parameters.
	Notify []string `json:"notify,omitempty"`
	ORCPT  string   `json:"orcpt,omitempty"`
}

// Envelope is the SMTP envelope of one spooled message plus what the
// gateway learned about the client that sent it.
type Envelope struct {
	QueueID string `json:"queue_id"`
	Kind    Kind   `json:"kind"`
	// From is the envelope sender (MAIL FROM), "" for the null sender.
	From       string      `json:"from"`
	Recipients []Recipient `json:"recipients"`

	ClientIP   string `json:"client_ip,omitempty"`
	ClientHELO string `json:"client_helo,omitempty"`
	// SPF is the RFC 7208 result of the envelope sender for ClientIP
	// ("pass", "fail", "softfail", "neutral", "none", "temperror",
	// "permerror"), or "" when no check ran.
	SPF string `json:"spf,omitempty"`
	TLS bool   `json:"tls,omitempty"`
	// SMTPUTF8, BodyType (7BIT or 8BITMIME), EnvID and DSNReturn record the
	// client's MAIL parameters so that the relay requests the same of the
	// next hop.
	SMTPUTF8  bool     `json:"smtputf8,omitempty"`
	BodyType  string   `json:"body_type,omitempty"`
	EnvID     string   `json:"envid,omitempty"`
	DSNReturn string   `json:"dsn_ret,omitempty"`
	Tags      []string `json:"tags,omitempty"`

	// Prepend holds header lines with CRLF ends that delivery sends before
	// the spooled bytes: edits that filters made after the data was spooled.
	Prepend string `json:"prepend,omitempty"`

	Received time.Time `json:"received"`
	// Size is the body size in bytes as spooled, Received header included.
	Size int64 `json:"size"`

	// NextAttempt is when the queue tries the pending recipients again.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Attempts counts delivery attempts of the message as a whole.
	Attempts int `json:"attempts,omitempty"`
}

// Pending returns the recipients that still need delivery.
func (e *Envelope) Pending() []*Recipient {
	var out []*Recipient
	for i := range e.Recipients {
		if e.Recipients[i].State == StatePending {
			out = append(out, &e.Recipients[i])
		}
	}
	return out
}

// Done reports whether no recipient needs delivery any more.
func (e *Envelope) Done() bool {
	for i := range e.Recipients {
		if e.Recipients[i].State == StatePending {
			return false
		}
	}
	return true
}

// Clone returns a deep copy, so that a caller can change state without
// racing with a reader of the original.
func (e *Envelope) Clone() *Envelope {
	c := *e
	c.Recipients = make([]Recipient, len(e.Recipients))
	for i, r := range e.Recipients {
		r.Notify = append([]string(nil), r.Notify...)
		c.Recipients[i] = r
	}
	c.Tags = append([]string(nil), e.Tags...)
	return &c
}
