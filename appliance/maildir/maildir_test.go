package maildir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newMaildir(t *testing.T) (*Maildir, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	m, err := New(dir, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, dir
}

func newEnvelope(from string, rcpts ...string) *envelope.Envelope {
	env := &envelope.Envelope{QueueID: "0TESTQUEUEID", Kind: envelope.KindInbound, From: from, Received: time.Now()}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, envelope.Recipient{Address: r, State: envelope.StatePending})
	}
	return env
}

// listDir returns the names in dir/sub.
func listDir(t *testing.T, dir, sub string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatalf("read %s: %v", sub, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

const testBody = "Subject: hi\r\n\r\n.line with dot\r\nbye\r\n"

func TestNewCreatesFolders(t *testing.T) {
	_, dir := newMaildir(t)
	for _, sub := range []string{"tmp", "new", "cur"} {
		info, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Errorf("%s missing: %v", sub, err)
			continue
		}
		if perm := info.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s has mode %o, want 700", sub, perm)
		}
	}
}

func TestDeliverWritesCopyPerRecipient(t *testing.T) {
	m, dir := newMaildir(t)
	env := newEnvelope("sender@example.org", "a@example.test", "b@example.test")
	env.Prepend = "X-Filter: checked\r\n"

	results, err := m.Deliver(context.Background(), env, strings.NewReader(testBody))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(results) != 2 {
		t.Fatalf("Deliver returned %d results, want 2", len(results))
	}

	contents := map[string]bool{}
	for _, name := range listDir(t, dir, "new") {
		b, err := os.ReadFile(filepath.Join(dir, "new", name))
		if err != nil {
			t.Fatal(err)
		}
		contents[string(b)] = true
	}
	for _, res := range results {
		if !res.Delivered || res.Code != 250 || res.Enhanced != "2.0.0" || res.Relay != "maildir" {
			t.Errorf("result for %s = %+v, want delivered 250 2.0.0 via maildir", res.Recipient, res)
		}
		want := "Return-Path: <sender@example.org>\r\nDelivered-To: " + res.Recipient + "\r\n" +
			env.Prepend + testBody
		if !contents[want] {
			t.Errorf("no file in new/ holds the copy for %s: %q", res.Recipient, want)
		}
	}
	if n := len(listDir(t, dir, "new")); n != 2 {
		t.Errorf("new/ holds %d files, want 2", n)
	}
	if n := len(listDir(t, dir, "tmp")); n != 0 {
		t.Errorf("tmp/ holds %d files after delivery, want 0", n)
	}
}

func TestDeliverNullSenderReturnPath(t *testing.T) {
	m, dir := newMaildir(t)
	if _, err := m.Deliver(context.Background(), newEnvelope("", "a@example.test"), strings.NewReader(testBody)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	names := listDir(t, dir, "new")
	if len(names) != 1 {
		t.Fatalf("new/ holds %d files, want 1", len(names))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "new", names[0]))
	if !strings.HasPrefix(string(b), "Return-Path: <>\r\n") {
		t.Errorf("file starts %q, want Return-Path: <>", string(b[:min(len(b), 40)]))
	}
}

func TestDeliverSkipsSettledRecipients(t *testing.T) {
	m, dir := newMaildir(t)
	env := newEnvelope("s@example.org", "a@example.test", "b@example.test", "c@example.test")
	env.Recipients[0].State = envelope.StateDelivered
	env.Recipients[2].State = envelope.StateDiscarded

	results, err := m.Deliver(context.Background(), env, strings.NewReader(testBody))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(results) != 1 || results[0].Recipient != "b@example.test" {
		t.Errorf("results = %+v, want one for b@example.test", results)
	}
	if n := len(listDir(t, dir, "new")); n != 1 {
		t.Errorf("new/ holds %d files, want 1", n)
	}
}

var nameForm = regexp.MustCompile(`^[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+\.[^/:]+$`)

