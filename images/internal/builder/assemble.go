package builder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/lambgate/lambgate/images/internal/biosboot"
	"github.com/lambgate/lambgate/images/internal/disk"
	"github.com/lambgate/lambgate/images/internal/fat16"
)

// assemble writes the disk image: partition tables, boot FAT, the root
// squashfs in root A, and an empty ext4 perm. Root B stays zeros until the
// first update writes it.
func (b *build) assemble(ctx context.Context, rootImage string) (*Result, error) {
	b.progress.step("writing partitions and the boot file system")
	opts := b.opts
	total := uint64(opts.Size / disk.SectorSize)
	diskGUID, guids, signature := partitionGUIDs(opts.Hostname)

	rootA := uint64(bootFirstLBA + bootSectors)
	rootB := rootA + rootSectors
	perm := rootB + rootSectors
	parts := []disk.Partition{
		{Type: disk.TypeEFISystem, GUID: guids[0], Name: "boot", FirstLBA: bootFirstLBA, LastLBA: rootA - 1},
		{Type: disk.TypeLinuxData, GUID: guids[1], Name: "root A", FirstLBA: rootA, LastLBA: rootB - 1},
		{Type: disk.TypeLinuxData, GUID: guids[2], Name: "root B", FirstLBA: rootB, LastLBA: perm - 1},
		{Type: disk.TypeLinuxData, GUID: guids[3], Name: "perm", FirstLBA: perm, LastLBA: total - gptBackupSectors - 1},
	}

	// Remove first, so a sparse new file replaces an old image whose
	// blocks would otherwise survive where nothing is written.
	if err := os.Remove(opts.Output); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	f, err := os.OpenFile(opts.Output, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(opts.Size); err != nil {
		return nil, err
	}

	// root=PARTUUID=<boot GUID>/PARTNROFF=1 names partition 2 relative to
	// partition 1. gokrazy's runtime rewrites PARTNROFF to 2 to boot root B,
	// and unlike /dev/sda2 it works under virtio, NVMe and USB alike.
	cmdline := fmt.Sprintf("root=PARTUUID=%s/PARTNROFF=1 %s", guids[0], b.target.cmdline)
	bootFiles, err := b.bootFiles(ctx, cmdline)
	if err != nil {
		return nil, err
	}
	fatOpts := fat16.Options{
		Size:          int64(bootSectors) * disk.SectorSize,
		HiddenSectors: bootFirstLBA,
		VolumeID:      signature,
		Label:         "LAMBGATE",
		ModTime:       opts.Time,
	}
	extents, err := fat16.Write(f, bootFirstLBA*disk.SectorSize, fatOpts, bootFiles)
	if err != nil {
		return nil, err
	}

	table := &disk.Table{TotalSectors: total, DiskGUID: diskGUID, MBRSignature: signature, HybridFAT: 0, Partitions: parts}
	if b.target.biosBoot {
		for _, file := range bootFiles {
			if file.Path != "vmlinuz" {
				continue
			}
			if err := biosboot.CheckKernel(file.Data); err != nil {
				return nil, err
			}
		}
		kernel, cmdlineFile := extents["vmlinuz"], extents["cmdline.txt"]
		table.BootCode, err = biosboot.Code(
			uint32(bootFirstLBA+kernel.Offset/disk.SectorSize),
			uint32(bootFirstLBA+cmdlineFile.Offset/disk.SectorSize))
		if err != nil {
			return nil, err
		}
	}
	if err := table.Write(f); err != nil {
		return nil, err
	}

	b.progress.step("copying the root file system to root A")
	if err := copyInto(f, rootImage, int64(rootA)*disk.SectorSize, int64(rootSectors)*disk.SectorSize); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	b.progress.step("creating the perm file system (mkfs.ext4)")
	permOffset := int64(perm * disk.SectorSize)
	permBytes := int64(total-gptBackupSectors-perm) * disk.SectorSize
	if err := mkfsPerm(ctx, opts.Output, permOffset, permBytes, opts); err != nil {
		return nil, err
	}

	return &Result{Path: opts.Output, Size: opts.Size, Partitions: parts, Cmdline: cmdline}, nil
}

// bootFiles returns the boot partition: kernel, cmdline.txt and the
// target's loader or firmware files.
func (b *build) bootFiles(ctx context.Context, cmdline string) ([]fat16.File, error) {
	kernel, err := os.ReadFile(filepath.Join(b.kernelDir, "vmlinuz"))
	if err != nil {
		return nil, err
	}
	files := []fat16.File{
		{Path: "vmlinuz", Data: kernel},
		{Path: "cmdline.txt", Data: []byte(cmdline + "\n")},
	}
	extra, err := b.target.bootFiles(ctx, b, cmdline)
	if err != nil {
		return nil, err
	}
	return append(files, extra...), nil
}

func copyInto(dst *os.File, src string, off, max int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if st.Size() > max {
		return fmt.Errorf("root file system is %d MiB, larger than the %d MiB root partition: "+
			"remove programs or kernel modules", st.Size()>>20, max>>20)
	}
	if _, err := io.Copy(io.NewOffsetWriter(dst, off), in); err != nil {
		return fmt.Errorf("copy the root file system into root A: %w", err)
	}
	return nil
}

// mkfsPerm creates the ext4 perm file system with e2fsprogs, writing in
// place inside the image (no loop device, no root). The UUID, hash seed
// and time stamps are fixed so that the same options give the same bytes.
func mkfsPerm(ctx context.Context, image string, offset, size int64, opts Options) error {
	uuid := disk.DeriveGUID("lambgate perm " + opts.Hostname).String()
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-F", "-q",
		"-L", "perm",
		"-U", uuid,
		"-E", fmt.Sprintf("offset=%d,hash_seed=%s,root_owner=0:0", offset, uuid),
		image, strconv.FormatInt(size/1024, 10)+"k")
	epoch := strconv.FormatInt(opts.Time.Unix(), 10)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+epoch, "SOURCE_DATE_EPOCH="+epoch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mkfs.ext4 failed: %v\n%s: install e2fsprogs (scripts/install-deps.sh)", err, out.Bytes())
	}
	return nil
}
