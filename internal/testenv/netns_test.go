package testenv_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lambgate/lambgate/internal/netns"
	"github.com/lambgate/lambgate/internal/testenv"
)

// TestComponentsRunInsideNamespace runs Postfix, smtp-sink and the DNS
// server inside a namespace of their own, on 127.0.0.1 of that namespace,
// where nothing from the test's namespace can reach them.
func TestComponentsRunInsideNamespace(t *testing.T) {
	ns := netns.New(t, "testenv")

	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		Addr:  "127.0.0.1:2525",
		Exec:  ns.Exec(),
		Users: []string{"alice@example.test"},
	})
	out, code := testenv.SwaksExec(t, ns.Exec(), "--server", pf.Addr(),
		"--from", "sender@sender.test", "--to", "alice@example.test")
	if code != 0 {
		t.Fatalf("swaks to Postfix in %s: exit code %d, want 0:\n%s\nmaillog:\n%s", ns.Name, code, out, pf.Log())
	}
	pf.WaitMessages(t, "alice@example.test", 1, 10*time.Second)

	pf.Stop()
	pf.Start()
	if _, code := testenv.SwaksExec(t, ns.Exec(), "--server", pf.Addr(), "--quit-after", "CONNECT"); code != 0 {
		t.Errorf("Postfix in %s does not greet after Stop and Start: swaks exit code %d", ns.Name, code)
	}

	sink := testenv.StartSinkWith(t, testenv.SinkOptions{Addr: "127.0.0.1:2526", Exec: ns.Exec()})
	out, code = testenv.SwaksExec(t, ns.Exec(), "--server", sink.Addr(), "--helo", "client.test",
		"--from", "sender@sender.test", "--to", "bob@example.test")
	if code != 0 {
		t.Fatalf("swaks to smtp-sink in %s: exit code %d, want 0:\n%s\nsink output:\n%s", ns.Name, code, out, sink.Log())
	}
	if m := sink.WaitMessages(t, 1, 10*time.Second)[0]; m.HELO != "client.test" {
		t.Errorf("sink HELO = %q, want client.test", m.HELO)
	}

	server := testenv.StartDNSListeners(t, ns.ListenPacket("udp", "127.0.0.1:53"), ns.Listen("tcp", "127.0.0.1:53"))
	server.SetMX("sender.test", testenv.MX{Preference: 10, Host: "mx.sender.test"})
	var resp *dns.Msg
	err := ns.Do(func() error {
		req := new(dns.Msg)
		req.SetQuestion("sender.test.", dns.TypeMX)
		var err error
		resp, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(req, server.Addr())
		return err
	})
	if err != nil {
		t.Fatalf("MX query inside %s: %v", ns.Name, err)
	}
	if len(resp.Answer) != 1 {
		t.Fatalf("MX query inside %s: %d answers, want 1", ns.Name, len(resp.Answer))
	}
	if got := server.Queries(); !slices.Equal(got, []string{"sender.test. MX"}) {
		t.Errorf("Queries = %v, want [sender.test. MX]", got)
	}
}

func TestGatewayExecRunsInsideNamespace(t *testing.T) {
	t.Setenv(fakeGatewayEnv, "serve")
	ns := netns.New(t, "testenv")
	addr := "127.0.0.1:2525"

	gw := testenv.StartGatewayExec(t, ns.Exec(), os.Args[0], t.TempDir(), fakeGatewaySettings(addr))
	if _, code := testenv.SwaksExec(t, ns.Exec(), "--server", addr, "--quit-after", "CONNECT"); code != 0 {
		t.Errorf("gateway in %s does not greet: swaks exit code %d\nlog:\n%s", ns.Name, code, gw.Log())
	}

	first := gw.PID()
	gw.Restart()
	if gw.PID() == first {
		t.Errorf("PID after Restart = %d, the same as before", first)
	}
	if _, code := testenv.SwaksExec(t, ns.Exec(), "--server", addr, "--quit-after", "CONNECT"); code != 0 {
		t.Errorf("gateway in %s does not greet after Restart: swaks exit code %d\nlog:\n%s", ns.Name, code, gw.Log())
	}
	gw.Kill()
}
