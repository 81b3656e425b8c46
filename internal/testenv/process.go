package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// installHint is the fix that failure messages give for a missing program.
const installHint = "run scripts/install-deps.sh as root (it installs Debian's postfix and swaks)"

// lookBinary returns the path of a program, failing the test when it is
// missing. Postfix's programs live in /usr/sbin, which is not on every PATH.
func lookBinary(t testing.TB, name string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && info.Mode()&0o111 != 0 {
			return path
		}
	}
	t.Fatalf("%s not found in PATH or /usr/sbin: %s", name, installHint)
	return ""
}

// sharedTempDir returns a t.TempDir() folder that unprivileged service users
// (postfix, nobody) can traverse. The testing package creates the folder and
// its parent with mode 0700, which would stop Postfix's delivery agents and
// smtp-sink after they drop root.
func sharedTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatalf("make %s traversable for service users: %v", d, err)
		}
	}
	return dir
}

// lookupUser returns the numeric uid and gid of a system user.
func lookupUser(t testing.TB, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up user %q: %v: %s", name, err, installHint)
	}
	uid, errUID := strconv.Atoi(u.Uid)
	gid, errGID := strconv.Atoi(u.Gid)
	if errUID != nil || errGID != nil {
		t.Fatalf("user %q has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	return uid, gid
}

// waitBanner dials addr until an SMTP server there sends a 220 greeting, or
// until the timeout. The check func, when not nil, is called between
// attempts and stops the wait with its error (a server process that exited).
func waitBanner(addr string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		line, err := readBanner(addr)
		if err == nil && strings.HasPrefix(line, "220") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("greeting %q instead of 220", line)
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no 220 greeting from %s within %v: %v", addr, timeout, lastErr)
}

// readBanner connects to addr, reads the first reply line and sends QUIT.
func readBanner(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))

	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting from %s: %w", addr, err)
	}
	fmt.Fprintf(conn, "QUIT\r\n")
	return strings.TrimRight(line, "\r\n"), nil
}

// processAlive reports whether a process with this PID exists and is not a
// zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, state, _ := parseStat(string(stat))
	return state != "Z" && state != "X"
}

// childPIDs returns the PIDs of the live processes whose parent is pid.
func childPIDs(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var children []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		ppid, state, ok := parseStat(string(stat))
		if ok && ppid == pid && state != "Z" {
			children = append(children, child)
		}
	}
	return children
}

// parseStat returns the parent PID and state from /proc/PID/stat. The
// command name in brackets may contain spaces, so fields are counted from
// the last closing bracket.
func parseStat(stat string) (ppid int, state string, ok bool) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, "", false
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// waitGone polls until none of the PIDs is alive.
func waitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if processAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still running after %v", alive, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFiles returns the paths of the files a process has open, read from
// /proc/PID/fd.
func openFiles(pid int) (map[string]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return map[string]bool{}, nil
		}
		return nil, err
	}
	files := make(map[string]bool, len(entries))
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil {
			files[target] = true
		}
	}
	return files, nil
}

// commandLine joins an Exec prefix, a program and its arguments.
func commandLine(prefix []string, program string, args ...string) []string {
	argv := append([]string{}, prefix...)
	argv = append(argv, program)
	return append(argv, args...)
}

// exitCode returns the exit status of a finished command, or -1 with the
// error when the command could not run at all.
func exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	return -1, err
}

// syscallKill sends SIGKILL to a process the package started.
func syscallKill(pid int) {
	syscall.Kill(pid, syscall.SIGKILL)
}

// waitListening polls until the process pid has a TCP socket listening on
// port, or until the timeout. It reads /proc/PID/net/tcp and tcp6, which
// show the sockets of the process's network namespace, and matches their
// inodes against the process's open files. So it also works for a process
// inside a namespace whose addresses cannot be dialled from here. The
// check func, when not nil, stops the wait with its error.
func waitListening(pid int, port string, timeout time.Duration, check func() error) error {
	portNumber, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("invalid port %q: %v", port, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if listensOn(pid, uint16(portNumber)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d is not listening on TCP port %s after %v", pid, port, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpListenState is the st column of /proc/net/tcp for a listening socket.
const tcpListenState = "0A"

func listensOn(pid int, port uint16) bool {
	files, err := openFiles(pid)
	if err != nil {
		return false
	}
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != tcpListenState {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if hexPort == fmt.Sprintf("%04X", port) && files["socket:["+fields[9]+"]"] {
				return true
			}
		}
	}
	return false
}
