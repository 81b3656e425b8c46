// Package maildir delivers accepted mail into a local Maildir: the embedded
// default target when no internal mail server is configured. It owns the
// Maildir's tmp, new and cur folders and the file names in them.
//
// It never writes a file into new/ before the file's full content is synced,
// never overwrites an existing message, and never reads or changes files
// that a mail reader has moved to cur/.
package maildir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// relayName is the Result.Relay value of every Maildir delivery.
const relayName = "maildir"

// file is the destination of one message copy: an *os.File, or in tests a
// writer that fails on purpose.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// Maildir delivers messages into one Maildir. It implements
// envelope.Deliverer and is safe for concurrent use.
type Maildir struct {
	dir  string
	log  *slog.Logger
	host string // hostname escaped for file names

	// create opens a new, exclusive file; tests replace it to inject
	// write failures.
	create func(path string) (file, error)
}

var _ envelope.Deliverer = (*Maildir)(nil)

// copyBuffers holds the buffered writers and read buffers that messages are
// copied through, so a delivery allocates none of its own.
var copyBuffers = sync.Pool{
	New: func() any {
		return &copyBuffer{w: bufio.NewWriterSize(nil, 32<<10), buf: make([]byte, 32<<10)}
	},
}

type copyBuffer struct {
	w   *bufio.Writer
	buf []byte
}

// New creates dir and its tmp, new and cur folders (mode 0700) if they are
// missing and returns a Maildir that delivers into them.
func New(dir string, log *slog.Logger) (*Maildir, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("maildir: create %s: %w; "+
				"the data directory must be writable", filepath.Join(dir, sub), err)
		}
	}

	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	m := &Maildir{
		dir:    dir,
		log:    log,
		host:   escapeHostname(host),
		create: createFile,
	}
	m.removeStale(time.Now())
	return m, nil
}

// staleAge is the age after which a file left in tmp/ by a crash is
// removed. It is far longer than any delivery in progress can take.
const staleAge = 36 * time.Hour

// removeStale deletes files in tmp/ older than staleAge. Such a file was
// never renamed into new/, so no delivery was reported for it and the queue
// still holds its message.
func (m *Maildir) removeStale(now time.Time) {
	tmp := filepath.Join(m.dir, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		m.log.Warn("maildir tmp cleanup failed", "reason", err.Error())
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || now.Sub(info.ModTime()) < staleAge {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		if err := os.Remove(path); err != nil {
			m.log.Warn("maildir tmp cleanup failed", "path", path, "reason", err.Error())
			continue
		}
		m.log.Info("maildir removed stale tmp file", "path", path)
	}
}

func createFile(path string) (file, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// Deliver writes one file per pending recipient of env, so that each
// mailbox owner's copy is complete: "Return-Path:" and "Delivered-To:"
// lines, then env.Prepend, then body. The files keep the CRLF line ends of
// the spool, so that they match the spooled bytes. NOTE: qmail's Maildir
// files use LF, and a reader that expects only LF may show the CRs.
//
// A recipient is reported delivered only after its file is synced and
// renamed into new/ and new/ itself is synced. A full disk (ENOSPC or
// EDQUOT) gives a temporary 452 4.3.1 result and any other write error a
// temporary 451 4.3.0 result, so the queue retries. The error return is
// used only for a canceled context before anything was written.
func (m *Maildir) Deliver(ctx context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("maildir delivery of %s: %w", env.QueueID, context.Cause(ctx))
	}

	pending := env.Pending()
	results := make([]envelope.Result, len(pending))
	var written []int
	for i, p := range pending {
		name, err := m.writeMessage(env, p.Address, body)
		if err != nil {
			results[i] = m.failure(env, p.Address, err)
			continue
		}
		results[i] = envelope.Result{
			Recipient: p.Address, Code: 250, Enhanced: "2.0.0",
			Text: "delivered to maildir as new/" + name, Relay: relayName, Delivered: true,
		}
		written = append(written, i)
	}

	// One directory sync makes every rename of this delivery durable.
	if len(written) > 0 {
		if err := syncDir(filepath.Join(m.dir, "new")); err != nil {
			// NOTE: the files are in new/ already, so the retry that this
			// temporary result causes can deliver them twice.
			for _, i := range written {
				results[i] = m.failure(env, pending[i].Address, err)
			}
		}
	}

	for _, res := range results {
		if res.Delivered {
			m.log.Debug("maildir result", "queue_id", env.QueueID, "from", env.From,
				"rcpt", res.Recipient, "relay", relayName, "status", "sent",
				"delay", delay(env).String(), "reason", res.Text)
		}
	}
	return results, nil
}

// writeMessage writes the copy for rcpt into tmp/, syncs it, renames it
// into new/ and returns its file name.
func (m *Maildir) writeMessage(env *envelope.Envelope, rcpt string, body envelope.Body) (string, error) {
	if strings.ContainsAny(rcpt, "\r\n") || strings.ContainsAny(env.From, "\r\n") {
		return "", errInvalidAddress
	}

	name := uniqueName(time.Now(), m.host)
	tmpPath := filepath.Join(m.dir, "tmp", name)
	f, err := m.create(tmpPath)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", tmpPath, err)
	}

	err = writeContent(f, env, rcpt, body)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(tmpPath)
		return "", fmt.Errorf("write %s: %w", tmpPath, err)
	}

	// rename rather than the link and unlink of the Maildir spec, because
	// /perm may be FAT, which has no hard links. The name is unique, so
	// the rename never replaces a message.
	newPath := filepath.Join(m.dir, "new", name)
	if err := os.Rename(tmpPath, newPath); err != nil {
		os.Remove(tmpPath)
		return "", fmt.Errorf("move %s into new/: %w", tmpPath, err)
	}
	return name, nil
}

