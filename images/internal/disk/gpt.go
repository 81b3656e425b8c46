// Package disk writes the partition tables of a Lambgate image: a GPT with
// its backup, and a hybrid MBR whose first entry covers the boot FAT so that
// the Raspberry Pi boot ROM, which reads only MBR partitions, finds it.
// The package writes tables only; it never touches partition contents.
package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// SectorSize is the logical sector size that every offset in an image
// counts in.
const SectorSize = 512

const (
	gptEntryCount = 128
	gptEntrySize  = 128
	// gptSectors is the primary header (1) plus the entry array (32).
	gptSectors = 1 + gptEntryCount*gptEntrySize/SectorSize
)

// Partition type GUIDs from the UEFI specification.
var (
	TypeEFISystem = MustParseGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	TypeLinuxData = MustParseGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

// GUID is a GUID in its text byte order; Bytes converts it to the mixed
// endianness that GPT stores.
type GUID [16]byte

// MustParseGUID parses "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" and panics on
// a malformed constant.
func MustParseGUID(s string) GUID {
	var g GUID
	var hex []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			hex = append(hex, s[i])
		}
	}
	if len(hex) != 32 {
		panic(fmt.Sprintf("disk: malformed GUID %q", s))
	}
	for i := range g {
		var b byte
		if _, err := fmt.Sscanf(string(hex[2*i:2*i+2]), "%02x", &b); err != nil {
			panic(fmt.Sprintf("disk: malformed GUID %q: %v", s, err))
		}
		g[i] = b
	}
	return g
}

