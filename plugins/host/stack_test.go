package host

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// recursionWAT recurses without end at connect. wazero v1.12.0 checks the
// time limit only at loop headers, so nothing stops this call before its
// stack reaches wazero's ceiling of 50,000,000 bytes. The stack doubles
// from 10 KiB to about 84 MB, and the copy at the last doubling holds
// about 126 MB at once.
var recursionWAT = watModule(`  (func $down (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))`, map[string]string{
	"connect": `(drop (call $down (i32.const 0))) (i32.const 0)`,
})

// stackPeakBytes is the most process memory one overflowing call may add:
// the 84 MB and 42 MB stacks of the last doubling, and the smaller ones
// that the GC has not freed yet. This test measured about 165 MB per
// running call on amd64.
const stackPeakBytes = 192 << 20

// TestDeepRecursionMemoryBounded sends more concurrent deeply recursing
// calls than the host runs at once. The process's peak resident memory
// must grow by at most one overflowing stack per running call, and each
// call must fail under the plugin's failure mode. Without the bound, these
// 8 calls raised the peak by 954 MiB.
func TestDeepRecursionMemoryBounded(t *testing.T) {
	const running, sessions = 2, 8
	dir := t.TempDir()
	installPlugin(t, dir, "deep", wat2wasm(t, recursionWAT),
		manifest("deep", `phases = ["connect"]`, `time_limit = "250ms"`, `failure_mode = "closed"`))
	h, logs := newTestHost(t, dir, func(c *Config) { c.MaxConcurrentCalls = running })

	resetPeakRSS(t)
	before := peakRSS(t)
	start := time.Now()
	var wg sync.WaitGroup
	verdicts := make([]filter.Verdict, sessions)
	for i := range sessions {
		wg.Go(func() { verdicts[i] = h.Connect(context.Background(), testConn) })
	}
	wg.Wait()
	growth := peakRSS(t) - before
	t.Logf("%d calls in %v; peak RSS grew by %d MiB", sessions, time.Since(start).Round(time.Millisecond), growth>>20)

	if limit := int64(running) * stackPeakBytes; growth > limit && !raceEnabled {
		t.Errorf("peak RSS grew by %d MiB, want at most %d MiB for %d running calls", growth>>20, limit>>20, running)
	}
	for i, v := range verdicts {
		if v.Action != filter.Tempfail || v.Code != 451 || v.Filter != "deep" {
			t.Errorf("call %d: verdict %+v, want 451 tempfail from deep (failing closed)", i, v)
		}
	}
	st := statsFor(t, h, "deep")
	if n := st.Failures[FailTrap.String()] + st.Failures[FailTimeLimit.String()]; n != sessions {
		t.Errorf("failures %v, want %d traps or time limits", st.Failures, sessions)
	}
	if !strings.Contains(logs.String(), "stack overflow") {
		t.Errorf("log does not give the stack overflow as the reason:\n%s", logs)
	}
}

// resetPeakRSS restarts the kernel's peak resident set count (VmHWM) of
// this process, so that memory taken by earlier tests does not hide the
// growth under test.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS through /proc/self/clear_refs (Linux 4.0 or later): %v", err)
	}
}

// peakRSS returns the process's peak resident set size in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM line in /proc/self/status")
	return 0
}
