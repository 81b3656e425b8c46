//go:build wasip1

package lambgate

import (
	"strings"
	"time"
	"unsafe"
)

// DNS record types.
const (
	TypeA    = 1
	TypeMX   = 15
	TypeTXT  = 16
	TypeAAAA = 28
)

// Lookup resolves name through the appliance's resolver and returns one
// record per element: addresses for A and AAAA, "preference host" for MX,
// each record's text for TXT. A missing name returns ErrNotFound, any
// other failure ErrTempFailure. The manifest must grant "dns"; without the
// grant the host aborts the call.
func Lookup(rtype int, name string) ([]string, error) {
	s, err := fetchString(func(b unsafe.Pointer, c uint32) int32 { return hostDNSLookup(int32(rtype), name, b, c) })
	if err != nil {
		return nil, err
	}
	return strings.Split(s, "\n"), nil
}

// Now returns the real time. The manifest must grant "clock"; the WASI
// clock that time.Now reads is frozen by the host.
func Now() time.Time { return time.UnixMilli(hostNowMs()) }

// KVGet returns the value stored under key. The manifest must grant "kv".
func KVGet(key string) ([]byte, bool) {
	b, err := fetch(func(p unsafe.Pointer, c uint32) int32 { return hostKVGet(key, p, c) })
	if err != nil {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

// KVSet stores value under key for ttl, in whole seconds (zero: no
// expiry). The store holds at most 100,000 keys per plugin.
func KVSet(key string, value []byte, ttl time.Duration) error {
	st := hostKVSet(key, unsafe.Pointer(unsafe.SliceData(value)), uint32(len(value)), int32(ttl/time.Second))
	return statusError(int64(st))
}

// KVIncr adds delta to the counter under key and returns its new value. A
// new counter starts at zero and expires ttl after its creation, so a
// counter with a TTL counts a fixed window.
func KVIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	var n int64
	st := hostKVIncr(key, delta, int32(ttl/time.Second), &n)
	if st < 0 {
		return 0, statusError(int64(st))
	}
	return n, nil
}
