package relay

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// pool keeps connections to the internal server for reuse. Every open
// connection holds one slot, idle ones included, so at most cap(slots)
// connections exist at once.
type pool struct {
	cfg  Config
	log  *slog.Logger
	dial func(ctx context.Context, cfg Config) (*conn, error)

	slots chan struct{}
	// idle holds connections ready for reuse. Each of them holds a slot,
	// so idle never has more than cap(slots) entries and a send never blocks.
	idle chan *conn

	done      chan struct{}
	closeOnce sync.Once

	// mu orders put against close, so that no connection enters idle
	// after close has emptied it.
	mu     sync.Mutex
	closed bool
}

func newPool(cfg Config, log *slog.Logger) *pool {
	p := &pool{
		cfg:   cfg,
		log:   log,
		dial:  dial,
		slots: make(chan struct{}, cfg.MaxConnections),
		idle:  make(chan *conn, cfg.MaxConnections),
		done:  make(chan struct{}),
	}
	go p.reapLoop()
	return p
}

// get returns a connection ready for a new transaction: an idle one that
// passes RSET, or a new one once a slot is free. It waits until ctx ends.
//
// With deferReset, a reused connection whose server pipelines skips the
// RSET round trip: its next transaction sends RSET first in the same write
// and must treat a failed RSET as a stale connection.
func (p *pool) get(ctx context.Context, deferReset bool) (*conn, error) {
	for {
		// Prefer an idle connection to dialing a new one.
		select {
		case c := <-p.idle:
			if p.reusable(ctx, c, deferReset) {
				return c, nil
			}
			continue
		default:
		}

		select {
		case c := <-p.idle:
			if p.reusable(ctx, c, deferReset) {
				return c, nil
			}
		case p.slots <- struct{}{}:
			c, err := p.dial(ctx, p.cfg)
			if err != nil {
				<-p.slots
				p.log.Warn("relay connection failed",
					"relay", p.cfg.Server, "reason", err.Error())
				return nil, err
			}
			return c, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// reusable checks an idle connection with RSET, or has the next
// transaction send RSET first when the server pipelines, and discards it, freeing its
// slot, when it has been idle too long or the server no longer replies.
func (p *pool) reusable(ctx context.Context, c *conn, deferReset bool) bool {
	if time.Since(c.idleSince) >= p.cfg.IdleTimeout {
		p.discard(c, true)
		return false
	}
	if deferReset && c.has("PIPELINING") {
		// The RSET goes out with the next transaction's commands, which
		// saves a round trip per message.
		c.resetFirst = true
		return true
	}

	stop := c.watch(ctx)
	reply, err := c.cmd(ctx, "RSET")
	stop()
	if err != nil || reply.Code != 250 {
		// A server closes idle connections on its own timeout, so this is
		// routine: debug level, and the caller dials a fresh connection.
		reason := reply.String()
		if err != nil {
			reason = err.Error()
		}
		p.log.Debug("relay idle connection dropped", "relay", c.relay, "reason", reason)
		p.discard(c, false)
		return false
	}
	return true
}

// put returns c after a transaction. A connection that saw an error, or
// has carried MaxMessages transactions, is closed instead.
func (p *pool) put(c *conn, healthy bool) {
	if !healthy {
		p.discard(c, false)
		return
	}
	if c.messages >= p.cfg.MaxMessages {
		p.discard(c, true)
		return
	}

	c.idleSince = time.Now()
	p.mu.Lock()
	if !p.closed {
		p.idle <- c
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		p.discard(c, true)
	}
}

// discard closes c, politely with QUIT when the session is still in order,
// and frees its slot.
func (p *pool) discard(c *conn, polite bool) {
	if polite {
		c.quit()
	} else {
		c.close()
	}
	<-p.slots
}

// reapLoop closes idle connections past IdleTimeout, so that the pool does
// not hold server connections open between bursts of mail.
func (p *pool) reapLoop() {
	tick := time.NewTicker(max(p.cfg.IdleTimeout/2, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			p.reap(false)
		}
	}
}

// reap closes the idle connections that have expired, or all of them.
func (p *pool) reap(all bool) {
	for range len(p.idle) {
		select {
		case c := <-p.idle:
			if all || time.Since(c.idleSince) >= p.cfg.IdleTimeout {
				p.discard(c, true)
			} else {
				p.idle <- c
			}
		default:
			return
		}
	}
}

// close stops the reaper and closes the idle connections; connections in
// use are closed when they are put back.
func (p *pool) close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.done)
		p.reap(true)
	})
}
