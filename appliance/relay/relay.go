package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// Relay delivers messages to the internal mail server. It implements
// envelope.Deliverer and is safe for concurrent use.
type Relay struct {
	cfg  Config
	log  *slog.Logger
	pool *pool
}

var _ envelope.Deliverer = (*Relay)(nil)

// New returns a Relay for cfg, with defaults applied to its zero fields. It
// opens no connection until the first delivery or probe.
func New(cfg Config, log *slog.Logger) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg, log: log, pool: newPool(cfg, log)}, nil
}

// Close closes the idle connections and stops the idle timer. Deliveries
// still running finish, and their connections are closed afterwards.
// Calling Close again does nothing.
func (r *Relay) Close() error {
	r.pool.close()
	return nil
}

// Deliver sends body, after env.Prepend, to the pending recipients of env in
// one transaction and returns one result per pending recipient, in order. An
// error means that no recipient was delivered and the attempt should be
// retried: no connection, a timeout, or a connection lost before the final
// reply. NOTE: a connection lost after the final "." but before its reply
// may have delivered the message, so a retry can duplicate it.
func (r *Relay) Deliver(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	pending := env.Pending()
	if len(pending) == 0 {
		return nil, nil
	}

	if unsafeAddress(env.From) {
		return r.failAll(env, pending, smtpReply{Code: 553, Enhanced: "5.1.7",
			Lines: []string{"invalid sender: " + describeUnsafe(env.From)}}, "none"), nil
	}

	// A reused connection whose server went away fails before anything was
	// accepted. Each retry takes another connection, so a pool full of
	// stale ones ends in a fresh dial.
	for attempt := 0; ; attempt++ {
		results, err := r.deliverOnce(ctx, env, body, pending)
		var stale staleError
		if errors.As(err, &stale) && attempt < r.cfg.MaxConnections {
			r.log.Debug("relay idle connection dropped", "relay", r.cfg.Server, "reason", stale.Error())
			continue
		}
		return results, err
	}
}

func (r *Relay) deliverOnce(ctx context.Context, env *envelope.Envelope, body envelope.Body, pending []*envelope.Recipient) ([]envelope.Result, error) {
	c, err := r.pool.get(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("relay to %s: %w", r.cfg.Server, err)
	}

	// Clients ask for SMTPUTF8 whenever it is offered, so most such
	// messages are plain ASCII. Like Postfix, only a message whose
	// envelope or header really holds UTF-8 fails at a server without it.
	if env.SMTPUTF8 && !c.has("SMTPUTF8") && needsSMTPUTF8(env, body) {
		r.pool.put(c, true)
		return r.failAll(env, pending, smtpReply{Code: 554, Enhanced: "5.6.7",
			Lines: []string{"the internal server does not support SMTPUTF8"}}, c.relay), nil
	}
	if envelopeIs8Bit(env) && !c.has("8BITMIME") {
		converted, err := downgradeBody(body)
		if err != nil {
			r.pool.put(c, true)
			return nil, fmt.Errorf("relay to %s: read message for 7bit conversion: %w", r.cfg.Server, err)
		}
		r.log.Info("relay server lacks 8BITMIME; sending 8bit parts as quoted-printable",
			"queue_id", env.QueueID, "relay", c.relay)
		body = converted
	}

	t := &transaction{c: c, env: env, pending: pending, body: body}
	t.mail = mailCommand(c, env, int64(len(env.Prepend))+body.Size())
	t.rcpts = make([]string, len(pending))
	for i, p := range pending {
		t.rcpts[i] = rcptCommand(c, p)
	}
	results, err := r.deliverOn(ctx, t)
	var stale staleError
	if errors.As(err, &stale) {
		r.pool.put(c, false)
		return nil, err
	}
	if err != nil {
		r.log.Warn("relay connection error", "queue_id", env.QueueID,
			"relay", c.relay, "reason", err.Error())
		r.pool.put(c, false)
		return nil, err
	}
	r.pool.put(c, t.healthy)

	r.logResults(env, results)
	return results, nil
}

// deliverOn runs t and maps its replies to results. Recipients with unsafe
// addresses are rejected locally and left out of the transaction.
func (r *Relay) deliverOn(ctx context.Context, t *transaction) ([]envelope.Result, error) {
	results := make([]envelope.Result, len(t.pending))
	var lines []string
	for i, p := range t.pending {
		if unsafeAddress(p.Address) {
			results[i] = result(p.Address, smtpReply{Code: 553, Enhanced: "5.1.3",
				Lines: []string{"invalid recipient: " + describeUnsafe(p.Address)}}, t.c.relay)
			continue
		}
		lines = append(lines, t.rcpts[i])
	}
	if len(lines) == 0 {
		t.healthy = true
		return results, nil
	}
	t.rcpts = lines

	stop := t.c.watch(ctx)
	mail, rcpts, final, err := t.run(ctx)
	stop()
	if err != nil {
		return nil, err
	}
	t.c.messages++

	j := 0
	for i, p := range t.pending {
		if unsafeAddress(p.Address) {
			continue
		}
		switch {
		case mail.Code/100 != 2:
			results[i] = result(p.Address, mail, t.c.relay)
		case rcpts[j].Code/100 != 2:
			results[i] = result(p.Address, rcpts[j], t.c.relay)
		default:
			results[i] = result(p.Address, final, t.c.relay)
		}
		j++
	}
	return results, nil
}

// result maps a reply to the result of one recipient: 2xx delivered, 5xx
// permanent, anything else temporary. A missing enhanced status code is
// filled in from the reply class, because a DSN needs one.
func result(rcpt string, reply smtpReply, relay string) envelope.Result {
	res := envelope.Result{
		Recipient: rcpt,
		Code:      reply.Code,
		Enhanced:  reply.Enhanced,
		Text:      reply.Text(),
		Relay:     relay,
	}
	switch reply.Code / 100 {
	case 2:
		res.Delivered = true
	case 5:
		res.Permanent = true
	}
	if res.Enhanced == "" {
		switch {
		case res.Delivered:
			res.Enhanced = "2.0.0"
		case res.Permanent:
			res.Enhanced = "5.0.0"
		default:
			res.Enhanced = "4.0.0"
		}
	}
	return res
}

// failAll returns the same failing result for every pending recipient and
// logs it.
func (r *Relay) failAll(env *envelope.Envelope, pending []*envelope.Recipient, reply smtpReply, relay string) []envelope.Result {
	results := make([]envelope.Result, len(pending))
	for i, p := range pending {
		results[i] = result(p.Address, reply, relay)
	}
	r.logResults(env, results)
	return results
}

// logResults writes the Postfix-style line per recipient that mail
// administrators search for.
func (r *Relay) logResults(env *envelope.Envelope, results []envelope.Result) {
	var delay time.Duration
	if !env.Received.IsZero() {
		delay = time.Since(env.Received).Round(time.Millisecond)
	}
	for _, res := range results {
		status := "deferred"
		switch {
		case res.Delivered:
			status = "sent"
		case res.Permanent:
			status = "bounced"
		}
		r.log.Debug("relay result", "queue_id", env.QueueID, "from", env.From,
			"rcpt", res.Recipient, "relay", res.Relay, "status", status,
			"delay", delay.String(), "reason", fmt.Sprintf("%d %s %s", res.Code, res.Enhanced, res.Text))
	}
}

// envelopeIs8Bit reports whether the client declared an 8bit body.
func envelopeIs8Bit(env *envelope.Envelope) bool {
	return strings.EqualFold(env.BodyType, "8BITMIME")
}
