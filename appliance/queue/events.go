package queue

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// EventType names what happened to a recipient.
type EventType string

const (
	// EventDelivered: the next hop accepted the recipient.
	EventDelivered EventType = "delivered"
	// EventDeferred: the attempt failed temporarily and will be retried.
	EventDeferred EventType = "deferred"
	// EventBounced: the Bouncer took the failed recipient (it queued a
	// DSN or a backscatter safeguard suppressed it).
	EventBounced EventType = "bounced"
	// EventExpired: the recipient was still pending when the message's
	// lifetime ended.
	EventExpired EventType = "expired"
	// EventDropped: the recipient was given up without a DSN, because the
	// message is a DSN itself or vanished from the spool.
	EventDropped EventType = "dropped"
)

// Event is one recipient's outcome, passed to Config.OnEvent.
type Event struct {
	Type      EventType
	QueueID   string
	Kind      envelope.Kind
	Recipient string
	// Code is the next hop's SMTP reply code, 0 when there was none.
	Code  int
	Relay string
	// Reason is the failure text; empty for EventDelivered.
	Reason string
	// Delay is the time since the message was received.
	Delay time.Duration
	// NextAttempt is set for EventDeferred.
	NextAttempt time.Time
}

// Stats is a snapshot of the queue. The counters count recipients since New.
type Stats struct {
	// Depth is the number of messages in the queue, running ones included.
	Depth int
	// Deferred is the number of messages waiting for a retry after a
	// failed attempt.
	Deferred int
	// Active is the number of delivery attempts running now.
	Active int

	Delivered uint64
	Deferrals uint64
	Bounced   uint64
	Expired   uint64
	Dropped   uint64
}

type counters struct {
	delivered, deferrals, bounced, expired, dropped atomic.Uint64
}

// emit logs ev as one line, counts it and passes it to the event hook.
func (q *Queue) emit(ev Event, hook func(Event)) {
	attrs := []any{
		"queue_id", ev.QueueID,
		"kind", string(ev.Kind),
		"rcpt", ev.Recipient,
		"delay", ev.Delay.Round(time.Millisecond).String(),
	}
	if ev.Relay != "" {
		attrs = append(attrs, "relay", ev.Relay)
	}
	if ev.Code != 0 {
		attrs = append(attrs, "code", ev.Code)
	}
	level := slog.LevelInfo
	switch ev.Type {
	case EventDelivered:
		q.counters.delivered.Add(1)
		attrs = append(attrs, "status", "sent")
		if ev.Reason != "" {
			// The next hop's reply, with its own queue id, as mail
			// administrators know it from Postfix's "status=sent (250 ...)".
			attrs = append(attrs, "reason", ev.Reason)
		}
	case EventDeferred:
		q.counters.deferrals.Add(1)
		attrs = append(attrs, "status", "deferred", "reason", ev.Reason,
			"next_attempt", ev.NextAttempt.UTC().Format(time.RFC3339))
	case EventBounced:
		q.counters.bounced.Add(1)
		attrs = append(attrs, "status", "bounced", "reason", ev.Reason)
	case EventExpired:
		q.counters.expired.Add(1)
		attrs = append(attrs, "status", "expired", "reason", ev.Reason)
		level = slog.LevelWarn
	case EventDropped:
		q.counters.dropped.Add(1)
		attrs = append(attrs, "status", "dropped", "reason", ev.Reason)
		level = slog.LevelWarn
	}
	q.log.Log(context.Background(), level, string(ev.Type), attrs...)
	if hook != nil {
		hook(ev)
	}
}
