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
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount a 256 KiB tmpfs on %s: %v (this test must run as root)", dir, err)
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
