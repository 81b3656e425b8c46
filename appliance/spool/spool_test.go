package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lambgate/lambgate/appliance/envelope"
)

func TestCommitThenOpenReturnsMessage(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)

	env := testEnvelope("a@example.test", "b@example.test")
	env.Prepend = "X-Filter: tagged\r\n"
	w, err := s.Create(env)
	if err != nil {
		t.Fatal(err)
	}
	if !validQueueID(env.QueueID) {
		t.Fatalf("Create set queue id %q", env.QueueID)
	}
	body := bodyFor(env.QueueID, 100_000)
	for chunk := range slices.Chunk(body, 999) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if w.Size() != int64(len(body)) {
		t.Errorf("Size() = %d, want %d", w.Size(), len(body))
	}
	part := make([]byte, 50)
	if n, err := w.ReadAt(part, 70_000); err != nil || n != 50 || !bytes.Equal(part, body[70_000:70_050]) {
		t.Errorf("ReadAt before commit = %d, %v, %q", n, err, part)
	}
	if err := w.Commit(context.Background(), AreaQueue); err != nil {
		t.Fatal(err)
	}

	// A fresh spool proves the message is on disk, not in memory.
	s.Close()
	s = openSpool(t, dir)
	m, err := s.Open(AreaQueue, env.QueueID)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := io.ReadAll(m.Reader())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("body read back differs: %d bytes, want %d", len(got), len(body))
	}
	if m.Envelope.Size != int64(len(body)) {
		t.Errorf("envelope size = %d, want %d", m.Envelope.Size, len(body))
	}
	if m.Envelope.Prepend != env.Prepend || len(m.Envelope.Recipients) != 2 {
		t.Errorf("envelope read back = %+v", m.Envelope)
	}
	tail := make([]byte, 10)
	if n, err := m.ReadAt(tail, int64(len(body))-4); n != 4 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 4, EOF", n, err)
	}
}

func TestListReturnsOnlyItsArea(t *testing.T) {
	s := openSpool(t, t.TempDir())
	var queued []string
	for range 3 {
		env, err := commitMessage(s, AreaQueue, 300)
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, env.QueueID)
	}
	held, err := commitMessage(s, AreaQuarantine, 300)
	if err != nil {
		t.Fatal(err)
	}

	envs, err := s.List(AreaQueue)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range envs {
		ids = append(ids, e.QueueID)
	}
	if !slices.Equal(ids, queued) {
		t.Errorf("queue lists %v, want %v in commit order", ids, queued)
	}
	envs, err = s.List(AreaQuarantine)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 1 || envs[0].QueueID != held.QueueID {
		t.Errorf("quarantine lists %v, want only %s", envs, held.QueueID)
	}
}

func TestSaveStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	env, err := commitMessage(s, AreaQueue, 500)
	if err != nil {
		t.Fatal(err)
	}

	env.Recipients[0].State = envelope.StateDelivered
	env.Attempts = 2
	if err := s.SaveState(AreaQueue, env); err != nil {
		t.Fatal(err)
	}
	// A message with state leaves its segment, which it would otherwise
	// keep on disk while it waits.
	if _, err := os.Stat(s.messagePath(AreaQueue, env.QueueID)); err != nil {
		t.Errorf("the message has no file of its own after SaveState: %v", err)
	}
	s.Close()

	s = openSpool(t, dir)
	envs, err := s.List(AreaQueue)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 1 {
		t.Fatalf("List returned %d messages, want 1", len(envs))
	}
	if envs[0].Recipients[0].State != envelope.StateDelivered {
		t.Errorf("recipient state = %q, want delivered", envs[0].Recipients[0].State)
	}
	if envs[0].Attempts != 2 {
		t.Errorf("attempts = %d, want 2", envs[0].Attempts)
	}
	checkBody(t, s, AreaQueue, env.QueueID)
}

func TestRemoveDeletesMessageAndState(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	env, err := commitMessage(s, AreaQueue, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState(AreaQueue, env); err != nil {
		t.Fatal(err)
	}

	if err := s.Remove(AreaQueue, env.QueueID); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, string(AreaQueue)))
	for _, e := range entries {
		// The active segment stays for the next message.
		if !strings.HasSuffix(e.Name(), segmentSuffix) {
			t.Errorf("queue directory still contains %s", e.Name())
		}
	}
	if _, err := s.Open(AreaQueue, env.QueueID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Remove = %v, want ErrNotFound", err)
	}
	if err := s.Remove(AreaQueue, env.QueueID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if err := s.SaveState(AreaQueue, env); !errors.Is(err, ErrNotFound) {
		t.Errorf("SaveState after Remove = %v, want ErrNotFound", err)
	}
}

