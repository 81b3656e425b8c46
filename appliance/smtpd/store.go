package smtpd

import (
	"context"
	"io"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// Store creates spool entries. The gateway adapts the spool to it.
type Store interface {
	// Create starts a message for env and sets env.QueueID if it is
	// empty. The writer keeps env: the server sets Size, recipient
	// states, Prepend and Tags before Commit, which stores env as it is
	// then.
	Create(env *envelope.Envelope) (MessageWriter, error)
}

// MessageWriter receives one message as it streams in.
type MessageWriter interface {
	// Write appends message bytes: CRLF line ends, not dot-stuffed.
	io.Writer
	// ReadAt reads what was written so far (filters read the message).
	io.ReaderAt
	Size() int64
	// Commit makes the message and its envelope durable, in quarantine
	// when quarantine is true. Only a nil error lets the server reply
	// 250. A full disk must match errors.Is(err, syscall.ENOSPC).
	Commit(ctx context.Context, quarantine bool) error
	// Abort drops the message.
	Abort() error
}

// Enqueuer takes a committed message for delivery.
type Enqueuer interface {
	Enqueue(env *envelope.Envelope)
}
