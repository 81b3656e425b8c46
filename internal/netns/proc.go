package netns

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is the time a process gets to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Proc is a process started inside a namespace.
type Proc struct {
	Cmd    *exec.Cmd
	PID    int
	output *lockedBuffer
	done   chan struct{}
	err    error // of Wait, set before done is closed
}

// newProc wraps a started command and waits for it in the background.
func newProc(cmd *exec.Cmd, output *lockedBuffer) *Proc {
	p := &Proc{Cmd: cmd, PID: cmd.Process.Pid, output: output, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// Output returns what the process wrote to stdout and stderr so far, unless
// the caller set its own writers.
func (p *Proc) Output() string { return p.output.String() }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM, waits up to a grace period, then sends SIGKILL, and
// returns the error of Wait: nil for a clean exit with status 0. It may be
// called more than once and after the process has exited.
func (p *Proc) Stop() error { return p.stop(syscall.SIGTERM) }

func (p *Proc) stop(sig syscall.Signal) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.Cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// Start starts a command inside the namespace and registers its end with
// t.Cleanup (Stop). Cleanups run in reverse order, so processes started after New end
// before their namespace is deleted.
//
// The process is forked from a thread already inside the namespace, so it
// is there from its first instruction and PID is the command itself. Unlike
// Command, it shares the test's mount namespace, so /sys shows the host's devices.
func (ns *NS) Start(name string, args ...string) *Proc {
	ns.t.Helper()
	return ns.StartCmd(exec.Command(name, args...))
}

// StartCmd is Start for a prepared command, to set its environment, working
// directory or input. Stdout and stderr are replaced unless already set.
func (ns *NS) StartCmd(cmd *exec.Cmd) *Proc {
	ns.t.Helper()
	out := &lockedBuffer{}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}
	if err := ns.Do(cmd.Start); err != nil {
		ns.t.Fatalf("netns %s: start %s: %v", ns.Name, cmd.Path, err)
	}
	p := newProc(cmd, out)
	ns.t.Cleanup(func() { p.Stop() })
	return p
}

// lockedBuffer is a bytes.Buffer safe for the process's writer goroutines
// and a reading test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