func TestMoveKeepsBodyAndState(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	env, err := commitMessage(s, AreaQuarantine, 700)
	if err != nil {
		t.Fatal(err)
	}
	env.Tags = []string{"released"}
	if err := s.SaveState(AreaQuarantine, env); err != nil {
		t.Fatal(err)
	}

	if err := s.Move(env.QueueID, AreaQuarantine, AreaQueue); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(AreaQuarantine, env.QueueID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open in old area = %v, want ErrNotFound", err)
	}
	s.Close()

	s = openSpool(t, dir)
	checkBody(t, s, AreaQueue, env.QueueID)
	m, err := s.Open(AreaQueue, env.QueueID)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !slices.Equal(m.Envelope.Tags, []string{"released"}) {
		t.Errorf("tags after move = %v, want the saved state", m.Envelope.Tags)
	}
	if err := s.Move(env.QueueID, AreaQuarantine, AreaQueue); !errors.Is(err, ErrNotFound) {
		t.Errorf("moving a missing message = %v, want ErrNotFound", err)
	}
}

func TestAbortLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	w, err := s.Create(testEnvelope("a@example.test"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), AreaQueue); err == nil {
		t.Error("Commit after Abort returned nil")
	}
	for _, sub := range []string{tmpDirName, string(AreaQueue)} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		if len(entries) != 0 {
			t.Errorf("%s contains %d files after Abort", sub, len(entries))
		}
	}
}

func TestCommitWithCancelledContextFails(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	env := testEnvelope("a@example.test")
	w, err := s.Create(env)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bodyFor(env.QueueID, 100))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if err := w.Commit(ctx, AreaQueue); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit = %v, want context.Canceled", err)
	}
	if _, err := s.Open(AreaQueue, env.QueueID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of the cancelled message = %v, want ErrNotFound", err)
	}
}

func TestCreateRejectsBadQueueIDs(t *testing.T) {
	s := openSpool(t, t.TempDir())
	env := testEnvelope("a@example.test")
	env.QueueID = "../../etc/passwd"
	if _, err := s.Create(env); err == nil {
		t.Error("Create accepted a queue id with slashes")
	}
	if _, err := s.Open(AreaQueue, "../lock"); err == nil {
		t.Error("Open accepted a queue id with slashes")
	}
	if _, err := s.List(Area("../tmp")); err == nil {
		t.Error("List accepted an invalid area")
	}
}

func TestCommitRefusesExistingQueueID(t *testing.T) {
	s := openSpool(t, t.TempDir())
	first, err := commitMessage(s, AreaQueue, 100)
	if err != nil {
		t.Fatal(err)
	}
	dup := testEnvelope("b@example.test")
	dup.QueueID = first.QueueID
	w, err := s.Create(dup)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("other body\r\n"))
	if err := w.Commit(context.Background(), AreaQueue); err == nil {
		t.Fatal("Commit replaced a committed message with the same queue id")
	}
	checkBody(t, s, AreaQueue, first.QueueID)
}

func TestOpenLocksSpoolDirectory(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	if second, err := Open(dir, testLogger(t)); err == nil {
		second.Close()
		t.Fatal("second Open of a locked spool succeeded")
	}
	s.Close()
	again, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

func TestNoSpaceErrorMatchesErrno(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		err := wrapError("write message X", &os.PathError{Op: "write", Path: "x", Err: errno})
		if !errors.Is(err, ErrNoSpace) {
			t.Errorf("%v: errors.Is(err, ErrNoSpace) = false", errno)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%v: errors.Is(err, syscall.ENOSPC) = false", errno)
		}
	}
	if errors.Is(wrapError("open", os.ErrPermission), ErrNoSpace) {
		t.Error("a permission error matches ErrNoSpace")
	}
}

func TestConcurrentCommitsAndRemoves(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)

	const goroutines, perGoroutine = 8, 25
	var (
		mu   sync.Mutex
		kept []string
		wg   sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				env, err := commitMessage(s, AreaQueue, 2000+g*10+i)
				if err != nil {
					t.Error(err)
					return
				}
				env.Recipients[0].Attempts = i
				if err := s.SaveState(AreaQueue, env); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := s.Remove(AreaQueue, env.QueueID); err != nil {
						t.Error(err)
					}
					continue
				}
				mu.Lock()
				kept = append(kept, env.QueueID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Close()

	s = openSpool(t, dir)
	envs, err := s.List(AreaQueue)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range envs {
		listed = append(listed, e.QueueID)
	}
	slices.Sort(kept)
	if !slices.Equal(listed, kept) {
		t.Errorf("spool lists %d messages, want the %d kept ones", len(listed), len(kept))
	}
	for _, id := range kept {
		checkBody(t, s, AreaQueue, id)
	}
}
