// Package builder assembles a Lambgate disk image. It compiles the init,
// gokrazy's helper programs and the gateway, and packs them with the
// kernel's modules into a squashfs root. Then it lays out boot FAT, root A,
// root B and an ext4 perm partition. It needs the Go toolchain and the
// Lambgate checkout. It writes only the output files (or the device given
// to Flash) and a temporary directory, and never talks to an appliance.
package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/images/internal/disk"
)

// Partition layout, in 512-byte sectors. These are the sizes that
// gokrazy's runtime and its update protocol assume: partition 1 boot,
// 2 and 3 the A and B roots, 4 perm.
const (
	bootFirstLBA = 8192 // 4 MiB, aligned for SD cards' erase blocks
	bootSectors  = 100 << 20 / disk.SectorSize
	rootSectors  = 500 << 20 / disk.SectorSize
	// minPermBytes leaves room for settings, a spool and the plugin cache.
	// Smaller perm partitions are rejected.
	minPermBytes = 64 << 20
	// gptBackupSectors is the backup GPT at the end of the disk.
	gptBackupSectors = 33
)

// MinSize is the smallest image that holds every partition.
const MinSize = (bootFirstLBA+bootSectors+2*rootSectors+gptBackupSectors)*disk.SectorSize + minPermBytes

// Options describe one image.
type Options struct {
	// Target is TargetVM or TargetPi.
	Target string
	// Output is the image file to write. An existing file is replaced.
	Output string
	// RootOutput, when set, also keeps the root squashfs there, which is
	// what an update pushes to a running appliance.
	RootOutput string
	// Size is the image size in bytes, at least MinSize. Perm takes
	// whatever the other partitions leave.
	Size int64
	// Hostname is the appliance's name and the seed of the partition GUIDs.
	Hostname string
	// Settings is the settings file baked into the root file system and
	// copied to /perm on first boot. Nil bakes in DefaultSettings.
	Settings []byte
	// Password protects gokrazy's status page and update endpoints
	// (HTTP basic authentication, user "gokrazy").
	Password string
	// BuildID identifies the build on the appliance (/etc/lambgate/build-id
	// and gokrazy's status page).
	BuildID string
	// Time is every file's modification time. A fixed value such as the
	// last commit's time makes builds reproducible.
	Time time.Time
	// Probe puts the boot probe in place of the gateway, to tell image
	// faults from gateway faults.
	Probe bool
	// Progress receives one line per step. Nil discards them.
	Progress io.Writer
}

// Result describes a finished image.
type Result struct {
	Path       string
	Size       int64
	SHA256     string
	Partitions []disk.Partition
	// Cmdline is the kernel command line in cmdline.txt.
	Cmdline string
}

// build holds the state shared by the steps of one Build call.
type build struct {
	opts       Options
	target     target
	moduleRoot string
	kernelDir  string
	work       string
	progress   *progress
}

// DefaultSettings returns the settings baked into an image when none are
// given: the gateway's defaults, listening on port 25 of every address,
// because an appliance's inbound role is reached from outside.
func DefaultSettings(hostname string) ([]byte, error) {
	s := settings.Default()
	s.Hostname = hostname
	s.Inbound.Listen = []string{"0.0.0.0:25"}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s.Marshal()
}

// Build writes the image described by opts.
func Build(ctx context.Context, opts Options) (*Result, error) {
	t, ok := targets[opts.Target]
	if !ok {
		return nil, fmt.Errorf("unknown target %q: use %q or %q", opts.Target, TargetVM, TargetPi)
	}
	if err := validate(&opts); err != nil {
		return nil, err
	}

	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := findModuleRoot(wd)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "lambgate-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	b := &build{opts: opts, target: t, moduleRoot: root, work: work, progress: newProgress(opts.Progress, 6)}
	if b.kernelDir, err = moduleDir(ctx, root, t.kernelModule); err != nil {
		return nil, err
	}

	rootImage := filepath.Join(work, "root.squashfs")
	if opts.RootOutput != "" {
		rootImage = opts.RootOutput
	}
	if err := b.buildRoot(ctx, rootImage); err != nil {
		return nil, err
	}
	res, err := b.assemble(ctx, rootImage)
	if err != nil {
		return nil, err
	}

	b.progress.step("computing SHA-256")
	if res.SHA256, err = fileSHA256(opts.Output); err != nil {
		return nil, err
	}
	b.progress.done()
	return res, nil
}

func validate(opts *Options) error {
	if opts.Output == "" {
		return errors.New("no output file: set Output (-o)")
	}
	if opts.Size < MinSize {
		return fmt.Errorf("image size %d bytes is below the minimum of %d bytes (%d MiB)", opts.Size, int64(MinSize), MinSize>>20)
	}
	if opts.Size%disk.SectorSize != 0 {
		return fmt.Errorf("image size %d is not a multiple of %d bytes", opts.Size, disk.SectorSize)
	}
	if opts.Hostname == "" || strings.ContainsAny(opts.Hostname, " \t\n/") {
		return fmt.Errorf("invalid hostname %q: use a DNS name such as lambgate", opts.Hostname)
	}
	if opts.Password == "" {
		return errors.New("no password for gokrazy's update endpoints: set Password")
	}
	if opts.BuildID == "" {
		opts.BuildID = opts.Time.UTC().Format("20060102T150405Z")
	}
	if opts.Settings == nil {
		var err error
		if opts.Settings, err = DefaultSettings(opts.Hostname); err != nil {
			return err
		}
	} else if _, err := settings.Parse(opts.Settings); err != nil {
		return fmt.Errorf("baked-in settings: %w", err)
	}
	return nil
}

// partitionGUIDs derives the disk's GUIDs and MBR signature from the
// hostname, so rebuilding an image for the same appliance gives the same
// PARTUUID= and the same bytes.
func partitionGUIDs(hostname string) (diskGUID disk.GUID, parts [4]disk.GUID, mbrSignature uint32) {
	diskGUID = disk.DeriveGUID("lambgate disk " + hostname)
	for i := range parts {
		parts[i] = disk.DeriveGUID(fmt.Sprintf("lambgate partition %d %s", i+1, hostname))
	}
	h := fnv.New32a()
	h.Write([]byte(hostname))
	return diskGUID, parts, h.Sum32()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// progress prints numbered steps with their durations.
type progress struct {
	w       io.Writer
	total   int
	n       int
	started time.Time
}

func newProgress(w io.Writer, total int) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, total: total}
}

func (p *progress) step(what string) {
	p.done()
	p.n++
	p.started = time.Now()
	fmt.Fprintf(p.w, "[%d/%d] %s", p.n, p.total, what)
}

// note prints a word on the current step's line.
func (p *progress) note(word string) {
	fmt.Fprintf(p.w, " %s", word)
}

func (p *progress) done() {
	if p.started.IsZero() {
		return
	}
	fmt.Fprintf(p.w, " ... %.1fs\n", time.Since(p.started).Seconds())
	p.started = time.Time{}
}
