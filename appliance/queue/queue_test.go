package queue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/spool"
)

func alwaysBusy(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
	return resultsFor(env, busy), nil
}

func alwaysSent(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
	return resultsFor(env, sent), nil
}

func TestEnqueueDeliversAndRemoves(t *testing.T) {
	h := newHarness(t, Config{}, alwaysSent)
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test", "b@example.test")...)
	q.Enqueue(env)

	ev := h.expect(EventDelivered, "a@example.test")
	if ev.Code != 250 || ev.Relay != sent.Relay || ev.QueueID != env.QueueID {
		t.Errorf("delivered event = %+v", ev)
	}
	h.expect(EventDelivered, "b@example.test")
	h.waitEmpty()
	if s := q.Stats(); s.Delivered != 2 || s.Depth != 0 {
		t.Errorf("stats = %+v, want 2 delivered and depth 0", s)
	}
}

func TestRetryScheduleDoublesBackoff(t *testing.T) {
	cfg := Config{MinBackoff: time.Minute, MaxBackoff: 4 * time.Minute, Lifetime: time.Hour}
	h := newHarness(t, cfg, alwaysBusy)
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test")...)
	q.Enqueue(env)

	wantNext := []time.Duration{1, 3, 7, 11, 15} // minutes after start: +1, +2, +4, +4, +4
	for i, minutes := range wantNext {
		ev := h.expect(EventDeferred, "a@example.test")
		want := start.Add(minutes * time.Minute)
		if !ev.NextAttempt.Equal(want) {
			t.Fatalf("deferral %d: next attempt %s, want %s", i+1,
				ev.NextAttempt.Format(time.TimeOnly), want.Format(time.TimeOnly))
		}
		if !strings.Contains(ev.Reason, "451 4.3.0") {
			t.Errorf("deferral reason %q lacks the reply", ev.Reason)
		}
		h.clock.waitForTimer(t, want)
		h.clock.AdvanceTo(want)
	}
	h.expect(EventDeferred, "a@example.test")

	calls := h.deliver.recorded()
	var got []time.Duration
	for _, c := range calls {
		got = append(got, c.at.Sub(start))
	}
	want := []time.Duration{0, time.Minute, 3 * time.Minute, 7 * time.Minute, 11 * time.Minute, 15 * time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("attempts at %v, want %v", got, want)
	}

	// The saved state carries the schedule, so a restart keeps it.
	m, err := h.spool.Open(spool.AreaQueue, env.QueueID)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Envelope.Attempts != 6 || m.Envelope.Recipients[0].Attempts != 6 {
		t.Errorf("saved attempts = %d (recipient %d), want 6", m.Envelope.Attempts, m.Envelope.Recipients[0].Attempts)
	}
	if want := start.Add(19 * time.Minute); !m.Envelope.NextAttempt.Equal(want) {
		t.Errorf("saved next attempt %s, want %s", m.Envelope.NextAttempt, want)
	}
	if s := q.Stats(); s.Deferred != 1 || s.Deferrals != 6 {
		t.Errorf("stats = %+v, want 1 deferred message and 6 deferrals", s)
	}
}

