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

func TestCheckKernelRejectsBadHeaders(t *testing.T) {
	good := make([]byte, 0x260)
	copy(good[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(good[0x206:], 0x020f)
	good[0x211] = 0x01
	good[0x1f1] = 39
	if err := CheckKernel(good); err != nil {
		t.Fatalf("CheckKernel rejected a valid header: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func([]byte)
	}{
		{"no magic", func(k []byte) { copy(k[0x202:], "XXXX") }},
		{"old protocol", func(k []byte) { binary.LittleEndian.PutUint16(k[0x206:], 0x0201) }},
		{"zImage", func(k []byte) { k[0x211] = 0 }},
		{"large setup", func(k []byte) { k[0x1f1] = 64 }},
	} {
		k := append([]byte(nil), good...)
		tc.change(k)
		if err := CheckKernel(k); err == nil {
			t.Errorf("%s: CheckKernel accepted the header", tc.name)
		}
	}
}
