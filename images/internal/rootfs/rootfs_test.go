package rootfs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

var testTime = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func testEntries(t *testing.T) []Entry {
	src := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(src, []byte("\x7fELF fake init"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []Entry{
		{Path: "gokrazy", Mode: fs.ModeDir},
		{Path: "gokrazy/init", Source: src, Mode: 0o755},
		{Path: "etc/hostname", Data: []byte("lambgate"), Mode: 0o644},
		{Path: "etc/gokr-pw.txt", Data: []byte("secret"), Mode: 0o400},
		{Path: "etc/resolv.conf", Mode: fs.ModeSymlink, Target: "/tmp/resolv.conf"},
		{Path: "tmp/resolv.conf", Mode: 0o644},
		{Path: "perm", Mode: fs.ModeDir},
	}
}

func build(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "root.squashfs")
	if err := Write(out, testEntries(t), testTime); err != nil {
		t.Fatal(err)
	}
	return out
}

func open(t *testing.T, path string) *squashfs.FileSystem {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := squashfs.Read(file.New(f, true), st.Size(), 0, blockSize)
	if err != nil {
		t.Fatalf("squashfs.Read: %v", err)
	}
	return fsys
}

func TestSquashfsKeepsContentAndModes(t *testing.T) {
	fsys := open(t, build(t))

	data, err := fsys.ReadFile("gokrazy/init")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "\x7fELF fake init" {
		t.Errorf("gokrazy/init = %q, want the source file's content", data)
	}

	for _, tc := range []struct {
		path string
		mode fs.FileMode
	}{
		{"gokrazy/init", 0o755},
		{"etc/gokr-pw.txt", 0o400},
		{"etc/hostname", 0o644},
		{"perm", fs.ModeDir | 0o755},
		{"etc", fs.ModeDir | 0o755},
	} {
		st, err := fs.Stat(fsys, tc.path)
		if err != nil {
			t.Errorf("stat %s: %v", tc.path, err)
			continue
		}
		if st.Mode() != tc.mode {
			t.Errorf("%s has mode %v, want %v", tc.path, st.Mode(), tc.mode)
		}
		if !st.ModTime().Equal(testTime) {
			t.Errorf("%s has time %v, want %v", tc.path, st.ModTime(), testTime)
		}
	}
}

func TestSquashfsKeepsSymlinks(t *testing.T) {
	fsys := open(t, build(t))
	entries, err := fsys.ReadDir("etc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "resolv.conf" {
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			t.Errorf("etc/resolv.conf has type %v, want a symlink", e.Type())
		}
		return
	}
	t.Error("etc/resolv.conf is missing")
}

func TestSquashfsIsReproducible(t *testing.T) {
	a, err := os.ReadFile(build(t))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // let the wall clock's second change
	b, err := os.ReadFile(build(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same entries differ")
	}
}

func TestWriteRejectsDanglingSymlink(t *testing.T) {
	out := filepath.Join(t.TempDir(), "root.squashfs")
	err := Write(out, []Entry{{Path: "var", Mode: fs.ModeSymlink, Target: "/perm/var"}}, testTime)
	if err == nil {
		t.Error("Write accepted var -> /perm/var without perm/var")
	}
}

func TestWriteRejectsAbsolutePath(t *testing.T) {
	out := filepath.Join(t.TempDir(), "root.squashfs")
	err := Write(out, []Entry{{Path: "/etc/hostname", Mode: 0o644}}, testTime)
	if err == nil {
		t.Error("Write accepted the absolute path /etc/hostname")
	}
}
