package spool

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "LAMBGATE_SPOOL_CRASH_DIR"

// TestMain runs the crash child instead of the tests when the parent test
// sets crashChildEnv.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		runCrashChildLoop(dir)
		return
	}
	os.Exit(m.Run())
}

// runCrashChildLoop is the child process of
// TestKillDuringCommitKeepsCommitted. It commits messages in a loop from
// several goroutines and prints each queue id once Commit has returned,
// until it is killed.
func runCrashChildLoop(dir string) {
	s, err := Open(dir, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				env := testEnvelope("user@example.test")
				w, err := s.Create(env)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				w.Write(bodyFor(env.QueueID, 5000))
				if err := w.Commit(context.Background(), AreaQueue); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				// One write per line: pipe writes under 4 KiB are atomic.
				out.Lock()
				os.Stdout.WriteString("committed " + env.QueueID + "\n")
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// TODO: SIGKILL leaves the kernel's page cache intact, so this covers a
// process crash but not a power loss. A test that cuts the power of a VM
// (qemu) while committing is missing.
func TestKillDuringCommitKeepsCommitted(t *testing.T) {
	dir := t.TempDir()
	var committed []string
	for cycle := range 3 {
		ids := runCrashChild(t, dir, 150+cycle*37)
		if len(ids) == 0 {
			t.Fatalf("cycle %d: the child committed nothing", cycle)
		}
		committed = append(committed, ids...)

		s := openSpool(t, dir)
		envs, err := s.List(AreaQueue)
		if err != nil {
			t.Fatal(err)
		}
		listed := make(map[string]bool, len(envs))
		for _, e := range envs {
			listed[e.QueueID] = true
			// Every listed message, reported or not, must be whole.
			checkBody(t, s, AreaQueue, e.QueueID)
		}
		for _, id := range committed {
			if !listed[id] {
				t.Errorf("cycle %d: message %s was committed but is missing after the kill", cycle, id)
			}
		}
		t.Logf("cycle %d: %d reported committed in total, %d in the spool", cycle, len(committed), len(envs))
		s.Close()
	}
}

// runCrashChild starts the child on dir, kills it with SIGKILL once it
// reported at least count commits, and returns every id it reported.
func runCrashChild(t *testing.T, dir string, count int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// The kill is a safety net for a child that stops reporting: the test
	// then fails on the count, not on time.
	watchdog := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	var ids []string
	scanner := bufio.NewScanner(stdout)
	killed := false
	for scanner.Scan() {
		id, ok := strings.CutPrefix(scanner.Text(), "committed ")
		if !ok {
			continue
		}
		ids = append(ids, id)
		if len(ids) >= count && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d commits instead of being killed: %v", len(ids), err)
	}
	return ids
}
