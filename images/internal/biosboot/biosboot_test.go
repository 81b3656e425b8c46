package biosboot

import (
	"encoding/binary"
	"testing"
)

func TestCodeStoresSectorNumbers(t *testing.T) {
	code, err := Code(8729, 8709)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 440 {
		t.Fatalf("code is %d bytes, want 440 (the MBR before the disk signature)", len(code))
	}
	if got := binary.LittleEndian.Uint32(code[paramsOffset:]); got != 8729 {
		t.Errorf("vmlinuz LBA %d, want 8729", got)
	}
	if got := binary.LittleEndian.Uint32(code[paramsOffset+4:]); got != 8709 {
		t.Errorf("cmdline.txt LBA %d, want 8709", got)
	}
	if code[0] != 0xfa {
		t.Errorf("first instruction %#x, want cli (0xfa)", code[0])
	}
}
