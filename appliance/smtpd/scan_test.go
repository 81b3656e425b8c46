package smtpd

import (
	"math/rand/v2"
	"testing"
)

// scanState is the part of a strictConn that scan changes.
type scanState struct {
	scanPos, readyEnd, mode, action int
	prevCR                          bool
	rejectMsg                       string
}

// scanData scans buf as DATA content with the fast run skipping on or off
// and returns the scanner's state.
func scanData(buf []byte, maxLine int, fast bool) scanState {
	saved := fastDataScan
	fastDataScan = fast
	defer func() { fastDataScan = saved }()
	c := &strictConn{state: &connState{cfg: &Config{MaxLineLength: maxLine}}, buf: buf, mode: modeData}
	c.scan()
	return scanState{scanPos: c.scanPos, readyEnd: c.readyEnd, mode: c.mode, action: c.action,
		prevCR: c.prevCR, rejectMsg: c.rejectMsg}
}

func compareDataScans(t *testing.T, buf []byte, maxLine int) {
	t.Helper()
	want := scanData(buf, maxLine, false)
	got := scanData(buf, maxLine, true)
	if got != want {
		t.Fatalf("input %q (max line %d):\nfast  pos=%d ready=%d cr=%v mode=%d reject=%q action=%d\nbytes pos=%d ready=%d cr=%v mode=%d reject=%q action=%d",
			buf, maxLine,
			got.scanPos, got.readyEnd, got.prevCR, got.mode, got.rejectMsg, got.action,
			want.scanPos, want.readyEnd, want.prevCR, want.mode, want.rejectMsg, want.action)
	}
}

// dataPieces are the fragments of random DATA content: line ends, lone CR
// and LF, the end-of-data line and plain text.
var dataPieces = []string{"\r\n", "\r", "\n", "x", "abcdefg", ".", ".\r\n", "\r\n.\r\n", "\r\r\n", "NOOP\r\n", "QUIT"}

func TestDataScanMatchesByteLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var buf []byte
		for range rng.IntN(30) {
			buf = append(buf, dataPieces[rng.IntN(len(dataPieces))]...)
		}
		compareDataScans(t, buf, []int{4, 9, 16, 1000}[rng.IntN(4)])
	}
}

func FuzzDataScanMatchesByteLoop(f *testing.F) {
	f.Add([]byte("line one\r\nline two\r\n.\r\n"), uint16(1000))
	f.Add([]byte("long line here\r\n"), uint16(6))
	f.Add([]byte("bare\nlf\r\n"), uint16(100))
	f.Fuzz(func(t *testing.T, buf []byte, maxLine uint16) {
		compareDataScans(t, buf, int(maxLine%64)+3)
	})
}
