package relay

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// startRawSink runs a minimal SMTP sink that accepts everything and keeps
// nothing. It allocates almost nothing per message, so that the benchmark's
// allocation count is the relay's own.
func startRawSink(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen on loopback: %v", err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveRawSink(c)
		}
	}()
	return l.Addr().String()
}

func serveRawSink(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriter(c)
	bw.WriteString("220 sink ESMTP\r\n")
	bw.Flush()

	inData := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		var reply string
		switch {
		case inData:
			if !bytes.Equal(line, []byte(".\r\n")) {
				continue
			}
			inData = false
			reply = "250 2.0.0 Ok: queued\r\n"
		case hasVerb(line, "EHLO"):
			reply = "250-sink\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250 8BITMIME\r\n"
		case hasVerb(line, "DATA"):
			inData = true
			reply = "354 End data with <CR><LF>.<CR><LF>\r\n"
		case hasVerb(line, "QUIT"):
			bw.WriteString("221 2.0.0 Bye\r\n")
			bw.Flush()
			return
		default:
			reply = "250 2.0.0 Ok\r\n"
		}
		bw.WriteString(reply)
		// Flush after replying to the whole pipelined batch.
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

func hasVerb(line []byte, verb string) bool {
	return len(line) >= 4 && strings.EqualFold(string(line[:4]), verb)
}

func BenchmarkRelay(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"5KB", 5 << 10}, {"100KB", 100 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			addr := startRawSink(b)
			r, err := New(Config{Server: addr, HELO: "lambgate.example.test", Timeout: time.Minute},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatalf("New: %v", err)
			}
			defer r.Close()

			line := "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;\r\n"
			msg := []byte("Subject: bench\r\n\r\n" + strings.Repeat(line, size.bytes/len(line)))
			body := bytes.NewReader(msg)
			env := newEnvelope("s@example.org", "a@example.test")

			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				results, err := r.Deliver(context.Background(), env, body)
				if err != nil {
					b.Fatalf("Deliver: %v", err)
				}
				if !results[0].Delivered {
					b.Fatalf("result = %+v", results[0])
				}
			}
		})
	}
}
