package host

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Resolver is the appliance's DNS resolver as plugins see it; *net.Resolver
// implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// hDNSLookup resolves a name and writes the answers, one per line: A and
// AAAA as addresses, MX as "preference host", TXT as each record's strings
// joined. A missing name or record type returns statusNotFound; any other
// failure, the time limit included, returns statusTempFailure.
func hDNSLookup(ctx context.Context, c *call, mod api.Module, stack []uint64) {
	rtype := int32(stack[0])
	name := c.readString(mod, u32(stack[1]), u32(stack[2]))
	buf, capacity := u32(stack[3]), u32(stack[4])
	p := c.plugin
	if !p.man.grants.dns {
		c.abort("dns_lookup without the \"dns\" grant in the manifest")
	}
	if p.resolver == nil {
		stack[0] = encI32(statusNotSupported)
		return
	}
	if name == "" || len(name) > 253 {
		stack[0] = encI32(statusBadArgument)
		return
	}
	p.stats.dnsLookups.Add(1)

	// The lookup ends at the call's deadline. The call gives its slot back
	// while it waits, so that a slow resolver does not hold every slot, and
	// takes one again before its guest code goes on.
	// NOTE: a waiting call keeps the stack it has, so a plugin with the dns
	// grant that recurses deeply and then looks names up in many
	// concurrent calls can hold more stack memory than callSlots bounds.
	ctx, cancel := context.WithDeadline(ctx, c.deadline)
	defer cancel()
	c.releaseSlot()
	defer func() {
		c.plugin.calls.reacquire()
		c.holdsSlot = true
	}()

	var lines []string
	var err error
	switch rtype {
	case dnsA, dnsAAAA:
		network := "ip4"
		if rtype == dnsAAAA {
			network = "ip6"
		}
		var addrs []netip.Addr
		addrs, err = p.resolver.LookupNetIP(ctx, network, name)
		for _, a := range addrs {
			lines = append(lines, a.Unmap().String())
		}
	case dnsTXT:
		var txts []string
		txts, err = p.resolver.LookupTXT(ctx, name)
		for _, t := range txts {
			lines = append(lines, strings.ReplaceAll(t, "\n", " "))
		}
	case dnsMX:
		var mxs []*net.MX
		mxs, err = p.resolver.LookupMX(ctx, name)
		for _, mx := range mxs {
			lines = append(lines, strconv.Itoa(int(mx.Pref))+" "+mx.Host)
		}
	default:
		stack[0] = encI32(statusBadArgument)
		return
	}
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			stack[0] = encI32(statusNotFound)
			return
		}
		p.stats.dnsErrors.Add(1)
		stack[0] = encI32(statusTempFailure)
		return
	}
	if len(lines) == 0 {
		stack[0] = encI32(statusNotFound)
		return
	}
	stack[0] = c.fillString(mod, buf, capacity, strings.Join(lines, "\n"))
}

func hNowMs(_ context.Context, c *call, _ api.Module, stack []uint64) {
	if !c.plugin.man.grants.clock {
		c.abort("now_ms without the \"clock\" grant in the manifest")
	}
	stack[0] = encI64(c.plugin.now().UnixMilli())
}

func (c *call) kvStore() *kvStore {
	if !c.plugin.man.grants.kv {
		c.abort("key-value call without the \"kv\" grant in the manifest")
	}
	return c.plugin.kv
}

func hKVGet(_ context.Context, c *call, mod api.Module, stack []uint64) {
	key := c.readString(mod, u32(stack[0]), u32(stack[1]))
	buf, capacity := u32(stack[2]), u32(stack[3])
	kv := c.kvStore()
	v, ok := kv.get(key, c.plugin.now())
	if !ok {
		stack[0] = encI32(statusNotFound)
		return
	}
	stack[0] = c.fill(mod, buf, capacity, v)
}

func hKVSet(_ context.Context, c *call, mod api.Module, stack []uint64) {
	key := c.readString(mod, u32(stack[0]), u32(stack[1]))
	val := c.read(mod, u32(stack[2]), u32(stack[3]))
	ttl := int32(stack[4])
	kv := c.kvStore()
	if key == "" || len(key) > maxKVKey || len(val) > maxKVValue || ttl < 0 {
		stack[0] = encI32(statusBadArgument)
		return
	}
	stack[0] = encI32(kv.set(key, val, ttl, c.plugin.now()))
}

// hKVIncr adds delta to a counter and writes the new value as a
// little-endian i64 at out. A new key starts at zero and expires ttl
// seconds later (never for zero). Incrementing keeps that expiry, so a
// counter with a TTL counts a fixed window.
func hKVIncr(_ context.Context, c *call, mod api.Module, stack []uint64) {
	key := c.readString(mod, u32(stack[0]), u32(stack[1]))
	delta, ttl := int64(stack[2]), int32(stack[3])
	out := c.read(mod, u32(stack[4]), 8)
	kv := c.kvStore()
	if key == "" || len(key) > maxKVKey || ttl < 0 {
		stack[0] = encI32(statusBadArgument)
		return
	}
	n, st := kv.incr(key, delta, ttl, c.plugin.now())
	if st == statusOK {
		binary.LittleEndian.PutUint64(out, uint64(n))
	}
	stack[0] = encI32(st)
}
