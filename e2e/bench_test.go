package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

// BenchmarkRelayVsPostfix sends b.N messages with smtp-source into the
// gateway and into Postfix configured as a relay, both forwarding to one
// smtp-sink with durable queues, and reports messages per second relayed,
// CPU milliseconds per message and peak RSS of the system under test. Run it
// through `make bench`, which fixes b.N and writes docs/benchmarks.md.
func BenchmarkRelayVsPostfix(b *testing.B) {
	sink := startSMTPSink(b)
	pf := testenv.StartPostfix(b, testenv.PostfixOptions{RelayTo: sink.addr})
	s := baseSettings(b, sink.addr)
	s.Inbound.MaxConnectionsPerIP = 100
	s.Inbound.MaxConnections = 200
	s.Internal.MaxConnections = 20
	gw := startGateway(b, s)

	systems := []struct {
		name string
		addr string
		pids func() []int
	}{
		{"lambgate", gw.Addr(), func() []int { return []int{gw.PID()} }},
		{"postfix", pf.Addr(), pf.PIDs},
	}
	for _, size := range []int{5 << 10, 100 << 10} {
		for _, conc := range []int{1, 10, 50} {
			for _, sys := range systems {
				name := fmt.Sprintf("size=%dKB/conc=%d/%s", size>>10, conc, sys.name)
				b.Run(name, func(b *testing.B) {
					runLoad(b, sink, sys.addr, sys.pids, conc, size)
				})
			}
		}
	}
}

// runLoad sends b.N messages to addr and times them until the sink has
// received every one, so that a system which accepts fast but relays
// later pays for its backlog in its own run and not in the next one's.
func runLoad(b *testing.B, sink *countingSink, addr string, pids func() []int, conc, size int) {
	source, err := exec.LookPath("smtp-source")
	if err != nil {
		b.Fatalf("smtp-source not found (Debian package postfix): %v", err)
	}
	before := cpuTicks(b, pids())
	stop := make(chan struct{})
	var peak int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if rss := totalRSS(pids()); rss > peak {
				peak = rss
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	relayedBefore := sink.count()
	b.ResetTimer()
	start := time.Now()
	out, err := exec.Command(source, "-s", strconv.Itoa(conc), "-m", strconv.Itoa(b.N),
		"-l", strconv.Itoa(size), "-f", "bench@example.org", "-t", "bench@example.test", addr).CombinedOutput()
	if err == nil {
		err = sink.waitFor(relayedBefore+int64(b.N), 2*time.Minute)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatalf("smtp-source: %v\n%s", err, out)
	}

	ticks := cpuTicks(b, pids()) - before
	// NOTE: CPU is counted only for processes alive at the end; Postfix
	// children that exited during the run are missed, so its figure is a
	// lower bound.
	cpuMS := float64(ticks) * 1000 / float64(clockTicks) / float64(b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(cpuMS, "cpu-ms/msg")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on Linux.
const clockTicks = 100

// cpuTicks sums utime, stime, cutime and cstime of pids: the children terms
// count Postfix services that exited and were reaped by the master.
func cpuTicks(b *testing.B, pids []int) int64 {
	var total int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		for _, i := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(fields[i], 10, 64)
			total += v
		}
	}
	return total
}

func totalRSS(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if kb, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
				total += v << 10
			}
		}
		f.Close()
	}
	return total
}

// countingSink is Debian's smtp-sink as the final destination of both
// relays, with its running counter (-c) read to know when a run's
// messages have all arrived.
type countingSink struct {
	addr     string
	mu       sync.Mutex
	messages int64
	changed  chan struct{}
}

func (s *countingSink) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages
}

// waitFor waits until the sink has received n messages in all.
func (s *countingSink) waitFor(n int64, limit time.Duration) error {
	deadline := time.After(limit)
	for {
		s.mu.Lock()
		got, changed := s.messages, s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("smtp-sink received %d messages after %v, expected %d", got, limit, n)
		}
	}
}

// startSMTPSink starts the sink and follows its counter line, which
// smtp-sink rewrites after every message as "sess=N quit=N mesg=N\r".
func startSMTPSink(b *testing.B) *countingSink {
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		b.Fatalf("smtp-sink not found (Debian package postfix): %v", err)
	}
	s := &countingSink{addr: testenv.FreeAddr(b), changed: make(chan struct{})}
	cmd := exec.Command(bin, "-c", "-u", "nobody", s.addr, "1024")
	cmd.Dir = filepath.Clean(b.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go s.follow(stdout)
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return s
}

func (s *countingSink) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		_, value, ok := strings.Cut(sc.Text(), "mesg=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.Fields(value)[0], 10, 64)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if n > s.messages {
			s.messages = n
			close(s.changed)
			s.changed = make(chan struct{})
		}
		s.mu.Unlock()
	}
}
