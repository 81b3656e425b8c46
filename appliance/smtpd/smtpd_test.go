package smtpd

import (
	"strings"
	"testing"
)

func TestSessionQueuesPlainMessage(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.addr)
	c.greet()
	reply := c.sendMessage("a@sender.example", "b@relay.test", message)
	if !strings.HasPrefix(reply, "250 2.0.0 OK: queued as Q") {
		t.Fatalf("final reply %q, want 250 queued", reply)
	}
	msgs := ts.store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if !strings.HasPrefix(string(msgs[0].data), "Received: from client.example ([127.0.0.1])") {
		t.Errorf("message does not start with the Received header:\n%s", msgs[0].data)
	}
	if !strings.HasSuffix(string(msgs[0].data), message) {
		t.Errorf("message content changed:\n%s", msgs[0].data)
	}
	if ts.queue.count() != 1 {
		t.Errorf("%d messages enqueued, want 1", ts.queue.count())
	}
}
