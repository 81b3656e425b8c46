package spool

import (
	"context"
	"sync/atomic"
	"time"
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

	// record is a complete message record for the active segment, with
	// its queue id. chosenID requests a check that the id is not taken.
	record   []byte
	id       string
	chosenID bool
	loc      location
	err      error

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
	// Done records are written with the next batch, or after a short
	// pause when no mail comes in, so removals cost no write of their own
	// under load. They need no sync: a lost one only brings a delivered
	// message back for another delivery.
	doneTimer := time.NewTimer(time.Hour)
	doneTimer.Stop()
	// armed keeps a stream of removals from pushing the flush back
	// forever: the first one starts the delay and later ones ride along.
	armed := false
	for {
		batch = batch[:0]
		select {
		case r := <-s.requests:
			batch = append(batch, r)
		case <-s.doneKick:
			if !armed {
				doneTimer.Reset(doneFlushDelay)
				armed = true
			}
			continue
		case <-doneTimer.C:
			armed = false
			s.flushDone()
			// Quiet now: a finished active segment of any size goes, so
			// that a burst's space is back soon after its last delivery.
			s.retireActive(1)
			continue
		case <-s.closing:
			s.flushDone()
			s.syncSegments()
			return
		}
		// Everything that queued up during the previous sync shares the
		// next one: this is what lets durability scale past one sync per
		// message.
		batch = s.gather(batch)
		s.runBatch(batch)
	}
}

// maxGroupWait bounds how long a batch waits for messages that are still
// being written. A sync costs about as much CPU as the rest of a small
// message's spooling, so sharing it matters more than the wait.
const maxGroupWait = time.Millisecond

// gather adds every waiting request to batch, then keeps adding while
// other Writers are still streaming their message, for at most
// maxGroupWait. With a single client nothing else is being written, and
// the batch goes at once.
func (s *Spool) gather(batch []*syncRequest) []*syncRequest {
	var deadline <-chan time.Time
	for len(batch) < maxBatch {
		select {
		case r := <-s.requests:
			batch = append(batch, r)
			continue
		default:
		}
		if s.writing.Load() == 0 {
			return batch
		}
		if deadline == nil {
			deadline = time.After(maxGroupWait)
		}
		select {
		case r := <-s.requests:
			batch = append(batch, r)
		case <-deadline:
			return batch
		case <-s.closing:
			return batch
		}
	}
	return batch
}

// doneFlushDelay is how long done records wait for a batch to travel with.
const doneFlushDelay = 50 * time.Millisecond

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

	// A rename or a new segment needs syncfs, which makes directory
	// entries durable; records alone need only the segment's fdatasync.
	wholeFS := false
	var records []*syncRequest
	for _, r := range taken {
		switch {
		case r.record != nil:
			records = append(records, r)
		case r.apply != nil:
			r.err = r.apply()
			wholeFS = true
		default:
			wholeFS = true
		}
	}
	if len(records) > 0 && s.appendRecords(records) {
		wholeFS = true
	}
	s.flushDone()

	var syncErr error
	switch {
	case wholeFS:
		if err := syncFilesystem(s.root); err != nil {
			syncErr = wrapError("sync file system", err)
		}
	case s.active != nil:
		if err := fdatasync(s.active.file); err != nil {
			syncErr = wrapError("sync segment", err)
		}
	}
	if syncErr != nil {
		s.log.Error("spool sync failed", "reason", syncErr.Error(), "batch", len(taken))
	}
	s.indexRecords(records, syncErr)
	for _, r := range taken {
		err := r.err
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
