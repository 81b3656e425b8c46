package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/lambgate/lambgate/appliance/envelope"
)

// writeBufferSize batches the SMTP server's line-sized writes into fewer
// system calls.
const writeBufferSize = 64 << 10

// writeBuffers recycles write buffers, because a fresh 64 KiB buffer per
// message was most of the allocation of a commit.
var writeBuffers = sync.Pool{
	New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) },
}

// Writer streams one message into the spool. It is not safe for concurrent
// use. Every Writer ends with Commit or Abort. A small message stays in
// memory until Commit appends it to a segment; a larger one streams into
// the spool's tmp directory, which Open empties.
type Writer struct {
	spool    *Spool
	env      *envelope.Envelope
	chosenID bool

	// mem holds the record prefix and the body while the message is in
	// memory; memBuf is its pooled backing store, nil in file mode.
	mem    []byte
	memBuf *[]byte
	prefix int

	file     *os.File
	tmpPath  string
	buf      *bufio.Writer
	checksum hash.Hash32
	size     int64

	// err is the first failure; every later call returns it.
	err  error
	done bool
	// left is set once the writer no longer counts in Spool.writing.
	left bool
}

// memBuffers recycles the buffers of in-memory messages.
var memBuffers = sync.Pool{
	New: func() any {
		b := make([]byte, 0, 16<<10)
		return &b
	},
}

var errWriterDone = errors.New("spool: writer already committed or aborted")

// Create starts a message for env. It sets env.QueueID to a new id when it
// is empty. Commit stores env as it is at that moment, so callers may still
// change recipients, tags and Prepend until then.
func (s *Spool) Create(env *envelope.Envelope) (*Writer, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	chosen := env.QueueID != ""
	if !chosen {
		env.QueueID = NewQueueID()
	} else if err := checkQueueID(env.QueueID); err != nil {
		return nil, err
	}

	w := &Writer{spool: s, env: env, chosenID: chosen}
	s.writing.Add(1)
	if s.memLimit > 0 {
		w.memBuf = memBuffers.Get().(*[]byte)
		w.prefix = recordPrefixSize(env.QueueID)
		w.mem = append((*w.memBuf)[:0], make([]byte, w.prefix)...)
		return w, nil
	}
	if err := w.createFile(); err != nil {
		w.leave()
		return nil, err
	}
	return w, nil
}

// leave takes w out of the count of messages being written, once.
func (w *Writer) leave() {
	if !w.left {
		w.left = true
		w.spool.writing.Add(-1)
	}
}

// createFile switches w to a file in tmp, with whatever it holds in
// memory written out first.
func (w *Writer) createFile() error {
	id := w.env.QueueID
	path := filepath.Join(w.spool.tmpDir(), id)
	f, err := openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		w.releaseMem()
		w.err = wrapError("create message "+id, err)
		return w.err
	}
	w.file = f
	w.tmpPath = path
	w.buf = writeBuffers.Get().(*bufio.Writer)
	w.checksum = crc32.New(castagnoli)
	w.buf.Reset(f)
	if err := w.writeRaw([]byte(headerMagic)); err != nil {
		return err
	}
	if w.memBuf != nil {
		body := w.mem[w.prefix:]
		err := w.writeRaw(body)
		w.releaseMem()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) releaseMem() {
	if w.memBuf != nil {
		// Oversized buffers go back to the garbage collector, so the pool
		// never pins more than the memory limit per idle buffer.
		if cap(w.mem) <= w.spool.memLimit+w.prefix+64<<10 {
			*w.memBuf = w.mem[:0]
			memBuffers.Put(w.memBuf)
		}
		w.memBuf = nil
		w.mem = nil
	}
}

// Write appends message bytes. A full file system fails with an error
// wrapping ErrNoSpace and removes the partial message.
func (w *Writer) Write(p []byte) (int, error) {
	if w.memBuf != nil && w.err == nil && !w.done {
		if w.size+int64(len(p)) <= int64(w.spool.memLimit) {
			w.mem = append(w.mem, p...)
			w.size += int64(len(p))
			return len(p), nil
		}
		if err := w.createFile(); err != nil {
			return 0, err
		}
	}
	if err := w.writeRaw(p); err != nil {
		return 0, err
	}
	w.size += int64(len(p))
	return len(p), nil
}

func (w *Writer) writeRaw(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errWriterDone
	}
	if _, err := w.buf.Write(p); err != nil {
		return w.fail("write message "+w.env.QueueID, err)
	}
	w.checksum.Write(p)
	return nil
}

// fail records the first error and removes the temporary file, so that a
// failed message leaves nothing behind.
func (w *Writer) fail(op string, err error) error {
	w.err = wrapError(op, err)
	w.discard()
	return w.err
}

