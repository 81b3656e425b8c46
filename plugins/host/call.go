package host

import (
	"context"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/lambgate/lambgate/appliance/filter"
)

// phaseInit marks host calls made from a module's _initialize, before any
// transaction exists.
const phaseInit = numPhases

// call is the host-side state of one callback invocation. Host functions
// find it through the context, so any pooled instance can serve any call
// and nothing of the transaction lives in guest memory between calls.
type call struct {
	plugin *Plugin
	phase  Phase
	// deadline is when the watchdog stops the call. Host calls that wait,
	// such as DNS lookups, end by then.
	deadline time.Time
	// holdsSlot is set while the call holds one of the host's call slots.
	holdsSlot bool
	conn      *filter.Conn
	txn       *filter.Txn
	rcpt      string
	msg       *message

	// reply and edits are recorded by host calls and used only once the
	// callback has returned without a fault.
	reply    reply
	headers  []filter.Header
	tags     []string
	faultMsg string
}

// releaseSlot gives back the call's slot if it holds one.
func (c *call) releaseSlot() {
	if c.holdsSlot {
		c.holdsSlot = false
		c.plugin.calls.release()
	}
}

type reply struct {
	set      bool
	code     int
	enhanced [3]int
	text     string
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// fault is the panic value a host function raises to abort the guest's
// call: wazero recovers it and returns it as the call's error.
type fault struct{ reason string }

func (f fault) Error() string { return f.reason }

// abort records why the call failed and unwinds the guest. It is used for
// plugin bugs that no status code could make safe: a pointer outside
// guest memory, or a capability the manifest does not grant.
func (c *call) abort(format string, args ...any) {
	c.faultMsg = fmt.Sprintf(format, args...)
	panic(fault{c.faultMsg})
}

// read returns guest bytes at (ptr, n) without copying; the slice is valid
// only until the guest runs again.
func (c *call) read(mod api.Module, ptr, n uint32) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		c.abort("read of %d bytes at %#x is outside guest memory (%d bytes)", n, ptr, mod.Memory().Size())
	}
	return b
}

func (c *call) readString(mod api.Module, ptr, n uint32) string {
	return string(c.read(mod, ptr, n))
}

// fill writes val into the guest buffer (ptr, capacity), cut at capacity,
// and returns val's full length so that the guest can retry with a larger
// buffer.
func (c *call) fill(mod api.Module, ptr, capacity uint32, val []byte) uint64 {
	if capacity > 0 {
		buf := c.read(mod, ptr, capacity)
		copy(buf, val)
	}
	return uint64(int64(len(val)))
}

func (c *call) fillString(mod api.Module, ptr, capacity uint32, val string) uint64 {
	if capacity > 0 {
		buf := c.read(mod, ptr, capacity)
		copy(buf, val)
	}
	return uint64(int64(len(val)))
}

// status encodes a negative status as the i32 or i64 result value.
func status(s int64) uint64 { return uint64(s) }

// inMessage reports whether the call runs inside Data, where header and
// edit calls are allowed.
func (c *call) inMessage() bool {
	return c.phase == PhaseHeaders || c.phase == PhaseBody || c.phase == PhaseDone
}

// bodyAllowed reports whether the body may be read: not in the headers
// phase, so that a future streaming host can call it before the body has
// arrived.
func (c *call) bodyAllowed() bool {
	return c.phase == PhaseBody || c.phase == PhaseDone
}
