package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
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
			continue
		}
		// A set-aside segment still holds its number, so that a new
		// segment never takes its name and a later one set aside under
		// that name cannot replace it.
		if base, ok := strings.CutSuffix(e.Name(), damagedSuffix); ok {
			if seq, ok := parseSegmentName(base); ok {
				s.nextSeq = max(s.nextSeq, seq+1)
			}
		}
	}
	slices.Sort(seqs)

	for _, seq := range seqs {
		s.nextSeq = max(s.nextSeq, seq+1)
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
	name := filepath.Base(seg.path)
	scan, err := scanSegment(seg.file, seg)
	if err != nil {
		return fmt.Errorf("spool: read segment %s: %w", name, err)
	}
	for _, off := range scan.skipped {
		// The record may have held a message, now lost, or a done
		// record, whose message will be delivered again.
		s.log.Error("skipped a damaged record in a segment: a message may be lost or delivered twice",
			"segment", name, "offset", off)
	}
	live, superseded := s.liveRecords(scan.records, present)
	if scan.damagedAt >= 0 {
		return s.rescueDamaged(seg, scan, live, present)
	}

	info, err := seg.file.Stat()
	if err != nil {
		return fmt.Errorf("spool: read segment %s: %w", name, err)
	}
	if scan.end < info.Size() {
		// Only the batch that was being written when the process died can
		// be torn, and none of its commits had returned.
		s.log.Warn("cut the incomplete tail of a segment", "segment", name,
			"valid_bytes", scan.end, "bytes", info.Size())
		if err := seg.file.Truncate(scan.end); err != nil {
			return wrapError("cut segment tail", err)
		}
		if err := seg.file.Sync(); err != nil {
			return wrapError("sync segment", err)
		}
	}
	seg.size = scan.end

	for _, r := range live {
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

// liveRecords returns the message records not yet done. It also returns
// done records for the messages that a file of their own or an earlier
// segment superseded, which must be marked done. Otherwise they would come
// back once that file is delivered and gone.
func (s *Spool) liveRecords(records []scannedRecord, present map[Area]map[string]bool) ([]scannedRecord, []byte) {
	done := make(map[string]bool)
	for _, r := range records {
		if r.kind == kindDone {
			done[r.id] = true
		}
	}
	var live []scannedRecord
	var superseded []byte
	for _, r := range records {
		if r.kind != kindMessage || done[r.id] || !validQueueID(r.id) {
			continue
		}
		_, dup := s.index[r.id]
		if dup || present[AreaQueue][r.id] || present[AreaQuarantine][r.id] {
			superseded = appendDoneRecord(superseded, r.id)
			continue
		}
		done[r.id] = true
		live = append(live, r)
	}
	return live, superseded
}

// rescueDamaged handles a segment with damage that is not a torn tail.
// Each live message before the damage gets a file of its own in the queue.
// Each message found after the damage goes to quarantine, because it was
// found by searching for the record magic, which a crafted message body
// could imitate. The segment is then renamed with the suffix ".damaged"
// and kept for the administrator.
func (s *Spool) rescueDamaged(seg *segment, scan segmentScan, live []scannedRecord, present map[Area]map[string]bool) error {
	name := filepath.Base(seg.path)
	for _, r := range live {
		if err := s.rescueRecord(seg, r, AreaQueue, present); err != nil {
			return err
		}
	}

	info, err := seg.file.Stat()
	if err != nil {
		return fmt.Errorf("spool: read segment %s: %w", name, err)
	}
	after, err := recordsAfter(seg.file, seg, scan.damagedAt+1, info.Size())
	if err != nil {
		return fmt.Errorf("spool: read segment %s past its damage: %w", name, err)
	}
	afterLive, _ := s.liveRecords(append(slices.Clone(scan.records), after...), present)
	quarantined := 0
	for _, r := range afterLive {
		if r.loc.bodyOff < scan.damagedAt {
			continue // before the damage, rescued above
		}
		if err := s.rescueRecord(seg, r, AreaQuarantine, present); err != nil {
			return err
		}
		quarantined++
	}

	seg.file.Close()
	aside := seg.path + damagedSuffix
	if _, err := os.Lstat(aside); err == nil {
		aside = fmt.Sprintf("%s.%d%s", seg.path, time.Now().UnixNano(), damagedSuffix)
	}
	if err := renameNoReplace(seg.path, aside); err != nil {
		return fmt.Errorf("spool: set damaged segment %s aside: %w", name, err)
	}
	s.log.Error("segment damaged: messages before the damage were recovered into the queue, "+
		"messages found after it into quarantine for review; the file is kept for inspection",
		"segment", aside, "damaged_at", scan.damagedAt, "recovered", len(live), "quarantined", quarantined)
	return nil
}

// rescueRecord writes the message of r as a file of its own into area.
func (s *Spool) rescueRecord(seg *segment, r scannedRecord, area Area, present map[Area]map[string]bool) error {
	name := filepath.Base(seg.path)
	if !validQueueID(r.id) {
		s.log.Error("skipped a record with an invalid queue id in a damaged segment",
			"segment", name, "offset", r.loc.bodyOff)
		return nil
	}
	data, err := messageFileBytes(seg.file, r.loc)
	if err != nil {
		return fmt.Errorf("spool: rescue %s from damaged segment %s: %w", r.id, name, err)
	}
	path, err := s.writeSyncedTemp(r.id+".rescue", data)
	if err != nil {
		return wrapError("rescue "+r.id+" from damaged segment "+name, err)
	}
	err = renameNoReplace(path, s.messagePath(area, r.id))
	if errors.Is(err, os.ErrExist) {
		os.Remove(path)
		s.log.Error("skipped a record of a damaged segment whose queue id is taken",
			"segment", name, "queue_id", r.id, "area", string(area))
		return nil
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("spool: rescue %s from damaged segment %s: %w", r.id, name, err)
	}
	present[area][r.id] = true
	return nil
}

// damagedSuffix marks a segment file that recovery set aside.
const damagedSuffix = ".damaged"
