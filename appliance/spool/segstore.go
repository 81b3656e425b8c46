package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// appendRecords writes the records of one batch to the active segment in
// one system call and sets each request's location or error. It runs in
// the committer and reports whether it created a segment, whose directory
// entry the batch must then make durable with syncfs.
func (s *Spool) appendRecords(records []*syncRequest) (created bool) {
	// A finished active segment goes before the new one is created, so
	// that on a full disk its space is free for the batch.
	s.retireActive(emptyRotateSize)
	if !s.ensureActive(records) {
		return false
	}
	created = s.active.size == 0

	iovecs := make([][]byte, 0, len(records))
	var total int64
	for _, r := range records {
		if r.chosenID && s.idTaken(r.id) {
			r.err = &os.LinkError{Op: "commit", Old: r.id, New: s.active.path, Err: syscall.EEXIST}
			continue
		}
		iovecs = append(iovecs, r.record)
		total += int64(len(r.record))
	}
	if len(iovecs) == 0 {
		return created
	}
	seg := s.active
	n, err := pwritevAll(int(seg.file.Fd()), slices.Clone(iovecs), seg.size)
	if err != nil && isNoSpace(err) && s.retireActive(1) {
		// The disk is full, and the full segment was all done: its space
		// is free now, so the batch gets one more try in a new segment.
		if !s.ensureActive(records) {
			return true
		}
		created, seg = true, s.active
		n, err = pwritevAll(int(seg.file.Fd()), iovecs, seg.size)
	}
	if err != nil {
		werr := wrapError("write segment", err)
		for _, r := range records {
			if r.err == nil {
				r.err = werr
			}
		}
		s.cutTail(seg, seg.size, n)
		return created
	}
	off := seg.size
	for _, r := range records {
		if r.err != nil {
			continue
		}
		prefix := int64(recordPrefixSize(r.id))
		bodySize, envSize := recordSizes(r.record)
		r.loc = location{
			seg: seg, bodyOff: off + prefix, bodySize: bodySize,
			envOff: off + prefix + bodySize, envSize: envSize,
		}
		off += int64(len(r.record))
	}
	seg.size += total
	return created
}

// ensureActive creates a new active segment when there is none, or the
// current one is full or broken. On failure every record gets the error.
func (s *Spool) ensureActive(records []*syncRequest) bool {
	if s.active != nil && s.active.size < s.sealSize && !s.active.broken {
		return true
	}
	seg, err := s.createSegment(s.nextSeq)
	if err != nil {
		for _, r := range records {
			r.err = err
		}
		return false
	}
	s.nextSeq++
	s.segMu.Lock()
	if old := s.active; old != nil {
		old.sealed = true
		s.releaseSegment(old)
	}
	s.segments[seg.seq] = seg
	s.active = seg
	s.segMu.Unlock()
	return true
}

// emptyRotateSize is the size from which an active segment whose messages
// are all done is replaced at the next commit. Below it the segment stays,
// because a new segment costs a syncfs for its directory entry, and with
// one message at a time every message would pay for one.
const emptyRotateSize = 1 << 20

// retireActive seals and deletes the active segment when none of its
// messages is left and it holds at least minSize bytes, and reports
// whether it did. Without this a
// finished active segment kept its space until it reached the seal size,
// which on a small disk meant never. It runs in the committer.
func (s *Spool) retireActive(minSize int64) bool {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	seg := s.active
	if seg == nil || seg.live > 0 || seg.size < minSize || seg.size == 0 {
		return false
	}
	seg.sealed = true
	s.active = nil
	s.releaseSegment(seg)
	return true
}

// cutTail truncates seg back to size after a write that failed part way,
// so that records appended later stay reachable for recovery.
func (s *Spool) cutTail(seg *segment, size int64, written int) {
	if written == 0 {
		return
	}
	if err := unix.Ftruncate(int(seg.file.Fd()), size); err != nil {
		// NOTE: done records appended behind the damage would be lost to
		// recovery, so the segment takes none and fills no further.
		s.log.Error("cutting a failed write off the segment failed",
			"segment", seg.path, "reason", err.Error())
		seg.broken = true
	}
}

