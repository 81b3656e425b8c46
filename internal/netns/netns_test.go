package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// pair builds two namespaces joined by a veth pair with 198.51.100.1 and
// 198.51.100.2.
func pair(t *testing.T) (a, b *NS) {
	a, b = New(t, "a"), New(t, "b")
	Veth(t, a, "va", b, "vb")
	a.AddAddr("va", "198.51.100.1/24")
	b.AddAddr("vb", "198.51.100.2/24")
	return a, b
}

func TestVethCarriesTCPBetweenNamespaces(t *testing.T) {
	a, b := pair(t)

	var ln net.Listener
	if err := b.Do(func() (err error) {
		ln, err = net.Listen("tcp", "198.51.100.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "hello")
		c.Close()
	}()

	var got []byte
	if err := a.Do(func() error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Errorf("read %q, want hello", got)
	}
}

func TestListenerOutsideDoIsNotInNamespace(t *testing.T) {
	ns := New(t, "host")
	// The address exists only inside ns, so binding it from the test's own
	// namespace must fail: Do must not leak the namespace to other threads.
	ns.AddAddr("lo", "203.0.113.9/32")
	if ln, err := net.Listen("tcp", "203.0.113.9:0"); err == nil {
		ln.Close()
		t.Fatal("bound 203.0.113.9 outside the namespace")
	}
	if err := ns.Do(func() error {
		ln, err := net.Listen("tcp", "203.0.113.9:0")
		if err == nil {
			ln.Close()
		}
		return err
	}); err != nil {
		t.Errorf("bind inside the namespace: %v", err)
	}
}

func TestStartRunsProcessInNamespace(t *testing.T) {
	ns := New(t, "proc")
	p := ns.Start("sleep", "30")

	want, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := netns.GetFromPid(p.PID)
	if err != nil {
		t.Fatalf("namespace of PID %d: %v", p.PID, err)
	}
	defer got.Close()
	if !got.Equal(want) {
		t.Errorf("PID %d runs in %s, want %s", p.PID, got.UniqueId(), want.UniqueId())
	}
}

func TestCaptureSeesPacketsOnVeth(t *testing.T) {
	a, b := pair(t)
	capture := b.Capture("vb", "tcp port 9")
	// Nothing listens on port 9, so the kernel replies to the SYN with a reset.
	if err := a.Do(func() error {
		c, err := net.Dial("tcp", "198.51.100.2:9")
		if err == nil {
			c.Close()
			return fmt.Errorf("connected to port 9, want a reset")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := capture.WaitFor(10*time.Second, "Flags [R"); !ok {
		t.Errorf("no reset captured within 10s")
	}
	lines := capture.Stop()

	syn, rst := 0, 0
	for _, l := range lines {
		if strings.Contains(l, "198.51.100.1.") && strings.Contains(l, "> 198.51.100.2.9: Flags [S]") {
			syn++
		}
		if strings.Contains(l, "198.51.100.2.9 > 198.51.100.1.") && strings.Contains(l, "Flags [R") {
			rst++
		}
	}
	if syn != 1 {
		t.Errorf("captured %d SYNs to port 9, want 1:\n%s", syn, strings.Join(lines, "\n"))
	}
	if rst != 1 {
		t.Errorf("captured %d resets from port 9, want 1:\n%s", rst, strings.Join(lines, "\n"))
	}
}

func TestExecPrefixRunsInNamespace(t *testing.T) {
	ns := New(t, "prefix")
	ns.AddAddr("lo", "203.0.113.7/32")
	argv := append(ns.Exec(), "ip", "-o", "addr", "show", "dev", "lo")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", argv, err, out)
	}
	if !strings.Contains(string(out), "203.0.113.7/32") {
		t.Errorf("loopback in the namespace lacks 203.0.113.7:\n%s", out)
	}
}

func TestStopReturnsExitStatus(t *testing.T) {
	ns := New(t, "exit")
	p := ns.Start("sh", "-c", "echo started; exit 3")
	<-p.Exited()
	err := p.Stop()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Stop = %v, want exit status 3", err)
	}
	if got := p.Output(); got != "started\n" {
		t.Errorf("output = %q, want %q", got, "started\n")
	}
}

func TestListenPacketInNamespace(t *testing.T) {
	a, b := pair(t)
	pc := b.ListenPacket("udp", "198.51.100.2:5353")
	a.AddAddr("va", "198.51.100.3/24")
	c, err := a.Dial(context.Background(), "udp", "198.51.100.3", "198.51.100.2:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "query" {
		t.Errorf("read %q, want query", buf[:n])
	}
	if ip := from.(*net.UDPAddr).IP.String(); ip != "198.51.100.3" {
		t.Errorf("datagram from %s, want 198.51.100.3", ip)
	}
}

func TestCleanupDeletesNamespaceAndProcess(t *testing.T) {
	var name string
	var pid int
	t.Run("inner", func(t *testing.T) {
		ns := New(t, "gone")
		name = ns.Name
		pid = ns.Start("sleep", "30").PID
	})
	if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after cleanup (stat: %v)", name, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		t.Errorf("process %d still exists after cleanup (stat: %v)", pid, err)
	}
}

func TestWaitTCPSeesStartedServer(t *testing.T) {
	a, b := pair(t)
	if err := a.WaitTCP("198.51.100.2:2525", 100*time.Millisecond); err == nil {
		t.Fatal("WaitTCP succeeded with no server listening")
	}
	ln := b.Listen("tcp", "198.51.100.2:2525")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := a.WaitTCP("198.51.100.2:2525", 10*time.Second); err != nil {
		t.Error(err)
	}
}

func TestDialUsesSourceAddress(t *testing.T) {
	a, b := pair(t)
	a.AddAddr("va", "198.51.100.3/24")
	ln := b.Listen("tcp", "198.51.100.2:0")
	remote := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			remote <- err.Error()
			return
		}
		remote <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	c, err := a.Dial(context.Background(), "tcp", "198.51.100.3", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-remote; got != "198.51.100.3" {
		t.Errorf("server saw the connection from %s, want 198.51.100.3", got)
	}
}

func TestSysctlStaysInNamespace(t *testing.T) {
	ns := New(t, "sysctl")
	// A device sysctl of a link that exists only inside the namespace: if
	// SetSysctl wrote in the test's own namespace, the file would be
	// missing and the host would stay untouched.
	link := fmt.Sprintf("lg%d", os.Getpid())
	Veth(t, ns, link, ns, link+"p")
	key := "net.ipv4.conf." + link + ".forwarding"
	if got := ns.Sysctl(key); got != "0" {
		t.Fatalf("%s = %s before the change, want 0", key, got)
	}
	ns.SetSysctl(key, "1")
	if got := ns.Sysctl(key); got != "1" {
		t.Errorf("%s = %s, want 1", key, got)
	}
	out := ns.Run("cat", "/proc/sys/net/ipv4/conf/"+link+"/forwarding")
	if strings.TrimSpace(out) != "1" {
		t.Errorf("%s read by a process in the namespace = %q, want 1", key, out)
	}
}
