package gateway

import (
	"context"
	"errors"
	"testing"

	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/spool"
)

func TestActionsDuringAttemptReportConflict(t *testing.T) {
	g, queueID := startStuckDelivery(t, t.TempDir())
	b := webBackend{g}

	if err := b.Retry(queueID); !errors.Is(err, queue.ErrAttemptRunning) {
		t.Errorf("Retry = %v, want queue.ErrAttemptRunning", err)
	}
	if err := b.Delete(spool.AreaQueue, queueID); !errors.Is(err, queue.ErrAttemptRunning) {
		t.Errorf("Delete = %v, want queue.ErrAttemptRunning", err)
	}
	if err := b.Bounce(context.Background(), queueID); !errors.Is(err, queue.ErrAttemptRunning) {
		t.Errorf("Bounce = %v, want queue.ErrAttemptRunning", err)
	}
	if _, err := g.Spool().Open(spool.AreaQueue, queueID); err != nil {
		t.Errorf("message %s gone after the rejected actions: %v", queueID, err)
	}
}
