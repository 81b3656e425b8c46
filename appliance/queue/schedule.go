package queue

import (
	"container/heap"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// item is one queued message. While an attempt runs, its worker owns env
// and the item is out of the schedule (index -1).
type item struct {
	env      *envelope.Envelope
	next     time.Time
	index    int
	deferred bool
}

// schedule is a min-heap of waiting items by next attempt.
type schedule []*item

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].next.Before(s[j].next) }
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index = i
	s[j].index = j
}
func (s *schedule) Push(x any) {
	it := x.(*item)
	it.index = len(*s)
	*s = append(*s, it)
}
func (s *schedule) Pop() any {
	old := *s
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	it.index = -1
	return it
}

// add puts a message into the queue. The caller holds q.mu.
func (q *Queue) add(env *envelope.Envelope, next time.Time, deferred bool) {
	if env.Received.IsZero() {
		// The lifetime counts from Received; without it the message
		// would expire after its first failure.
		q.log.Warn("message has no received time, counting its lifetime from now",
			"queue_id", env.QueueID)
		env.Received = q.clock.Now()
	}
	it := &item{env: env, next: next, deferred: deferred}
	q.items[env.QueueID] = it
	heap.Push(&q.schedule, it)
}

// makeDue moves every waiting item that match selects to now. The caller
// holds q.mu.
func (q *Queue) makeDue(match func(*item) bool) int {
	now := q.clock.Now()
	n := 0
	for _, it := range q.schedule {
		if match(it) && it.next.After(now) {
			it.next = now
			n++
		}
	}
	if n > 0 {
		heap.Init(&q.schedule)
	}
	return n
}

// drainGroup names the messages that share a next hop, so a success can
// retry the deferred rest of the group. All inbound mail goes to the one
// internal server; a DSN goes to the MX of its recipient's domain.
func drainGroup(env *envelope.Envelope) string {
	if env.Kind != envelope.KindBounce || len(env.Recipients) == 0 {
		return string(env.Kind)
	}
	addr := env.Recipients[0].Address
	return string(env.Kind) + "@" + strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// dispatch starts attempts for due items while workers are free, and
// sleeps until the next item is due or something changes.
func (q *Queue) dispatch() {
	defer close(q.finished)
	for {
		q.mu.Lock()
		now := q.clock.Now()
		for q.active < q.cfg.Workers && q.schedule.Len() > 0 && !q.schedule[0].next.After(now) {
			it := heap.Pop(&q.schedule).(*item)
			q.active++
			q.running.Add(1)
			go q.attempt(it)
		}
		wait := time.Duration(-1)
		if q.active < q.cfg.Workers && q.schedule.Len() > 0 {
			wait = q.schedule[0].next.Sub(now)
		}
		q.mu.Unlock()

		var timer Timer
		var fired <-chan time.Time
		if wait >= 0 {
			timer = q.clock.NewTimer(wait)
			fired = timer.C()
		}
		select {
		case <-q.wake:
		case <-fired:
		case <-q.quit:
			if timer != nil {
				timer.Stop()
			}
			return
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// outcome is the result of one attempt for its message as a whole.
type outcome struct {
	// removed: no recipient is left and the message is gone from the spool.
	removed bool
	// delivered: at least one recipient was delivered in this attempt.
	delivered bool
	// deferred: at least one recipient failed temporarily.
	deferred bool
	// interrupted: Stop cancelled the attempt before it had a result, and
	// the message keeps its schedule and state.
	interrupted bool
}

// finish puts an item back into the schedule after its attempt, or drops
// it, and retries its drain group when this success ended a failure.
func (q *Queue) finish(it *item, out outcome) {
	q.mu.Lock()
	q.active--
	group := drainGroup(it.env)
	switch {
	case out.removed:
		delete(q.items, it.env.QueueID)
	case out.interrupted:
		heap.Push(&q.schedule, it)
	default:
		it.next = it.env.NextAttempt
		it.deferred = out.deferred
		heap.Push(&q.schedule, it)
	}

	kicked := 0
	if out.delivered && q.failing[group] {
		delete(q.failing, group)
		kicked = q.makeDue(func(other *item) bool {
			return other != it && other.deferred && drainGroup(other.env) == group
		})
	} else if out.deferred && !out.delivered {
		q.failing[group] = true
	}
	q.mu.Unlock()

	if kicked > 0 {
		q.log.Info("delivery succeeded after failures, retrying deferred messages now",
			"queue_id", it.env.QueueID, "relay_group", group, "messages", kicked)
	}
	q.running.Done()
	q.signal()
}
