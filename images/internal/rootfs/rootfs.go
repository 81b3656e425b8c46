// Package rootfs assembles the read-only root file system of a Lambgate
// image as a squashfs: gokrazy's init and helper programs, the supervised
// programs under /user, kernel modules and the /etc files that gokrazy's
// runtime reads. It writes a squashfs file and never touches a disk image
// or a running system.
package rootfs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
	"golang.org/x/sys/unix"
)

// Entry is one file, directory or symlink of the root file system. Path
// has no leading slash ("etc/hostname").
type Entry struct {
	Path string
	// Data is the content of a regular file. Directories and symlinks
	// ignore it.
	Data []byte
	// Source, when set, is a host file whose content is copied instead of
	// Data (binaries and kernel modules are large).
	Source string
	// Mode holds the permission bits and os.ModeDir or os.ModeSymlink.
	// Directories always get 0755.
	Mode fs.FileMode
	// Target is a symlink's destination.
	Target string
}

// blockSize is squashfs's usual 128 KiB. go-diskfs v1.9.4 defaults to an
// invalid 512 bytes for a new file system.
const blockSize = 128 << 10

// Write builds a squashfs holding entries at path out. Every file gets
// modTime and owner root, and the superblock's creation time is set to
// modTime, so the same entries always give the same bytes.
func Write(out string, entries []Entry, modTime time.Time) error {
	// Absolute, because Finalize below runs in another working directory.
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer f.Close()
	fsys, err := squashfs.Create(file.New(f, false), 0, 0, blockSize)
	if err != nil {
		return fmt.Errorf("rootfs: create squashfs %s: %w", out, err)
	}
	// go-diskfs builds the file system from a workspace directory on the
	// host and never removes it.
	work := fsys.Workspace()
	defer os.RemoveAll(work)

	// Populate in path order, so that parent directories come first and
	// the walk order never depends on the caller.
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, e := range sorted {
		if err := populate(work, e); err != nil {
			return err
		}
	}
	for _, e := range sorted {
		if e.Mode&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(work, e.Path)); err != nil {
			return fmt.Errorf("rootfs: symlink %s -> %s has no target in the root file system: "+
				"add the target as an entry (a placeholder under a mount point such as tmp/ is fine)",
				e.Path, e.Target)
		}
	}
	if err := normalize(work, modTime); err != nil {
		return err
	}

	// go-diskfs v1.9.4 reads symlink targets and extended attributes by
	// paths relative to the current directory, so Finalize runs inside
	// the workspace. The working directory is process-wide: Write must not
	// run beside other code that uses relative paths.
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(work); err != nil {
		return err
	}
	defer os.Chdir(wd)

	root := uint32(0)
	err = fsys.Finalize(squashfs.FinalizeOptions{
		// The gokrazy kernels support only zlib-compressed squashfs.
		Compression: &squashfs.CompressorGzip{
			CompressionLevel: 9,
			WindowSize:       15,
			Strategies:       map[squashfs.GzipStrategy]bool{squashfs.GzipDefault: true},
		},
		FileUID: &root,
		FileGID: &root,
	})
	if err != nil {
		return fmt.Errorf("rootfs: write squashfs %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return setCreationTime(out, modTime)
}

func populate(work string, e Entry) error {
	if e.Path == "" || filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path {
		return fmt.Errorf("rootfs: invalid path %q: use a clean relative path such as \"etc/hostname\"", e.Path)
	}
	dst := filepath.Join(work, e.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}

	switch {
	case e.Mode&fs.ModeDir != 0:
		return os.MkdirAll(dst, 0o755)
	case e.Mode&fs.ModeSymlink != 0:
		// go-diskfs v1.9.4 lists extended attributes through symlinks, so
		// a link must resolve inside the workspace. An absolute target is
		// stored relative to the link, which resolves the same on the
		// device.
		target := e.Target
		if filepath.IsAbs(target) {
			rel, err := filepath.Rel(filepath.Dir("/"+e.Path), target)
			if err != nil {
				return fmt.Errorf("rootfs: symlink %s: %w", e.Path, err)
			}
			target = rel
		}
		if err := os.Symlink(target, dst); err != nil {
			return fmt.Errorf("rootfs: symlink %s: %w", e.Path, err)
		}
		return nil
	default:
		data := e.Data
		if e.Source != "" {
			var err error
			if data, err = os.ReadFile(e.Source); err != nil {
				return fmt.Errorf("rootfs: %s: %w", e.Path, err)
			}
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return err
		}
	}
	// Chmod after creation, because the umask would otherwise mask bits.
	return os.Chmod(dst, e.Mode.Perm())
}

// normalize gives every directory mode 0755, whatever the umask, and
// every entry modTime.
func normalize(work string, modTime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(modTime.UnixNano()), unix.NsecToTimespec(modTime.UnixNano())}
	return filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Chmod(p, 0o755); err != nil {
				return err
			}
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// setCreationTime overwrites the superblock's creation time (bytes 8 to
// 11), which go-diskfs v1.9.4 always sets to the current time.
func setCreationTime(path string, modTime time.Time) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(modTime.Unix()))
	if _, err := f.WriteAt(b[:], 8); err != nil {
		return fmt.Errorf("rootfs: set squashfs creation time: %w", err)
	}
	return f.Close()
}
