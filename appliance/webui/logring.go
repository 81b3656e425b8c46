package webui

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogEntry is one log record as the Logs page shows it.
type LogEntry struct {
	Time    time.Time
	Level   slog.Level
	Message string
	// Attrs are the record's key=value pairs in order, groups flattened
	// with dots.
	Attrs []LogAttr
}

// LogAttr is one key=value pair of a LogEntry.
type LogAttr struct{ Key, Value string }

// QueueID returns the entry's queue_id attribute, or "".
func (e LogEntry) QueueID() string { return e.attr("queue_id") }

func (e LogEntry) attr(key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// Text renders the entry as one line for text search.
func (e LogEntry) Text() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for _, a := range e.Attrs {
		b.WriteString(" " + a.Key + "=" + a.Value)
	}
	return b.String()
}

// LogRing keeps the most recent log entries in memory and counts the mail
// events of each record into a Series.
type LogRing struct {
	mu      sync.Mutex
	entries []LogEntry
	next    int
	full    bool
	series  *Series
}

// NewLogRing returns a ring of size entries feeding series, which may be nil.
func NewLogRing(size int, series *Series) *LogRing {
	return &LogRing{entries: make([]LogEntry, size), series: series}
}

func (r *LogRing) add(e LogEntry) {
	r.mu.Lock()
	r.entries[r.next] = e
	r.next = (r.next + 1) % len(r.entries)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
	if r.series != nil {
		countMailEvent(r.series, e)
	}
}

// Series returns the series the ring counts mail events into.
func (r *LogRing) Series() *Series { return r.series }

// Entries returns the stored entries, newest first, that contain queueID
// (when set) as their queue id and text (when set) anywhere in the line,
// ignoring case. At most limit entries are returned.
func (r *LogRing) Entries(queueID, text string, limit int) []LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.entries)
	}
	text = strings.ToLower(text)
	var out []LogEntry
	for i := 0; i < n && len(out) < limit; i++ {
		e := r.entries[(r.next-1-i+len(r.entries))%len(r.entries)]
		if queueID != "" && e.QueueID() != queueID {
			continue
		}
		if text != "" && !strings.Contains(strings.ToLower(e.Text()), text) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// countMailEvent turns the gateway's per-message log lines into chart
// counters.
// TODO: smtpd has no counters of its own, so accepted and rejected mail is
// counted from its "received" and "rejected" log lines. A renamed log
// message there silently zeroes the chart.
func countMailEvent(s *Series, e LogEntry) {
	switch e.Message {
	case "received":
		s.Add(CounterAccepted, e.Time, 1)
		if e.attr("status") == "quarantined" {
			s.Add(CounterQuarantined, e.Time, 1)
		}
	case "rejected":
		s.Add(CounterRejected, e.Time, 1)
		reason := e.attr("reason")
		if plugin := e.attr("plugin"); plugin != "" {
			reason += " by plugin " + plugin
		}
		s.AddReason(e.Time, reason)
	case "delivered":
		if e.attr("kind") == "inbound" {
			s.Add(CounterRelayed, e.Time, 1)
		}
	case "deferred":
		s.Add(CounterDeferred, e.Time, 1)
	case "bounce queued":
		s.Add(CounterBounced, e.Time, 1)
	case "bounce suppressed":
		s.Add(CounterSuppressed, e.Time, 1)
	}
}

// LogHandler is an slog.Handler that stores every record it passes on in a
// LogRing. The gateway's main program installs it around its real handler.
type LogHandler struct {
	next   slog.Handler
	ring   *LogRing
	attrs  []LogAttr
	prefix string
}

// NewLogHandler wraps next, storing records in ring.
func NewLogHandler(next slog.Handler, ring *LogRing) *LogHandler {
	return &LogHandler{next: next, ring: ring}
}

// Ring returns the ring the handler stores records in.
func (h *LogHandler) Ring() *LogRing { return h.ring }

// Enabled follows the wrapped handler, so the ring shows what the log shows.
func (h *LogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle stores r and passes it on.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	e := LogEntry{Time: r.Time, Level: r.Level, Message: r.Message}
	e.Attrs = append(e.Attrs, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		e.Attrs = appendAttr(e.Attrs, h.prefix, a)
		return true
	})
	h.ring.add(e)
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append([]LogAttr(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

func appendAttr(out []LogAttr, prefix string, a slog.Attr) []LogAttr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			out = appendAttr(out, prefix+a.Key+".", g)
		}
		return out
	}
	if a.Key == "" {
		return out
	}
	return append(out, LogAttr{Key: prefix + a.Key, Value: v.String()})
}
