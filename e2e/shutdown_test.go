package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

// dataReply sends one message. dataSent reports whether the whole message
// reached the gateway, and err is the error of the first step that failed,
// nil after a 250 to the end of the data.
func dataReply(addr, body string) (dataSent bool, err error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := c.Mail("sender@example.org"); err != nil {
		return false, err
	}
	if err := c.Rcpt("alice@example.test"); err != nil {
		return false, err
	}
	w, err := c.Data()
	if err != nil {
		return false, err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return false, err
	}
	err = w.Close()
	c.Quit()
	return true, err
}

func TestStopUnderLoadAcknowledgesArrivedData(t *testing.T) {
	sink := testenv.StartSink(t, "")
	gw := startGateway(t, baseSettings(t, sink.Addr()))

	var acknowledged, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	const senders = 16
	for i := range senders {
		// Half the senders send messages larger than the 128 KiB that the spool
		// keeps in memory, so their commit creates and renames a file.
		lines := 100
		if i%2 == 1 {
			lines = 6000
		}
		body := fmt.Sprintf("From: sender@example.org\r\nTo: alice@example.test\r\nSubject: stop %d\r\n\r\n", i) +
			strings.Repeat("body line for the stop test\r\n", lines)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				dataSent, err := dataReply(gw.Addr(), body)
				if err == nil {
					acknowledged.Add(1)
					continue
				}
				var reply *textproto.Error
				if dataSent && errors.As(err, &reply) {
					// The whole message had arrived when the gateway
					// replied with an error.
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				// Any other error is the gateway going away.
				return
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	gw.Stop()
	cancel()
	wg.Wait()

	if acknowledged.Load() == 0 {
		t.Fatal("no message was acknowledged before the stop: the test proved nothing")
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d messages whose data had arrived got an error reply at the stop, first: %s",
			n, failures[0])
	}
	log := gw.Log()
	for _, bad := range []string{`msg="spool failed"`, `msg="shutdown incomplete"`} {
		if strings.Contains(log, bad) {
			t.Errorf("gateway log of a planned stop contains %s:\n%s", bad, tail(log, 40))
		}
	}
	t.Logf("%d messages acknowledged before and during the stop", acknowledged.Load())
}

// hungServer listens on loopback, accepts connections and never sends a
// byte, as an internal server whose SMTP process hangs does. accepted
// receives a value for every connection.
func hungServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 100)
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
			ch <- struct{}{}
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
	return l.Addr().String(), ch
}

func TestStopWithHungInternalServerIsQuick(t *testing.T) {
	internal, accepted := hungServer(t)
	gw := startGateway(t, baseSettings(t, internal))

	msg := "From: sender@example.org\r\nTo: alice@example.test\r\nSubject: hung\r\n\r\nbody\r\n"
	if err := sendPlain(gw.Addr(), "sender@example.org", "alice@example.test", msg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatalf("the gateway never connected to the internal server\n%s", tail(gw.Log(), 20))
	}

	// The relay waits up to its 5-minute timeout for the greeting, so a
	// quick stop means that the stop cancelled the attempt.
	started := time.Now()
	gw.Stop()
	if took := time.Since(started); took > 10*time.Second {
		t.Errorf("stop took %v with a delivery attempt hanging, want well under the 30 s limit", took)
	}
	log := gw.Log()
	if strings.Contains(log, `msg="shutdown incomplete"`) {
		t.Errorf("gateway log contains an incomplete shutdown:\n%s", tail(log, 20))
	}
	if !strings.Contains(log, "msg=stopped") {
		t.Errorf("gateway log lacks the clean stop:\n%s", tail(log, 20))
	}

	// The message stayed queued, so the next start tries it again.
	gw.Restart()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Errorf("no delivery attempt after the restart: was the message lost?\n%s", tail(gw.Log(), 20))
	}
}
