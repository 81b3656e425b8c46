package spool

import (
	"math/rand/v2"
	"sync"
	"time"
)

// idAlphabet lists the base-62 digits in ASCII order, so that comparing two
// queue ids as strings compares the numbers they encode.
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

const (
	idTimeDigits   = 10 // 62^10 microseconds reach past the year 28000
	idRandomDigits = 6  // about 5.7e10 values per microsecond
	idLength       = idTimeDigits + idRandomDigits

	// maxQueueIDLength bounds ids that callers choose themselves.
	maxQueueIDLength = 64
)

// lastIDMicros makes ids of one process strictly increasing even when the
// clock does not advance or steps back.
var lastIDMicros struct {
	sync.Mutex
	value int64
}

// NewQueueID returns a new queue id of 16 characters from [0-9A-Za-z]. The
// first 10 encode the microseconds since the Unix epoch, so ids sort by
// creation time. The last 6 are random, so ids stay unique across restarts
// even when the clock was set back in between. An appliance without a
// battery-backed clock boots with a wrong time until NTP replies.
func NewQueueID() string {
	now := time.Now().UnixMicro()

	lastIDMicros.Lock()
	if now <= lastIDMicros.value {
		now = lastIDMicros.value + 1
	}
	lastIDMicros.value = now
	lastIDMicros.Unlock()

	var id [idLength]byte
	encodeBase62(id[:idTimeDigits], uint64(now))
	encodeBase62(id[idTimeDigits:], rand.Uint64())
	return string(id[:])
}

// encodeBase62 writes the low digits of v into dst, most significant first.
func encodeBase62(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = idAlphabet[v%62]
		v /= 62
	}
}

// validQueueID reports whether id is safe to use as a file name: 1 to 64
// characters from [0-9A-Za-z].
func validQueueID(id string) bool {
	if id == "" || len(id) > maxQueueIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
