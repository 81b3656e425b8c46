package queue

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/spool"
)

// attempt runs one delivery attempt of it and records the outcome in the
// spool before the item goes back into the schedule.
func (q *Queue) attempt(it *item) {
	out := q.process(it.env)
	q.finish(it, out)
}

func (q *Queue) process(env *envelope.Envelope) outcome {
	cfg := q.config()
	msg, err := q.spool.OpenBody(spool.AreaQueue, env.QueueID)
	if errors.Is(err, spool.ErrNotFound) {
		// Removed or moved to quarantine by the administrator.
		q.log.Info("message left the queue area, dropping it from the schedule",
			"queue_id", env.QueueID)
		return outcome{removed: true}
	}
	if err != nil {
		q.log.Error("opening spooled message failed", "queue_id", env.QueueID, "reason", err.Error())
		q.reschedule(env, cfg, q.clock.Now())
		return outcome{deferred: true}
	}
	defer msg.Close()

	var out outcome
	var deferred []*envelope.Recipient
	if len(env.Pending()) > 0 {
		out.delivered, deferred, out.interrupted = q.deliverPending(env, msg)
	}
	if out.interrupted {
		// Stop cancelled the attempt. It does not count as a failure, so
		// the message keeps its saved state and schedule and is tried
		// again at the next start without a backoff.
		q.log.Info("delivery attempt interrupted by the stop, the message stays queued",
			"queue_id", env.QueueID)
		return out
	}
	// A message expires only after a failed attempt, so one that waited
	// past its lifetime (a gateway switched off for days) still gets a
	// last try.
	now := q.clock.Now()
	if q.expired(env, cfg, now) {
		q.expire(env, cfg, now)
		deferred = nil
	}

	q.bounceFailed(env, msg, cfg)

	if env.Done() && !hasState(env, envelope.StateBounce) {
		err := q.spool.Remove(spool.AreaQueue, env.QueueID)
		switch {
		case err == nil:
			q.log.Debug("removed", "queue_id", env.QueueID)
		case !errors.Is(err, spool.ErrNotFound):
			// Keep the final states on disk, so a restart does not send
			// the delivered recipients again but only retries the removal.
			q.log.Error("removing finished message failed", "queue_id", env.QueueID, "reason", err.Error())
			q.saveState(env)
		}
		out.removed = true
		return out
	}

	q.reschedule(env, cfg, now)
	for _, r := range deferred {
		q.emit(Event{
			Type: EventDeferred, QueueID: env.QueueID, Kind: env.Kind, Recipient: r.Address,
			Code: r.LastCode, Reason: r.LastError, Delay: now.Sub(env.Received),
			NextAttempt: env.NextAttempt,
		}, cfg.OnEvent)
	}
	out.deferred = len(deferred) > 0
	return out
}

// reschedule sets the next attempt by exponential backoff, never later than
// the expiry, and saves the state.
func (q *Queue) reschedule(env *envelope.Envelope, cfg Config, now time.Time) {
	next := now.Add(backoff(cfg, env.Attempts))
	expiry := env.Received.Add(lifetime(cfg, env.Kind))
	if len(env.Pending()) > 0 && next.After(expiry) {
		next = expiry
		if now.After(expiry) {
			next = now
		}
	}
	env.NextAttempt = next
	q.saveState(env)
}

// backoff returns MinBackoff doubled for each attempt after the first, at
// most MaxBackoff.
func backoff(cfg Config, attempts int) time.Duration {
	d := cfg.MinBackoff
	for i := 1; i < attempts && d < cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, cfg.MaxBackoff)
}

func lifetime(cfg Config, kind envelope.Kind) time.Duration {
	if kind == envelope.KindBounce {
		return cfg.BounceLifetime
	}
	return cfg.Lifetime
}

func (q *Queue) expired(env *envelope.Envelope, cfg Config, now time.Time) bool {
	return len(env.Pending()) > 0 && !now.Before(env.Received.Add(lifetime(cfg, env.Kind)))
}

