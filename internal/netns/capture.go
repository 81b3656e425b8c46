package netns

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// captureStartTimeout bounds the wait for tcpdump to open its interface.
const captureStartTimeout = 10 * time.Second

// stopDrain is the pause before Stop interrupts tcpdump.
const stopDrain = 200 * time.Millisecond

// Capture is a tcpdump running on one interface of a namespace.
type Capture struct {
	proc   *Proc
	stdout *lockedBuffer
}

// Capture starts tcpdump on iface inside the namespace with a pcap filter
// expression such as "tcp port 25", and returns once tcpdump is listening,
// so that no packet sent afterwards is missed. Stop returns the packets.
func (ns *NS) Capture(iface, filter string) *Capture {
	ns.t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		ns.t.Fatal("netns: tcpdump not found in PATH; install tcpdump")
	}
	// -l line-buffers the output, -nn prints numeric addresses and ports,
	// and --immediate-mode hands each packet over at once instead of
	// batching them for up to a second in the kernel's buffer.
	args := append([]string{"-l", "-nn", "--immediate-mode", "-i", iface}, strings.Fields(filter)...)
	cmd := ns.Command(context.Background(), "tcpdump", args...)
	stderr := &readyWriter{marker: "listening on", ready: make(chan struct{})}
	c := &Capture{stdout: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = c.stdout, stderr
	if err := cmd.Start(); err != nil {
		ns.t.Fatalf("netns %s: start tcpdump: %v", ns.Name, err)
	}
	c.proc = newProc(cmd, &stderr.buf)
	ns.t.Cleanup(func() { c.proc.Stop() })

	select {
	case <-stderr.ready:
	case <-c.proc.Exited():
		ns.t.Fatalf("netns %s: tcpdump on %s exited: %s", ns.Name, iface, c.proc.Output())
	case <-time.After(captureStartTimeout):
		ns.t.Fatalf("netns %s: tcpdump on %s not listening after %s: %s",
			ns.Name, iface, captureStartTimeout, c.proc.Output())
	}
	return c
}

// Lines returns the packets printed so far, one line each in tcpdump's
// numeric format, such as
// "12:00:00.000000 IP 192.0.2.20.40000 > 203.0.113.80.25: Flags [S], ...".
func (c *Capture) Lines() []string {
	out := strings.TrimSpace(c.stdout.String())
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// WaitFor waits until a printed packet line contains every one of parts and
// returns that line, or returns false after timeout. Use it before Stop for
// every packet a test expects, because packets still in tcpdump's buffer
// when Stop interrupts it are lost.
func (c *Capture) WaitFor(timeout time.Duration, parts ...string) (string, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range c.Lines() {
			if containsAll(l, parts) {
				return l, true
			}
		}
		if time.Now().After(deadline) {
			return "", false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// Stop ends the capture and returns every packet line, as Lines does. It
// first gives tcpdump stopDrain to print packets still in its buffer. A
// test that expects a packet should still wait for it with WaitFor.
func (c *Capture) Stop() []string {
	time.Sleep(stopDrain)
	// SIGINT makes tcpdump flush its output and print its counters.
	c.proc.stop(syscall.SIGINT)
	// Wait has returned, so the copy of stdout is complete.
	return c.Lines()
}

// readyWriter keeps a process's output and closes ready once marker appears
// in it.
type readyWriter struct {
	buf    lockedBuffer
	marker string
	ready  chan struct{}
	once   sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.ready) })
	}
	return n, err
}
