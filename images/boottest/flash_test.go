//go:build boottest

package boottest

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lambgate/lambgate/images/internal/builder"
)

// TestFlashOverStaleDataIsClean flashes onto a file that plays a used SD
// card, with garbage where the boot FAT and perm's metadata go. Both file
// systems must check clean afterwards, because Flash writes the FAT whole
// and creates perm on the device itself.
func TestFlashOverStaleDataIsClean(t *testing.T) {
	requireTools(t, "fsck.vfat", "e2fsck")
	const size = 1300 << 20
	dev := filepath.Join(t.TempDir(), "sdcard.img")
	f, err := os.Create(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte{0xa5, 0x5a, 0xff, 0x13}, 1<<20) // 4 MiB
	const bootStart, permStart = 8192 * 512, 2260992 * 512
	for _, off := range []int64{bootStart, permStart, permStart + 32<<20, permStart + 128<<20} {
		if _, err := f.WriteAt(garbage, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	res, err := builder.Flash(context.Background(), builder.Options{
		Target:   builder.TargetVM,
		Hostname: "lambgate-test",
		Settings: testSettings(t),
		Password: testPassword,
		BuildID:  "flash",
		Time:     testTime,
	}, dev)
	if err != nil {
		t.Fatalf("flash: %v", err)
	}
	perm := res.Partitions[3]
	if got := int64(perm.LastLBA+1+33) * 512; got != size {
		t.Errorf("perm ends at byte %d, want the device's end %d less the backup GPT", got-33*512, int64(size)-33*512)
	}

	boot := extractRange(t, dev, bootStart, 100<<20)
	if out, err := exec.Command("fsck.vfat", "-n", boot).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n on the flashed boot partition: %v\n%s", err, out)
	}
	permFile := extractRange(t, dev, int64(perm.FirstLBA)*512, int64(perm.LastLBA-perm.FirstLBA+1)*512)
	if out, err := exec.Command("e2fsck", "-fn", permFile).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on the flashed perm partition: %v\n%s", err, out)
	}
}

func extractRange(t *testing.T, path string, off, n int64) string {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), "part.img")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.NewSectionReader(in, off, n)); err != nil {
		t.Fatal(err)
	}
	return out
}
