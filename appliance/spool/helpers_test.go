package spool

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openSpool(t testing.TB, dir string) *Spool {
	t.Helper()
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openFileSpool opens a spool that gives every message a file of its own,
// for tests of the message file format and of file system limits.
func openFileSpool(t testing.TB, dir string) *Spool {
	t.Helper()
	s := openSpool(t, dir)
	s.memLimit = 0
	return s
}

func testEnvelope(rcpts ...string) *envelope.Envelope {
	env := &envelope.Envelope{
		Kind:     envelope.KindInbound,
		From:     "sender@example.org",
		ClientIP: "192.0.2.10",
		Received: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
	}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, envelope.Recipient{Address: r, State: envelope.StatePending})
	}
	return env
}

// bodyFor returns size bytes of CRLF lines that name id, so a test can
// check that a message read back belongs to its queue id.
func bodyFor(id string, size int) []byte {
	line := fmt.Sprintf("Subject: message %s\r\n", id)
	var b bytes.Buffer
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()[:size]
}

// commitMessage spools a message whose body is bodyFor(id, size).
func commitMessage(s *Spool, area Area, size int) (*envelope.Envelope, error) {
	env := testEnvelope("user@example.test")
	w, err := s.Create(env)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bodyFor(env.QueueID, size)); err != nil {
		return nil, err
	}
	if err := w.Commit(context.Background(), area); err != nil {
		return nil, err
	}
	return env, nil
}

// checkBody fails unless the message id in area has the body that
// commitMessage wrote.
func checkBody(t testing.TB, s *Spool, area Area, id string) {
	t.Helper()
	m, err := s.Open(area, id)
	if err != nil {
		t.Errorf("open %s: %v", id, err)
		return
	}
	defer m.Close()
	got, err := io.ReadAll(m.Reader())
	if err != nil {
		t.Errorf("read %s: %v", id, err)
		return
	}
	want := bodyFor(id, int(m.Size()))
	if m.Size() == 0 || !bytes.Equal(got, want) {
		t.Errorf("body of %s: %d bytes that do not match its id", id, len(got))
	}
	if m.Envelope.Size != m.Size() {
		t.Errorf("envelope size of %s = %d, body has %d bytes", id, m.Envelope.Size, m.Size())
	}
}
