package maildir

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// deliveries counts file names made by this process, across all Maildir
// values, so that two names of one microsecond still differ.
var deliveries atomic.Uint64

// uniqueName returns a Maildir file name "SECONDS.MmicrosecondsPpidQcount.host",
// the form that the Maildir specification (https://cr.yp.to/proto/maildir.html)
// recommends: unique across processes by the pid, and within this process
// by the counter.
func uniqueName(now time.Time, host string) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(strconv.FormatInt(now.Unix(), 10))
	b.WriteString(".M")
	b.WriteString(strconv.Itoa(now.Nanosecond() / 1000))
	b.WriteString("P")
	b.WriteString(strconv.Itoa(os.Getpid()))
	b.WriteString("Q")
	b.WriteString(strconv.FormatUint(deliveries.Add(1), 10))
	b.WriteString(".")
	b.WriteString(host)
	return b.String()
}

// escapeHostname replaces "/" and ":" as the Maildir specification requires,
// because "/" separates paths and ":" starts a file's info part in cur/.
func escapeHostname(host string) string {
	host = strings.ReplaceAll(host, "/", `\057`)
	return strings.ReplaceAll(host, ":", `\072`)
}
