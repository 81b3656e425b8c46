package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lambgate/lambgate/images/internal/disk"
)

// Flash builds an image whose perm partition fills dev (an SD card, a USB
// disk or a file) and writes it there. Only the regions that hold data are
// copied: partition tables, the boot partition and the root squashfs.
// Root B is left as it was, because an update overwrites it whole before
// it is ever mounted. Perm is created by mkfs.ext4 on dev itself, so stale
// data from a previous use of the device cannot show through, which a
// sparse copy of the image's zeros would allow.
func Flash(ctx context.Context, opts Options, dev string) (*Result, error) {
	if err := checkNotMounted(dev); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	size, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("read the size of %s: %w", dev, err)
	}
	opts.Size = size / disk.SectorSize * disk.SectorSize

	work, err := os.MkdirTemp("", "lambgate-flash-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	opts.Output = filepath.Join(work, "image.img")
	opts.RootOutput = filepath.Join(work, "root.squashfs")
	res, err := Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	root, err := os.Stat(opts.RootOutput)
	if err != nil {
		return nil, err
	}

	progress := newProgress(opts.Progress, 2)
	progress.step(fmt.Sprintf("writing partition tables, boot and root A to %s", dev))
	img, err := os.Open(opts.Output)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	boot, rootA := res.Partitions[0], res.Partitions[1]
	backupGPT := int64(opts.Size/disk.SectorSize-gptBackupSectors) * disk.SectorSize
	ranges := [][2]int64{
		{0, int64(boot.LastLBA+1) * disk.SectorSize},
		{int64(rootA.FirstLBA) * disk.SectorSize, root.Size()},
		{backupGPT, gptBackupSectors * disk.SectorSize},
	}
	for _, r := range ranges {
		if _, err := io.Copy(io.NewOffsetWriter(out, r[0]), io.NewSectionReader(img, r[0], r[1])); err != nil {
			return nil, fmt.Errorf("write %s at byte %d: %w", dev, r[0], err)
		}
	}
	if err := out.Sync(); err != nil {
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}

	progress.step(fmt.Sprintf("creating the perm file system on %s (mkfs.ext4)", dev))
	perm := res.Partitions[3]
	permBytes := int64(perm.LastLBA-perm.FirstLBA+1) * disk.SectorSize
	if err := mkfsPerm(ctx, dev, int64(perm.FirstLBA)*disk.SectorSize, permBytes, opts); err != nil {
		return nil, err
	}
	progress.done()

	res.Path = dev
	// The image's SHA-256 describes the temporary image, not the device,
	// whose root B and unused space keep older data.
	res.SHA256 = ""
	return res, nil
}

// checkNotMounted rejects a device that has a mounted file system on it or
// on one of its partitions, such as the build host's own disk.
func checkNotMounted(dev string) error {
	resolved, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return err
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		source, _, _ := strings.Cut(line, " ")
		if source == resolved || (strings.HasPrefix(resolved, "/dev/") && strings.HasPrefix(source, resolved)) {
			return fmt.Errorf("%s is mounted (%s): unmount it, and check that it is the device you mean to flash",
				dev, strings.Fields(line)[1])
		}
	}
	return nil
}
