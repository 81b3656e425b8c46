//go:build boottest

package boottest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// internalServerAddr is where the guest reaches the internal mail server.
// qemu's guestfwd runs this test binary as a proxy for each connection
// (see TestMain), which connects it to the sink on a loopback port.
const internalServerAddr = "10.0.2.100:25"

// proxyEnv names the variable that turns the test binary into that proxy.
// Its value is the sink's port.
const proxyEnv = "LAMBGATE_BOOTTEST_PROXY_PORT"

// sink is a minimal SMTP server standing in for the internal mail server.
// It keeps each message's data, or defers every recipient with 451 while
// deferring is set, so that mail stays in the appliance's spool.
type sink struct {
	port     int
	mu       sync.Mutex
	ln       net.Listener
	msgs     []string
	deferral bool
	// transcript holds every command and reply, for failure messages.
	transcript []string
}

func newSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start the internal server sink: %v", err)
	}
	s := &sink{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *sink) setDeferral(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deferral = on
}

func (s *sink) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(conn)
	record := func(line string) {
		s.mu.Lock()
		s.transcript = append(s.transcript, line)
		s.mu.Unlock()
	}
	reply := func(line string) {
		record("S: " + line)
		fmt.Fprintf(conn, "%s\r\n", line)
	}
	reply("220 sink.internal.test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		record("C: " + strings.TrimSpace(line))
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			// The extensions of a Postfix internal server. Without SMTPUTF8
			// the gateway bounces mail whose client asked for it, as
			// Go's net/smtp does whenever a server offers it.
			reply("250-sink.internal.test")
			reply("250-SIZE 52428800")
			reply("250-8BITMIME")
			reply("250 SMTPUTF8")
		case strings.HasPrefix(cmd, "RCPT"):
			s.mu.Lock()
			deferral := s.deferral
			s.mu.Unlock()
			if deferral {
				reply("451 4.3.0 internal server busy, try again later")
			} else {
				reply("250 2.1.5 ok")
			}
		case strings.HasPrefix(cmd, "DATA"):
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, data.String())
			s.mu.Unlock()
			reply("250 2.0.0 stored")
		case strings.HasPrefix(cmd, "QUIT"):
			reply("221 2.0.0 bye")
			return
		default:
			reply("250 2.0.0 ok")
		}
	}
}

// waitMessage waits until a received message contains want.
func (s *sink) waitMessage(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, m := range s.msgs {
			if strings.Contains(m, want) {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
	}
	s.mu.Lock()
	transcript := strings.Join(s.transcript, "\n")
	s.mu.Unlock()
	t.Fatalf("the internal server received no message containing %q within %s; its sessions:\n%s",
		want, bootTimeout, transcript)
}

// runProxy connects stdin and stdout to the sink. qemu's guestfwd=...-cmd:
// connects them to the guest's TCP connection.
func runProxy(port string) int {
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "boottest proxy:", err)
		return 1
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, os.Stdin); done <- struct{}{} }()
	go func() { io.Copy(os.Stdout, conn); done <- struct{}{} }()
	<-done
	return 0
}

func TestMain(m *testing.M) {
	if port := os.Getenv(proxyEnv); port != "" {
		os.Exit(runProxy(port))
	}
	os.Exit(m.Run())
}
