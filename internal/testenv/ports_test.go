package testenv_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lambgate/lambgate/internal/testenv"
)

// An outgoing connection takes its source port from the ephemeral range,
// so a port from there could be lost between a gateway's kill and restart.
func TestFreeAddrOutsideEphemeralRange(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("no ephemeral port range to compare with: %v", err)
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		t.Fatalf("ip_local_port_range %q, want two ports", data)
	}
	low, errLow := strconv.Atoi(fields[0])
	high, errHigh := strconv.Atoi(fields[1])
	if errLow != nil || errHigh != nil {
		t.Fatalf("ip_local_port_range %q, want two numbers", data)
	}

	seen := make(map[string]bool)
	for range 300 {
		addr := testenv.FreeAddr(t)
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("FreeAddr returned %q: %v", addr, err)
		}
		if host != "127.0.0.1" {
			t.Errorf("FreeAddr returned host %q, want 127.0.0.1", host)
		}
		port, err := strconv.Atoi(portText)
		if err != nil {
			t.Fatalf("FreeAddr returned port %q: %v", portText, err)
		}
		if port >= low && port <= high {
			t.Errorf("FreeAddr returned port %d, inside the ephemeral range %d-%d", port, low, high)
		}
		if port < 10000 {
			t.Errorf("FreeAddr returned port %d, want 10000 or more", port)
		}
		if seen[addr] {
			t.Errorf("FreeAddr returned %s twice", addr)
		}
		seen[addr] = true
	}
}

func TestFreeAddrIsBindable(t *testing.T) {
	addr := testenv.FreeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the address from FreeAddr: %v", err)
	}
	l.Close()
}