func (w *Writer) discard() {
	w.leave()
	w.releaseMem()
	w.releaseBuffer()
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
	if w.tmpPath == "" {
		return
	}
	if err := os.Remove(w.tmpPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.spool.log.Error("removing temporary message failed",
			"queue_id", w.env.QueueID, "reason", err.Error())
	}
}

func (w *Writer) releaseBuffer() {
	if w.buf != nil {
		w.buf.Reset(nil)
		writeBuffers.Put(w.buf)
		w.buf = nil
	}
}

// ReadAt reads message bytes written so far, so that filters can scan the
// message before it is committed.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if off < 0 {
		return 0, fmt.Errorf("spool: negative offset %d", off)
	}
	if w.memBuf != nil && !w.done {
		if off >= w.size {
			return 0, io.EOF
		}
		n := copy(p, w.mem[int64(w.prefix)+off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	if w.file == nil {
		return 0, errWriterDone
	}
	if err := w.buf.Flush(); err != nil {
		return 0, w.fail("write message "+w.env.QueueID, err)
	}
	if off >= w.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := w.size - off; int64(want) > rest {
		p = p[:rest]
	}
	n, err := w.file.ReadAt(p, headerSize+off)
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// Size returns the number of message bytes written.
func (w *Writer) Size() int64 { return w.size }

// Commit stores the envelope, makes the message durable in area and returns
// nil only once its data and directory entry are on stable storage. It sets
// env.Size. Concurrent commits share one sync. When ctx ends before the
// committer took the message, Commit removes it and returns ctx.Err(). On
// every error the message is gone and must be rejected or retried.
func (w *Writer) Commit(ctx context.Context, area Area) error {
	if err := checkArea(area); err != nil {
		w.Abort()
		return err
	}
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errWriterDone
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return err
	}

	if w.memBuf != nil {
		if area == AreaQueue {
			return w.commitRecord(ctx)
		}
		// Quarantined messages wait for an administrator, maybe for weeks,
		// and would pin a whole segment: they get a file of their own.
		if err := w.createFile(); err != nil {
			return err
		}
	}

	id := w.env.QueueID
	envJSON, err := w.encodeEnvelope()
	if err != nil {
		return err
	}
	if err := w.writeRaw(envJSON); err != nil {
		return err
	}
	t := trailer{bodySize: w.size, envelopeSize: uint32(len(envJSON)), checksum: w.checksum.Sum32()}
	if _, err := w.buf.Write(t.appendTo(nil)); err != nil {
		return w.fail("write message "+id, err)
	}
	if err := w.buf.Flush(); err != nil {
		return w.fail("write message "+id, err)
	}
	w.releaseBuffer()
	if err := w.file.Close(); err != nil {
		w.file = nil
		return w.fail("close message "+id, err)
	}
	w.file = nil

	dst := w.spool.messagePath(area, id)
	w.leave()
	err = w.spool.submit(ctx, &syncRequest{
		apply: func() error { return renameNoReplace(w.tmpPath, dst) },
		undo:  func() { os.Remove(dst) },
	})
	if err != nil {
		w.err = wrapError("commit message "+id, err)
		w.discard()
		return w.err
	}
	w.done = true
	return nil
}

// Abort discards the message. It is safe to call after Commit, which makes
// it a no-op, so callers may defer it.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.err == nil {
		w.discard()
	}
	return nil
}

// encodeEnvelope sets the envelope's size and returns its JSON. On error
// the message is aborted.
func (w *Writer) encodeEnvelope() ([]byte, error) {
	w.env.Size = w.size
	envJSON, err := json.Marshal(w.env)
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("spool: encode envelope of %s: %w", w.env.QueueID, err)
	}
	if len(envJSON) > maxEnvelopeSize {
		w.Abort()
		return nil, fmt.Errorf("spool: envelope of %s has %d bytes, more than the limit of %d: reduce the recipients",
			w.env.QueueID, len(envJSON), maxEnvelopeSize)
	}
	return envJSON, nil
}

// commitRecord appends the in-memory message to the active segment through
// the committer.
func (w *Writer) commitRecord(ctx context.Context) error {
	id := w.env.QueueID
	envJSON, err := w.encodeEnvelope()
	if err != nil {
		return err
	}
	w.mem = append(w.mem, envJSON...)
	putRecordHeader(w.mem, kindMessage, id, w.size, uint32(len(envJSON)))
	w.mem = binary.BigEndian.AppendUint32(w.mem, crc32.Checksum(w.mem, castagnoli))

	r := &syncRequest{record: w.mem, id: id, chosenID: w.chosenID}
	w.leave()
	err = w.spool.submit(ctx, r)
	// The committer is done with the bytes once submit returns, whatever
	// the outcome.
	w.releaseMem()
	w.done = true
	if err != nil {
		w.err = wrapError("commit message "+id, err)
		return w.err
	}
	return nil
}
