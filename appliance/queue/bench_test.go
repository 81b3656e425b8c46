package queue

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/spool"
)

type noopDeliverer struct{}

func (noopDeliverer) Deliver(_ context.Context, env *envelope.Envelope, _ envelope.Body) ([]envelope.Result, error) {
	return resultsFor(env, sent), nil
}

// BenchmarkQueueThroughput measures how fast the queue drains spooled 5 KB
// messages through a deliverer that accepts every recipient at once. The
// timer covers loading, scheduling, opening each message, the attempt and
// the synced removal, but not spooling the messages.
func BenchmarkQueueThroughput(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sp, err := spool.Open(b.TempDir(), log)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()

	body := make([]byte, 5000)
	for range b.N {
		env := &envelope.Envelope{
			Kind:       envelope.KindInbound,
			From:       "sender@example.org",
			Recipients: pending("user@example.test"),
		}
		w, err := sp.Create(env)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(body)
		if err := w.Commit(context.Background(), spool.AreaQueue); err != nil {
			b.Fatal(err)
		}
	}

	done := make(chan struct{}, b.N)
	cfg := Config{Workers: 20, OnEvent: func(ev Event) {
		if ev.Type == EventDelivered {
			done <- struct{}{}
		}
	}}
	q := New(sp, map[envelope.Kind]envelope.Deliverer{envelope.KindInbound: noopDeliverer{}}, nil, cfg, log)
	defer q.Stop(context.Background())

	// Start loads the spooled messages, the same path as a restart with a
	// full queue; Enqueue of an id that Start loaded does nothing.
	b.ResetTimer()
	if err := q.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		<-done
	}
	for q.Stats().Depth > 0 {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
