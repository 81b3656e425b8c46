package host

import (
	"context"
	"testing"
)

// TestGoGuestHeapStaysBounded runs 20,000 calls that each allocate 64 KiB
// in one Go guest instance. Without the SDK's yields the guest's GC
// workers stop running between export calls and memory grows by hundreds
// of MiB (783 MB after 20,000 calls, measured with wazero v1.12.0 and Go
// 1.26 on amd64).
func TestGoGuestHeapStaysBounded(t *testing.T) {
	dir := t.TempDir()
	installPlugin(t, dir, "gc", buildGoGuest(t, "plugins/host/testdata/gogc"),
		manifest("gc", `phases = ["connect"]`, `time_limit = "1s"`, "memory_limit_mb = 1024"))
	h, _ := newTestHost(t, dir, func(c *Config) {
		c.CacheDir = wazeroCacheDir
		c.MaxInstances = 1
	})

	for i := range 20_000 {
		if v := h.Connect(context.Background(), testConn); v.Action != 0 {
			t.Fatalf("call %d: verdict %+v, want continue", i, v)
		}
	}

	p := h.set.Load().plugins[0]
	inst := <-p.idle
	defer func() { p.idle <- inst }()
	const maxBytes = 32 << 20
	if size := inst.mod.Memory().Size(); size > maxBytes {
		t.Errorf("guest memory %d MiB after 20,000 calls, want at most %d MiB", size>>20, maxBytes>>20)
	}
	t.Logf("guest memory after 20,000 calls: %d MiB", inst.mod.Memory().Size()>>20)
	if n := statsFor(t, h, "gc").InstancesCreated; n != 1 {
		t.Errorf("%d instances created, want 1 (a memory trap would replace it)", n)
	}
}
