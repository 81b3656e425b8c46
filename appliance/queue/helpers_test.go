package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/spool"
)

// waitLimit guards every wait in these tests against a hang. It is no
// speed assertion: a healthy run needs milliseconds.
const waitLimit = 20 * time.Second

var start = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// fakeClock is a Clock whose time moves only by Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	c     chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: start, timers: make(map[*fakeTimer]bool)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
	} else {
		c.timers[t] = true
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	armed := t.clock.timers[t]
	delete(t.clock.timers, t)
	return armed
}

// AdvanceTo moves the clock to at and fires the timers due by then.
func (c *fakeClock) AdvanceTo(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.now) {
		c.now = at
	}
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			delete(c.timers, t)
		}
	}
}

// waitForTimer waits until the dispatcher armed a timer for at, so that an
// AdvanceTo(at) afterwards cannot slip in before the timer exists.
func (c *fakeClock) waitForTimer(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for timer := range c.timers {
			if timer.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the queue armed no timer for %s", at.Format(time.TimeOnly))
}

// fakeDeliverer records each call and returns the results of respond.
type fakeDeliverer struct {
	clock   *fakeClock
	respond func(call int, env *envelope.Envelope) ([]envelope.Result, error)

	mu          sync.Mutex
	calls       []deliveryCall
	active, max int
}

type deliveryCall struct {
	queueID    string
	at         time.Time
	recipients []string
}

func (d *fakeDeliverer) Deliver(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	call := deliveryCall{queueID: env.QueueID, at: d.clock.Now()}
	for _, r := range env.Pending() {
		call.recipients = append(call.recipients, r.Address)
	}
	d.mu.Lock()
	n := len(d.calls)
	d.calls = append(d.calls, call)
	d.active++
	d.max = max(d.max, d.active)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.active--
		d.mu.Unlock()
	}()

	if body.Size() != env.Size {
		return nil, fmt.Errorf("body has %d bytes, envelope says %d", body.Size(), env.Size)
	}
	return d.respond(n, env)
}

func (d *fakeDeliverer) recorded() []deliveryCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deliveryCall(nil), d.calls...)
}

// resultsFor returns res for every pending recipient of env.
func resultsFor(env *envelope.Envelope, res envelope.Result) []envelope.Result {
	var out []envelope.Result
	for _, r := range env.Pending() {
		res.Recipient = r.Address
		out = append(out, res)
	}
	return out
}

var (
	sent     = envelope.Result{Code: 250, Enhanced: "2.0.0", Text: "queued", Relay: "internal[127.0.0.1]:25", Delivered: true}
	busy     = envelope.Result{Code: 451, Enhanced: "4.3.0", Text: "try again later", Relay: "internal[127.0.0.1]:25"}
	rejected = envelope.Result{Code: 550, Enhanced: "5.1.1", Text: "no such user", Relay: "internal[127.0.0.1]:25", Permanent: true}
)

// fakeBouncer records the recipients it was given and fails while err is
// set.
type fakeBouncer struct {
	mu    sync.Mutex
	err   error
	calls [][]envelope.Recipient
}

func (b *fakeBouncer) Bounce(ctx context.Context, env *envelope.Envelope, body envelope.Body, failed []envelope.Recipient) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, failed)
	return b.err
}

func (b *fakeBouncer) setErr(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

func (b *fakeBouncer) recorded() [][]envelope.Recipient {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]envelope.Recipient(nil), b.calls...)
}

// harness is a queue on a real spool in a temporary directory.
type harness struct {
	t       *testing.T
	dir     string
	spool   *spool.Spool
	clock   *fakeClock
	deliver *fakeDeliverer
	bounce  *fakeBouncer
	events  chan Event
	queue   *Queue
	cfg     Config
}

func newHarness(t *testing.T, cfg Config, respond func(int, *envelope.Envelope) ([]envelope.Result, error)) *harness {
	h := &harness{t: t, dir: t.TempDir(), clock: newFakeClock(), bounce: &fakeBouncer{}}
	h.deliver = &fakeDeliverer{clock: h.clock, respond: respond}
	h.cfg = cfg
	h.openSpool()
	return h
}

func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (h *harness) openSpool() {
	sp, err := spool.Open(h.dir, h.logger())
	if err != nil {
		h.t.Fatal(err)
	}
	h.spool = sp
	h.t.Cleanup(func() { sp.Close() })
}

// start builds a queue on the harness spool and starts it.
func (h *harness) start() *Queue {
	h.events = make(chan Event, 1000)
	cfg := h.cfg
	cfg.Clock = h.clock
	cfg.OnEvent = func(ev Event) { h.events <- ev }
	deliverers := map[envelope.Kind]envelope.Deliverer{
		envelope.KindInbound: h.deliver,
		envelope.KindBounce:  h.deliver,
	}
	h.queue = New(h.spool, deliverers, h.bounce, cfg, h.logger())
	if err := h.queue.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	q := h.queue
	h.t.Cleanup(func() { q.Stop(context.Background()) })
	return q
}

// stop stops the queue and closes the spool, as a gateway shutdown does.
func (h *harness) stop() {
	if err := h.queue.Stop(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.spool.Close()
}

// spoolMessage commits a message with the given recipients, received at the
// fake clock's start.
func (h *harness) spoolMessage(kind envelope.Kind, rcpts ...envelope.Recipient) *envelope.Envelope {
	h.t.Helper()
	env := &envelope.Envelope{
		Kind: kind, From: "sender@example.org", Recipients: rcpts, Received: start,
	}
	if kind == envelope.KindBounce {
		env.From = ""
	}
	w, err := h.spool.Create(env)
	if err != nil {
		h.t.Fatal(err)
	}
	fmt.Fprintf(w, "Subject: test %s\r\n\r\nbody\r\n", env.QueueID)
	if err := w.Commit(context.Background(), spool.AreaQueue); err != nil {
		h.t.Fatal(err)
	}
	return env
}

func pending(addrs ...string) []envelope.Recipient {
	var out []envelope.Recipient
	for _, a := range addrs {
		out = append(out, envelope.Recipient{Address: a, State: envelope.StatePending})
	}
	return out
}

// expect reads the next event and fails unless it has type typ and
// recipient rcpt.
func (h *harness) expect(typ EventType, rcpt string) Event {
	h.t.Helper()
	select {
	case ev := <-h.events:
		if ev.Type != typ || ev.Recipient != rcpt {
			h.t.Fatalf("event %s for %s (%s), want %s for %s", ev.Type, ev.Recipient, ev.Reason, typ, rcpt)
		}
		return ev
	case <-time.After(waitLimit):
		h.t.Fatalf("no %s event for %s", typ, rcpt)
		return Event{}
	}
}

// waitDepth waits until the queue holds n messages.
func (h *harness) waitDepth(n int) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for h.queue.Stats().Depth != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("queue holds %d messages, want %d", h.queue.Stats().Depth, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitEmpty waits until the queue holds no message and the spool's queue
// area is empty.
func (h *harness) waitEmpty() {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if h.queue.Stats().Depth == 0 {
			envs, err := h.spool.List(spool.AreaQueue)
			if err != nil {
				h.t.Fatal(err)
			}
			if len(envs) == 0 {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	h.t.Fatalf("queue still holds %d messages", h.queue.Stats().Depth)
}
