package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// recoverSegments reads every segment of the queue area and indexes the
// messages that are not done. A message that also has a file of its own
// was taken out of the segment just before a crash, and the file wins. A
// segment with nothing left is deleted; a torn tail is cut off, so that
// done records appended later stay reachable.
func (s *Spool) recoverSegments(present map[Area]map[string]bool) error {
	entries, err := os.ReadDir(s.dirs[AreaQueue].Name())
	if err != nil {
		return fmt.Errorf("spool: list %s: %w", AreaQueue, err)
	}
	var seqs []uint64
	names := make(map[uint64]string)
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok {
			seqs = append(seqs, seq)
			names[seq] = e.Name()
		}
	}
	slices.Sort(seqs)

	for _, seq := range seqs {
		s.nextSeq = seq + 1
		seg, err := s.openSegment(names[seq], seq)
		if err != nil {
			return err
		}
		if err := s.recoverSegment(seg, present); err != nil {
			seg.file.Close()
			return err
		}
	}
	return nil
}

func (s *Spool) recoverSegment(seg *segment, present map[Area]map[string]bool) error {
	records, end, err := scanSegment(seg.file, seg)
	if err != nil {
		return fmt.Errorf("spool: read segment %s: %w", filepath.Base(seg.path), err)
	}
	info, err := seg.file.Stat()
	if err != nil {
		return fmt.Errorf("spool: read segment %s: %w", filepath.Base(seg.path), err)
	}
	if end < info.Size() {
		// Only the batch that was being written when the process died can
		// be torn, and none of its commits had returned.
		s.log.Warn("cut the incomplete tail of a segment", "segment", filepath.Base(seg.path),
			"valid_bytes", end, "bytes", info.Size())
		if err := seg.file.Truncate(end); err != nil {
			return wrapError("cut segment tail", err)
		}
		if err := seg.file.Sync(); err != nil {
			return wrapError("sync segment", err)
		}
	}
	seg.size = end

	done := make(map[string]bool)
	for _, r := range records {
		if r.kind == kindDone {
			done[r.id] = true
		}
	}
	var superseded []byte
	for _, r := range records {
		if r.kind != kindMessage || done[r.id] {
			continue
		}
		_, dup := s.index[r.id]
		if dup || present[AreaQueue][r.id] || present[AreaQuarantine][r.id] {
			// Marked done now, or the record would come back once the
			// file is delivered and gone.
			superseded = appendDoneRecord(superseded, r.id)
			continue
		}
		s.index[r.id] = r.loc
		seg.live++
	}
	if seg.live > 0 && len(superseded) > 0 {
		if _, err := seg.file.WriteAt(superseded, seg.size); err != nil {
			return wrapError("mark superseded records done", err)
		}
		if err := seg.file.Sync(); err != nil {
			return wrapError("sync segment", err)
		}
		seg.size += int64(len(superseded))
	}
	if seg.live == 0 {
		seg.file.Close()
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("spool: remove finished segment: %w", err)
		}
		return nil
	}
	s.segments[seg.seq] = seg
	return nil
}
