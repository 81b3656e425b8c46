package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/spool"
)

// hungServer listens on loopback, accepts connections and never sends a
// byte, as an internal server whose SMTP process hangs does. It returns
// the address.
func hungServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// startStuckDelivery starts a gateway that relays to a hung internal
// server, sends one message and waits until its delivery attempt runs. It
// returns the gateway and the queue id of the message.
func startStuckDelivery(t *testing.T, dir string) (*Gateway, string) {
	t.Helper()
	s := testSettings(t)
	s.Internal.Server = hungServer(t)
	g := startGateway(t, dir, s)

	if err := send(s.Inbound.Listen[0], "postmaster@example.test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Queue().Stats().Active == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery attempt started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	envs, err := g.Spool().List(spool.AreaQueue)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 1 {
		t.Fatalf("queue area holds %d messages, want 1", len(envs))
	}
	return g, envs[0].QueueID
}

func TestShutdownCancelsHungDelivery(t *testing.T) {
	dir := t.TempDir()
	g, queueID := startStuckDelivery(t, dir)

	// The relay's own timeout is 5 minutes, so only a cancelled attempt
	// lets Shutdown return before this context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want nil: the running delivery attempt was not cancelled", err)
	}

	sp, err := spool.Open(filepath.Join(dir, "spool"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	msg, err := sp.Open(spool.AreaQueue, queueID)
	if err != nil {
		t.Fatalf("message %s not queued after the stop: %v", queueID, err)
	}
	defer msg.Close()
	if got := msg.Envelope.Attempts; got != 0 {
		t.Errorf("message saved with %d attempts, want 0: an interrupted attempt is no failure", got)
	}
}