func TestLifetimeExpiryBouncesPending(t *testing.T) {
	cfg := Config{MinBackoff: 4 * time.Minute, MaxBackoff: 4 * time.Minute, Lifetime: 10 * time.Minute}
	h := newHarness(t, cfg, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		var out []envelope.Result
		for _, r := range env.Pending() {
			res := busy
			if r.Address == "a@example.test" {
				res = sent
			}
			res.Recipient = r.Address
			out = append(out, res)
		}
		return out, nil
	})
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test", "b@example.test")...)
	q.Enqueue(env)

	h.expect(EventDelivered, "a@example.test")
	for _, minutes := range []time.Duration{4, 8, 10} {
		ev := h.expect(EventDeferred, "b@example.test")
		if want := start.Add(minutes * time.Minute); !ev.NextAttempt.Equal(want) {
			t.Fatalf("next attempt %s, want %s (clamped to the expiry)", ev.NextAttempt, want)
		}
		h.clock.waitForTimer(t, ev.NextAttempt)
		h.clock.AdvanceTo(ev.NextAttempt)
	}
	ev := h.expect(EventExpired, "b@example.test")
	if !strings.Contains(ev.Reason, "451") {
		t.Errorf("expiry reason %q lacks the last error", ev.Reason)
	}
	h.expect(EventBounced, "b@example.test")
	h.waitEmpty()

	bounces := h.bounce.recorded()
	if len(bounces) != 1 || len(bounces[0]) != 1 || bounces[0][0].Address != "b@example.test" {
		t.Fatalf("bouncer calls = %+v, want one with b@example.test", bounces)
	}
	if bounces[0][0].State != envelope.StateFailed {
		t.Errorf("bounced recipient state %q, want failed", bounces[0][0].State)
	}
	if s := q.Stats(); s.Expired != 1 || s.Bounced != 1 || s.Delivered != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestBounceKindExpiryDropsSilently(t *testing.T) {
	cfg := Config{MinBackoff: 5 * time.Minute, MaxBackoff: 5 * time.Minute, BounceLifetime: 5 * time.Minute}
	h := newHarness(t, cfg, alwaysBusy)
	q := h.start()
	env := h.spoolMessage(envelope.KindBounce, pending("sender@example.org")...)
	q.Enqueue(env)

	ev := h.expect(EventDeferred, "sender@example.org")
	h.clock.waitForTimer(t, ev.NextAttempt)
	h.clock.AdvanceTo(ev.NextAttempt)
	ev = h.expect(EventExpired, "sender@example.org")
	if !strings.Contains(ev.Reason, "never bounced") {
		t.Errorf("expiry reason %q does not say the DSN is dropped", ev.Reason)
	}
	h.waitEmpty()
	if calls := h.bounce.recorded(); len(calls) != 0 {
		t.Errorf("an expired DSN was bounced: %+v", calls)
	}
}

func TestPermanentFailureBouncesAtOnce(t *testing.T) {
	h := newHarness(t, Config{}, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		a, b := sent, rejected
		a.Recipient, b.Recipient = "a@example.test", "b@example.test"
		return []envelope.Result{a, b}, nil
	})
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test", "b@example.test")...)
	q.Enqueue(env)

	h.expect(EventDelivered, "a@example.test")
	ev := h.expect(EventBounced, "b@example.test")
	if !strings.Contains(ev.Reason, "550 5.1.1") {
		t.Errorf("bounce reason %q lacks the reply", ev.Reason)
	}
	h.waitEmpty()
	bounces := h.bounce.recorded()
	if len(bounces) != 1 || bounces[0][0].LastCode != 550 {
		t.Errorf("bouncer calls = %+v, want b@example.test with code 550", bounces)
	}
}

func TestPermanentFailureOfBounceIsDropped(t *testing.T) {
	h := newHarness(t, Config{}, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		return resultsFor(env, rejected), nil
	})
	q := h.start()
	env := h.spoolMessage(envelope.KindBounce, pending("sender@example.org")...)
	q.Enqueue(env)

	h.expect(EventDropped, "sender@example.org")
	h.waitEmpty()
	if calls := h.bounce.recorded(); len(calls) != 0 {
		t.Errorf("a rejected DSN was bounced: %+v", calls)
	}
}

func TestBounceStateSkipsDelivery(t *testing.T) {
	h := newHarness(t, Config{}, alwaysSent)
	q := h.start()
	rcpts := []envelope.Recipient{
		{Address: "known@example.test", State: envelope.StatePending},
		{Address: "unknown@example.test", State: envelope.StateBounce},
		{Address: "dropped@example.test", State: envelope.StateDiscarded},
	}
	env := h.spoolMessage(envelope.KindInbound, rcpts...)
	q.Enqueue(env)

	h.expect(EventDelivered, "known@example.test")
	h.expect(EventBounced, "unknown@example.test")
	h.waitEmpty()

	calls := h.deliver.recorded()
	if len(calls) != 1 || !slices.Equal(calls[0].recipients, []string{"known@example.test"}) {
		t.Errorf("deliverer calls = %+v, want only known@example.test", calls)
	}
	bounces := h.bounce.recorded()
	if len(bounces) != 1 || len(bounces[0]) != 1 || bounces[0][0].Address != "unknown@example.test" {
		t.Errorf("bouncer calls = %+v, want only unknown@example.test", bounces)
	}
}

