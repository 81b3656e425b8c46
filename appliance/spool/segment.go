package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Small messages in the queue area live in segment files instead of one
// file each. A segment is a sequence of records that only the committer
// appends to, one batch at a time, with one fdatasync per batch:
//
//	magic    "LGREC001" (8 bytes)
//	kind     'M' for a message, 'D' for "done" (1 byte)
//	id size  (uint8)
//	body size (uint64), envelope size (uint32)
//	id, body, envelope JSON
//	CRC-32C of everything before it (uint32)
//
// Commit creates a message record. A done record follows when the message
// is removed, moved or taken out into a file of its own, so that recovery
// skips it. Creating, renaming, opening, closing and unlinking one
// file per message cost about a third of the gateway's CPU per message
// (profile of `scripts/profile.sh`), and a sealed segment is deleted in one
// unlink once none of its messages is left.
//
// Because records are written in order by one goroutine and every batch is
// synced before any of its commits returns, a crash can only tear the tail
// after the last synced batch, which recovery cuts off. Damage elsewhere
// (a bad disk block) is recognised by a valid record after it; see
// scanSegment.
const (
	recordMagic      = "LGREC001"
	recordHeaderSize = len(recordMagic) + 1 + 1 + 8 + 4
	recordCRCSize    = 4

	kindMessage byte = 'M'
	kindDone    byte = 'D'

	segmentSuffix = ".seg"

	// segmentSealSize starts a new segment once the active one holds this
	// many bytes, so that a segment can be deleted soon after its messages
	// are delivered.
	segmentSealSize = 16 << 20
)

// segment is one segment file. Its fields are guarded by Spool.segMu,
// except file, which is safe for concurrent ReadAt.
type segment struct {
	seq  uint64
	path string
	file *os.File
	// size is the offset of the next record.
	size int64
	// live counts message records not yet done; readers counts open
	// Messages. The file is deleted when both are zero and it is sealed.
	live    int
	readers int
	sealed  bool
	deleted bool
	// done holds done records waiting for the committer to append them.
	done []byte
	// syncPending is set when done records were written since the last
	// sync of the file.
	syncPending bool
	// broken is set when a failed write could not be cut off again, so
	// records appended later would be hidden behind the damage.
	broken bool
}

// location is the position of a message's record in its segment.
type location struct {
	seg      *segment
	bodyOff  int64
	bodySize int64
	envOff   int64
	envSize  uint32
}

func segmentName(seq uint64) string {
	return fmt.Sprintf("%016x%s", seq, segmentSuffix)
}

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}

// recordPrefixSize is the number of bytes before the body of a message
// record for id.
func recordPrefixSize(id string) int { return recordHeaderSize + len(id) }

// putRecordHeader fills the header and id of a record at the start of b.
func putRecordHeader(b []byte, kind byte, id string, bodySize int64, envSize uint32) {
	copy(b, recordMagic)
	b[8] = kind
	b[9] = byte(len(id))
	binary.BigEndian.PutUint64(b[10:18], uint64(bodySize))
	binary.BigEndian.PutUint32(b[18:22], envSize)
	copy(b[recordHeaderSize:], id)
}

