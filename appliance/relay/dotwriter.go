package relay

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// copyBuffers holds the buffers that message bodies are read through, so a
// delivery allocates none of its own.
var copyBuffers = sync.Pool{
	New: func() any {
		b := make([]byte, ioBufferSize)
		return &b
	},
}

// dotWriter writes message data for the DATA command (RFC 5321 section
// 4.5.2): it doubles a "." at the start of every line and, on close, ends the
// last line with CRLF when needed and writes the final ".\r\n". It scans each
// chunk with bytes.IndexByte and writes whole runs between line ends, so its
// cost does not grow with the number of lines.
type dotWriter struct {
	w *bufio.Writer
	// lineStart is true when the next byte begins a line.
	lineStart bool
	// tail holds the last two bytes written, to tell whether the data
	// ended with CRLF.
	tail    [2]byte
	written int64
}

func newDotWriter(w *bufio.Writer) *dotWriter {
	return &dotWriter{w: w, lineStart: true}
}

// Write stuffs and writes p. A bare LF also counts as a line end, because
// some servers treat it as one: a "." after it is doubled as well.
func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.lineStart && p[0] == '.' {
			if err := d.w.WriteByte('.'); err != nil {
				return n - len(p), err
			}
		}

		run := p
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			run = p[:i+1]
		}
		d.lineStart = i >= 0

		if _, err := d.w.Write(run); err != nil {
			return n - len(p), err
		}
		d.remember(run)
		p = p[len(run):]
	}
	return n, nil
}

// writeString writes s through buf, so that no copy of s is allocated.
func (d *dotWriter) writeString(s string, buf []byte) error {
	for len(s) > 0 {
		k := copy(buf, s)
		if _, err := d.Write(buf[:k]); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}

func (d *dotWriter) remember(run []byte) {
	d.written += int64(len(run))
	if len(run) >= 2 {
		d.tail = [2]byte{run[len(run)-2], run[len(run)-1]}
	} else {
		d.tail = [2]byte{d.tail[1], run[0]}
	}
}

// Close ends the data: CRLF if the last line lacks one, then ".\r\n". It
// does not flush the underlying writer.
func (d *dotWriter) Close() error {
	if d.written > 0 && d.tail != [2]byte{'\r', '\n'} {
		if _, err := d.w.WriteString("\r\n"); err != nil {
			return err
		}
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// writeMessage writes prepend and then all of body, dot-stuffed and
// terminated, to w. It does not flush w.
func writeMessage(w *bufio.Writer, prepend string, body io.ReaderAt, size int64) error {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp

	d := newDotWriter(w)
	if err := d.writeString(prepend, buf); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(d, io.NewSectionReader(body, 0, size), buf); err != nil {
		return err
	}
	return d.Close()
}
