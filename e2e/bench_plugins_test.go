package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/internal/testenv"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

// bundledPlugins are the plugins shipped in the image, with the settings
// changed that would otherwise make a load test measure the limits rather
// than the cost: the rate limiter allows the whole run, and the lookups go
// to the test DNS server, which lists nobody.
var bundledPlugins = map[string][][2]string{
	"dnsbl":       nil,
	"spf":         nil,
	"headerrules": nil,
	"attachments": nil,
	"ratelimit":   {{"max_messages = 100", "max_messages = 100000000"}},
}

func installBundledPlugins(b *testing.B, dataDir string) {
	dir := filepath.Join(dataDir, "plugins")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	for name, edits := range bundledPlugins {
		src := filepath.Join("..", "plugins", name)
		wasm, err := plugintest.BuildOnce(context.Background(), src)
		if err != nil {
			b.Fatalf("build plugin %s: %v", name, err)
		}
		manifest, err := os.ReadFile(filepath.Join(src, name+".toml"))
		if err != nil {
			b.Fatal(err)
		}
		text := string(manifest)
		for _, e := range edits {
			if !strings.Contains(text, e[0]) {
				b.Fatalf("plugin %s: manifest no longer contains %q", name, e[0])
			}
			text = strings.Replace(text, e[0], e[1], 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o640); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(text), 0o640); err != nil {
			b.Fatal(err)
		}
	}
}

// profileDirEnv names the environment variable that makes
// BenchmarkGatewayPlugins write each gateway's CPU profile into a
// directory, as VARIANT-N.pprof, for `go tool pprof`.
const profileDirEnv = "LAMBGATE_BENCH_PROFILE_DIR"

// BenchmarkGatewayPlugins sends b.N 5 KB messages at concurrency 50 through
// a gateway without plugins and through one running the five bundled
// plugins, both relaying to one smtp-sink, to show what the plugins cost.
func BenchmarkGatewayPlugins(b *testing.B) {
	sink := startSMTPSink(b)
	dns := testenv.StartDNS(b, "")

	for _, variant := range []string{"none", "bundled"} {
		s := baseSettings(b, sink.addr)
		s.Inbound.MaxConnectionsPerIP = 100
		s.Inbound.MaxConnections = 200
		s.Internal.MaxConnections = 20
		s.Bounce.Resolver = dns.Addr()
		var prepare []func(string)
		if variant == "bundled" {
			prepare = append(prepare, func(dataDir string) { installBundledPlugins(b, dataDir) })
		}
		gw := startProfiledGateway(b, s, variant, prepare...)
		if variant == "bundled" && strings.Count(gw.Log(), `msg="plugin loaded"`) != len(bundledPlugins) {
			b.Fatalf("not every bundled plugin loaded:\n%s", gw.Log())
		}
		warmUp(b, sink, gw.Addr(), 50, 5<<10)
		b.Run("plugins="+variant, func(b *testing.B) {
			runLoad(b, sink, gw.Addr(), func() []int { return []int{gw.PID()} }, 50, 5<<10)
		})
		gw.Stop()
	}
}

// warmUpMessages go through each fresh gateway before it is measured.
// Plugin instances are created on demand, up to one per concurrent call,
// and their first calls initialise the guest. In runs of 2,000 messages
// without it, that start-up was about half of the plugins' measured cost.
const warmUpMessages = 1000

// warmUp sends warmUpMessages at the concurrency of the measured run and
// waits until the sink has them all.
func warmUp(b *testing.B, sink *countingSink, addr string, conc, size int) {
	b.Helper()
	before := sink.count()
	out, err := exec.Command("smtp-source", "-s", strconv.Itoa(conc), "-m", strconv.Itoa(warmUpMessages),
		"-l", strconv.Itoa(size), "-f", "bench@example.org", "-t", "bench@example.test", addr).CombinedOutput()
	if err == nil {
		err = sink.waitFor(before+warmUpMessages, time.Minute)
	}
	if err != nil {
		b.Fatalf("warm-up: %v\n%s", err, out)
	}
}

// startProfiledGateway starts the gateway as startGateway does, adding
// -cpuprofile when profileDirEnv is set. The profile covers the whole run
// of the process, start-up and plugin compilation included.
func startProfiledGateway(b *testing.B, s *settings.Settings, variant string, prepare ...func(string)) *testenv.Gateway {
	b.Helper()
	dir := os.Getenv(profileDirEnv)
	if dir == "" {
		return startGateway(b, s, prepare...)
	}
	dataDir := filepath.Join(b.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		b.Fatal(err)
	}
	for _, p := range prepare {
		p(dataDir)
	}
	profile, err := os.CreateTemp(dir, variant+"-*.pprof")
	if err != nil {
		b.Fatalf("create CPU profile in %s=%s: %v", profileDirEnv, dir, err)
	}
	profile.Close()
	return testenv.StartGateway(b, testenv.BuildGateway(b), dataDir, marshal(b, s), "-cpuprofile", profile.Name())
}
