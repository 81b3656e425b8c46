package spool

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir creates path and takes an exclusive flock on it, so that two
// gateways never share one spool. The kernel drops the lock when the process
// dies, so a crash leaves no stale lock behind.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, wrapError("create lock file", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("spool: %s is locked by another process: stop the other gateway first", path)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: lock %s: %w", path, err)
	}
	return f, nil
}

// renameNoReplace renames oldPath to newPath and fails with EEXIST instead
// of replacing a file, so a caller-chosen queue id can never overwrite a
// committed message.
func renameNoReplace(oldPath, newPath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_NOREPLACE)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldPath, New: newPath, Err: err}
	}
	return nil
}

// syncFilesystem flushes every dirty page and inode of the file system that
// holds f. Since Linux 5.8 it also reports writeback errors of that file
// system; older kernels return success even when writeback failed.
func syncFilesystem(f *os.File) error {
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return os.NewSyscallError("syncfs", err)
	}
	return nil
}

// openFile opens a spool file with open(2) and wraps the descriptor with
// os.NewFile. os.OpenFile would also register the file with the network
// poller, which costs several fcntl calls and a failing epoll_ctl per open.
// A spool file never needs the poller, and this path runs twice per message.
func openFile(path string, flag int, perm uint32) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
