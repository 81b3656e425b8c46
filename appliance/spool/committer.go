package spool

import (
	"context"
	"sync/atomic"
)

// A batch becomes durable through one syncfs of the spool's file system:
// the committer renames every file of the batch into place, unsynced, and
// then syncfs writes back their data and the directory entries together. A
// crash before syncfs returns can leave a renamed file with missing data,
// which the trailer check in Open removes.
//
// The alternative design let each committer fsync its own file and then
// fsynced each touched directory once per batch. It was slower in every
// paired run of BenchmarkCommitParallel: 785 to 1,344 msg/s against 919 to
// 7,370 msg/s for syncfs (5 KB messages, 64 committers, 2 shared cores,
// ext4 on a virtio disk shared with other builds). It needs two journal
// commits per batch where syncfs needs one. syncfs also flushes other programs'
// dirty data on the same file system, which /perm on the appliance does not
// share with much.

// Request states. The committer (taking) and a waiter that gives up
// (cancelling) race to move a request out of requestPending with a
// compare-and-swap, and only the winner acts on it.
const (
	requestPending int32 = iota
	requestTaken
	requestCancelled
)

// syncRequest is one step that must be durable before its caller returns:
// apply runs in the committer goroutine (a rename into place), then the
// batch is synced. undo reverts apply when the sync fails.
type syncRequest struct {
	apply func() error
	undo  func()
	state atomic.Int32
	done  chan error
}

// maxBatch bounds one batch so that a flood of commits still gets synced.
const maxBatch = 512

// submit hands r to the committer and waits until it is durable. When ctx
// ends or the spool closes before the committer took r, r is cancelled and
// never applied. Once the committer took r, submit waits for the sync.
func (s *Spool) submit(ctx context.Context, r *syncRequest) error {
	r.done = make(chan error, 1)
	select {
	case s.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}

	var cause error
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		cause = ctx.Err()
	case <-s.closing:
		cause = ErrClosed
	}
	if r.state.CompareAndSwap(requestPending, requestCancelled) {
		return cause
	}
	return <-r.done
}

func (s *Spool) runCommitter() {
	defer close(s.stopped)
	batch := make([]*syncRequest, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-s.requests:
			batch = append(batch, r)
		case <-s.closing:
			return
		}
		// Everything that queued up during the previous sync shares the
		// next one: this is what lets durability scale past one sync per
		// message.
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.requests:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.runBatch(batch)
	}
}

func (s *Spool) runBatch(batch []*syncRequest) {
	taken := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(requestPending, requestTaken) {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return
	}

	errs := make([]error, len(taken))
	for i, r := range taken {
		if r.apply != nil {
			errs[i] = r.apply()
		}
	}

	var syncErr error
	if err := syncFilesystem(s.root); err != nil {
		syncErr = wrapError("sync file system", err)
		s.log.Error("spool sync failed", "reason", syncErr.Error(), "batch", len(taken))
	}
	for i, r := range taken {
		err := errs[i]
		if err == nil && syncErr != nil {
			// NOTE: the undo itself is not synced, so after a failed sync
			// and a crash a message may reappear whose Commit failed.
			if r.undo != nil {
				r.undo()
			}
			err = syncErr
		}
		r.done <- err
	}
}
