// Package policy owns the decisions about envelope addresses: which
// recipients are in a relay domain, which of those exist, what happens to
// an unknown recipient, and the SPF result of the envelope sender. It never
// writes to a client or to the spool: the SMTP session turns a Decision into
// a reply, and an SPF result is recorded, never acted on here.
package policy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

// Action is the session's treatment of a recipient.
type Action int

const (
	// Accept relays the recipient.
	Accept Action = iota
	// Reject refuses the recipient at RCPT with the Decision's reply.
	Reject
	// Bounce accepts the recipient but never relays it: the queue reports
	// it to the sender with a DSN (the unknown-recipient policy "bounce").
	Bounce
	// Discard accepts the recipient and drops it silently.
	Discard
	// Tempfail refuses the recipient with a 4xx reply, so the client
	// retries later (the callout to the internal server failed).
	Tempfail
)

var actionNames = [...]string{"accept", "reject", "bounce", "discard", "tempfail"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "invalid"
	}
	return actionNames[a]
}

// Decision is the outcome of CheckRecipient.
type Decision struct {
	Action Action
	// Address is the recipient in normalized form (domain in lower-case
	// A-label form), set for every action but a syntax reject.
	Address string
	// Code, Enhanced and Text form the SMTP reply for Reject and Tempfail.
	Code     int
	Enhanced [3]int
	Text     string
	// Reason explains the decision for logs. It is never sent to the client.
	Reason string
}

// Config is the recipient policy, built from settings by ConfigFrom.
type Config struct {
	// RelayDomains are the only domains mail is accepted for. Matching is
	// exact and case-insensitive: a subdomain is a separate domain.
	RelayDomains []string
	// Validation is settings.ValidateAcceptAll, ValidateStatic,
	// ValidateFile or ValidateCallout.
	Validation string
	// Static holds addresses, or "@domain" for every address of a domain.
	Static []string
	// File is the recipient file for ValidateFile (an absolute path).
	File string
	// PositiveTTL and NegativeTTL are how long callout results are cached.
	PositiveTTL time.Duration
	NegativeTTL time.Duration
	// Unknown is settings.UnknownReject, UnknownBounce or UnknownDiscard.
	Unknown string
}

// ConfigFrom builds a Config from the settings. A relative recipient file
// name is taken inside dataDir.
func ConfigFrom(s *settings.Settings, dataDir string) Config {
	file := s.Recipients.File
	if file != "" && !strings.HasPrefix(file, "/") {
		file = dataDir + "/" + file
	}
	return Config{
		RelayDomains: s.Domains.Relay,
		Validation:   s.Recipients.Validation,
		Static:       s.Recipients.Static,
		File:         file,
		PositiveTTL:  time.Duration(s.Recipients.CalloutPositiveTTL),
		NegativeTTL:  time.Duration(s.Recipients.CalloutNegativeTTL),
		Unknown:      s.Recipients.Unknown,
	}
}

// Prober checks with the internal mail server whether a recipient exists
// (an RCPT probe). relay.Relay implements it.
type Prober interface {
	Probe(ctx context.Context, rcpt string) (exists bool, err error)
}

// Checker decides about recipients. It is safe for concurrent use, and
// SetConfig replaces its rules without disturbing checks in progress.
type Checker struct {
	rules  atomic.Pointer[rules]
	prober Prober
	cache  *calloutCache
	log    *slog.Logger
}

// rules is a validated Config in the form used for lookups.
type rules struct {
	relay   map[string]bool
	mode    string
	static  *addressSet
	file    *fileList
	unknown string
	posTTL  time.Duration
	negTTL  time.Duration
}

