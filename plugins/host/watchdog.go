package host

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// watchdog enforces the time limit of every callback of a host with one
// timer. A context deadline per call would cost a timer, a cancelable
// context and its registration with the session's context on every call
// (about 0.4 µs of CPU in BenchmarkTrivialCall), although almost no call
// ever reaches its limit.
//
// It stops an overrunning call by closing its module from the timer's
// goroutine. wazero v1.12.0 documents that closing a module stops a running
// call when the runtime was configured with WithCloseOnContextDone: the
// compiled code then checks at every loop header whether the module was
// closed, and the call returns a sys.ExitError. Calls that recurse without
// looping are not stopped before wazero's stack limit (see callSlots).
type watchdog struct {
	mu     sync.Mutex
	timer  *time.Timer
	armed  time.Time // when timer fires; zero while it is stopped
	active []*watch  // calls being timed, in no order
	closed bool

	// stops counts the calls stopped at their time limit.
	stops atomic.Uint64
}

// watch is the timing record of one instance's current call. It lives in
// the instance, so that starting and stopping a call allocates nothing.
type watch struct {
	mod      api.Module
	deadline time.Time
	index    int  // position in watchdog.active
	expired  bool // set when the watchdog closed mod
}

func newWatchdog() *watchdog {
	w := &watchdog{}
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

// start times a call into mod that must end within limit, and returns its
// deadline.
func (w *watchdog) start(c *watch, mod api.Module, limit time.Duration) time.Time {
	now := time.Now()
	c.mod, c.deadline, c.expired = mod, now.Add(limit), false

	w.mu.Lock()
	c.index = len(w.active)
	w.active = append(w.active, c)
	// The timer is moved only when this call is due first. A timer that
	// fires for a call that already ended only rearms.
	if !w.closed && (w.armed.IsZero() || c.deadline.Before(w.armed)) {
		w.armed = c.deadline
		w.timer.Reset(limit)
	}
	w.mu.Unlock()
	return c.deadline
}

// stop ends the timing of a call and reports whether the watchdog closed
// its module because the call ran past its deadline. A closed module must
// be discarded, even if the call returned a result.
func (w *watchdog) stop(c *watch) (expired bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !c.expired {
		w.removeLocked(c)
	}
	c.mod = nil
	return c.expired
}

func (w *watchdog) removeLocked(c *watch) {
	last := len(w.active) - 1
	moved := w.active[last]
	w.active[c.index] = moved
	moved.index = c.index
	w.active[last] = nil
	w.active = w.active[:last]
}

// fire closes the module of every call past its deadline and rearms the
// timer for the next deadline. Closing happens under the lock, so that a
// call whose stop is waiting for the lock reads expired as true.
func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.armed = time.Time{}
	var next time.Time
	for i := len(w.active) - 1; i >= 0; i-- {
		c := w.active[i]
		if now.Before(c.deadline) {
			if next.IsZero() || c.deadline.Before(next) {
				next = c.deadline
			}
			continue
		}
		w.removeLocked(c)
		c.expired = true
		w.stops.Add(1)
		// NOTE: CloseWithExitCode also closes the module's WASI file table
		// while the guest runs. A Go guest inside a WASI call at this moment
		// may find its stdout or stderr closed, in a call that fails anyway.
		c.mod.CloseWithExitCode(context.Background(), sys.ExitCodeDeadlineExceeded)
	}
	if !next.IsZero() && !w.closed {
		w.armed = next
		w.timer.Reset(next.Sub(now))
	}
}

// close stops the timer. The host closes it after the last call ended.
func (w *watchdog) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.timer.Stop()
}
