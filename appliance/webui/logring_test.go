package webui

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestLogRingFiltersByQueueID(t *testing.T) {
	ring := NewLogRing(3, NewSeries())
	log := slog.New(NewLogHandler(slog.NewTextHandler(io.Discard, nil), ring))
	log.Info("received", "queue_id", "A1", "from", "a@example.org")
	log.With("queue_id", "B2").Info("deferred", "reason", "connection refused")
	log.Info("received", "queue_id", "C3")
	log.Info("delivered", "queue_id", "A1", "kind", "inbound")

	all := ring.Entries("", "", 10)
	if len(all) != 3 {
		t.Fatalf("ring holds %d entries, want its size 3", len(all))
	}
	if all[0].Message != "delivered" {
		t.Errorf("newest entry = %q, want delivered", all[0].Message)
	}
	if got := ring.Entries("B2", "", 10); len(got) != 1 || got[0].Message != "deferred" {
		t.Errorf("queue id B2 matched %v", got)
	}
	if got := ring.Entries("", "REFUSED", 10); len(got) != 1 {
		t.Errorf("text search matched %d entries, want 1", len(got))
	}
}

func TestLogRingCountsMailEvents(t *testing.T) {
	series := NewSeries()
	log := slog.New(NewLogHandler(slog.NewTextHandler(io.Discard, nil), NewLogRing(10, series)))
	log.Info("received", "queue_id", "A1", "status", "queued")
	log.Info("received", "queue_id", "A2", "status", "quarantined")
	log.Info("rejected", "phase", "rcpt", "reason", "not a relay domain")
	log.Info("rejected", "phase", "rcpt", "reason", "filter reject", "plugin", "e2eprobe")
	log.Info("bounce suppressed", "reason", "null sender")
	log.Info("delivered", "kind", "bounce")

	now := time.Now()
	for name, want := range map[string]uint64{CounterAccepted: 2, CounterQuarantined: 1,
		CounterRejected: 2, CounterSuppressed: 1, CounterRelayed: 0} {
		if got := series.Points(name, now, 1, 5)[0]; got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	reasons := series.Reasons(now, 5)
	if len(reasons) != 2 {
		t.Fatalf("reasons = %v, want 2", reasons)
	}
	if reasons[0].Reason != "filter reject by plugin e2eprobe" {
		t.Errorf("first reason = %q, want the plugin named", reasons[0].Reason)
	}
	if reasons[1].Reason != "not a relay domain" {
		t.Errorf("second reason = %q", reasons[1].Reason)
	}
}

func TestSeriesPointsSumSteps(t *testing.T) {
	s := NewSeries()
	base := time.Date(2026, 1, 2, 10, 0, 30, 0, time.UTC)
	s.Add(CounterAccepted, base, 1)
	s.Add(CounterAccepted, base.Add(time.Minute), 2)
	s.Add(CounterAccepted, base.Add(61*time.Minute), 4)
	// A sample older than a day lands in a reused bucket and must not count.
	s.Add(CounterAccepted, base.Add(-24*time.Hour), 100)

	now := base.Add(61 * time.Minute)
	hourly := s.Points(CounterAccepted, now, 2, 60)
	if hourly[0] != 3 || hourly[1] != 4 {
		t.Errorf("hourly points = %v, want [3 4]", hourly)
	}
	if got := s.Points(CounterAccepted, base.Add(26*time.Hour), 24, 60); sum(got) != 0 {
		t.Errorf("points a day later = %v, want all zero", got)
	}
}

func sum(v []uint64) uint64 {
	var t uint64
	for _, x := range v {
		t += x
	}
	return t
}
