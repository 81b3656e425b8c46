// Package biosboot provides the MBR boot code that starts a Lambgate PC
// image on legacy BIOS machines. loader.S loads vmlinuz by the Linux x86
// boot protocol and takes the first sector of cmdline.txt as the command
// line, so gokrazy's in-place rewrite of cmdline.txt switches root
// partitions under BIOS as it does under UEFI. The package only fills in
// sector numbers and never writes to a disk.
package biosboot

import (
	_ "embed"
	"encoding/binary"
	"fmt"
)

//go:generate make loader.bin

//go:embed loader.bin
var loader []byte

// paramsOffset is the offset of the two sector numbers in loader.S (.org 432).
const paramsOffset = 432

// Code returns the MBR's first 440 bytes: the loader with the LBAs of
// vmlinuz and cmdline.txt, both of which must be contiguous on disk.
func Code(vmlinuzLBA, cmdlineLBA uint32) ([]byte, error) {
	if len(loader) != paramsOffset+8 {
		return nil, fmt.Errorf("biosboot: loader.bin is %d bytes, want %d: rebuild it with make", len(loader), paramsOffset+8)
	}
	code := make([]byte, 440)
	copy(code, loader)
	binary.LittleEndian.PutUint32(code[paramsOffset:], vmlinuzLBA)
	binary.LittleEndian.PutUint32(code[paramsOffset+4:], cmdlineLBA)
	return code, nil
}

// CheckKernel returns an error unless loader.S can start kernel: a bzImage
// (boot protocol 2.02 or later, loaded high) whose real-mode setup fits the
// 64 sectors that the loader reads.
func CheckKernel(kernel []byte) error {
	if len(kernel) < 0x260 || string(kernel[0x202:0x206]) != "HdrS" {
		return fmt.Errorf("biosboot: vmlinuz has no Linux x86 boot header")
	}
	if version := binary.LittleEndian.Uint16(kernel[0x206:]); version < 0x0202 {
		return fmt.Errorf("biosboot: vmlinuz speaks boot protocol %#x, the loader needs 2.02 or later", version)
	}
	if kernel[0x211]&0x01 == 0 {
		return fmt.Errorf("biosboot: vmlinuz is not a bzImage (not loaded high)")
	}
	if setup := kernel[0x1f1]; setup > 63 {
		return fmt.Errorf("biosboot: vmlinuz has %d setup sectors, the loader reads at most 63", setup)
	}
	return nil
}