// New validates cfg and returns a Checker. prober is needed only for
// callout validation and may be nil otherwise.
func New(cfg Config, prober Prober, log *slog.Logger) (*Checker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{prober: prober, cache: newCalloutCache(maxCacheEntries), log: log}
	if err := c.SetConfig(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// SetConfig validates cfg and makes it the policy for every later check.
func (c *Checker) SetConfig(cfg Config) error {
	r, err := compile(cfg, c.log)
	if err != nil {
		return err
	}
	if r.mode == settings.ValidateCallout && c.prober == nil {
		return fmt.Errorf("recipient validation %q needs a prober for the internal server, "+
			"and none was given", r.mode)
	}
	old := c.rules.Swap(r)
	if old != nil && (old.posTTL != r.posTTL || old.negTTL != r.negTTL || old.mode != r.mode) {
		c.cache.clear()
	}
	return nil
}

func compile(cfg Config, log *slog.Logger) (*rules, error) {
	r := &rules{
		relay:   make(map[string]bool),
		mode:    cfg.Validation,
		unknown: cfg.Unknown,
		posTTL:  cfg.PositiveTTL,
		negTTL:  cfg.NegativeTTL,
	}
	if len(cfg.RelayDomains) == 0 {
		return nil, fmt.Errorf("no relay domains are configured: add at least one to [domains] relay")
	}
	for _, d := range cfg.RelayDomains {
		n, err := NormalizeDomain(d)
		if err != nil {
			return nil, fmt.Errorf("relay domain %q is invalid: %v", d, err)
		}
		r.relay[n] = true
	}

	switch cfg.Unknown {
	case settings.UnknownReject, settings.UnknownBounce, settings.UnknownDiscard:
	default:
		return nil, fmt.Errorf("unknown-recipient policy %q is invalid: use %q, %q or %q",
			cfg.Unknown, settings.UnknownReject, settings.UnknownBounce, settings.UnknownDiscard)
	}

	switch cfg.Validation {
	case settings.ValidateAcceptAll:
	case settings.ValidateStatic:
		set, err := parseAddressSet(cfg.Static)
		if err != nil {
			return nil, fmt.Errorf("static recipient list: %w", err)
		}
		r.static = set
	case settings.ValidateFile:
		if cfg.File == "" {
			return nil, fmt.Errorf("recipient validation %q needs a file name in [recipients] file",
				cfg.Validation)
		}
		r.file = newFileList(cfg.File, log)
	case settings.ValidateCallout:
		if cfg.PositiveTTL < 0 || cfg.NegativeTTL < 0 {
			return nil, fmt.Errorf("callout cache TTLs must not be negative, got %v and %v",
				cfg.PositiveTTL, cfg.NegativeTTL)
		}
	default:
		return nil, fmt.Errorf("recipient validation %q is invalid: use %q, %q, %q or %q",
			cfg.Validation, settings.ValidateAcceptAll, settings.ValidateStatic,
			settings.ValidateFile, settings.ValidateCallout)
	}
	return r, nil
}

// RelayDomains returns the configured relay domains in normalized form.
func (c *Checker) RelayDomains() []string {
	var out []string
	for d := range c.rules.Load().relay {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// IsRelayDomain reports whether domain, normalized, is a relay domain.
func (c *Checker) IsRelayDomain(domain string) bool {
	n, err := NormalizeDomain(domain)
	return err == nil && c.rules.Load().relay[n]
}

// CheckRecipient decides about the RCPT address addr. smtputf8 reports
// whether the client sent MAIL FROM with SMTPUTF8. The error is non-nil only
// when a recipient file cannot be read; the Decision is then Tempfail.
func (c *Checker) CheckRecipient(ctx context.Context, addr string, smtputf8 bool) (Decision, error) {
	r := c.rules.Load()

	local, domain, err := ParseAddress(addr, smtputf8)
	if err != nil {
		if IsRouting(err) {
			return relayDenied(err.Error()), nil
		}
		return Decision{Action: Reject, Code: 501, Enhanced: [3]int{5, 1, 3},
			Text: "Bad recipient address syntax", Reason: err.Error()}, nil
	}
	if !r.relay[domain] {
		return relayDenied("domain " + domain + " is not a relay domain"), nil
	}
	address := local + "@" + domain

	// RFC 5321 section 4.5.1: every relay domain MUST accept postmaster,
	// whatever the recipient list contains.
	if strings.EqualFold(local, "postmaster") {
		return Decision{Action: Accept, Address: address}, nil
	}

	exists, err := c.exists(ctx, r, local, domain)
	if err != nil {
		return Decision{Action: Tempfail, Address: address, Code: 451, Enhanced: [3]int{4, 4, 3},
			Text: "Recipient verification failed, try again later", Reason: err.Error()}, err
	}
	if exists {
		return Decision{Action: Accept, Address: address}, nil
	}

	switch r.unknown {
	case settings.UnknownBounce:
		return Decision{Action: Bounce, Address: address, Reason: "unknown recipient"}, nil
	case settings.UnknownDiscard:
		return Decision{Action: Discard, Address: address, Reason: "unknown recipient"}, nil
	default:
		return Decision{Action: Reject, Address: address, Code: 550, Enhanced: [3]int{5, 1, 1},
			Text: "Recipient address rejected: user unknown", Reason: "unknown recipient"}, nil
	}
}

func relayDenied(reason string) Decision {
	return Decision{Action: Reject, Code: 550, Enhanced: [3]int{5, 7, 1},
		Text: "Relaying denied", Reason: reason}
}

// exists applies the configured recipient validation to a parsed address.
func (c *Checker) exists(ctx context.Context, r *rules, local, domain string) (bool, error) {
	switch r.mode {
	case settings.ValidateStatic:
		return r.static.contains(local, domain), nil
	case settings.ValidateFile:
		set, err := r.file.load()
		if err != nil {
			return false, err
		}
		return set.contains(local, domain), nil
	case settings.ValidateCallout:
		return c.callout(ctx, r, local+"@"+domain)
	default:
		return true, nil
	}
}