func TestBouncerErrorKeepsMessage(t *testing.T) {
	cfg := Config{MinBackoff: time.Minute, MaxBackoff: time.Minute}
	h := newHarness(t, cfg, alwaysSent)
	h.bounce.setErr(errors.New("spool full"))
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, envelope.Recipient{Address: "unknown@example.test", State: envelope.StateBounce})
	q.Enqueue(env)

	h.clock.waitForTimer(t, start.Add(time.Minute))
	m, err := h.spool.Open(spool.AreaQueue, env.QueueID)
	if err != nil {
		t.Fatalf("message gone after a failed bounce: %v", err)
	}
	state := m.Envelope.Recipients[0].State
	m.Close()
	if state != envelope.StateBounce {
		t.Errorf("saved state %q, want bounce so the DSN is retried", state)
	}

	h.bounce.setErr(nil)
	h.clock.AdvanceTo(start.Add(time.Minute))
	h.expect(EventBounced, "unknown@example.test")
	h.waitEmpty()
	if n := len(h.bounce.recorded()); n != 2 {
		t.Errorf("bouncer called %d times, want 2", n)
	}
	if calls := h.deliver.recorded(); len(calls) != 0 {
		t.Errorf("a recipient in state bounce was delivered: %+v", calls)
	}
}

func TestRestartResumesPartialDelivery(t *testing.T) {
	var mu sync.Mutex
	up := false
	h := newHarness(t, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour},
		func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			var out []envelope.Result
			for _, r := range env.Pending() {
				res := busy
				if up || r.Address == "a@example.test" {
					res = sent
				}
				res.Recipient = r.Address
				out = append(out, res)
			}
			return out, nil
		})
	q := h.start()
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test", "b@example.test")...)
	q.Enqueue(env)
	h.expect(EventDelivered, "a@example.test")
	h.expect(EventDeferred, "b@example.test")
	h.clock.waitForTimer(t, start.Add(time.Hour))
	h.stop()

	// A new process: new spool handle, new queue, same directory.
	mu.Lock()
	up = true
	mu.Unlock()
	h.openSpool()
	h.start()
	h.clock.waitForTimer(t, start.Add(time.Hour))
	h.clock.AdvanceTo(start.Add(time.Hour))
	h.expect(EventDelivered, "b@example.test")
	h.waitEmpty()

	calls := h.deliver.recorded()
	if len(calls) != 2 {
		t.Fatalf("deliverer called %d times, want 2", len(calls))
	}
	if !slices.Equal(calls[1].recipients, []string{"b@example.test"}) {
		t.Errorf("after the restart the deliverer got %v, want only b@example.test", calls[1].recipients)
	}
}

// switchable returns a temporary connection failure while down and
// delivers every recipient once up.
type switchable struct {
	mu sync.Mutex
	up bool
}

func (s *switchable) set(up bool) {
	s.mu.Lock()
	s.up = up
	s.mu.Unlock()
}

func (s *switchable) respond(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return nil, errors.New("dial tcp 127.0.0.1:25: connection refused")
	}
	return resultsFor(env, sent), nil
}

// expectSet reads len(rcpts) events of type typ in any order.
func (h *harness) expectSet(typ EventType, rcpts ...string) {
	h.t.Helper()
	var got []string
	for range rcpts {
		select {
		case ev := <-h.events:
			if ev.Type != typ {
				h.t.Fatalf("event %s for %s (%s), want %s", ev.Type, ev.Recipient, ev.Reason, typ)
			}
			got = append(got, ev.Recipient)
		case <-time.After(waitLimit):
			h.t.Fatalf("got %s events for %v, want %v", typ, got, rcpts)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(rcpts))
	if !slices.Equal(got, want) {
		h.t.Fatalf("%s events for %v, want %v", typ, got, want)
	}
}

func TestKickAfterRecoveryDeliversNow(t *testing.T) {
	server := &switchable{}
	h := newHarness(t, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour}, server.respond)
	h.start()
	for _, rcpt := range []string{"a@example.test", "b@example.test"} {
		h.queue.Enqueue(h.spoolMessage(envelope.KindInbound, pending(rcpt)...))
	}
	h.expectSet(EventDeferred, "a@example.test", "b@example.test")
	h.stop()

	server.set(true)
	h.openSpool()
	q := h.start()
	if s := q.Stats(); s.Depth != 2 || s.Deferred != 2 {
		t.Fatalf("after the restart stats = %+v, want 2 deferred messages", s)
	}
	q.Kick()
	h.expectSet(EventDelivered, "a@example.test", "b@example.test")
	h.waitEmpty()
	for _, c := range h.deliver.recorded() {
		if !c.at.Equal(start) {
			t.Errorf("attempt at %s: Kick should not need the clock to move", c.at)
		}
	}
}

