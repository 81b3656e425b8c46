package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SinkOptions configures an smtp-sink.
type SinkOptions struct {
	// Addr is the host:port to listen on. Empty: a free port on 127.0.0.1.
	// Required with Exec.
	Addr string

	// Exec is a command prefix such as []string{"ip", "netns", "exec",
	// "internet"}, to run the sink inside a network namespace. The prefix
	// must exec smtp-sink in its own process, as ip netns exec does,
	// because the sink is stopped and inspected by that PID.
	Exec []string

	// Hostname is the name in the greeting and the EHLO reply. Default
	// "sink.test".
	Hostname string

	// Discard turns off the dump files, for benchmarks: smtp-sink's man
	// page warns that capturing each transaction to a file can cut its
	// throughput by orders of magnitude. Messages then returns nothing.
	Discard bool

	// Args are extra smtp-sink options placed before the address, such as
	// []string{"-f", "RCPT"} to reject every recipient with a 5xx reply.
	Args []string
}

// Sink is a running smtp-sink: a sender's MX that records every mail
// transaction in a dump file.
type Sink struct {
	t       testing.TB
	opts    SinkOptions
	addr    string
	dumpDir string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// SinkMessage is one mail transaction that smtp-sink recorded.
type SinkMessage struct {
	// Path is the dump file.
	Path string
	// ClientAddr is the client's IP address, without the "ipv6:" prefix
	// that smtp-sink writes for IPv6.
	ClientAddr string
	// Proto is SMTP, ESMTP or LMTP.
	Proto string
	// HELO is the argument of the client's last HELO or EHLO, empty when
	// it sent none.
	HELO string
	// MailFrom is the envelope sender without angle brackets, empty for
	// the null sender.
	MailFrom string
	// MailArgs contains the whole MAIL FROM argument, with parameters
	// such as SIZE=.
	MailArgs string
	// Rcpts are the recipients without angle brackets, in the order sent.
	Rcpts []string
	// Data is the message after dot-unstuffing, with the LF line ends that
	// smtp-sink writes in place of CRLF.
	Data []byte
}

// sinkStartAttempts bounds the retries when a port picked by FreeAddr was
// taken before smtp-sink could bind it.
const sinkStartAttempts = 3

// StartSink starts smtp-sink on addr (empty: a free port on 127.0.0.1)
// with dump files, as the MX of a sender domain.
func StartSink(t testing.TB, addr string) *Sink {
	t.Helper()
	return StartSinkWith(t, SinkOptions{Addr: addr})
}

// StartSinkWith starts smtp-sink as configured and stops it at the end of
// the test. It returns once the sink sends its 220 greeting, or with
// Exec, once it listens, because the address is not reachable from here.
func StartSinkWith(t testing.TB, opts SinkOptions) *Sink {
	t.Helper()
	lookBinary(t, "smtp-sink")
	if len(opts.Exec) > 0 && opts.Addr == "" {
		t.Fatalf("SinkOptions.Addr is empty but Exec is %q: give an address inside that namespace", opts.Exec)
	}
	if opts.Hostname == "" {
		opts.Hostname = "sink.test"
	}

	root := sharedTempDir(t)
	s := &Sink{
		t:       t,
		opts:    opts,
		dumpDir: filepath.Join(root, "dump"),
		logPath: filepath.Join(root, "smtp-sink.log"),
	}
	// smtp-sink drops root for the nobody user before it writes dumps.
	uid, gid := lookupUser(t, "nobody")
	if err := os.Mkdir(s.dumpDir, 0o755); err != nil {
		t.Fatalf("create smtp-sink dump folder: %v", err)
	}
	if err := os.Chown(s.dumpDir, uid, gid); err != nil {
		t.Fatalf("give %s to the nobody user: %v", s.dumpDir, err)
	}
	t.Cleanup(s.stop)

	for attempt := 1; ; attempt++ {
		s.addr = opts.Addr
		if s.addr == "" {
			s.addr = FreeAddr(t)
		}
		err := s.start()
		if err == nil {
			return s
		}
		if opts.Addr == "" && attempt < sinkStartAttempts && strings.Contains(s.Log(), "in use") {
			continue
		}
		t.Fatalf("start smtp-sink on %s: %v\nsmtp-sink output:\n%s", s.addr, err, s.Log())
	}
}

func (s *Sink) start() error {
	args := []string{"-u", "nobody", "-h", s.opts.Hostname}
	if !s.opts.Discard {
		// strftime fields make names that sort by time; smtp-sink appends
		// a random hexadecimal suffix.
		args = append(args, "-d", filepath.Join(s.dumpDir, "%Y%m%d%H%M%S."))
	}
	args = append(args, s.opts.Args...)
	args = append(args, s.addr, "256")
	argv := commandLine(s.opts.Exec, lookBinary(s.t, "smtp-sink"), args...)

	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()

	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	exited := func() error {
		select {
		case <-done:
			return fmt.Errorf("smtp-sink exited: %v", cmd.ProcessState)
		default:
			return nil
		}
	}
	if len(s.opts.Exec) > 0 {
		_, port, err := net.SplitHostPort(s.addr)
		if err != nil {
			return fmt.Errorf("SinkOptions.Addr %q is not host:port: %v", s.addr, err)
		}
		return waitListening(cmd.Process.Pid, port, 10*time.Second, exited)
	}
	return waitBanner(s.addr, 10*time.Second, exited)
}

// stop ends the sink with SIGTERM and waits for it, with SIGKILL after
// 5 s.
func (s *Sink) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Addr returns the host:port the sink listens on.
func (s *Sink) Addr() string { return s.addr }

// PID returns the process ID of smtp-sink.
func (s *Sink) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Log returns what smtp-sink wrote to its standard output and error.
func (s *Sink) Log() string {
	data, _ := os.ReadFile(s.logPath)
	return string(data)
}

// Messages returns the completed transactions, oldest first. A dump that
// smtp-sink still has open (a transaction in progress) is left out.
func (s *Sink) Messages() []SinkMessage {
	s.t.Helper()
	msgs, err := s.messages()
	if err != nil {
		s.t.Fatal(err)
	}
	return msgs
}

// WaitMessages waits until at least n transactions were recorded and
// returns them, failing t when the timeout passes first.
func (s *Sink) WaitMessages(t testing.TB, n int, timeout time.Duration) []SinkMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.messages()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink %s: %d of %d messages arrived within %v", s.addr, len(msgs), n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Sink) messages() ([]SinkMessage, error) {
	open, err := openFiles(s.PID())
	if err != nil {
		return nil, fmt.Errorf("list the files smtp-sink has open: %v", err)
	}
	entries, err := os.ReadDir(s.dumpDir)
	if err != nil {
		return nil, err
	}
	type dump struct {
		path string
		mod  time.Time
	}
	var dumps []dump
	for _, e := range entries {
		path := filepath.Join(s.dumpDir, e.Name())
		if open[path] {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		dumps = append(dumps, dump{path, info.ModTime()})
	}
	slices.SortFunc(dumps, func(a, b dump) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})

	msgs := make([]SinkMessage, 0, len(dumps))
	for _, d := range dumps {
		data, err := os.ReadFile(d.path)
		if err != nil {
			return nil, err
		}
		m, err := parseSinkDump(data)
		if err != nil {
			return nil, fmt.Errorf("smtp-sink dump %s: %v", d.path, err)
		}
		m.Path = d.path
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// parseSinkDump parses one dump file: X-Client-Addr, X-Client-Proto,
// X-Helo-Args, X-Mail-Args and X-Rcpt-Args lines, a three-line Received
// header, the message, and an empty line (smtp-sink(1), DUMP FILE FORMAT).
func parseSinkDump(data []byte) (SinkMessage, error) {
	var m SinkMessage
	reader := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := reader.ReadString('\n')
		if err != nil {
			return m, fmt.Errorf("no Received header after the smtp-sink records")
		}
		line = strings.TrimSuffix(line, "\n")
		name, value, _ := strings.Cut(line, ": ")
		switch name {
		case "X-Client-Addr":
			m.ClientAddr = strings.TrimPrefix(value, "ipv6:")
		case "X-Client-Proto":
			m.Proto = value
		case "X-Helo-Args":
			m.HELO = value
		case "X-Mail-Args":
			m.MailArgs = value
			m.MailFrom = angleAddress(value)
		case "X-Rcpt-Args":
			m.Rcpts = append(m.Rcpts, angleAddress(value))
		case "Received":
			// The two continuation lines end smtp-sink's own header.
			for range 2 {
				if _, err := reader.ReadString('\n'); err != nil {
					return m, fmt.Errorf("Received header of smtp-sink is cut short")
				}
			}
			rest, _ := io.ReadAll(reader)
			m.Data = bytes.TrimSuffix(rest, []byte("\n"))
			return m, nil
		default:
			return m, fmt.Errorf("unexpected line %q before the Received header", line)
		}
	}
}

// angleAddress returns the address between the first < and > of an SMTP
// command argument, or the first word when there are no brackets.
func angleAddress(arg string) string {
	start := strings.IndexByte(arg, '<')
	end := strings.IndexByte(arg, '>')
	if start >= 0 && end > start {
		return arg[start+1 : end]
	}
	word, _, _ := strings.Cut(arg, " ")
	return word
}
