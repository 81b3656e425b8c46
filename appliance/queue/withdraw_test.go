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

func TestRetryMakesOneMessageDue(t *testing.T) {
	cfg := Config{MinBackoff: time.Hour, MaxBackoff: time.Hour, Lifetime: 24 * time.Hour}
	h := newHarness(t, cfg, alwaysBusy)
	q := h.start()
	first := h.spoolMessage(envelope.KindInbound, pending("a@example.test")...)
	second := h.spoolMessage(envelope.KindInbound, pending("b@example.test")...)
	q.Enqueue(first)
	h.expect(EventDeferred, "a@example.test")
	q.Enqueue(second)
	h.expect(EventDeferred, "b@example.test")

	// Both wait an hour on the fake clock; only the retried one goes now.
	var err error
	for range 100 {
		if err = q.Retry(second.QueueID); !errors.Is(err, ErrAttemptRunning) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Retry: %v", err)
	}
	h.expect(EventDeferred, "b@example.test")
	time.Sleep(100 * time.Millisecond)
	attempts := map[string]int{}
	for _, d := range h.deliver.recorded() {
		attempts[d.queueID]++
	}
	if attempts[first.QueueID] != 1 || attempts[second.QueueID] != 2 {
		t.Errorf("attempts after retrying %s: %v, want 1 for %s and 2 for it", second.QueueID, attempts, first.QueueID)
	}
	if err := q.Retry("NoSuchMessage"); !errors.Is(err, ErrNotQueued) {
		t.Errorf("Retry of an unknown id: %v, want ErrNotQueued", err)
	}
}
