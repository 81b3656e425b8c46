package smtpd

import (
	"log/slog"
	"net"
	"strings"
	"testing"
)

// BenchmarkSessionLoopback sends 5 KB messages, one per transaction on one
// connection, through the server into a store that drops them, so that it
// measures the session, the checks and the Received header alone.
func BenchmarkSessionLoopback(b *testing.B) {
	cfg := testConfig(b)
	cfg.MaxMessageBytes = 1 << 20
	srv, err := New(cfg, Deps{
		Store: &nopStore{}, Enqueuer: &recordingQueue{}, Policy: testPolicy(b, policyConfigAll()),
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	line := strings.Repeat("x", 76) + "\r\n"
	body := message + strings.Repeat(line, 5000/len(line))
	c := dial(b, l.Addr().String())
	c.greet()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		c.send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@relay.test>\r\nDATA\r\n")
		c.expect("250")
		c.expect("250")
		c.expect("354")
		c.send(body + ".\r\n")
		c.expect("250 ")
	}
}