// pwritevAll writes iovecs at off, continuing after short writes.
func pwritevAll(fd int, iovecs [][]byte, off int64) (int, error) {
	written := 0
	for len(iovecs) > 0 {
		n, err := unix.Pwritev(fd, iovecs, off+int64(written))
		if err != nil {
			return written, err
		}
		if n == 0 {
			return written, errors.New("write returned no progress")
		}
		written += n
		for n > 0 && len(iovecs) > 0 {
			if n >= len(iovecs[0]) {
				n -= len(iovecs[0])
				iovecs = iovecs[1:]
				continue
			}
			iovecs[0] = iovecs[0][n:]
			n = 0
		}
	}
	return written, nil
}

// recordSizes reads the body and envelope sizes from a record's header.
func recordSizes(record []byte) (int64, uint32) {
	return int64(binary.BigEndian.Uint64(record[10:18])), binary.BigEndian.Uint32(record[18:22])
}

// idTaken reports whether a committed message already has id, for callers
// that chose their own queue id.
func (s *Spool) idTaken(id string) bool {
	s.segMu.Lock()
	_, ok := s.index[id]
	s.segMu.Unlock()
	if ok {
		return true
	}
	for _, a := range areas {
		if _, err := os.Lstat(s.messagePath(a, id)); err == nil {
			return true
		}
	}
	return false
}

// indexRecords makes the records of a synced batch visible to Open, or,
// when the sync failed, marks them done so that they cannot come back
// after a restart, and seals the segment, whose state on disk is unknown.
func (s *Spool) indexRecords(records []*syncRequest, syncErr error) {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	for _, r := range records {
		if r.err != nil {
			continue
		}
		seg := r.loc.seg
		if syncErr != nil {
			seg.done = appendDoneRecord(seg.done, r.id)
			continue
		}
		s.index[r.id] = r.loc
		seg.live++
	}
	if syncErr != nil && s.active != nil {
		s.active.broken = true
	}
}

// flushDone appends the waiting done records of every segment. It runs in
// the committer, under segMu so that no segment is deleted meanwhile.
func (s *Spool) flushDone() {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	for _, seg := range s.segments {
		if len(seg.done) == 0 || seg.deleted {
			continue
		}
		if seg.broken && seg != s.active {
			seg.done = nil
			continue
		}
		n, err := pwritevAll(int(seg.file.Fd()), [][]byte{seg.done}, seg.size)
		if err != nil {
			s.log.Error("writing done records failed; the messages may be delivered again after a restart",
				"segment", seg.path, "reason", err.Error())
			s.cutTail(seg, seg.size, n)
		} else {
			seg.size += int64(n)
		}
		seg.done = nil
		seg.syncPending = true
	}
}

// syncSegments makes the done records durable at shutdown, so that a clean
// restart delivers nothing twice.
func (s *Spool) syncSegments() {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	for _, seg := range s.segments {
		if seg.syncPending && !seg.deleted {
			if err := fdatasync(seg.file); err != nil {
				s.log.Error("syncing segment at shutdown failed", "segment", seg.path, "reason", err.Error())
			}
		}
		seg.file.Close()
	}
	s.segments = map[uint64]*segment{}
}

// lookup returns the location of a message held in a segment and takes a
// reader reference on its segment when hold is set.
func (s *Spool) lookup(id string, hold bool) (location, bool) {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	loc, ok := s.index[id]
	if ok && hold {
		loc.seg.readers++
	}
	return loc, ok
}

func (s *Spool) releaseReader(seg *segment) {
	s.segMu.Lock()
	seg.readers--
	s.releaseSegment(seg)
	s.segMu.Unlock()
}

// forget marks a segment message done: it leaves the index, and its done
// record goes out with the next batch.
func (s *Spool) forget(id string) bool {
	s.segMu.Lock()
	loc, ok := s.index[id]
	if ok {
		delete(s.index, id)
		seg := loc.seg
		seg.live--
		if !seg.deleted {
			seg.done = appendDoneRecord(seg.done, id)
		}
		s.releaseSegment(seg)
	}
	s.segMu.Unlock()
	if ok {
		select {
		case s.doneKick <- struct{}{}:
		default:
		}
	}
	return ok
}

// segmentIDs returns the ids of the messages held in segments.
func (s *Spool) segmentIDs() []string {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	ids := make([]string, 0, len(s.index))
	for id := range s.index {
		ids = append(ids, id)
	}
	return ids
}

func fdatasync(f *os.File) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return nil
}
