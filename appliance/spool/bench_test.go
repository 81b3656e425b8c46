package spool

import (
	"context"
	"testing"
)

// BenchmarkCommitParallel commits 5 KB messages from 32 goroutines per
// core on the file system of the test's temporary directory (set TMPDIR to
// measure another disk).
func BenchmarkCommitParallel(b *testing.B) {
	s := openSpool(b, b.TempDir())
	body := bodyFor("benchmark", 5000)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w, err := s.Create(testEnvelope("user@example.test"))
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := w.Write(body); err != nil {
				b.Error(err)
				return
			}
			if err := w.Commit(context.Background(), AreaQueue); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
