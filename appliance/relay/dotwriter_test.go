package relay

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestDotWriterAcrossChunks(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{"x\r\n.y\r\n..z\r\n", "x\r\n..y\r\n...z\r\n.\r\n"},
		{"no end", "no end\r\n.\r\n"},
		{"ends in CR\r", "ends in CR\r\r\n.\r\n"},
		{"mid.dot\r\n", "mid.dot\r\n.\r\n"},
	}
	// Each input is written whole, byte by byte and in pairs, because a
	// line start can fall on any chunk boundary.
	for _, size := range []int{0, 1, 2} {
		for _, tc := range cases {
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			d := newDotWriter(bw)
			in := []byte(tc.in)
			step := size
			if step == 0 {
				step = max(len(in), 1)
			}
			for i := 0; i < len(in); i += step {
				if _, err := d.Write(in[i:min(i+step, len(in))]); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			bw.Flush()
			if out.String() != tc.want {
				t.Errorf("chunk size %d: %q became %q, want %q", size, tc.in, out.String(), tc.want)
			}
		}
	}
}

func TestWriteMessageAllocatesNothingPerLine(t *testing.T) {
	body := strings.NewReader(strings.Repeat(".dotted line of text\r\n", 5000))
	bw := bufio.NewWriterSize(discard{}, ioBufferSize)
	allocs := testing.AllocsPerRun(20, func() {
		if err := writeMessage(bw, "X-A: b\r\n", body, body.Size()); err != nil {
			t.Fatal(err)
		}
	})
	// The dotWriter and the section reader are allowed; 5000 lines are not.
	if allocs > 4 {
		t.Errorf("writeMessage made %.0f allocations for 5000 lines, want at most 4", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