// expire ends the pending recipients of an expired message. Inbound ones
// wait for the Bouncer; a DSN's recipients are dropped, because a DSN is
// never bounced.
func (q *Queue) expire(env *envelope.Envelope, cfg Config, now time.Time) {
	life := lifetime(cfg, env.Kind)
	for _, r := range env.Pending() {
		reason := fmt.Sprintf("not delivered within the lifetime of %s", life)
		if r.LastError != "" {
			reason += ", last error: " + r.LastError
		}
		if env.Kind == envelope.KindBounce {
			r.State = envelope.StateFailed
			reason += "; DSNs are dropped, never bounced"
		} else {
			r.State = envelope.StateBounce
		}
		r.LastError = reason
		q.emit(Event{
			Type: EventExpired, QueueID: env.QueueID, Kind: env.Kind, Recipient: r.Address,
			Code: r.LastCode, Reason: reason, Delay: now.Sub(env.Received),
		}, cfg.OnEvent)
	}
}

// deliverPending runs the Deliverer for the pending recipients and applies
// its results. It returns whether any recipient was delivered and the
// recipients that failed temporarily. When Stop cancelled the attempt and
// the Deliverer returned an error, it changes nothing in env and returns
// interrupted.
func (q *Queue) deliverPending(env *envelope.Envelope, body envelope.Body) (delivered bool, deferred []*envelope.Recipient, interrupted bool) {
	cfg := q.config()
	started := q.clock.Now()
	// NOTE: a crash after the Deliverer returned and before the state is
	// saved sends these recipients again after the restart (at least once,
	// never lost). An interrupted attempt can likewise repeat a delivery
	// whose final reply was lost to the cancellation.
	results, err := q.callDeliverer(env, body)
	if err != nil && q.ctx.Err() != nil {
		return false, nil, true
	}
	env.Attempts++
	now := q.clock.Now()

	byAddress := make(map[string][]envelope.Result)
	for _, res := range results {
		byAddress[res.Recipient] = append(byAddress[res.Recipient], res)
	}

	for _, r := range env.Pending() {
		r.Attempts++
		res, ok := envelope.Result{}, false
		if err == nil {
			if list := byAddress[r.Address]; len(list) > 0 {
				res, ok = list[0], true
				byAddress[r.Address] = list[1:]
			}
		}
		switch {
		case !ok:
			r.LastCode = 0
			r.LastError = "no result from the deliverer"
			if err != nil {
				r.LastError = err.Error()
			}
			deferred = append(deferred, r)
		case res.Delivered:
			r.State = envelope.StateDelivered
			r.DeliveredAt = now
			r.LastCode = res.Code
			r.LastError = ""
			delivered = true
			q.emit(Event{
				Type: EventDelivered, QueueID: env.QueueID, Kind: env.Kind, Recipient: r.Address,
				Code: res.Code, Relay: res.Relay, Reason: replyText(res), Delay: now.Sub(env.Received),
			}, cfg.OnEvent)
		case res.Permanent:
			r.LastCode = res.Code
			r.LastError = replyText(res)
			if env.Kind == envelope.KindBounce {
				r.State = envelope.StateFailed
				q.emit(Event{
					Type: EventDropped, QueueID: env.QueueID, Kind: env.Kind, Recipient: r.Address,
					Code: res.Code, Relay: res.Relay, Reason: r.LastError + "; DSNs are never bounced",
					Delay: now.Sub(env.Received),
				}, cfg.OnEvent)
			} else {
				r.State = envelope.StateBounce
			}
		default:
			r.LastCode = res.Code
			r.LastError = replyText(res)
			deferred = append(deferred, r)
		}
	}
	q.log.Debug("delivery attempt finished", "queue_id", env.QueueID,
		"attempt", env.Attempts, "duration", now.Sub(started).String())
	return delivered, deferred, false
}

