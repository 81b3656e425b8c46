package spool

import (
	"context"
	"sync/atomic"
)

// syncMode selects how a batch of commits is made durable.
type syncMode int

const (
	// syncEachFile: every committer fsyncs its own file (the kernel folds
	// concurrent fsyncs into one journal commit), the committer goroutine
	// renames the batch into place and fsyncs each touched directory once.
	syncEachFile syncMode = iota
	// syncWholeFS: files are renamed into place unsynced, then one syncfs
	// flushes the whole file system. A crash before syncfs returns can leave
	// a renamed file with missing data, which the trailer check removes.
	syncWholeFS
)

// Request states: the committer and a waiter that gives up race to move a
// request out of requestPending, and whoever wins decides its fate.
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
	areas []Area
	state atomic.Int32
	done  chan error
}

// maxBatch bounds one batch so that a flood of commits still sees syncs.
const maxBatch = 512

// submit hands r to the committer and waits until it is durable. When ctx
// ends or the spool closes before the committer took r, r is cancelled and
// never applied; once taken, submit waits for the sync to finish.
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
	touched := make(map[Area]bool)
	for i, r := range taken {
		if r.apply != nil {
			errs[i] = r.apply()
		}
		if errs[i] == nil {
			for _, a := range r.areas {
				touched[a] = true
			}
		}
	}

	syncErr := s.syncBatch(touched)
	if syncErr != nil {
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

func (s *Spool) syncBatch(touched map[Area]bool) error {
	if s.mode == syncWholeFS {
		if err := syncFilesystem(s.root); err != nil {
			return wrapError("sync file system", err)
		}
		return nil
	}
	for a := range touched {
		if err := s.dirs[a].Sync(); err != nil {
			return wrapError("sync directory "+string(a), err)
		}
	}
	return nil
}