// writeContent writes the delivery headers, the prepended header lines and
// the body to f.
func writeContent(f io.Writer, env *envelope.Envelope, rcpt string, body envelope.Body) error {
	cb := copyBuffers.Get().(*copyBuffer)
	bw := cb.w
	bw.Reset(f)
	defer func() {
		bw.Reset(nil)
		copyBuffers.Put(cb)
	}()

	bw.WriteString("Return-Path: <")
	bw.WriteString(env.From)
	bw.WriteString(">\r\nDelivered-To: ")
	bw.WriteString(rcpt)
	bw.WriteString("\r\n")
	bw.WriteString(env.Prepend)
	// writerOnly hides bufio's ReadFrom, which would hand the copy to
	// os.File.ReadFrom and its own fresh buffer.
	if _, err := io.CopyBuffer(writerOnly{bw}, io.NewSectionReader(body, 0, body.Size()), cb.buf); err != nil {
		return err
	}
	return bw.Flush()
}

type writerOnly struct{ io.Writer }

var errInvalidAddress = errors.New("address contains CR or LF")

// failure builds the result of a failed write and logs it.
func (m *Maildir) failure(env *envelope.Envelope, rcpt string, err error) envelope.Result {
	res := envelope.Result{Recipient: rcpt, Relay: relayName}
	switch {
	case errors.Is(err, errInvalidAddress):
		res.Code, res.Enhanced, res.Permanent = 553, "5.1.3", true
		res.Text = "invalid address: " + err.Error()
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		res.Code, res.Enhanced = 452, "4.3.1"
		res.Text = "maildir storage full: " + err.Error()
	default:
		res.Code, res.Enhanced = 451, "4.3.0"
		res.Text = "maildir write failed: " + err.Error()
	}

	status := "deferred"
	if res.Permanent {
		status = "bounced"
	}
	m.log.Error("maildir result", "queue_id", env.QueueID, "from", env.From, "rcpt", rcpt,
		"relay", relayName, "status", status, "delay", delay(env).String(), "reason", res.Text)
	return res
}

func delay(env *envelope.Envelope) time.Duration {
	if env.Received.IsZero() {
		return 0
	}
	return time.Since(env.Received).Round(time.Millisecond)
}

// syncDir fsyncs a directory so that the entries created in it survive a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