// callDeliverer calls the Deliverer of env.Kind and turns a panic into a
// temporary failure, so one faulty delivery cannot stop the queue.
func (q *Queue) callDeliverer(env *envelope.Envelope, body envelope.Body) (results []envelope.Result, err error) {
	d := q.deliver[env.Kind]
	if d == nil {
		return nil, fmt.Errorf("no deliverer configured for kind %q", env.Kind)
	}
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("deliverer panicked", "queue_id", env.QueueID, "reason", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			results, err = nil, fmt.Errorf("deliverer panicked: %v", p)
		}
	}()
	// TODO: no per-attempt deadline: a Deliverer that ignores its own
	// timeouts holds a worker until Stop cancels q.ctx, and one that also
	// ignores ctx holds Stop until Stop's own context ends.
	return d.Deliver(q.ctx, env.Clone(), body)
}

func replyText(res envelope.Result) string {
	text := res.Text
	if res.Enhanced != "" {
		text = res.Enhanced + " " + text
	}
	if res.Code != 0 {
		text = fmt.Sprintf("%d %s", res.Code, text)
	}
	return text
}

func hasState(env *envelope.Envelope, state envelope.RecipientState) bool {
	for _, r := range env.Recipients {
		if r.State == state {
			return true
		}
	}
	return false
}

func (q *Queue) saveState(env *envelope.Envelope) {
	if err := q.spool.SaveState(spool.AreaQueue, env); err != nil {
		// The in-memory schedule goes on; only a restart would repeat
		// the recipients delivered since the last saved state.
		q.log.Error("saving delivery state failed", "queue_id", env.QueueID, "reason", err.Error())
	}
}

// bounceFailed hands recipients in state bounce to the Bouncer and marks
// them failed once it accepted them. A Bouncer error leaves them in state
// bounce, so the next attempt tries the DSN again without delivering.
func (q *Queue) bounceFailed(env *envelope.Envelope, body envelope.Body, cfg Config) {
	var failed []envelope.Recipient
	for i := range env.Recipients {
		r := &env.Recipients[i]
		if r.State != envelope.StateBounce {
			continue
		}
		if r.LastCode == 0 && r.LastError == "" {
			// Recipients that smtpd marked for the bounce policy carry no
			// reply of a next hop.
			r.LastCode, r.LastError = 550, "5.1.1 recipient address unknown"
		}
		report := *r
		report.State = envelope.StateFailed
		failed = append(failed, report)
	}
	if len(failed) == 0 {
		return
	}

	now := q.clock.Now()
	if env.Kind == envelope.KindBounce {
		// Never bounce a DSN, whatever state it got into.
		for i := range env.Recipients {
			if r := &env.Recipients[i]; r.State == envelope.StateBounce {
				r.State = envelope.StateFailed
				q.emit(Event{
					Type: EventDropped, QueueID: env.QueueID, Kind: env.Kind, Recipient: r.Address,
					Code: r.LastCode, Reason: "DSNs are never bounced", Delay: now.Sub(env.Received),
				}, cfg.OnEvent)
			}
		}
		return
	}

	if err := q.callBouncer(env, body, failed); err != nil {
		if q.ctx.Err() != nil {
			// The recipients stay in state bounce, so the next start
			// sends the DSN.
			q.log.Info("bounce interrupted by the stop, the DSN is sent after the next start",
				"queue_id", env.QueueID, "from", env.From, "reason", err.Error())
			return
		}
		q.log.Error("bounce failed, retrying later", "queue_id", env.QueueID,
			"from", env.From, "reason", err.Error())
		return
	}
	for i := range env.Recipients {
		r := &env.Recipients[i]
		if r.State != envelope.StateBounce {
			continue
		}
		r.State = envelope.StateFailed
		q.emit(Event{
			Type: EventBounced, QueueID: env.QueueID, Kind: env.Kind, Recipient: r.Address,
			Code: r.LastCode, Reason: r.LastError, Delay: now.Sub(env.Received),
		}, cfg.OnEvent)
	}
}

func (q *Queue) callBouncer(env *envelope.Envelope, body envelope.Body, failed []envelope.Recipient) (err error) {
	if q.bouncer == nil {
		return errors.New("no bouncer configured")
	}
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("bouncer panicked", "queue_id", env.QueueID, "reason", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			err = fmt.Errorf("bouncer panicked: %v", p)
		}
	}()
	return q.bouncer.Bounce(q.ctx, env.Clone(), body, failed)
}
