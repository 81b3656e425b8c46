package netns

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM in cleanup.
const stopGrace = 5 * time.Second

// Proc is a process started inside a namespace.
type Proc struct {
	Cmd    *exec.Cmd
	PID    int
	output *lockedBuffer
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.output.String() }

// Start starts a command inside the namespace and registers its end with
// t.Cleanup: SIGTERM, then SIGKILL if it has not exited after a grace
// period. Cleanups run in reverse order, so processes started after New end
// before their namespace is deleted.
//
// The process is forked from a thread already inside the namespace, so it
// is there from its first instruction and PID is the command itself. Unlike
// Command, it shares the test's mount namespace and so sees the host's /sys.
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
	p := &Proc{Cmd: cmd, PID: cmd.Process.Pid, output: out}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	ns.t.Cleanup(func() { stopProcess(p, done) })
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

func stopProcess(p *Proc, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopGrace):
		p.Cmd.Process.Kill()
		<-done
	}
}
