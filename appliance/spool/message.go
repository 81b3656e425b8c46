package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// Message is an open committed message. It implements envelope.Body.
type Message struct {
	// Envelope is the latest saved state: the state file when SaveState
	// wrote one, otherwise the envelope stored at Commit.
	Envelope *envelope.Envelope

	file *os.File
	// base is the offset of the body in file.
	base int64
	size int64
	// release ends the use of a shared segment file; nil for a file of
	// the message's own.
	release func()
}

// ReadAt reads message bytes.
func (m *Message) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("spool: negative offset %d", off)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := m.size - off; int64(want) > rest {
		p = p[:rest]
	}
	n, err := m.file.ReadAt(p, m.base+off)
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// Size returns the size of the message bytes.
func (m *Message) Size() int64 { return m.size }

// Reader returns a reader of the message bytes from the start.
func (m *Message) Reader() io.Reader { return io.NewSectionReader(m, 0, m.size) }

// Close releases the file.
func (m *Message) Close() error {
	if m.release != nil {
		m.release()
		m.release = nil
		return nil
	}
	return m.file.Close()
}

// Open opens the committed message queueID in area.
func (s *Spool) Open(area Area, queueID string) (*Message, error) {
	return s.open(area, queueID, true)
}

// OpenBody opens the committed message queueID in area without reading
// its envelope, for a caller that holds the envelope already: the queue
// delivering a message it scheduled. Message.Envelope is nil.
func (s *Spool) OpenBody(area Area, queueID string) (*Message, error) {
	return s.open(area, queueID, false)
}

func (s *Spool) open(area Area, queueID string, withEnvelope bool) (*Message, error) {
	if err := checkArea(area); err != nil {
		return nil, err
	}
	if err := checkQueueID(queueID); err != nil {
		return nil, err
	}
	if area == AreaQueue {
		if loc, ok := s.lookup(queueID, true); ok {
			return s.openRecord(queueID, loc, withEnvelope)
		}
	}
	f, err := openFile(s.messagePath(area, queueID), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: %s in %s: %w", queueID, area, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open message: %w", err)
	}

	if !withEnvelope {
		t, err := readTrailer(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("spool: message %s in %s: %w", queueID, area, err)
		}
		return &Message{file: f, base: headerSize, size: t.bodySize}, nil
	}
	env, t, err := s.loadEnvelope(area, queueID, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Message{Envelope: env, file: f, base: headerSize, size: t.bodySize}, nil
}

// openRecord returns the message whose record is at loc. The caller took
// a reader reference on its segment, which Close gives back. A message in
// a segment has no state file: SaveState takes it out first.
func (s *Spool) openRecord(queueID string, loc location, withEnvelope bool) (*Message, error) {
	m := &Message{
		file: loc.seg.file, base: loc.bodyOff, size: loc.bodySize,
		release: func() { s.releaseReader(loc.seg) },
	}
	if !withEnvelope {
		return m, nil
	}
	raw := make([]byte, loc.envSize)
	if _, err := loc.seg.file.ReadAt(raw, loc.envOff); err != nil {
		m.Close()
		return nil, fmt.Errorf("spool: read envelope of %s: %w", queueID, err)
	}
	env := new(envelope.Envelope)
	if err := json.Unmarshal(raw, env); err != nil {
		m.Close()
		return nil, fmt.Errorf("spool: envelope of %s: %w", queueID, err)
	}
	env.QueueID = queueID
	m.Envelope = env
	return m, nil
}

// loadEnvelope returns the state file's envelope when there is one, else
// the envelope stored in the message file f.
func (s *Spool) loadEnvelope(area Area, queueID string, f *os.File) (*envelope.Envelope, trailer, error) {
	t, err := readTrailer(f)
	if err != nil {
		return nil, t, fmt.Errorf("spool: message %s in %s: %w", queueID, area, err)
	}

	data, err := os.ReadFile(s.statePath(area, queueID))
	switch {
	case err == nil:
		env := new(envelope.Envelope)
		if err := json.Unmarshal(data, env); err == nil {
			env.QueueID = queueID
			return env, t, nil
		}
		// SaveState renames only synced files into place, so this takes a
		// damaged disk. Falling back to the committed envelope may send
		// delivered recipients again, which beats losing the message.
		s.log.Error("invalid state file, using the envelope from the commit",
			"queue_id", queueID, "reason", err.Error())
	case !errors.Is(err, os.ErrNotExist):
		return nil, t, fmt.Errorf("spool: read state: %w", err)
	}

	env, err := readEnvelope(f, t)
	if err != nil {
		return nil, t, fmt.Errorf("spool: message %s in %s: %w", queueID, area, err)
	}
	env.QueueID = queueID
	return env, t, nil
}