func TestSuccessKicksDeferredOfSameGroup(t *testing.T) {
	server := &switchable{}
	h := newHarness(t, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour}, server.respond)
	q := h.start()
	for _, rcpt := range []string{"a@example.test", "b@example.test"} {
		q.Enqueue(h.spoolMessage(envelope.KindInbound, pending(rcpt)...))
	}
	dsn := h.spoolMessage(envelope.KindBounce, pending("sender@example.org")...)
	q.Enqueue(dsn)
	h.expectSet(EventDeferred, "a@example.test", "b@example.test", "sender@example.org")

	// The internal server is back: the next fresh message succeeds and
	// must pull the deferred inbound mail with it, without a clock tick.
	server.set(true)
	q.Enqueue(h.spoolMessage(envelope.KindInbound, pending("c@example.test")...))
	h.expectSet(EventDelivered, "a@example.test", "b@example.test", "c@example.test")
	h.waitDepth(1)

	q.mu.Lock()
	it := q.items[dsn.QueueID]
	q.mu.Unlock()
	if it == nil {
		t.Fatal("the DSN left the queue: a success of inbound mail retried it")
	}
	if want := start.Add(time.Hour); !it.next.Equal(want) {
		t.Errorf("DSN next attempt %s, want %s: it goes to another next hop", it.next, want)
	}
}

func TestWorkerLimitRespected(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{Workers: 3}, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		<-release
		return resultsFor(env, sent), nil
	})
	q := h.start()
	var rcpts []string
	for i := range 10 {
		rcpt := string(rune('a'+i)) + "@example.test"
		rcpts = append(rcpts, rcpt)
		q.Enqueue(h.spoolMessage(envelope.KindInbound, pending(rcpt)...))
	}

	deadline := time.Now().Add(waitLimit)
	for q.Stats().Active < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Give a queue that ignores the limit the chance to start more.
	time.Sleep(20 * time.Millisecond)
	if s := q.Stats(); s.Active != 3 {
		t.Errorf("%d attempts running, want 3", s.Active)
	}
	close(release)
	h.expectSet(EventDelivered, rcpts...)
	h.deliver.mu.Lock()
	maxActive := h.deliver.max
	h.deliver.mu.Unlock()
	if maxActive != 3 {
		t.Errorf("at most %d deliveries ran at once, want 3", maxActive)
	}
}

func TestDelivererPanicIsTemporaryFailure(t *testing.T) {
	h := newHarness(t, Config{MinBackoff: time.Minute, MaxBackoff: time.Minute},
		func(call int, env *envelope.Envelope) ([]envelope.Result, error) {
			if call == 0 {
				panic("nil map in relay")
			}
			return resultsFor(env, sent), nil
		})
	q := h.start()
	q.Enqueue(h.spoolMessage(envelope.KindInbound, pending("a@example.test")...))

	ev := h.expect(EventDeferred, "a@example.test")
	if !strings.Contains(ev.Reason, "panicked") {
		t.Errorf("deferral reason %q does not mention the panic", ev.Reason)
	}
	h.clock.waitForTimer(t, ev.NextAttempt)
	h.clock.AdvanceTo(ev.NextAttempt)
	h.expect(EventDelivered, "a@example.test")
	h.waitEmpty()
}

func TestStopWaitsForRunningDelivery(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{}, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		<-release
		return resultsFor(env, sent), nil
	})
	q := h.start()
	q.Enqueue(h.spoolMessage(envelope.KindInbound, pending("a@example.test")...))
	for q.Stats().Active == 0 {
		time.Sleep(time.Millisecond)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- q.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v while a delivery was running", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Errorf("Stop = %v", err)
	}
	h.expect(EventDelivered, "a@example.test")
	if s := q.Stats(); s.Depth != 0 || s.Active != 0 {
		t.Errorf("stats %+v after Stop returned, want no message and no attempt", s)
	}
}

