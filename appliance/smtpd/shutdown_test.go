package smtpd

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// gatedStore is a memStore whose Commit waits until release is closed and
// then fails with its context's error, if any, as the spool does.
type gatedStore struct {
	memStore
	committing chan struct{}
	release    chan struct{}
}

func (s *gatedStore) Create(env *envelope.Envelope) (MessageWriter, error) {
	w, err := s.memStore.Create(env)
	if err != nil {
		return nil, err
	}
	return &gatedWriter{MessageWriter: w, store: s}, nil
}

type gatedWriter struct {
	MessageWriter
	store *gatedStore
}

func (w *gatedWriter) Commit(ctx context.Context, quarantine bool) error {
	close(w.store.committing)
	<-w.store.release
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.MessageWriter.Commit(ctx, quarantine)
}

func TestShutdownLetsCommitFinish(t *testing.T) {
	store := &gatedStore{committing: make(chan struct{}), release: make(chan struct{})}
	ts := startServer(t, func(_ *Config, d *Deps) { d.Store = store })
	c := dial(t, ts.addr)
	c.greet()
	c.cmd("MAIL FROM:<a@sender.example>", "250")
	c.cmd("RCPT TO:<b@relay.test>", "250")
	c.cmd("DATA", "354")
	c.send(message + ".\r\n")
	<-store.committing

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdown <- ts.srv.Shutdown(ctx)
	}()
	// Shutdown has begun once the listener is closed.
	for {
		conn, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(time.Millisecond)
	}
	close(store.release)

	if r := c.reply(); !strings.HasPrefix(r, "250 ") {
		t.Errorf("reply to a message whose data arrived before the stop: %q, want 250", r)
	}
	// The session then ends at once instead of waiting for a command.
	c.expect("421 4.3.2 ")
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if got := len(store.messages()); got != 1 {
		t.Errorf("%d messages committed, want 1", got)
	}
	if logs := ts.logs.String(); strings.Contains(logs, "spool failed") {
		t.Errorf("a planned stop logged a spool failure:\n%s", logs)
	}
}
