package disk

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

func testTable() *Table {
	const total = 2 << 30 / SectorSize
	return &Table{
		TotalSectors: total,
		DiskGUID:     DeriveGUID("disk"),
		MBRSignature: 0x2a2b2c2d,
		HybridFAT:    0,
		Partitions: []Partition{
			{Type: TypeEFISystem, GUID: DeriveGUID("1"), Name: "boot", FirstLBA: 8192, LastLBA: 8192 + 204800 - 1},
			{Type: TypeLinuxData, GUID: DeriveGUID("2"), Name: "root A", FirstLBA: 212992, LastLBA: 212992 + 1024000 - 1},
			{Type: TypeLinuxData, GUID: DeriveGUID("4"), Name: "perm", FirstLBA: 1236992, LastLBA: total - 34},
		},
	}
}

func writeTable(t *testing.T, tab *Table) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(tab.TotalSectors) * SectorSize); err != nil {
		t.Fatal(err)
	}
	if err := tab.Write(f); err != nil {
		t.Fatal(err)
	}
	return img
}

func readGPT(t *testing.T, img string) *gpt.Table {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := gpt.Read(file.New(f, true), SectorSize, SectorSize)
	if err != nil {
		t.Fatalf("go-diskfs gpt.Read: %v", err)
	}
	return tab
}

func TestGoDiskfsReadsPrimaryGPT(t *testing.T) {
	want := testTable()
	got := readGPT(t, writeTable(t, want))
	if got.RecoveredFromBackup {
		t.Error("primary GPT was rejected; go-diskfs fell back to the backup")
	}
	if len(got.Partitions) != len(want.Partitions) {
		t.Fatalf("read %d partitions, want %d", len(got.Partitions), len(want.Partitions))
	}
	for i, p := range want.Partitions {
		g := got.Partitions[i]
		if g.Start != p.FirstLBA || g.End != p.LastLBA {
			t.Errorf("partition %d spans %d-%d, want %d-%d", i+1, g.Start, g.End, p.FirstLBA, p.LastLBA)
		}
		if !strings.EqualFold(g.GUID, p.GUID.String()) {
			t.Errorf("partition %d GUID %s, want %s", i+1, g.GUID, p.GUID)
		}
		if g.Name != p.Name {
			t.Errorf("partition %d name %q, want %q", i+1, g.Name, p.Name)
		}
	}
	if !strings.EqualFold(string(got.Partitions[0].Type), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") {
		t.Errorf("boot partition type %s, want the EFI system partition type", got.Partitions[0].Type)
	}
}

func TestBackupGPTReplacesBrokenPrimary(t *testing.T) {
	img := writeTable(t, testTable())
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXX"), SectorSize+100); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, SectorSize+16); err != nil { // break the header CRC
		t.Fatal(err)
	}
	f.Close()

	got := readGPT(t, img)
	if !got.RecoveredFromBackup {
		t.Error("broken primary GPT was accepted")
	}
	if len(got.Partitions) != 3 {
		t.Errorf("backup GPT holds %d partitions, want 3", len(got.Partitions))
	}
}

func TestHybridMBRCoversBootFAT(t *testing.T) {
	tab := testTable()
	f, err := os.Open(writeTable(t, tab))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw := make([]byte, SectorSize)
	if _, err := f.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if sig := le.Uint32(raw[440:]); sig != tab.MBRSignature {
		t.Errorf("disk signature %#x, want %#x", sig, tab.MBRSignature)
	}
	first := raw[446:462]
	if first[0] != 0x80 || first[4] != 0x0c {
		t.Errorf("MBR entry 1: status %#x type %#x, want active 0x0c", first[0], first[4])
	}
	if start := le.Uint32(first[8:]); start != 8192 {
		t.Errorf("MBR entry 1 starts at %d, want 8192", start)
	}
	if count := le.Uint32(first[12:]); count != 204800 {
		t.Errorf("MBR entry 1 has %d sectors, want 204800", count)
	}
	second := raw[462:478]
	if second[4] != 0xee || le.Uint32(second[8:]) != 1 {
		t.Errorf("MBR entry 2: type %#x start %d, want 0xee from sector 1", second[4], le.Uint32(second[8:]))
	}
	if raw[510] != 0x55 || raw[511] != 0xaa {
		t.Error("MBR boot signature 0x55AA missing")
	}
}

func TestWriteRejectsPartitionPastEnd(t *testing.T) {
	tab := testTable()
	tab.Partitions[2].LastLBA = tab.TotalSectors - 1
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tab.Write(f); err == nil || !strings.Contains(err.Error(), "enlarge the image") {
		t.Errorf("Write = %v, want an error that says to enlarge the image", err)
	}
}
