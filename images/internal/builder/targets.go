package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/lambgate/lambgate/images/internal/fat16"

	// The kernel and firmware modules contain no Go code. Importing them
	// keeps them in go.mod, so that go mod tidy keeps the files that the
	// builder copies from the module cache.
	_ "github.com/gokrazy/firmware"
	_ "github.com/gokrazy/kernel.amd64"
	_ "github.com/gokrazy/kernel.arm64"
	_ "github.com/gokrazy/kernel.rpi"
	_ "github.com/gokrazy/rpi-eeprom"
)

// Target names accepted by Options.Target.
const (
	// TargetVM is a PC or virtual machine (amd64): UEFI through
	// systemd-boot, or legacy BIOS through the MBR loader.
	TargetVM = "vm"
	// TargetPi is a Raspberry Pi 3, 4 or 5 (arm64).
	TargetPi = "pi"
)

// systemdBootEFI is Debian's systemd-boot (package systemd-boot-efi). It
// reads loader/entries/gokrazy.conf, whose root= gokrazy's runtime
// rewrites to switch root partitions. A unified kernel image would carry
// a command line that the runtime cannot rewrite.
const systemdBootEFI = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// target describes the hardware-specific parts of an image.
type target struct {
	goarch string
	// kernelModule provides vmlinuz and lib/modules.
	kernelModule string
	// cmdline is the kernel command line without root=, which is added
	// from the partition GUIDs.
	cmdline string
	// bootFiles returns the boot partition's files other than the kernel
	// and cmdline.txt.
	bootFiles func(ctx context.Context, b *build, cmdline string) ([]fat16.File, error)
	// biosBoot puts a BIOS boot loader into the MBR, which loads vmlinuz
	// and cmdline.txt from the boot partition by sector number.
	biosBoot bool
}

var targets = map[string]target{
	TargetVM: {
		goarch:       "amd64",
		kernelModule: "github.com/gokrazy/kernel.amd64",
		// pci=nommconf is from kernel.amd64's own cmdline.txt. rootwait
		// waits for the disk as long as needed instead of a fixed 10 s.
		cmdline:   "console=tty1 console=ttyS0,115200 ro init=/gokrazy/init rootwait panic=10 oops=panic pci=nommconf",
		bootFiles: vmBootFiles,
		biosBoot:  true,
	},
	TargetPi: {
		goarch:       "arm64",
		kernelModule: "github.com/gokrazy/kernel.rpi",
		// ttyS0 is the mini UART on GPIO 14 and 15 that enable_uart=1 in
		// config.txt turns on.
		cmdline:   "console=ttyS0,115200 console=tty1 ro init=/gokrazy/init rootwait panic=10 oops=panic",
		bootFiles: piBootFiles,
	},
}

func vmBootFiles(ctx context.Context, b *build, cmdline string) ([]fat16.File, error) {
	loader, err := os.ReadFile(systemdBootEFI)
	if err != nil {
		return nil, fmt.Errorf("read the UEFI boot loader: %w: install Debian's systemd-boot-efi "+
			"(scripts/install-deps.sh)", err)
	}
	entry := "title Lambgate\nlinux /vmlinuz\noptions " + cmdline + "\n"
	return []fat16.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: loader},
		{Path: "loader/loader.conf", Data: []byte("default gokrazy.conf\ntimeout 0\n")},
		{Path: "loader/entries/gokrazy.conf", Data: []byte(entry)},
	}, nil
}

// piFirmwareFile matches the boot ROM and GPU firmware files of
// github.com/gokrazy/firmware: bootcode.bin (Pi 3), start*.elf and
// fixup*.dat.
var piFirmwareFile = regexp.MustCompile(`^(bootcode\.bin|start.*\.elf|fixup.*\.dat)$`)

func piBootFiles(ctx context.Context, b *build, cmdline string) ([]fat16.File, error) {
	var files []fat16.File

	fwDir, err := moduleDir(ctx, b.moduleRoot, "github.com/gokrazy/firmware")
	if err != nil {
		return nil, err
	}
	fw, err := readMatching(fwDir, "", piFirmwareFile)
	if err != nil {
		return nil, err
	}
	files = append(files, fw...)

	dtbs, err := readMatching(b.kernelDir, "", regexp.MustCompile(`^bcm27.*\.dtb$`))
	if err != nil {
		return nil, err
	}
	if len(dtbs) == 0 {
		return nil, fmt.Errorf("no bcm27*.dtb device trees in %s", b.kernelDir)
	}
	files = append(files, dtbs...)

	overlays, err := readMatching(filepath.Join(b.kernelDir, "overlays"), "overlays", regexp.MustCompile(`.`))
	if err != nil {
		return nil, err
	}
	files = append(files, overlays...)

	config, err := os.ReadFile(filepath.Join(b.kernelDir, "config.txt"))
	if err != nil {
		return nil, err
	}
	// The serial console is the only way to see a headless appliance boot.
	config = []byte(strings.ReplaceAll(string(config), "enable_uart=0", "enable_uart=1"))
	files = append(files, fat16.File{Path: "config.txt", Data: config})

	// TODO: Pi 4 EEPROM updates (pieeprom.upd, recovery.bin and vl805
	// from github.com/gokrazy/rpi-eeprom) are not added yet.
	return files, nil
}

// readMatching reads the regular files in dir whose names match re, as
// boot files under prefix.
func readMatching(dir, prefix string, re *regexp.Regexp) ([]fat16.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []fat16.File
	for _, e := range entries {
		if !e.Type().IsRegular() || !re.MatchString(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, fat16.File{Path: filepath.ToSlash(filepath.Join(prefix, e.Name())), Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}
