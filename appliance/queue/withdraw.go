package queue

import (
	"container/heap"
	"errors"

	"github.com/lambgate/lambgate/appliance/envelope"
)

var (
	// ErrNotQueued is returned for a queue id the queue does not hold.
	ErrNotQueued = errors.New("message is not in the delivery queue")
	// ErrAttemptRunning is returned while a delivery attempt of the
	// message runs, because its outcome is not known yet.
	ErrAttemptRunning = errors.New("a delivery attempt of the message is running: try again when it ends")
)

// Withdraw takes a waiting message out of the schedule and returns its
// envelope, so that the caller can delete or bounce it from the spool
// without a delivery attempt starting in between. The message stays in the
// spool; Enqueue puts it back. A message whose attempt is running cannot be
// withdrawn.
func (q *Queue) Withdraw(queueID string) (*envelope.Envelope, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[queueID]
	if !ok {
		return nil, ErrNotQueued
	}
	if it.index < 0 {
		// Items are out of the heap exactly while an attempt runs.
		return nil, ErrAttemptRunning
	}
	heap.Remove(&q.schedule, it.index)
	delete(q.items, queueID)
	return it.env.Clone(), nil
}

// Retry makes one waiting message due now, for the administrator's "retry
// now" on a single message. A message whose attempt is running is left to
// that attempt.
func (q *Queue) Retry(queueID string) error {
	q.mu.Lock()
	it, ok := q.items[queueID]
	switch {
	case !ok:
		q.mu.Unlock()
		return ErrNotQueued
	case it.index < 0:
		q.mu.Unlock()
		return ErrAttemptRunning
	}
	if now := q.clock.Now(); it.next.After(now) {
		it.next = now
		heap.Fix(&q.schedule, it.index)
	}
	q.mu.Unlock()
	q.signal()
	return nil
}
