package smtpd

import (
	"io"
	"math/rand/v2"
	"testing"
)

// checkByteByByte runs data through step alone, the reference for the
// run-at-a-time body scan, and returns the first error and the end state.
func checkByteByByte(data []byte, maxLine int) (error, contentWriter) {
	c := contentWriter{w: io.Discard, maxHops: 3, maxSize: 1 << 30, maxLine: maxLine, inHeader: true, lineStart: true}
	for _, b := range data {
		if err := c.step(b); err != nil {
			return err, c
		}
	}
	return nil, c
}

// checkInChunks runs data through Write in the given chunk sizes.
func checkInChunks(data []byte, maxLine int, chunks []int) (error, contentWriter) {
	c := contentWriter{w: io.Discard, maxHops: 3, maxSize: 1 << 30, maxLine: maxLine, inHeader: true, lineStart: true}
	for len(data) > 0 {
		n := len(data)
		if len(chunks) > 0 {
			n = min(chunks[0], n)
			chunks = chunks[1:]
		}
		if _, err := c.Write(data[:n]); err != nil {
			return err, c
		}
		data = data[n:]
	}
	return nil, c
}

func compareScans(t *testing.T, data []byte, maxLine int, chunks []int) {
	t.Helper()
	wantErr, want := checkByteByByte(data, maxLine)
	gotErr, got := checkInChunks(data, maxLine, chunks)
	if gotErr != wantErr {
		t.Fatalf("input %q (max line %d, chunks %v): error %v, byte by byte %v", data, maxLine, chunks, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if got.prevCR != want.prevCR || got.lineLen != want.lineLen || got.hops != want.hops || got.inHeader != want.inHeader {
		t.Fatalf("input %q (max line %d, chunks %v): state cr=%v len=%d hops=%d header=%v, byte by byte cr=%v len=%d hops=%d header=%v",
			data, maxLine, chunks, got.prevCR, got.lineLen, got.hops, got.inHeader,
			want.prevCR, want.lineLen, want.hops, want.inHeader)
	}
}

// pieces are the fragments that random content is made of: line ends,
// lone CR and LF, header starts and plain text.
var pieces = []string{"\r\n", "\r", "\n", "a", "bcdefgh", "Received: x", "Subject: y", "\r\n\r\n", ".", "\r\r\n", " "}

func TestBodyScanMatchesByteByByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var data []byte
		for range rng.IntN(40) {
			data = append(data, pieces[rng.IntN(len(pieces))]...)
		}
		var chunks []int
		for range rng.IntN(6) {
			chunks = append(chunks, 1+rng.IntN(12))
		}
		maxLine := []int{0, 5, 12, 1000}[rng.IntN(4)]
		compareScans(t, data, maxLine, chunks)
	}
}

func FuzzBodyScanMatchesByteByByte(f *testing.F) {
	f.Add([]byte("Subject: a\r\n\r\nbody\r\n"), uint8(3), uint16(0))
	f.Add([]byte("Received: a\r\n\r\nbare\nlf\r\n"), uint8(5), uint16(8))
	f.Add([]byte("\r\n\r\nbare\rcr"), uint8(1), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, maxLine uint16) {
		chunks := make([]int, len(data))
		for i := range chunks {
			chunks[i] = int(chunk%16) + 1
		}
		compareScans(t, data, int(maxLine%64), chunks)
	})
}
