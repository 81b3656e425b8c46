package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

func TestWithdrawStopsRetries(t *testing.T) {
	cfg := Config{MinBackoff: time.Minute, MaxBackoff: time.Minute, Lifetime: time.Hour}
	h := newHarness(t, cfg, alwaysBusy)
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test")...)
	q.Enqueue(env)
	ev := h.expect(EventDeferred, "a@example.test")

	// The event comes just before the attempt ends; until it has, the
	// message cannot be withdrawn.
	var got *envelope.Envelope
	var err error
	for range 100 {
		if got, err = q.Withdraw(env.QueueID); !errors.Is(err, ErrAttemptRunning) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	if got.QueueID != env.QueueID {
		t.Errorf("withdrew %s, want %s", got.QueueID, env.QueueID)
	}
	if d := q.Stats().Depth; d != 0 {
		t.Errorf("queue depth %d after Withdraw, want 0", d)
	}

	// The retry time passes and Kick runs, but no attempt may start.
	h.clock.AdvanceTo(ev.NextAttempt.Add(time.Minute))
	q.Kick()
	time.Sleep(100 * time.Millisecond)
	if n := len(h.deliver.recorded()); n != 1 {
		t.Errorf("%d delivery attempts after Withdraw, want still 1", n)
	}
	if _, err := q.Withdraw(env.QueueID); !errors.Is(err, ErrNotQueued) {
		t.Errorf("second Withdraw: %v, want ErrNotQueued", err)
	}

	// Enqueue puts it back.
	q.Enqueue(got)
	h.expect(EventDeferred, "a@example.test")
}