func TestStopCancelsRunningDelivery(t *testing.T) {
	cancelled := make(chan struct{})
	h := newHarness(t, Config{}, nil)
	deliverer := delivererFunc(func(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	events := make(chan Event, 10)
	q := New(h.spool, map[envelope.Kind]envelope.Deliverer{envelope.KindInbound: deliverer},
		h.bounce, Config{Clock: h.clock, OnEvent: func(ev Event) { events <- ev }}, h.logger())
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := h.spoolMessage(envelope.KindInbound, pending("a@example.test")...)
	q.Enqueue(env)
	for q.Stats().Active == 0 {
		time.Sleep(time.Millisecond)
	}

	// Stop's own context never ends: Stop must cancel the attempt itself
	// rather than wait for the deliverer.
	stopped := make(chan error, 1)
	go func() { stopped <- q.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Stop = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Stop waited for a delivery instead of cancelling it")
	}
	select {
	case <-cancelled:
	default:
		t.Error("Stop returned before the running delivery's context was cancelled")
	}
	if s := q.Stats(); s.Active != 0 || s.Deferrals != 0 {
		t.Errorf("stats %+v after Stop, want no running attempt and no deferral", s)
	}
	select {
	case ev := <-events:
		t.Errorf("event %s for %s (%s) from an interrupted attempt, want none", ev.Type, ev.Recipient, ev.Reason)
	default:
	}

	// The interrupted attempt leaves the message as it was spooled, so
	// that the next start tries it at once.
	h.spool.Close()
	h.openSpool()
	msg, err := h.spool.Open(spool.AreaQueue, env.QueueID)
	if err != nil {
		t.Fatalf("message lost after a cancelled delivery: %v", err)
	}
	defer msg.Close()
	if got := msg.Envelope.Attempts; got != 0 {
		t.Errorf("saved attempts = %d after an interrupted attempt, want 0", got)
	}
	if got := msg.Envelope.NextAttempt; !got.IsZero() {
		t.Errorf("saved next attempt = %s after an interrupted attempt, want none", got)
	}
}

func TestStopReturnsAtDeadline(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{}, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		// This deliverer ignores its context, as a faulty one could.
		<-release
		return resultsFor(env, sent), nil
	})
	q := h.start()
	q.Enqueue(h.spoolMessage(envelope.KindInbound, pending("a@example.test")...))
	for q.Stats().Active == 0 {
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := q.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want context.DeadlineExceeded", err)
	}
	// A result that arrives after Stop returned is still recorded.
	close(release)
	h.expect(EventDelivered, "a@example.test")
}

type delivererFunc func(context.Context, *envelope.Envelope, envelope.Body) ([]envelope.Result, error)

func (f delivererFunc) Deliver(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	return f(ctx, env, body)
}

func TestSetConfigRaisesWorkerLimit(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Config{Workers: 1}, func(_ int, env *envelope.Envelope) ([]envelope.Result, error) {
		<-release
		return resultsFor(env, sent), nil
	})
	q := h.start()
	for _, rcpt := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		q.Enqueue(h.spoolMessage(envelope.KindInbound, pending(rcpt)...))
	}
	waitActive(t, q, 1)

	// The new config has no OnEvent: SetConfig must keep the hook, or the
	// events below never arrive.
	q.SetConfig(Config{Workers: 3})
	waitActive(t, q, 3)
	close(release)
	h.expectSet(EventDelivered, "a@example.test", "b@example.test", "c@example.test")
}

func waitActive(t *testing.T, q *Queue, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for q.Stats().Active != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts running, want %d", q.Stats().Active, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBounceStateInDSNIsDropped(t *testing.T) {
	h := newHarness(t, Config{}, alwaysSent)
	q := h.start()
	env := h.spoolMessage(envelope.KindBounce, envelope.Recipient{Address: "sender@example.org", State: envelope.StateBounce})
	q.Enqueue(env)

	ev := h.expect(EventDropped, "sender@example.org")
	if !strings.Contains(ev.Reason, "never bounced") {
		t.Errorf("drop reason %q", ev.Reason)
	}
	h.waitEmpty()
	if calls := h.bounce.recorded(); len(calls) != 0 {
		t.Errorf("a DSN was bounced: %+v", calls)
	}
	if calls := h.deliver.recorded(); len(calls) != 0 {
		t.Errorf("a recipient in state bounce was delivered: %+v", calls)
	}
}
