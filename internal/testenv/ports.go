package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// minTestPort is the lowest port that FreeAddr hands out, above the ports
// of common services.
const minTestPort = 10000

// ephemeralRangeFile is the Linux file with the range of ports that the
// kernel picks the source port of an outgoing connection from, and the
// port of a bind to port 0.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// givenPorts are the ports that FreeAddr returned in this process.
var givenPorts struct {
	sync.Mutex
	ports map[int]bool
}

// FreeAddr returns a 127.0.0.1 address with a TCP port that was free when
// the function returned. The port lies outside the kernel's ephemeral port
// range, so no outgoing connection can take it, and it is safe to reuse
// across a gateway restart. FreeAddr never returns the same port twice in
// one process. Another process may still bind the port before the caller
// does; the Start functions that pick ports themselves retry.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

func freeAddrOn(t testing.TB, host string) string {
	t.Helper()
	low, high, err := ephemeralPortRange()
	if err != nil {
		t.Fatalf("find a free TCP port on %s: %v", host, err)
	}
	// The candidates are the ports from minTestPort up that lie below or
	// above the range. A random pick keeps parallel test processes apart.
	below := max(0, low-minTestPort)
	above := max(0, 65535-max(high+1, minTestPort)+1)
	if below+above < 100 {
		t.Fatalf("find a free TCP port on %s: the ephemeral port range %d-%d in %s leaves fewer than 100 ports from %d up: narrow it with sysctl net.ipv4.ip_local_port_range",
			host, low, high, ephemeralRangeFile, minTestPort)
	}

	givenPorts.Lock()
	defer givenPorts.Unlock()
	if givenPorts.ports == nil {
		givenPorts.ports = make(map[int]bool)
	}
	var lastErr error
	for range 1000 {
		index := rand.IntN(below + above)
		port := minTestPort + index
		if index >= below {
			port = max(high+1, minTestPort) + index - below
		}
		if givenPorts.ports[port] {
			continue
		}
		// The bind shows that no listener holds the port now.
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		l.Close()
		givenPorts.ports[port] = true
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	t.Fatalf("find a free TCP port on %s outside the ephemeral port range %d-%d: 1000 random ports were in use or given out, last error: %v",
		host, low, high, lastErr)
	return ""
}

// ephemeralPortRange reads the kernel's ephemeral port range. Other
// systems than Linux keep it elsewhere and get an error.
func ephemeralPortRange() (low, high int, err error) {
	data, err := os.ReadFile(ephemeralRangeFile)
	if err != nil {
		return 0, 0, fmt.Errorf("read the ephemeral port range: %w", err)
	}
	return parsePortRange(string(data))
}

// parsePortRange parses the two ports of ip_local_port_range, such as
// "32768\t60999\n".
func parsePortRange(text string) (low, high int, err error) {
	fields := strings.Fields(text)
	if len(fields) != 2 {
		return 0, 0, fmt.Errorf("invalid %s %q: want two ports", ephemeralRangeFile, text)
	}
	low, errLow := strconv.Atoi(fields[0])
	high, errHigh := strconv.Atoi(fields[1])
	if errLow != nil || errHigh != nil || low < 1 || low > high || high > 65535 {
		return 0, 0, fmt.Errorf("invalid %s %q: want two ports, the lower first", ephemeralRangeFile, text)
	}
	return low, high, nil
}