// List returns the envelopes of every message in area, oldest queue id
// first. A message that is removed while List runs is left out.
func (s *Spool) List(area Area) ([]*envelope.Envelope, error) {
	if err := checkArea(area); err != nil {
		return nil, err
	}
	ids, err := s.listIDs(area)
	if err != nil {
		return nil, err
	}
	if area == AreaQueue {
		ids = append(ids, s.segmentIDs()...)
		slices.Sort(ids)
	}

	envs := make([]*envelope.Envelope, 0, len(ids))
	for _, id := range ids {
		m, err := s.Open(area, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		envs = append(envs, m.Envelope)
		m.Close()
	}
	return envs, nil
}

// listIDs returns the queue ids of the message files in area, sorted.
func (s *Spool) listIDs(area Area) ([]string, error) {
	entries, err := os.ReadDir(s.dirs[area].Name())
	if err != nil {
		return nil, fmt.Errorf("spool: list %s: %w", area, err)
	}
	var ids []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), messageSuffix)
		if ok && validQueueID(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// SaveState durably replaces the delivery state of a committed message
// with env: it writes a state file, syncs it and renames it into place, so
// the message bytes are never rewritten.
func (s *Spool) SaveState(area Area, env *envelope.Envelope) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := checkArea(area); err != nil {
		return err
	}
	id := env.QueueID
	if err := checkQueueID(id); err != nil {
		return err
	}
	// A message with delivery state is one that waits for another attempt,
	// maybe for days: it leaves its segment for a file of its own, so that
	// it does not keep the segment's other messages on disk.
	if area == AreaQueue {
		if err := s.extract(id, AreaQueue); err != nil {
			return err
		}
	}
	if _, err := os.Stat(s.messagePath(area, id)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: save state of %s in %s: %w", id, area, ErrNotFound)
	}

	data, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("spool: encode state of %s: %w", id, err)
	}
	// Synced before the rename, because a rename that replaced the
	// previous state with unsynced bytes could lose a durable state.
	tmpPath, err := s.writeSyncedTemp(id+stateSuffix, data)
	if err != nil {
		return wrapError("write state of "+id, err)
	}

	dst := s.statePath(area, id)
	err = s.submit(context.Background(), &syncRequest{
		apply: func() error { return os.Rename(tmpPath, dst) },
	})
	if err != nil {
		os.Remove(tmpPath)
		return wrapError("save state of "+id, err)
	}
	return nil
}

// Remove deletes a message and its state durably.
func (s *Spool) Remove(area Area, queueID string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := checkArea(area); err != nil {
		return err
	}
	if err := checkQueueID(queueID); err != nil {
		return err
	}

	if area == AreaQueue && s.forget(queueID) {
		return nil
	}

	// The message goes first: a crash in between leaves a state file
	// without a message, which Open removes, and never a message without
	// its state, which would send delivered recipients again.
	err := os.Remove(s.messagePath(area, queueID))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: remove %s from %s: %w", queueID, area, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("spool: remove message: %w", err)
	}
	// unlink(2) alone: most messages have no state file, and os.Remove
	// would try rmdir(2) as well after the first failure.
	if err := unix.Unlink(s.statePath(area, queueID)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("spool: remove state: %w", err)
	}
	// The removal is not synced here, because a sync per removal would halve
	// the syncs left for new mail. The next group commit makes it durable.
	// A crash before that brings the message back, and the queue delivers
	// it again, which at-least-once delivery allows.
	return nil
}

// Move moves a message and its state from one area to another durably.
func (s *Spool) Move(queueID string, from, to Area) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	for _, a := range []Area{from, to} {
		if err := checkArea(a); err != nil {
			return err
		}
	}
	if err := checkQueueID(queueID); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("spool: move %s: source and destination are both %s", queueID, from)
	}
	if from == AreaQueue {
		if _, ok := s.lookup(queueID, false); ok {
			return s.extract(queueID, to)
		}
	}

	// The message moves first and defines the area. A crash before the
	// state follows leaves the state in the old area, and Open moves it
	// next to its message.
	err := renameNoReplace(s.messagePath(from, queueID), s.messagePath(to, queueID))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: move %s from %s: %w", queueID, from, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("spool: move message: %w", err)
	}
	err = os.Rename(s.statePath(from, queueID), s.statePath(to, queueID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: move state: %w", err)
	}
	if err := s.submit(context.Background(), &syncRequest{}); err != nil {
		return wrapError("move "+queueID, err)
	}
	return nil
}

// writeSyncedTemp writes data to a new file in tmp whose name starts with
// prefix, syncs it and returns its path. On error it removes the file.
func (s *Spool) writeSyncedTemp(prefix string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(s.tmpDir(), prefix+"*")
	if err != nil {
		return "", err
	}
	path := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}
