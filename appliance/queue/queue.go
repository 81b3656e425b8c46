// Package queue owns the delivery schedule of spooled messages. It keeps
// every message of the spool's queue area in memory with its next attempt
// and runs deliveries on a bounded set of workers. It retries with
// exponential backoff and hands permanent failures and expired recipients
// to the Bouncer. Each recipient's outcome is saved in the spool, so a
// restart does not send a delivered recipient again (except one delivered
// just before a crash, before its state was saved). It never talks SMTP
// and never builds a DSN: the Deliverers and the Bouncer do that.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/spool"
)

// Config sets the retry schedule and the number of workers. Zero values
// take the default given with each field.
type Config struct {
	// MinBackoff is the delay after the first failed attempt; each further
	// failure doubles it up to MaxBackoff. Default 5 minutes.
	MinBackoff time.Duration
	// MaxBackoff caps the retry delay. Default 4000 seconds.
	MaxBackoff time.Duration
	// Lifetime is how long an inbound message is retried after it was
	// received before its pending recipients are bounced. Default 5 days.
	Lifetime time.Duration
	// BounceLifetime is how long a DSN is retried before it is logged and
	// dropped. Default 5 days.
	BounceLifetime time.Duration
	// Workers is the maximum number of concurrent delivery attempts.
	// Default 20.
	Workers int

	// OnEvent, when set, receives every recipient outcome, for metrics. It
	// is called synchronously from the worker, so it must return quickly.
	// Only New sets it: SetConfig keeps the hook that New got.
	OnEvent func(Event)
	// Clock replaces the system clock, for tests. Only New sets it.
	Clock Clock
}

func (c Config) withDefaults() Config {
	if c.MinBackoff <= 0 {
		c.MinBackoff = 5 * time.Minute
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(4000*time.Second, c.MinBackoff)
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 5 * 24 * time.Hour
	}
	if c.BounceLifetime <= 0 {
		c.BounceLifetime = 5 * 24 * time.Hour
	}
	if c.Workers <= 0 {
		c.Workers = 20
	}
	return c
}

// Queue schedules and runs deliveries. Its methods are safe for concurrent
// use.
type Queue struct {
	spool   *spool.Spool
	deliver map[envelope.Kind]envelope.Deliverer
	bouncer envelope.Bouncer
	log     *slog.Logger
	clock   Clock

	mu       sync.Mutex
	cfg      Config
	items    map[string]*item
	schedule schedule
	active   int
	// failing marks drain groups whose last attempt failed temporarily,
	// so that the next success there retries the whole group at once.
	failing map[string]bool
	started bool
	stopped bool

	counters counters

	wake chan struct{}
	// quit stops the dispatcher, cancel aborts running deliveries.
	quit     chan struct{}
	finished chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	running  sync.WaitGroup
}

// New returns a queue that delivers messages of each kind through
// deliver[kind] and reports failures through b. It does nothing until Start.
func New(sp *spool.Spool, deliver map[envelope.Kind]envelope.Deliverer, b envelope.Bouncer,
	cfg Config, log *slog.Logger) *Queue {
	clock := cfg.Clock
	if clock == nil {
		clock = systemClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{
		spool:    sp,
		deliver:  deliver,
		bouncer:  b,
		log:      log,
		clock:    clock,
		cfg:      cfg.withDefaults(),
		items:    make(map[string]*item),
		failing:  make(map[string]bool),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		finished: make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
}

// Start loads every message of the spool's queue area, schedules each at its
// saved next attempt (at once when it has none) and starts the workers.
// Messages that were mid-delivery when the gateway stopped resume with the
// recipients that are still pending.
func (q *Queue) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	envs, err := q.spool.List(spool.AreaQueue)
	if err != nil {
		return fmt.Errorf("queue: load spool: %w", err)
	}

	q.mu.Lock()
	if q.started {
		q.mu.Unlock()
		return errors.New("queue: already started")
	}
	q.started = true
	now := q.clock.Now()
	loaded := 0
	for _, env := range envs {
		if _, ok := q.items[env.QueueID]; ok {
			continue
		}
		next := env.NextAttempt
		if next.IsZero() {
			next = now
		}
		q.add(env, next, env.Attempts > 0)
		loaded++
	}
	q.mu.Unlock()

	q.log.Info("queue started", "messages", loaded)
	go q.dispatch()
	return nil
}

// Enqueue schedules a freshly committed message for an attempt at once.
// The queue keeps its own copy of env. A queue id that is already queued is
// ignored.
func (q *Queue) Enqueue(env *envelope.Envelope) {
	q.mu.Lock()
	if _, ok := q.items[env.QueueID]; !ok {
		q.add(env.Clone(), q.clock.Now(), false)
	}
	q.mu.Unlock()
	q.signal()
}

// Kick makes every waiting message due now, for example after the
// administrator fixed the internal server.
func (q *Queue) Kick() {
	q.mu.Lock()
	q.makeDue(func(*item) bool { return true })
	q.mu.Unlock()
	q.signal()
}

// SetConfig applies a new schedule and worker count, as a settings reload
// does. OnEvent and Clock stay as New set them. Messages already waiting
// keep their next attempt until it comes.
func (q *Queue) SetConfig(cfg Config) {
	q.mu.Lock()
	cfg.OnEvent, cfg.Clock = q.cfg.OnEvent, q.cfg.Clock
	q.cfg = cfg.withDefaults()
	q.mu.Unlock()
	q.signal()
}

// Stop starts no more attempts, cancels the context of the running ones and
// waits until they return. A cancelled attempt leaves its message queued as
// it was, for the next start. Attempts whose Deliverer finished anyway are
// recorded as usual. When ctx ends first, Stop returns ctx.Err(), and the
// results of attempts that return later are still recorded in the spool
// while it is open.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return nil
	}
	q.stopped = true
	started := q.started
	q.mu.Unlock()

	close(q.quit)
	if started {
		<-q.finished
	}
	// Waiting for a delivery to a hung server would hold the stop for as
	// long as the Deliverer's own timeout, while an interrupted attempt is
	// simply tried again after the restart.
	q.cancel()

	idle := make(chan struct{})
	go func() {
		q.running.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		q.log.Info("queue stopped")
		return nil
	case <-ctx.Done():
		q.log.Warn("queue stopped with deliveries running", "reason", ctx.Err().Error())
		return ctx.Err()
	}
}

// Stats returns the current depth and the counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{Depth: len(q.items), Active: q.active}
	for _, it := range q.items {
		if it.deferred {
			s.Deferred++
		}
	}
	q.mu.Unlock()

	s.Delivered = q.counters.delivered.Load()
	s.Deferrals = q.counters.deferrals.Load()
	s.Bounced = q.counters.bounced.Load()
	s.Expired = q.counters.expired.Load()
	s.Dropped = q.counters.dropped.Load()
	return s
}

func (q *Queue) config() Config {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cfg
}

// signal wakes the dispatcher without blocking.
func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
