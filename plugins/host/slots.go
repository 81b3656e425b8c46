package host

import "context"

// callSlots bounds how many callbacks run guest code at once, host-wide.
//
// It is what bounds the memory of calls that recurse without end. wazero
// v1.12.0 keeps a call's stack in a Go byte slice that starts at 10,240
// bytes and doubles whenever the guest needs more, until it is longer than
// 50,000,000 bytes, when the call fails with a stack overflow. The last
// doubling makes an 84 MB slice while the 42 MB one is still being copied,
// and the earlier slices wait for the GC. One such call raised the peak
// RSS of the test process by about 165 MB (TestDeepRecursionMemoryBounded,
// amd64). Nothing stops a recursing call sooner, because the time limit is
// checked only at loop headers and wazero has no setting for the ceiling.
//
// Guest code is CPU-bound, so more calls than cores would not finish
// sooner. A call waiting for a DNS answer gives its slot back (see
// hDNSLookup) so that a slow resolver does not stall every plugin.
type callSlots chan struct{}

func newCallSlots(n int) callSlots { return make(callSlots, n) }

// acquire waits for a free slot or for ctx to end.
func (s callSlots) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reacquire waits for a free slot without a way out. It is for a call
// that gave its slot back during a host call and must hold one again
// before its guest code goes on. The wait is bounded because every slot
// holder runs guest code, which ends at its time limit or at the stack
// ceiling.
func (s callSlots) reacquire() { s <- struct{}{} }

func (s callSlots) release() { <-s }