func TestNamesUniqueUnderConcurrency(t *testing.T) {
	m, dir := newMaildir(t)
	// A second Maildir value on the same folder shares the counter.
	m2, err := New(dir, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		target := m
		if w%2 == 1 {
			target = m2
		}
		wg.Go(func() {
			for i := range perWorker {
				rcpt := fmt.Sprintf("w%d-%d@example.test", w, i)
				results, err := target.Deliver(context.Background(),
					newEnvelope("s@example.org", rcpt, "copy-"+rcpt), strings.NewReader(testBody))
				if err != nil {
					errs <- err
					continue
				}
				for _, res := range results {
					if !res.Delivered {
						errs <- fmt.Errorf("%s: %+v", res.Recipient, res)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	names := listDir(t, dir, "new")
	if want := workers * perWorker * 2; len(names) != want {
		t.Errorf("new/ holds %d files, want %d (a name was reused)", len(names), want)
	}
	seen := map[string]bool{}
	for _, name := range names {
		if !nameForm.MatchString(name) {
			t.Errorf("file name %q does not have the Maildir form", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, "new", name))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "Delivered-To: ")
		rcpt, content, _ := strings.Cut(rest, "\r\n")
		if seen[rcpt] {
			t.Errorf("two files for %s", rcpt)
		}
		seen[rcpt] = true
		if content != testBody {
			t.Errorf("file %s for %s holds %q, want the full body", name, rcpt, content)
		}
	}
}

func TestEscapeHostname(t *testing.T) {
	if got, want := escapeHostname("gw/1:a"), `gw\0571\072a`; got != want {
		t.Errorf("escapeHostname = %q, want %q", got, want)
	}
}

// watchingBody checks, during the copy of the body, that nothing is in new/
// yet while the partial file is in tmp/: the state a crash at that moment
// would leave behind.
type watchingBody struct {
	*strings.Reader
	t     *testing.T
	dir   string
	calls int
}

func (b *watchingBody) ReadAt(p []byte, off int64) (int, error) {
	b.calls++
	if n := len(listDir(b.t, b.dir, "new")); n != 0 {
		b.t.Errorf("new/ holds %d files while a body is still being written", n)
	}
	if n := len(listDir(b.t, b.dir, "tmp")); n != 1 {
		b.t.Errorf("tmp/ holds %d files during the write, want 1", n)
	}
	return b.Reader.ReadAt(p, off)
}

func TestNewHoldsNothingDuringWrite(t *testing.T) {
	m, dir := newMaildir(t)
	b := &watchingBody{Reader: strings.NewReader(testBody), t: t, dir: dir}
	results, err := m.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), b)
	if err != nil || !results[0].Delivered {
		t.Fatalf("Deliver = %+v, %v", results, err)
	}
	if b.calls == 0 {
		t.Fatalf("the body was never read, so nothing was checked")
	}
	if n := len(listDir(t, dir, "new")); n != 1 {
		t.Errorf("new/ holds %d files after delivery, want 1", n)
	}
}

// failingBody returns its first half and then an I/O error, like a spool
// file on a failing disk.
type failingBody struct{ *strings.Reader }

func (b failingBody) ReadAt(p []byte, off int64) (int, error) {
	half := b.Size() / 2
	if off >= half {
		return 0, syscall.EIO
	}
	n, _ := b.Reader.ReadAt(p[:min(int64(len(p)), half-off)], off)
	return n, nil
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	m, dir := newMaildir(t)
	body := failingBody{strings.NewReader(strings.Repeat("x", 100000))}
	results, err := m.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), body)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	res := results[0]
	if res.Delivered || res.Permanent || res.Code != 451 || res.Enhanced != "4.3.0" {
		t.Errorf("result = %+v, want temporary 451 4.3.0", res)
	}
	if n := len(listDir(t, dir, "new")); n != 0 {
		t.Errorf("new/ holds %d files after a failed write", n)
	}
	if n := len(listDir(t, dir, "tmp")); n != 0 {
		t.Errorf("tmp/ holds %d files after a failed write, want the partial file removed", n)
	}
}

// fullDisk writes limit bytes into the real tmp file and then fails with
// ENOSPC, as a file system that fills up mid-message does.
type fullDisk struct {
	f     *os.File
	limit int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if len(p) > d.limit {
		n, _ := d.f.Write(p[:d.limit])
		d.limit = 0
		return n, &os.PathError{Op: "write", Path: d.f.Name(), Err: syscall.ENOSPC}
	}
	d.limit -= len(p)
	return d.f.Write(p)
}
func (d *fullDisk) Sync() error  { return d.f.Sync() }
func (d *fullDisk) Close() error { return d.f.Close() }

func TestFullDiskDefersDelivery(t *testing.T) {
	cases := []struct {
		name   string
		create func(path string) (file, error)
	}{
		{"disk fills mid-message", func(path string) (file, error) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			return &fullDisk{f: f, limit: 1000}, err
		}},
		// /dev/full fails every write with the kernel's own ENOSPC.
		{"kernel ENOSPC from /dev/full", func(string) (file, error) {
			return os.OpenFile("/dev/full", os.O_WRONLY, 0)
		}},
		{"no space to create", func(path string) (file, error) {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOSPC}
		}},
		{"quota exceeded", func(path string) (file, error) {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EDQUOT}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := newMaildir(t)
			m.create = tc.create
			body := strings.NewReader(strings.Repeat("0123456789\r\n", 10000))
			results, err := m.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test", "b@example.test"), body)
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			for _, res := range results {
				if res.Delivered || res.Permanent || res.Code != 452 || res.Enhanced != "4.3.1" {
					t.Errorf("result for %s = %+v, want temporary 452 4.3.1", res.Recipient, res)
				}
			}
			if n := len(listDir(t, dir, "new")); n != 0 {
				t.Errorf("new/ holds %d files after ENOSPC", n)
			}
			if n := len(listDir(t, dir, "tmp")); n != 0 {
				t.Errorf("tmp/ holds %d files after ENOSPC, want them removed", n)
			}
		})
	}
}

