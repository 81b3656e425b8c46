package testenv_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambgate/lambgate/internal/testenv"
)

func fakeGatewaySettings(addr string) string {
	return fmt.Sprintf("hostname = \"gateway.test\"\n[inbound]\nlisten = [%q]\n", addr)
}

func TestGatewayRestartAndKill(t *testing.T) {
	t.Setenv(fakeGatewayEnv, "serve")
	dataDir := t.TempDir()
	addr := testenv.FreeAddr(t)

	gw := testenv.StartGateway(t, os.Args[0], dataDir, fakeGatewaySettings(addr))
	if gw.Addr() != addr {
		t.Errorf("Addr = %q, want %q", gw.Addr(), addr)
	}
	written, err := os.ReadFile(filepath.Join(dataDir, "lambgate.toml"))
	if err != nil {
		t.Fatalf("settings file: %v", err)
	}
	if !strings.Contains(string(written), addr) {
		t.Errorf("settings file lacks the listen address %s:\n%s", addr, written)
	}
	first := gw.PID()

	gw.Restart()
	second := gw.PID()
	if second == first {
		t.Errorf("PID after Restart = %d, the same as before", second)
	}
	if syscall.Kill(first, 0) == nil {
		t.Errorf("first process %d still exists after Restart", first)
	}

	gw.Kill()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s accepts connections after Kill", addr)
	}
	if log := gw.Log(); strings.Count(log, "fake gateway pid") != 2 {
		t.Errorf("log has %d starts, want 2:\n%s", strings.Count(log, "fake gateway pid"), log)
	}
}

func TestStartGatewayReportsEarlyExit(t *testing.T) {
	t.Setenv(fakeGatewayEnv, "exit")

	message := fatalMessage(t, func(tb testing.TB) {
		testenv.StartGateway(tb, os.Args[0], t.TempDir(), fakeGatewaySettings(testenv.FreeAddr(t)))
	})
	if !strings.Contains(message, "exited before it sent a greeting") {
		t.Errorf("failure message lacks the early exit:\n%s", message)
	}
	if !strings.Contains(message, "exiting before it listens") {
		t.Errorf("failure message lacks the gateway log:\n%s", message)
	}
}

func TestBuiltGatewayRelaysToPostfix(t *testing.T) {
	bin := testenv.BuildGateway(t)
	if again := testenv.BuildGateway(t); again != bin {
		t.Errorf("second BuildGateway = %q, want the cached %q", again, bin)
	}
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Users: []string{"alice@example.test"}})
	addr := testenv.FreeAddr(t)
	settingsTOML := fmt.Sprintf(`hostname = "gateway.test"
[inbound]
listen = [%q]
# No SPF lookups: the test must not query the machine's resolver.
spf = false
[bounce]
require_spf_pass = false
resolver = "127.0.0.1:9"
[domains]
relay = ["example.test"]
[internal]
server = %q
[admin]
listen = %q
`, addr, pf.Addr(), testenv.FreeAddr(t))

	gw := testenv.StartGateway(t, bin, t.TempDir(), settingsTOML)
	out, code := testenv.Swaks(t, "--server", gw.Addr(), "--from", "sender@sender.test",
		"--to", "alice@example.test", "--header", "Subject: through the gateway")
	if code != 0 {
		t.Fatalf("swaks to the gateway: exit code %d, want 0:\n%s\ngateway log:\n%s", code, out, gw.Log())
	}
	msgs := pf.WaitMessages(t, "alice@example.test", 1, 30*time.Second)
	if got := msgs[0].Header.Get("Subject"); got != "through the gateway" {
		t.Errorf("Subject = %q, want %q", got, "through the gateway")
	}

	gw.Stop()
	if conn, err := net.DialTimeout("tcp", gw.Addr(), time.Second); err == nil {
		conn.Close()
		t.Errorf("%s accepts connections after Stop", gw.Addr())
	}
}
