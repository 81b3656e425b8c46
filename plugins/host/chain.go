package host

import (
	"context"
	"fmt"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// Default replies when a plugin gives none, or one whose class does not
// match its verdict.
var failClosedVerdict = filter.Verdict{
	Action:   filter.Tempfail,
	Code:     451,
	Enhanced: [3]int{4, 3, 0},
	Text:     "Temporary local problem, please try again later",
}

// Trace describes one plugin callback, for the plugin test runner and for
// tests. Reply is what the plugin set, even when its action ignores it.
type Trace struct {
	Plugin   string
	Phase    Phase
	Action   filter.Action
	Verdict  filter.Verdict
	Reply    filter.Verdict
	Headers  []filter.Header
	Tags     []string
	Duration time.Duration
	Failure  *Failure
}

// Connect runs the connect phase.
func (h *Host) Connect(ctx context.Context, c *filter.Conn) filter.Verdict {
	return h.runEarly(ctx, PhaseConnect, call{conn: c})
}

// Helo runs the helo phase.
func (h *Host) Helo(ctx context.Context, c *filter.Conn) filter.Verdict {
	return h.runEarly(ctx, PhaseHelo, call{conn: c})
}

// Mail runs the mail phase.
func (h *Host) Mail(ctx context.Context, t *filter.Txn) filter.Verdict {
	return h.runEarly(ctx, PhaseMail, call{conn: t.Conn, txn: t})
}

// Rcpt runs the rcpt phase for one recipient.
func (h *Host) Rcpt(ctx context.Context, t *filter.Txn, rcpt string) filter.Verdict {
	return h.runEarly(ctx, PhaseRcpt, call{conn: t.Conn, txn: t, rcpt: rcpt})
}

func (h *Host) runEarly(ctx context.Context, phase Phase, base call) filter.Verdict {
	s := h.acquireSet()
	defer s.release()
	for _, p := range s.byPhase[phase] {
		c := base
		c.plugin, c.phase = p, phase
		if v := h.runOne(ctx, &c); v.Action.Final() {
			return v
		}
	}
	return filter.Verdict{}
}

// Data runs the headers, body and done phases over the spooled message.
// Header edits and tags of every plugin that ran without failing are
// returned only when the final verdict keeps the message.
func (h *Host) Data(ctx context.Context, t *filter.Txn, m filter.Message) (filter.Verdict, filter.Edits) {
	s := h.acquireSet()
	defer s.release()

	msg := newMessage(m)
	var edits filter.Edits
	for _, phase := range [...]Phase{PhaseHeaders, PhaseBody, PhaseDone} {
		for _, p := range s.byPhase[phase] {
			c := call{plugin: p, phase: phase, conn: t.Conn, txn: t, msg: msg}
			v := h.runOne(ctx, &c)
			edits.AddHeaders = append(edits.AddHeaders, c.headers...)
			edits.Tags = append(edits.Tags, c.tags...)
			if v.Action.Final() {
				if !keepsMessage(v.Action) {
					edits = filter.Edits{}
				}
				return v, edits
			}
		}
	}
	return filter.Verdict{}, edits
}

// keepsMessage reports whether a message with this verdict is stored with
// its edits: relayed or quarantined.
func keepsMessage(a filter.Action) bool {
	return a == filter.Continue || a == filter.Accept || a == filter.Quarantine
}

// runOne calls one plugin, applies its failure mode when the call fails
// and turns the result into a verdict. A failed call's edits are dropped.
func (h *Host) runOne(ctx context.Context, c *call) filter.Verdict {
	p := c.plugin
	start := time.Now()
	action, fail := p.run(ctx, c)
	d := time.Since(start)
	p.stats.calls[c.phase].Add(1)
	p.stats.nanos[c.phase].Add(uint64(d))

	var v filter.Verdict
	if fail != nil {
		c.headers, c.tags = nil, nil
		p.stats.failures[fail.Kind].Add(1)
		v = h.failureVerdict(c, fail)
	} else {
		p.stats.verdicts[action].Add(1)
		v = h.verdict(c, action)
	}

	if h.trace != nil {
		h.trace(Trace{
			Plugin: p.man.Name, Phase: c.phase, Action: action, Verdict: v,
			Reply:   filter.Verdict{Code: c.reply.code, Enhanced: c.reply.enhanced, Text: c.reply.text},
			Headers: c.headers, Tags: c.tags, Duration: d, Failure: fail,
		})
	}
	return v
}

func (h *Host) failureVerdict(c *call, f *Failure) filter.Verdict {
	p := c.plugin
	attrs := []any{"plugin", p.man.Name, "phase", c.phase.String(), "failure", f.Kind.String(), "reason", f.Detail}
	if c.txn != nil && c.txn.QueueID != "" {
		attrs = append(attrs, "queue_id", c.txn.QueueID)
	}
	if p.man.failOpen {
		h.log.Warn("plugin failed, failing open", attrs...)
		return filter.Verdict{}
	}
	h.log.Warn("plugin failed, failing closed", attrs...)
	v := failClosedVerdict
	v.Filter = p.man.Name
	return v
}

// verdict builds the verdict for an action, using the plugin's reply only
// when its class matches: 5xx for reject, 4xx for tempfail.
func (h *Host) verdict(c *call, a filter.Action) filter.Verdict {
	v := filter.Verdict{Action: a, Filter: c.plugin.man.Name}
	if !c.reply.set || (a != filter.Reject && a != filter.Tempfail) {
		return v
	}
	want := 5
	if a == filter.Tempfail {
		want = 4
	}
	if c.reply.code/100 != want {
		c.badReply(fmt.Sprintf("reply code %d does not match action %s; the default reply is used", c.reply.code, a))
		return v
	}
	v.Code, v.Enhanced, v.Text = c.reply.code, c.reply.enhanced, c.reply.text
	return v
}
