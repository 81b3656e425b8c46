package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
	"github.com/lambgate/lambgate/sdk/plugintest"
)

const probeDir = "testdata/plugins/e2eprobe"

// installProbe writes the e2eprobe plugin into the data directory's plugin
// folder, with version as its manifest version.
func installProbe(t testing.TB, dataDir, version string) {
	t.Helper()
	wasm, err := plugintest.BuildOnce(context.Background(), probeDir)
	if err != nil {
		t.Fatalf("build e2eprobe plugin: %v", err)
	}
	manifest, err := os.ReadFile(filepath.Join(probeDir, "e2eprobe.toml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest = []byte(strings.Replace(string(manifest), `version = "1.0.0"`, `version = "`+version+`"`, 1))

	dir := filepath.Join(dataDir, "plugins")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Module first, each file renamed into place, as an administrator's
	// upload would be, so the host never sees half a file.
	for _, f := range []struct {
		name string
		data []byte
	}{{"e2eprobe.wasm", wasm}, {"e2eprobe.toml", manifest}} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPluginVerdictsThroughGateway(t *testing.T) {
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	var dataDir string
	gw := startGateway(t, baseSettings(t, pf.Addr()), func(dir string) {
		dataDir = dir
		installProbe(t, dir, "1.0.0")
	})

	out, code := testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "blocked@example.test")
	if code != 24 || !strings.Contains(out, "550 5.7.1 Recipient blocked by the e2e probe") {
		t.Errorf("blocked recipient: swaks exit %d, want 24 with the plugin's reply:\n%s", code, out)
	}

	out, code = testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "alice@example.test",
		"--header", "Subject: please quarantine me")
	if code != 0 {
		t.Fatalf("quarantined message: swaks exit %d:\n%s", code, out)
	}
	waitLog(t, gw, "status=quarantined", 10*time.Second)
	held, err := os.ReadDir(filepath.Join(dataDir, "spool", "quarantine"))
	if err != nil {
		t.Fatal(err)
	}
	if len(held) == 0 {
		t.Error("quarantine area is empty after a quarantine verdict")
	}

	out, code = testenv.Swaks(t, "--server", gw.Addr(),
		"--from", "sender@example.org", "--to", "alice@example.test",
		"--header", "Subject: please tag me")
	if code != 0 {
		t.Fatalf("tagged message: swaks exit %d:\n%s", code, out)
	}
	msgs := pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)
	if got := msgs[0].Header.Get("X-Lambgate-Probe"); got != "tagged" {
		t.Errorf("X-Lambgate-Probe = %q at Postfix, want \"tagged\"", got)
	}
	if !strings.Contains(msgs[0].Header.Get("Subject"), "tag me") {
		t.Errorf("Postfix got %q, want the tagged message", msgs[0].Header.Get("Subject"))
	}
	time.Sleep(time.Second)
	if c := pf.Count(); c != 1 {
		t.Errorf("Postfix holds %d messages, want only the tagged one", c)
	}
}

func TestPluginHotReloadUnderLoad(t *testing.T) {
	source, err := exec.LookPath("smtp-source")
	if err != nil {
		t.Fatalf("smtp-source not found (Debian package postfix): %v", err)
	}
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{})
	var dataDir string
	gw := startGateway(t, baseSettings(t, pf.Addr()), func(dir string) {
		dataDir = dir
		installProbe(t, dir, "1.0.0")
	})

	// Enough messages to keep smtp-source busy past two reloads even at a
	// few thousand messages per second.
	const messages = 10000
	load := exec.Command(source, "-s", "10", "-m", fmt.Sprint(messages), "-l", "2000",
		"-f", "load@example.org", "-t", "alice@example.test", gw.Addr())
	out := &strings.Builder{}
	load.Stdout, load.Stderr = out, out
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	// Replace the plugin while the load runs. The host polls its
	// directory every 2 seconds and swaps in each new version between
	// calls.
	for i := 1; i <= 2; i++ {
		time.Sleep(1200 * time.Millisecond)
		installProbe(t, dataDir, fmt.Sprintf("1.0.%d", i))
	}
	// Let the host's next directory poll (every 2 seconds) see the last
	// version while the load still runs.
	time.Sleep(2100 * time.Millisecond)
	loadsDuringRun := strings.Count(gw.Log(), `msg="plugin loaded" plugin=e2eprobe`)
	select {
	case <-loadDone:
		t.Fatal("smtp-source finished before the plugin was replaced: raise the message count")
	default:
	}
	if err := <-loadDone; err != nil {
		t.Fatalf("smtp-source failed during the reloads: %v\n%s", err, out)
	}

	msgs := pf.WaitMessages(t, "alice@example.test", messages, 180*time.Second)
	if len(msgs) != messages {
		t.Errorf("Postfix received %d messages, want %d", len(msgs), messages)
	}
	// The first load is at start; at least one more must have happened
	// while smtp-source was still sending.
	if loadsDuringRun < 2 {
		t.Errorf("plugin loaded %d times before the load ended, want at least 2:\n%s",
			loadsDuringRun, tail(gw.Log(), 30))
	}
	if strings.Contains(gw.Log(), "status=quarantined") {
		t.Error("a load message was quarantined: a wrong verdict during reload")
	}
}
