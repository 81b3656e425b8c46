package fat16

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 5, 1, 12, 30, 10, 0, time.UTC)

func testFiles() []File {
	files := []File{
		{Path: "cmdline.txt", Data: []byte("root=PARTUUID=x/PARTNROFF=1 init=/gokrazy/init\n")},
		{Path: "config.txt", Data: []byte("kernel=vmlinuz\n")},
		{Path: "vmlinuz", Data: bytes.Repeat([]byte{0xab}, 70000)},
		{Path: "bcm2710-rpi-3-b.dtb", Data: []byte("three")},
		{Path: "bcm2710-rpi-3-b-plus.dtb", Data: []byte("three plus")},
		{Path: "loader/entries/gokrazy.conf", Data: []byte("linux /vmlinuz\n")},
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("MZ")},
		{Path: "empty", Data: nil},
	}
	for i := 0; i < 40; i++ {
		files = append(files, File{
			Path: fmt.Sprintf("overlays/overlay-with-a-long-name-%02d.dtbo", i),
			Data: []byte(fmt.Sprintf("overlay %d", i)),
		})
	}
	return files
}

func writeImage(t *testing.T, size int64, files []File) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "boot.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	opts := Options{Size: size, VolumeID: 0x1234abcd, Label: "boot", ModTime: testTime}
	if _, err := Write(f, 0, opts, files); err != nil {
		t.Fatal(err)
	}
	return img
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: run scripts/install-deps.sh (dosfstools, mtools)", name)
	}
}

func TestFsckAcceptsFileSystem(t *testing.T) {
	requireTool(t, "fsck.vfat")
	img := writeImage(t, 100<<20, testFiles())
	out, err := exec.Command("fsck.vfat", "-n", "-v", img).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "1 FATs, 16 bit entries") {
		t.Errorf("fsck.vfat did not report one 16-bit FAT:\n%s", out)
	}
}

func TestMtoolsReadsEveryFile(t *testing.T) {
	requireTool(t, "mtype")
	img := writeImage(t, 100<<20, testFiles())
	for _, f := range testFiles() {
		out, err := exec.Command("mtype", "-i", img, "::"+f.Path).Output()
		if err != nil {
			t.Errorf("mtype %s: %v", f.Path, err)
			continue
		}
		if !bytes.Equal(out, f.Data) {
			t.Errorf("mtype %s: got %d bytes, want %d", f.Path, len(out), len(f.Data))
		}
	}
}

// TestOneFATExtentLookupFindsFiles reads files the way gokrazy's runtime
// does when it switches root partitions: root directory after one FAT, one
// extent per file, and its name matching, where a name without extension
// matches only byte for byte.
func TestOneFATExtentLookupFindsFiles(t *testing.T) {
	img := writeImage(t, 100<<20, testFiles())
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/cmdline.txt", "root=PARTUUID=x/PARTNROFF=1 init=/gokrazy/init\n"},
		{"/loader/entries/gokrazy.conf", "linux /vmlinuz\n"},
	} {
		got, err := lookupOneFAT(raw, tc.path)
		if err != nil {
			t.Errorf("lookup %s: %v", tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("lookup %s = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// gokrazyMatch is gokrazy's rule: the entry's "NAME.EXT" equals the
// component exactly, or case-insensitively its upper-case 8.3 form with a
// "~1" tail when too long. For a component without extension that form
// ends in "." and never matches.
func gokrazyMatch(entryName, component string) bool {
	if entryName == component {
		return true
	}
	base, ext, hasExt := strings.Cut(strings.ToUpper(component), ".")
	if !hasExt {
		return false
	}
	if len(base) > 8 || len(ext) > 3 {
		base = base[:min(len(base), 6)] + "~1"
		ext = ext[:min(len(ext), 3)]
	}
	return strings.EqualFold(entryName, base+"."+ext)
}

func lookupOneFAT(raw []byte, path string) (string, error) {
	le := binary.LittleEndian
	sectorSize := int(le.Uint16(raw[11:]))
	spc := int(raw[13])
	reserved := int(le.Uint16(raw[14:]))
	rootEntries := int(le.Uint16(raw[17:]))
	fatSectors := int(le.Uint16(raw[22:]))

	dirOff := (reserved + fatSectors) * sectorSize
	dataOff := dirOff + rootEntries*32
	components := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for depth, component := range components {
		found := false
		for i := 0; i < rootEntries && !found; i++ {
			e := raw[dirOff+i*32 : dirOff+i*32+32]
			name := strings.TrimRight(string(e[0:8]), " ")
			if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
				name += "." + ext
			}
			if e[0] == 0 || !gokrazyMatch(name, component) {
				continue
			}
			cluster := int(le.Uint16(e[26:]))
			off := dataOff + (cluster-2)*spc*sectorSize
			if depth < len(components)-1 {
				if e[11] != attrDirectory {
					return "", fmt.Errorf("%q is not a directory", component)
				}
				dirOff = off
				found = true
				continue
			}
			size := int(le.Uint32(e[28:]))
			return string(raw[off : off+size]), nil
		}
		if !found {
			return "", fmt.Errorf("%q not found", component)
		}
	}
	return "", fmt.Errorf("%s not found", path)
}

func TestWriteIsDeterministic(t *testing.T) {
	a, err := os.ReadFile(writeImage(t, 32<<20, testFiles()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(writeImage(t, 32<<20, testFiles()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two writes of the same files differ")
	}
}

func TestWriteRejectsOversizedFiles(t *testing.T) {
	files := []File{{Path: "big", Data: make([]byte, 9<<20)}}
	img := filepath.Join(t.TempDir(), "boot.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Write(f, 0, Options{Size: 8 << 20, ModTime: testTime}, files)
	if err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("Write of 9 MiB into 8 MiB: err = %v, want a \"do not fit\" error", err)
	}
}

func TestShortNameTailsAreUnique(t *testing.T) {
	taken := map[[11]byte]bool{}
	var got []string
	for _, name := range []string{"bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb", "CONFIG.TXT", "cmdline.txt"} {
		short, _ := shortName(name, taken)
		taken[short] = true
		got = append(got, string(short[:]))
	}
	want := []string{"BCM271~1DTB", "BCM271~2DTB", "CONFIG  TXT", "cmdline txt"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("short name %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestExtentsPointAtFileContent(t *testing.T) {
	img := filepath.Join(t.TempDir(), "boot.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(32 << 20); err != nil {
		t.Fatal(err)
	}
	extents, err := Write(f, 0, Options{Size: 32 << 20, ModTime: testTime}, testFiles())
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range testFiles() {
		ext, ok := extents[file.Path]
		if len(file.Data) == 0 {
			continue // an empty file has no cluster
		}
		if !ok {
			t.Errorf("no extent for %s", file.Path)
			continue
		}
		got := make([]byte, ext.Size)
		if _, err := f.ReadAt(got, ext.Offset); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, file.Data) {
			t.Errorf("extent of %s at byte %d does not hold its content", file.Path, ext.Offset)
		}
	}
}
