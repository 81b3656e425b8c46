package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// committedFile commits one small message in a fresh spool, closes it and
// returns the directory, the queue id and the message file's bytes.
func committedFile(t *testing.T) (dir, id string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	s := openFileSpool(t, dir)
	env, err := commitMessage(s, AreaQueue, 300)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	data, err = os.ReadFile(s.messagePath(AreaQueue, env.QueueID))
	if err != nil {
		t.Fatal(err)
	}
	return dir, env.QueueID, data
}

func verifyBytes(t *testing.T, path string, data []byte) error {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := readTrailer(f)
	if err != nil {
		return err
	}
	if err := verifyChecksum(f, tr); err != nil {
		return err
	}
	_, err = readEnvelope(f, tr)
	return err
}

func TestVerifyDetectsEveryTruncation(t *testing.T) {
	_, _, data := committedFile(t)
	path := filepath.Join(t.TempDir(), "m.msg")
	if err := verifyBytes(t, path, data); err != nil {
		t.Fatalf("complete file fails verification: %v", err)
	}
	for n := 0; n < len(data); n++ {
		if err := verifyBytes(t, path, data[:n]); !errors.Is(err, errTorn) {
			t.Errorf("file cut to %d of %d bytes: verify = %v, want a torn file", n, len(data), err)
		}
	}
}

func TestVerifyDetectsEveryCorruptByte(t *testing.T) {
	_, _, data := committedFile(t)
	path := filepath.Join(t.TempDir(), "m.msg")
	for off := range data {
		bad := append([]byte(nil), data...)
		bad[off] ^= 0x5a
		if err := verifyBytes(t, path, bad); !errors.Is(err, errTorn) {
			t.Errorf("byte %d of %d changed: verify = %v, want a torn file", off, len(data), err)
		}
	}
}

func TestVerifyDetectsZeroedTail(t *testing.T) {
	// A file system that persisted the size but not the last pages shows
	// zeros where the data should be.
	_, _, data := committedFile(t)
	path := filepath.Join(t.TempDir(), "m.msg")
	for _, from := range []int{8, 100, len(data) - 30, len(data) - trailerSize} {
		bad := append([]byte(nil), data...)
		clear(bad[from:])
		if err := verifyBytes(t, path, bad); !errors.Is(err, errTorn) {
			t.Errorf("zeros from byte %d: verify = %v, want a torn file", from, err)
		}
	}
}

func TestOpenRemovesTornMessage(t *testing.T) {
	dir, id, data := committedFile(t)
	sizes := []int{0, 7, 8, 100, 308, len(data) - trailerSize, len(data) - 1}
	for _, n := range sizes {
		path := filepath.Join(dir, string(AreaQueue), id+messageSuffix)
		if err := os.WriteFile(path, data[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, string(AreaQueue), id+stateSuffix), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}

		s := openSpool(t, dir)
		envs, err := s.List(AreaQueue)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) != 0 {
			t.Errorf("file cut to %d bytes: List returned %d messages, want none", n, len(envs))
		}
		entries, _ := os.ReadDir(filepath.Join(dir, string(AreaQueue)))
		if len(entries) != 0 {
			t.Errorf("file cut to %d bytes: %d files left in the queue directory", n, len(entries))
		}
		s.Close()
	}
}

func TestOpenKeepsCompleteMessage(t *testing.T) {
	dir, id, _ := committedFile(t)
	s := openSpool(t, dir)
	checkBody(t, s, AreaQueue, id)
}

func TestOpenEmptiesTmpDirectory(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	w, err := s.Create(testEnvelope("a@example.test"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("never committed\r\n"))
	// Closing without Commit or Abort is what a crash leaves.
	s.Close()

	s = openSpool(t, dir)
	entries, _ := os.ReadDir(filepath.Join(dir, tmpDirName))
	if len(entries) != 0 {
		t.Errorf("tmp contains %d files after Open", len(entries))
	}
	envs, _ := s.List(AreaQueue)
	if len(envs) != 0 {
		t.Errorf("an uncommitted message was listed: %v", envs[0].QueueID)
	}
}

func TestOpenCompletesInterruptedMove(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	env, err := commitMessage(s, AreaQueue, 300)
	if err != nil {
		t.Fatal(err)
	}
	env.Attempts = 7
	if err := s.SaveState(AreaQueue, env); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Move renames the message first: a crash right after leaves the state
	// file behind in the old area.
	if err := os.Rename(s.messagePath(AreaQueue, env.QueueID), s.messagePath(AreaQuarantine, env.QueueID)); err != nil {
		t.Fatal(err)
	}

	s = openSpool(t, dir)
	m, err := s.Open(AreaQuarantine, env.QueueID)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Envelope.Attempts != 7 {
		t.Errorf("attempts = %d after recovery, want the saved 7", m.Envelope.Attempts)
	}
	if _, err := os.Stat(s.statePath(AreaQueue, env.QueueID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file still in the old area: %v", err)
	}
}

func TestOpenRemovesOrphanedState(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	s.Close()
	orphan := s.statePath(AreaQueue, "0000000000orphan")
	if err := os.WriteFile(orphan, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}

	openSpool(t, dir)
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphaned state file survived Open: %v", err)
	}
}