func TestDeliverRejectsHeaderInjection(t *testing.T) {
	m, dir := newMaildir(t)
	results, err := m.Deliver(context.Background(),
		newEnvelope("s@example.org", "a@example.test\r\nX-Evil: 1"), strings.NewReader(testBody))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if !results[0].Permanent || results[0].Enhanced != "5.1.3" {
		t.Errorf("result = %+v, want permanent 5.1.3", results[0])
	}
	if n := len(listDir(t, dir, "new")); n != 0 {
		t.Errorf("new/ holds %d files for an invalid address", n)
	}
}

func TestDeliverCanceledContext(t *testing.T) {
	m, dir := newMaildir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Deliver(ctx, newEnvelope("s@example.org", "a@example.test"), strings.NewReader(testBody))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver error = %v, want context.Canceled", err)
	}
	if n := len(listDir(t, dir, "new")); n != 0 {
		t.Errorf("new/ holds %d files after a canceled delivery", n)
	}
}

func TestDeliverLargeBodyExact(t *testing.T) {
	m, dir := newMaildir(t)
	big := bytes.Repeat([]byte("abcdefghij\r\n"), 50000) // larger than the copy buffer
	if _, err := m.Deliver(context.Background(), newEnvelope("s@example.org", "a@example.test"), bytes.NewReader(big)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	names := listDir(t, dir, "new")
	if len(names) != 1 {
		t.Fatalf("new/ holds %d files, want 1", len(names))
	}
	f, _ := os.Open(filepath.Join(dir, "new", names[0]))
	defer f.Close()
	got, _ := io.ReadAll(f)
	want := "Return-Path: <s@example.org>\r\nDelivered-To: a@example.test\r\n" + string(big)
	if string(got) != want {
		t.Errorf("file holds %d bytes, want %d identical bytes", len(got), len(want))
	}
}

func TestNewRemovesStaleTmpFiles(t *testing.T) {
	_, dir := newMaildir(t)
	stale := filepath.Join(dir, "tmp", "1.M1P1Q1.crashed")
	fresh := filepath.Join(dir, "tmp", "2.M2P2Q2.writing")
	for _, path := range []string{stale, fresh} {
		if err := os.WriteFile(path, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-37 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	if _, err := New(dir, testLogger(t)); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale tmp file still exists (stat error %v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh tmp file was removed: %v", err)
	}
}