// appendDoneRecord appends the done record of id to b.
func appendDoneRecord(b []byte, id string) []byte {
	start := len(b)
	b = append(b, make([]byte, recordPrefixSize(id))...)
	putRecordHeader(b[start:], kindDone, id, 0, 0)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// scannedRecord is one record that checked out.
type scannedRecord struct {
	kind byte
	id   string
	loc  location
}

// segmentScan is the result of scanSegment for one segment file.
type segmentScan struct {
	records []scannedRecord
	// end is the offset just past the last record that checked out.
	end int64
	// skipped are the offsets of records whose header was readable but
	// whose checksum failed, followed by a record that checks out: damage
	// inside one record, which the scan stepped over.
	skipped []int64
	// damagedAt is -1, or the offset of unreadable bytes that are not a
	// torn tail because a record that checks out follows somewhere after
	// them. The scan stops there.
	damagedAt int64
}

// scanSegment reads the records of f from the start. A record that does
// not check out ends the scan as a torn tail when nothing valid follows
// it: only the batch being written when the process died can be torn. A
// damaged record whose sizes are readable is stepped over when the next
// record checks out. Any other damage stops the scan with damagedAt set,
// so that the caller keeps the file instead of cutting valid records off.
// The records of the chain are trusted. Records found by searching past
// damage are not (see recordsAfter), because a message body can contain
// bytes that look like a record.
func scanSegment(f *os.File, seg *segment) (segmentScan, error) {
	scan := segmentScan{damagedAt: -1}
	info, err := f.Stat()
	if err != nil {
		return scan, err
	}
	size := info.Size()
	buf := make([]byte, 64<<10)
	var window []byte
	var off int64
	for off < size {
		rec, total, err := readRecord(f, seg, off, size, buf)
		if err != nil {
			return scan, err
		}
		if rec != nil {
			scan.records = append(scan.records, *rec)
			off += total
			scan.end = off
			continue
		}
		if total > 0 && off+total < size {
			next, nextTotal, err := readRecord(f, seg, off+total, size, buf)
			if err != nil {
				return scan, err
			}
			if next != nil {
				// The record after the damaged one is taken as it is, so
				// it is not read and checked twice.
				scan.skipped = append(scan.skipped, off)
				scan.records = append(scan.records, *next)
				off += total + nextTotal
				scan.end = off
				continue
			}
		}
		if window == nil {
			window = make([]byte, searchWindow)
		}
		later, err := nextRecord(f, seg, off+1, size, buf, window)
		if err != nil {
			return scan, err
		}
		if later >= 0 {
			scan.damagedAt = off
		}
		break
	}
	return scan, nil
}

// readRecord reads the record at off. It returns the record when it checks
// out. Otherwise it returns nil and, when the header's sizes are plausible
// and fit in the file, the record's length, so the caller can step over it.
func readRecord(f *os.File, seg *segment, off, size int64, buf []byte) (*scannedRecord, int64, error) {
	if off+int64(recordHeaderSize)+recordCRCSize > size {
		return nil, 0, nil
	}
	var head [recordHeaderSize]byte
	if _, err := f.ReadAt(head[:], off); err != nil {
		return nil, 0, err
	}
	idSize := int64(head[9])
	bodySize := int64(binary.BigEndian.Uint64(head[10:18]))
	envSize := binary.BigEndian.Uint32(head[18:22])
	if idSize == 0 || bodySize < 0 || envSize > maxEnvelopeSize {
		return nil, 0, nil
	}
	total := int64(recordHeaderSize) + idSize + bodySize + int64(envSize) + recordCRCSize
	if total > size-off || total <= 0 {
		return nil, 0, nil
	}
	if string(head[:8]) != recordMagic || (head[8] != kindMessage && head[8] != kindDone) {
		return nil, total, nil
	}
	sum, err := checksumRange(f, off, total-recordCRCSize, buf)
	if err != nil {
		return nil, 0, err
	}
	var want [recordCRCSize]byte
	if _, err := f.ReadAt(want[:], off+total-recordCRCSize); err != nil {
		return nil, 0, err
	}
	if binary.BigEndian.Uint32(want[:]) != sum {
		return nil, total, nil
	}
	id := make([]byte, idSize)
	if _, err := f.ReadAt(id, off+int64(recordHeaderSize)); err != nil {
		return nil, 0, err
	}
	bodyOff := off + int64(recordHeaderSize) + idSize
	return &scannedRecord{
		kind: head[8],
		id:   string(id),
		loc: location{
			seg: seg, bodyOff: bodyOff, bodySize: bodySize,
			envOff: bodyOff + bodySize, envSize: envSize,
		},
	}, total, nil
}

// recordsAfter returns every record that checks out at or after off,
// found by searching for the record magic. Such records cannot be trusted
// like those of the chain, because a message body can hold bytes that look
// like a record.
func recordsAfter(f *os.File, seg *segment, off, size int64) ([]scannedRecord, error) {
	var out []scannedRecord
	buf := make([]byte, 64<<10)
	window := make([]byte, searchWindow)
	for off < size {
		next, err := nextRecord(f, seg, off, size, buf, window)
		if err != nil || next < 0 {
			return out, err
		}
		rec, total, err := readRecord(f, seg, next, size, buf)
		if err != nil {
			return out, err
		}
		out = append(out, *rec)
		off = next + total
	}
	return out, nil
}

// searchWindow is how much of a segment nextRecord reads at a time.
const searchWindow = 1 << 20

// nextRecord returns the offset of the first record that checks out at or
// after off, or -1.
func nextRecord(f *os.File, seg *segment, off, size int64, buf, window []byte) (int64, error) {
	for off < size {
		n, err := f.ReadAt(window, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		chunk := window[:n]
		for i := 0; ; {
			j := bytes.Index(chunk[i:], []byte(recordMagic))
			if j < 0 {
				break
			}
			rec, _, err := readRecord(f, seg, off+int64(i+j), size, buf)
			if err != nil {
				return -1, err
			}
			if rec != nil {
				return off + int64(i+j), nil
			}
			i += j + 1
		}
		if off+int64(n) >= size || n < len(recordMagic) {
			break
		}
		// Overlap the windows so a magic cut at the edge is still found.
		off += int64(n - len(recordMagic) + 1)
	}
	return -1, nil
}

func checksumRange(f *os.File, off, n int64, buf []byte) (uint32, error) {
	h := crc32.New(castagnoli)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, off, n), buf); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// openSegment opens an existing segment for reading and for appending done
// records.
func (s *Spool) openSegment(name string, seq uint64) (*segment, error) {
	path := filepath.Join(s.dir, string(AreaQueue), name)
	f, err := openFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: open segment: %w", err)
	}
	return &segment{seq: seq, path: path, file: f, sealed: true}, nil
}

// createSegment creates the next active segment. Its directory entry
// becomes durable with the batch's syncfs, which the caller must use.
func (s *Spool) createSegment(seq uint64) (*segment, error) {
	path := filepath.Join(s.dir, string(AreaQueue), segmentName(seq))
	f, err := openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, wrapError("create segment", err)
	}
	return &segment{seq: seq, path: path, file: f}, nil
}

// releaseSegment deletes seg when it is sealed and nothing refers to it.
// The caller holds segMu. The unlink is not synced: after a crash the
// file comes back with every message done, and recovery deletes it again.
func (s *Spool) releaseSegment(seg *segment) {
	if !seg.sealed || seg.live > 0 || seg.readers > 0 || seg.deleted {
		return
	}
	seg.deleted = true
	seg.done = nil
	delete(s.segments, seg.seq)
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("removing finished segment failed", "segment", filepath.Base(seg.path), "reason", err.Error())
	}
	seg.file.Close()
}
