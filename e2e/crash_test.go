package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

// ackedSender sends numbered messages one after another and records the
// Message-IDs that got a 250 after DATA. It stops at the first failure,
// which is the gateway going away.
func ackedSender(ctx context.Context, addr string, cycle int, acked *[]string, mu *sync.Mutex) {
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("<crash-%d-%d@example.org>", cycle, i)
		msg := "From: sender@example.org\r\nTo: alice@example.test\r\n" +
			"Subject: crash cycle\r\nMessage-ID: " + id + "\r\n\r\n" +
			strings.Repeat("body line for the crash test\r\n", 100)
		if err := sendPlain(addr, "sender@example.org", "alice@example.test", msg); err != nil {
			return
		}
		mu.Lock()
		*acked = append(*acked, id)
		mu.Unlock()
	}
}

func TestKill9LosesNoAcceptedMessage(t *testing.T) {
	source, err := exec.LookPath("smtp-source")
	if err != nil {
		t.Fatalf("smtp-source not found (Debian package postfix): run scripts/install-deps.sh: %v", err)
	}
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	gw := startGateway(t, baseSettings(t, pf.Addr()))

	var (
		mu    sync.Mutex
		acked []string
	)
	const cycles = 3
	for cycle := range cycles {
		ctx, cancel := context.WithCancel(context.Background())
		load := exec.CommandContext(ctx, source, "-s", "10", "-m", "400", "-l", "5000",
			"-f", "load@example.org", "-t", "alice@example.test", gw.Addr())
		if err := load.Start(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			ackedSender(ctx, gw.Addr(), cycle, &acked, &mu)
		}()

		// Kill in the middle of the load, while sessions are in DATA and
		// commits are in flight.
		time.Sleep(1500 * time.Millisecond)
		gw.Kill()
		wg.Wait()
		cancel()
		load.Wait()

		gw.Restart()
	}

	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	if len(want) == 0 {
		t.Fatal("no message was acknowledged before the kills: the test proved nothing")
	}

	// Every acknowledged message must arrive; smtp-source's load arrives
	// too but is not counted per message.
	deadline := time.Now().Add(90 * time.Second)
	var missing []string
	for {
		seen := map[string]bool{}
		for _, m := range pf.Messages("alice@example.test") {
			seen[m.Header.Get("Message-ID")] = true
		}
		missing = missing[:0]
		for _, id := range want {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged messages never arrived, first %s\ngateway log:\n%s",
			len(missing), len(want), missing[0], tail(gw.Log(), 40))
	}
	t.Logf("%d acknowledged messages over %d kill cycles all delivered", len(want), cycles)
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