// DeriveGUID returns a version 4 style GUID computed from seed, so that the
// same hostname and partition number always give the same GUID.
func DeriveGUID(seed string) GUID {
	sum := sha256.Sum256([]byte(seed))
	var g GUID
	copy(g[:], sum[:16])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// String formats g as the kernel's PARTUUID= expects: lower-case text
// order.
func (g GUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

// Bytes returns g as stored on disk: the first three fields little-endian.
func (g GUID) Bytes() [16]byte {
	var b [16]byte
	b[0], b[1], b[2], b[3] = g[3], g[2], g[1], g[0]
	b[4], b[5] = g[5], g[4]
	b[6], b[7] = g[7], g[6]
	copy(b[8:], g[8:])
	return b
}

// Partition is one GPT entry. FirstLBA and LastLBA are inclusive sector
// numbers.
type Partition struct {
	Type     GUID
	GUID     GUID
	Name     string
	FirstLBA uint64
	LastLBA  uint64
}

// Table is a whole partition table.
type Table struct {
	// TotalSectors is the image size in sectors.
	TotalSectors uint64
	DiskGUID     GUID
	// MBRSignature is the MBR disk identifier (bytes 440 to 443), from
	// which the kernel forms PARTUUID=xxxxxxxx-0N names.
	MBRSignature uint32
	// HybridFAT, when set, is the index in Partitions of the boot FAT
	// that the first MBR entry covers.
	HybridFAT  int
	Partitions []Partition
	// BootCode, when not nil, fills the MBR's first 440 bytes (a BIOS
	// boot loader).
	BootCode []byte
}

// FirstUsableLBA is the first sector after the primary GPT.
func (t *Table) FirstUsableLBA() uint64 { return 2 + gptSectors - 1 }

// LastUsableLBA is the last sector before the backup entry array.
func (t *Table) LastUsableLBA() uint64 { return t.TotalSectors - gptSectors - 1 }

// Write writes the MBR, the primary GPT and the backup GPT to w.
func (t *Table) Write(w io.WriterAt) error {
	if len(t.Partitions) > gptEntryCount {
		return fmt.Errorf("disk: %d partitions, the maximum is %d", len(t.Partitions), gptEntryCount)
	}
	for i, p := range t.Partitions {
		if p.FirstLBA < t.FirstUsableLBA() || p.LastLBA > t.LastUsableLBA() || p.LastLBA < p.FirstLBA {
			return fmt.Errorf("disk: partition %d spans sectors %d-%d, outside the usable %d-%d: "+
				"enlarge the image", i+1, p.FirstLBA, p.LastLBA, t.FirstUsableLBA(), t.LastUsableLBA())
		}
	}

	entries := make([]byte, gptEntryCount*gptEntrySize)
	for i, p := range t.Partitions {
		e := entries[i*gptEntrySize:]
		typ, id := p.Type.Bytes(), p.GUID.Bytes()
		copy(e[0:16], typ[:])
		copy(e[16:32], id[:])
		binary.LittleEndian.PutUint64(e[32:], p.FirstLBA)
		binary.LittleEndian.PutUint64(e[40:], p.LastLBA)
		name := utf16.Encode([]rune(p.Name))
		if len(name) > 36 {
			return fmt.Errorf("disk: partition name %q is longer than 36 UTF-16 units", p.Name)
		}
		for j, u := range name {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)

	last := t.TotalSectors - 1
	primary := t.header(1, last, 2, entriesCRC)
	backup := t.header(last, 1, last-gptSectors+1, entriesCRC)

	writes := []struct {
		lba  uint64
		data []byte
	}{
		{0, t.mbr()},
		{1, primary},
		{2, entries},
		{last - gptSectors + 1, entries},
		{last, backup},
	}
	for _, wr := range writes {
		if _, err := w.WriteAt(wr.data, int64(wr.lba)*SectorSize); err != nil {
			return fmt.Errorf("disk: write sector %d: %w", wr.lba, err)
		}
	}
	return nil
}

func (t *Table) header(current, backup, entriesLBA uint64, entriesCRC uint32) []byte {
	h := make([]byte, SectorSize)
	le := binary.LittleEndian
	copy(h[0:8], "EFI PART")
	le.PutUint32(h[8:], 0x00010000) // revision 1.0
	le.PutUint32(h[12:], 92)        // header size
	le.PutUint64(h[24:], current)
	le.PutUint64(h[32:], backup)
	le.PutUint64(h[40:], t.FirstUsableLBA())
	le.PutUint64(h[48:], t.LastUsableLBA())
	disk := t.DiskGUID.Bytes()
	copy(h[56:72], disk[:])
	le.PutUint64(h[72:], entriesLBA)
	le.PutUint32(h[80:], gptEntryCount)
	le.PutUint32(h[84:], gptEntrySize)
	le.PutUint32(h[88:], entriesCRC)
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	return h
}

// mbr returns sector 0: boot code, disk signature and a hybrid table. Entry
// 1 is the boot FAT (type 0x0C, active) for the Raspberry Pi boot ROM. Entry 2 is the 0xEE entry that marks the disk as GPT; it
// covers only the GPT header and entries, which makes the table a hybrid
// that Linux and UEFI accept.
func (t *Table) mbr() []byte {
	m := make([]byte, SectorSize)
	copy(m[:440], t.BootCode)
	binary.LittleEndian.PutUint32(m[440:], t.MBRSignature)

	slot := 0
	if t.HybridFAT >= 0 && t.HybridFAT < len(t.Partitions) {
		p := t.Partitions[t.HybridFAT]
		putMBREntry(m[446:], 0x80, 0x0c, p.FirstLBA, p.LastLBA-p.FirstLBA+1)
		slot++
	}
	protectiveEnd := t.FirstUsableLBA() - 1
	if len(t.Partitions) > 0 {
		protectiveEnd = t.Partitions[0].FirstLBA - 1
	}
	putMBREntry(m[446+16*slot:], 0x00, 0xee, 1, protectiveEnd)
	m[510], m[511] = 0x55, 0xaa
	return m
}

// putMBREntry writes a 16-byte MBR partition entry. The CHS fields hold
// the "beyond CHS" marker because every reader here uses LBA.
func putMBREntry(e []byte, status, typ byte, first, count uint64) {
	if count > 0xffffffff {
		count = 0xffffffff
	}
	e[0] = status
	copy(e[1:4], []byte{0xfe, 0xff, 0xff})
	e[4] = typ
	copy(e[5:8], []byte{0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], uint32(first))
	binary.LittleEndian.PutUint32(e[12:], uint32(count))
}
