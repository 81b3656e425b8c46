package builder

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lambgate/lambgate/images/internal/rootfs"
)

// programs returns the Go programs of the root file system: gokrazy's init
// runtime and helpers under /gokrazy, the gateway (or the boot probe)
// under /user, where the init looks for it.
func (b *build) programs() []program {
	progs := []program{
		{Package: "./images/init", RootPath: "gokrazy/init", LDFlags: "-X main.buildTimestamp=" + b.opts.BuildID},
		{Package: "github.com/gokrazy/gokrazy/cmd/dhcp", RootPath: "gokrazy/dhcp"},
		{Package: "github.com/gokrazy/gokrazy/cmd/ntp", RootPath: "gokrazy/ntp"},
		{Package: "github.com/gokrazy/gokrazy/cmd/randomd", RootPath: "gokrazy/randomd"},
	}
	if b.opts.Probe {
		return append(progs, program{Package: "./images/internal/bootprobe", RootPath: "user/bootprobe"})
	}
	return append(progs, program{Package: "./appliance/cmd/lambgate", RootPath: "user/lambgate"})
}

func (b *build) buildRoot(ctx context.Context, out string) error {
	progs := b.programs()
	b.progress.step(fmt.Sprintf("compiling %d programs for linux/%s:", len(progs), b.target.goarch))
	binDir := filepath.Join(b.work, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	var entries []rootfs.Entry
	for _, prog := range progs {
		bin, err := compile(ctx, b.moduleRoot, binDir, b.target.goarch, prog)
		if err != nil {
			return err
		}
		// A cold build cache takes about a minute, so name each program
		// as it is done.
		b.progress.note(filepath.Base(prog.RootPath))
		entries = append(entries, rootfs.Entry{Path: prog.RootPath, Source: bin, Mode: 0o755})
	}

	b.progress.step("packing the root file system (squashfs)")
	entries = append(entries, b.etcEntries()...)
	modules, err := kernelModules(b.kernelDir)
	if err != nil {
		return err
	}
	entries = append(entries, modules...)
	for _, dir := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "perm", "lib", "run", "mnt", "user", "gokrazy"} {
		entries = append(entries, rootfs.Entry{Path: dir, Mode: fs.ModeDir})
	}
	// /var lives on /perm. rootfs.Write needs the symlink's target in the
	// image, and the /perm mount hides this empty directory.
	entries = append(entries,
		rootfs.Entry{Path: "var", Mode: fs.ModeSymlink, Target: "/perm/var"},
		rootfs.Entry{Path: "perm/var", Mode: fs.ModeDir},
	)
	return rootfs.Write(out, entries, b.opts.Time)
}

// etcEntries returns the /etc files of the root file system. gokrazy's
// runtime reads the hostname (the init fails without it), the status
// page's password and ports, and resolv.conf, which the DHCP client writes
// under /tmp. The programs read the time zone and CA certificates, and
// Lambgate's init reads the settings seed and build ID.
func (b *build) etcEntries() []rootfs.Entry {
	hosts := "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 " + b.opts.Hostname + "\n"
	entries := []rootfs.Entry{
		{Path: "etc/hostname", Data: []byte(b.opts.Hostname), Mode: 0o644},
		{Path: "etc/hosts", Data: []byte(hosts), Mode: 0o644},
		{Path: "etc/gokr-pw.txt", Data: []byte(b.opts.Password), Mode: 0o400},
		{Path: "etc/http-port.txt", Data: []byte("80"), Mode: 0o644},
		{Path: "etc/https-port.txt", Data: []byte("443"), Mode: 0o644},
		{Path: "etc/resolv.conf", Mode: fs.ModeSymlink, Target: "/tmp/resolv.conf"},
		// Placeholder so that the symlink resolves at build time. The tmpfs
		// on /tmp hides it.
		{Path: "tmp/resolv.conf", Mode: 0o644},
		{Path: "etc/localtime", Data: utcZoneInfo(), Mode: 0o644},
		{Path: "etc/lambgate/lambgate.toml", Data: b.opts.Settings, Mode: 0o644},
		{Path: "etc/lambgate/build-id", Data: []byte(b.opts.BuildID + "\n"), Mode: 0o644},
	}
	// NOTE: the CA bundle comes from the build host (Debian's
	// ca-certificates), so two hosts with different bundles build
	// different images.
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		entries = append(entries, rootfs.Entry{Path: "etc/ssl/ca-bundle.pem", Data: ca, Mode: 0o644})
	}
	return entries
}

// utcZoneInfo returns a TZif file for UTC: a header with one local time
// type (offset 0, abbreviation "UTC") and no transitions. An appliance
// logs in UTC, and this keeps the host's time zone out of the image.
func utcZoneInfo() []byte {
	b := []byte("TZif")
	b = append(b, make([]byte, 16)...) // version 1, 15 reserved bytes
	counts := []uint32{0, 0, 0, 0, 1, 4}
	for _, c := range counts { // isutcnt isstdcnt leapcnt timecnt typecnt charcnt
		b = append(b, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
	}
	b = append(b, 0, 0, 0, 0, 0, 0) // ttinfo: utoff 0, isdst 0, abbreviation index 0
	return append(b, "UTC\x00"...)
}

// kernelModules returns the kernel package's lib/modules tree.
func kernelModules(kernelDir string) ([]rootfs.Entry, error) {
	var entries []rootfs.Entry
	base := filepath.Join(kernelDir, "lib")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(kernelDir, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			entries = append(entries, rootfs.Entry{Path: filepath.ToSlash(rel), Mode: fs.ModeDir})
		case d.Type().IsRegular():
			entries = append(entries, rootfs.Entry{Path: filepath.ToSlash(rel), Source: p, Mode: 0o644})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read kernel modules in %s: %w", base, err)
	}
	return entries, nil
}
