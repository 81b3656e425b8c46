package webui

import (
	"sort"
	"sync"
	"time"
)

// Counter names of the mail-flow charts.
const (
	CounterAccepted    = "accepted"
	CounterRejected    = "rejected"
	CounterRelayed     = "relayed"
	CounterDeferred    = "deferred"
	CounterBounced     = "bounced"
	CounterSuppressed  = "bounces suppressed"
	CounterQuarantined = "quarantined"
	// GaugeQueueDepth is sampled, not counted: each minute keeps the
	// highest depth seen in it.
	GaugeQueueDepth = "queue depth"
)

// ChartCounters lists the counters the dashboard draws, in order.
var ChartCounters = []string{
	CounterAccepted, CounterRejected, CounterRelayed, CounterDeferred,
	CounterBounced, CounterSuppressed, CounterQuarantined,
}

const (
	seriesMinutes = 24 * 60
	// maxReasons caps the distinct reject reasons kept per minute, because
	// a reason may contain client input and must not grow memory without
	// bound.
	maxReasons  = 20
	otherReason = "other"
)

// minute is one bucket of the series.
type minute struct {
	at      int64 // Unix minute; a stale bucket is reset on first use
	values  map[string]uint64
	reasons map[string]uint64
}

// Series keeps per-minute counts for the last 24 hours in memory. It is
// lost on restart: the charts show what this process saw.
type Series struct {
	mu      sync.Mutex
	buckets [seriesMinutes]minute
}

// NewSeries returns an empty series.
func NewSeries() *Series { return &Series{} }

// bucket returns the bucket of t's minute, or nil when t is older than the
// bucket's current minute: a late sample must not wipe newer counts.
func (s *Series) bucket(t time.Time) *minute {
	m := t.Unix() / 60
	b := &s.buckets[m%seriesMinutes]
	if m < b.at {
		return nil
	}
	if b.at != m {
		*b = minute{at: m, values: map[string]uint64{}, reasons: map[string]uint64{}}
	}
	return b
}

// Add counts n events of name at t.
func (s *Series) Add(name string, t time.Time, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bucket(t); b != nil {
		b.values[name] += n
	}
}

// SetMax records a gauge sample, keeping the highest value of the minute.
func (s *Series) SetMax(name string, t time.Time, v uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(t)
	if b != nil && v > b.values[name] {
		b.values[name] = v
	}
}

// AddReason counts one rejection with its reason at t.
func (s *Series) AddReason(t time.Time, reason string) {
	if reason == "" {
		reason = "unknown"
	}
	if len(reason) > 80 {
		reason = reason[:80]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(t)
	if b == nil {
		return
	}
	if _, ok := b.reasons[reason]; !ok && len(b.reasons) >= maxReasons {
		reason = otherReason
	}
	b.reasons[reason]++
}

// Points returns n values of name ending at now, oldest first, each the sum
// (or for gauges the maximum) over step minutes.
func (s *Series) Points(name string, now time.Time, n, step int) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	gauge := name == GaugeQueueDepth
	end := now.Unix() / 60
	out := make([]uint64, n)
	for i := range n {
		var v uint64
		for j := range step {
			m := end - int64((n-1-i)*step+j)
			b := &s.buckets[((m%seriesMinutes)+seriesMinutes)%seriesMinutes]
			if b.at != m {
				continue
			}
			if gauge {
				v = max(v, b.values[name])
			} else {
				v += b.values[name]
			}
		}
		out[i] = v
	}
	return out
}

// ReasonCount is one reject reason with its count.
type ReasonCount struct {
	Reason string
	Count  uint64
}

// Reasons returns the reject reasons of the last minutes up to now, most
// frequent first.
func (s *Series) Reasons(now time.Time, minutes int) []ReasonCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	totals := map[string]uint64{}
	end := now.Unix() / 60
	for m := end - int64(minutes) + 1; m <= end; m++ {
		b := &s.buckets[((m%seriesMinutes)+seriesMinutes)%seriesMinutes]
		if b.at != m {
			continue
		}
		for r, c := range b.reasons {
			totals[r] += c
		}
	}
	out := make([]ReasonCount, 0, len(totals))
	for r, c := range totals {
		out = append(out, ReasonCount{r, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}
