package host

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTrivialCall measures the host's fixed cost of one callback: a
// WAT module whose connect callback returns continue at once, so the time
// is instance pooling, the time limit and wazero's call overhead.
func BenchmarkTrivialCall(b *testing.B) {
	dir := b.TempDir()
	wasm := wat2wasm(b, watModule("", map[string]string{"connect": "(i32.const 0)"}))
	installPlugin(b, dir, "trivial", wasm, manifest("trivial", `phases = ["connect"]`))
	h, _ := newTestHost(b, dir, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		h.Connect(ctx, testConn)
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the process's user and system CPU time, which also
// counts the goroutine that wazero starts per call and the GC.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
