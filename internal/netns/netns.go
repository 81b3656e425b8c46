// Package netns builds throwaway network namespaces for tests: namespaces
// joined by veth pairs, functions and processes run inside them, and packet
// captures. Everything a test creates is deleted in t.Cleanup, also when the
// test fails.
//
// It needs root, iproute2 ("ip") and, for captures, tcpdump. When one is
// missing the test fails rather than skips, because the tests that use it
// prove the appliance's routing and a skip would hide that they never ran.
// It must never touch the namespace the test runs in: every link, address,
// route and rule is made through a handle or command bound to a namespace
// this package created.
package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// counter makes namespace names unique within one test binary; the PID
// makes them unique between binaries running at the same time.
var counter atomic.Int64

// NS is one network namespace created for a test.
type NS struct {
	// Name is the name under /run/netns, usable with "ip netns exec".
	Name string

	t      testing.TB
	handle netns.NsHandle
	nl     *netlink.Handle
}

// New creates a namespace named lg-<label>-<pid>-<n>, brings its loopback
// up and registers its deletion with t.Cleanup. Deleting the namespace also
// deletes the veth ends inside it, and with them their peers.
func New(t testing.TB, label string) *NS {
	t.Helper()
	requireRoot(t)
	name := fmt.Sprintf("lg-%s-%d-%d", label, os.Getpid(), counter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("netns: ip netns add %s: %v: %s", name, err, out)
	}
	ns := &NS{Name: name, t: t}
	t.Cleanup(ns.delete)

	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("netns: open namespace %s: %v", name, err)
	}
	ns.handle = h
	ns.nl, err = netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netns: netlink handle in %s: %v", name, err)
	}
	ns.LinkUp("lo")
	return ns
}

func (ns *NS) delete() {
	if ns.nl != nil {
		ns.nl.Close()
	}
	if ns.handle.IsOpen() {
		ns.handle.Close()
	}
	if out, err := exec.Command("ip", "netns", "delete", ns.Name).CombinedOutput(); err != nil {
		ns.t.Errorf("netns: ip netns delete %s: %v: %s", ns.Name, err, out)
	}
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("netns: network namespace tests need root; run them as root (CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("netns: ip (iproute2) not found in PATH; install iproute2")
	}
}

// Netlink returns a netlink handle bound to the namespace. It is closed in
// cleanup.
func (ns *NS) Netlink() *netlink.Handle { return ns.nl }

// Handle returns the namespace's file handle, for netlink.NsFd and the like.
func (ns *NS) Handle() netns.NsHandle { return ns.handle }

// Do runs fn on an OS thread switched into the namespace. Sockets fn opens
// stay in the namespace and may be used from any goroutine afterwards, but
// goroutines fn starts run in the test's own namespace. If the thread cannot
// be switched back, it is left locked so that the runtime discards it.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns.handle); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", ns.Name, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("netns: leave %s: %w", ns.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// Command returns a command that runs name inside the namespace through
// "ip netns exec", which also mounts the namespace's own /sys.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(ns.Exec(), name)
	return exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
}

// Exec returns the command prefix that runs a program inside the namespace,
// {"ip", "netns", "exec", Name}, for helpers that take one, such as
// testenv.PostfixOptions.Exec.
func (ns *NS) Exec() []string { return []string{"ip", "netns", "exec", ns.Name} }

// Run runs a command inside the namespace, fails the test when it fails,
// and returns its combined output.
func (ns *NS) Run(name string, args ...string) string {
	ns.t.Helper()
	out, err := ns.Command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		ns.t.Fatalf("netns %s: %s %v: %v: %s", ns.Name, name, args, err, out)
	}
	return string(out)
}

// LinkUp sets a link of the namespace up, failing the test on error.
func (ns *NS) LinkUp(name string) {
	ns.t.Helper()
	link, err := ns.nl.LinkByName(name)
	if err != nil {
		ns.t.Fatalf("netns %s: link %s: %v", ns.Name, name, err)
	}
	if err := ns.nl.LinkSetUp(link); err != nil {
		ns.t.Fatalf("netns %s: set %s up: %v", ns.Name, name, err)
	}
}

// AddAddr adds CIDR addresses such as "192.0.2.1/24" to a link of the
// namespace and sets it up. For test peers only: the appliance's own links
// are configured by netcfg.
func (ns *NS) AddAddr(link string, cidrs ...string) {
	ns.t.Helper()
	l, err := ns.nl.LinkByName(link)
	if err != nil {
		ns.t.Fatalf("netns %s: link %s: %v", ns.Name, link, err)
	}
	for _, c := range cidrs {
		addr, err := netlink.ParseAddr(c)
		if err != nil {
			ns.t.Fatalf("netns %s: address %q: %v", ns.Name, c, err)
		}
		// IPv6 duplicate address detection would keep the address
		// unusable for about a second; test peers never collide.
		addr.Flags |= unix.IFA_F_NODAD
		if err := ns.nl.AddrAdd(l, addr); err != nil {
			ns.t.Fatalf("netns %s: add %s to %s: %v", ns.Name, c, link, err)
		}
	}
	ns.LinkUp(link)
}

// Veth creates a veth pair with one end, aName, in a and the other, bName,
// in b. Both ends stay down until configured. Link names must be at most 15
// bytes; they need not be unique across namespaces.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.handle)),
	}
	if err := a.nl.LinkAdd(veth); err != nil {
		t.Fatalf("netns: veth %s (%s) to %s (%s): %v", aName, a.Name, bName, b.Name, err)
	}
}

// SetSysctl writes a network sysctl of the namespace, such as
// "net.ipv4.ip_forward" = "1" for a router namespace. The file is opened
// from a thread inside the namespace, because /proc/sys/net shows the
// namespace of the task that opens it.
func (ns *NS) SetSysctl(name, value string) {
	ns.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	if err := ns.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		ns.t.Fatalf("netns %s: set %s = %s: %v", ns.Name, name, value, err)
	}
}

// Sysctl reads a network sysctl of the namespace.
func (ns *NS) Sysctl(name string) string {
	ns.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	var data []byte
	if err := ns.Do(func() (err error) {
		data, err = os.ReadFile(path)
		return err
	}); err != nil {
		ns.t.Fatalf("netns %s: read %s: %v", ns.Name, name, err)
	}
	return strings.TrimSpace(string(data))
}
