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
// With rejectEHLO it replies 502 to EHLO, like a server that speaks only
// RFC 821 SMTP.
func startRawSink(tb testing.TB, rejectEHLO bool) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveRawSink(c, rejectEHLO)
		}
	}()
	return l.Addr().String()
}

func serveRawSink(c net.Conn, rejectEHLO bool) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriter(c)
	bw.WriteString("220 sink ESMTP\r\n")
	bw.Flush()

	inData, greeted := false, false
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
		case hasVerb(line, "EHLO") && rejectEHLO:
			reply = "502 5.5.2 Error: command not recognized\r\n"
		case hasVerb(line, "HELO"):
			greeted = true
			reply = "250 sink\r\n"
		case hasVerb(line, "MAIL") && !greeted:
			reply = "503 5.5.1 Error: send HELO/EHLO first\r\n"
		case hasVerb(line, "MAIL") && rejectEHLO && bytes.Contains(line, []byte("> ")):
			reply = "555 5.5.4 Unsupported option\r\n"
		case hasVerb(line, "EHLO"):
			greeted = true
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
			addr := startRawSink(b, false)
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
