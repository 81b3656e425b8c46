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

	// The file has the layout of format.go: magic, body, envelope, trailer.
	data := make([]byte, headerSize+loc.bodySize+int64(loc.envSize), headerSize+loc.bodySize+int64(loc.envSize)+trailerSize)
	copy(data, headerMagic)
	if _, err := loc.seg.file.ReadAt(data[headerSize:], loc.bodyOff); err != nil {
		return fmt.Errorf("spool: read %s from its segment: %w", id, err)
	}
	t := trailer{bodySize: loc.bodySize, envelopeSize: loc.envSize, checksum: crc32.Checksum(data, castagnoli)}
	data = t.appendTo(data)

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
