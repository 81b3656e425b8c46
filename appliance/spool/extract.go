package spool

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// errBusy is returned when a message is being taken out of its segment by
// another caller at the same time.
var errBusy = errors.New("message is being moved out of its segment; try again")

// extract copies a message from its segment into a file of its own in
// area to, makes the file durable, and only then marks the record done, so
// a crash at any point leaves at least one copy. A message that is not in a
// segment is left alone. When the message was removed while the copy was
// made, the copy is deleted again.
func (s *Spool) extract(id string, to Area) error {
	s.segMu.Lock()
	loc, ok := s.index[id]
	if ok {
		if s.extracting[id] {
			s.segMu.Unlock()
			return fmt.Errorf("spool: %s: %w", id, errBusy)
		}
		s.extracting[id] = true
		loc.seg.readers++
	}
	s.segMu.Unlock()
	if !ok {
		return nil
	}
	defer func() {
		s.segMu.Lock()
		delete(s.extracting, id)
		s.segMu.Unlock()
		s.releaseReader(loc.seg)
	}()

	data, err := messageFileBytes(loc.seg.file, loc)
	if err != nil {
		return fmt.Errorf("spool: read %s from its segment: %w", id, err)
	}
	tmpPath, err := s.writeSyncedTemp(id+".extract", data)
	if err != nil {
		return wrapError("take "+id+" out of its segment", err)
	}

	dst := s.messagePath(to, id)
	err = s.submit(context.Background(), &syncRequest{
		apply: func() error { return renameNoReplace(tmpPath, dst) },
		undo:  func() { os.Remove(dst) },
	})
	if err != nil {
		os.Remove(tmpPath)
		return wrapError("take "+id+" out of its segment", err)
	}
	if !s.forget(id) {
		// Removed meanwhile: the copy must not bring it back.
		os.Remove(dst)
		return fmt.Errorf("spool: %s in %s: %w", id, AreaQueue, ErrNotFound)
	}
	return nil
}

// messageFileBytes returns the message at loc in the layout of a message
// file (format.go): magic, body, envelope and trailer.
func messageFileBytes(f *os.File, loc location) ([]byte, error) {
	n := headerSize + loc.bodySize + int64(loc.envSize)
	data := make([]byte, n, n+trailerSize)
	copy(data, headerMagic)
	if _, err := f.ReadAt(data[headerSize:], loc.bodyOff); err != nil {
		return nil, err
	}
	t := trailer{bodySize: loc.bodySize, envelopeSize: loc.envSize, checksum: crc32.Checksum(data, castagnoli)}
	return t.appendTo(data), nil
}
