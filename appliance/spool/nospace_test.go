package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// mountTinyTmpfs mounts a 256 KiB tmpfs on a new temporary directory. It
// needs root (CAP_SYS_ADMIN) and fails the test without it.
func mountTinyTmpfs(t *testing.T) string {
	return mountTmpfs(t, "size=256k")
}

func mountTmpfs(t *testing.T, options string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, options); err != nil {
		t.Fatalf("mount a tmpfs (%s) on %s: %v (this test must run as root)", options, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func checkNoSpace(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoSpace) {
		t.Errorf("error %v does not wrap ErrNoSpace", err)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("error %v does not match syscall.ENOSPC", err)
	}
}

func checkTmpEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, tmpDirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("file %s left in tmp after a failed message", e.Name())
	}
}

func TestFullFilesystemFailsLargeWrite(t *testing.T) {
	dir := mountTinyTmpfs(t)
	s := openSpool(t, dir)

	env := testEnvelope("a@example.test")
	w, err := s.Create(env)
	if err != nil {
		t.Fatal(err)
	}
	body := bodyFor(env.QueueID, 1<<20)
	_, err = w.Write(body)
	if err == nil {
		err = w.Commit(context.Background(), AreaQueue)
	}
	if err == nil {
		t.Fatal("a 1 MiB message was committed on a 256 KiB file system")
	}
	checkNoSpace(t, err)
	checkTmpEmpty(t, dir)
	if err := w.Commit(context.Background(), AreaQueue); err == nil {
		t.Error("Commit after a failed Write returned nil")
	}
}

func TestFullFilesystemKeepsCommittedMessages(t *testing.T) {
	dir := mountTinyTmpfs(t)
	s := openSpool(t, dir)

	// 20 KB messages fill 256 KiB after about a dozen commits; the
	// failure then comes in Create, Write or Commit.
	var committed []string
	var err error
	for range 100 {
		var env *envelope.Envelope
		env, err = commitMessage(s, AreaQueue, 20_000)
		if err != nil {
			break
		}
		committed = append(committed, env.QueueID)
	}
	if err == nil {
		t.Fatal("100 messages of 20 KB fit on a 256 KiB file system")
	}
	t.Logf("after %d commits: %v", len(committed), err)
	checkNoSpace(t, err)
	checkTmpEmpty(t, dir)
	if len(committed) == 0 {
		t.Fatal("not even one message fit")
	}

	s.Close()
	s = openSpool(t, dir)
	envs, err := s.List(AreaQueue)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != len(committed) {
		t.Errorf("spool lists %d messages after reopening, want the %d committed", len(envs), len(committed))
	}
	for _, id := range committed {
		checkBody(t, s, AreaQueue, id)
	}

	// Freeing space makes the spool usable again.
	if err := s.Remove(AreaQueue, committed[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := commitMessage(s, AreaQueue, 10_000); err != nil {
		t.Errorf("commit after freeing space: %v", err)
	}
}

func TestFullFilesystemFailsCommit(t *testing.T) {
	dir := mountTinyTmpfs(t)
	s := openSpool(t, dir)

	// A filler file takes every free page, so the small message stays in
	// the write buffer until Commit flushes it.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	page := make([]byte, 4096)
	for {
		if _, err := filler.Write(page); err != nil {
			break
		}
	}

	env := testEnvelope("a@example.test")
	w, err := s.Create(env)
	if err != nil {
		t.Fatalf("Create on a full file system: %v (expected the failure at Commit)", err)
	}
	if _, err := w.Write(bodyFor(env.QueueID, 100)); err != nil {
		t.Fatalf("buffered Write failed: %v (expected the failure at Commit)", err)
	}
	err = w.Commit(context.Background(), AreaQueue)
	if err == nil {
		t.Fatal("Commit succeeded on a full file system")
	}
	checkNoSpace(t, err)
	checkTmpEmpty(t, dir)
	if _, err := s.Open(AreaQueue, env.QueueID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of the failed message = %v, want ErrNotFound", err)
	}
}

func TestExhaustedInodesFailCreate(t *testing.T) {
	// The root, tmp, queue, quarantine and the lock file take five inodes,
	// so only a few messages fit.
	// Messages in segments take no inode each, so this checks the file
	// that larger messages get.
	dir := mountTmpfs(t, "size=256k,nr_inodes=8")
	s := openFileSpool(t, dir)

	var err error
	created := 0
	for range 10 {
		var w *Writer
		w, err = s.Create(testEnvelope("a@example.test"))
		if err != nil {
			break
		}
		created++
		w.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
		if err = w.Commit(context.Background(), AreaQueue); err != nil {
			t.Fatalf("Commit after a successful Create: %v", err)
		}
	}
	if err == nil {
		t.Fatal("10 messages fit in 8 inodes")
	}
	t.Logf("after %d messages: %v", created, err)
	checkNoSpace(t, err)
	checkTmpEmpty(t, dir)
}
