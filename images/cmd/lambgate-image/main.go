// Command lambgate-image builds Lambgate firmware: a gokrazy disk image for
// a PC or virtual machine (-target vm) or a Raspberry Pi 3, 4 or 5
// (-target pi), with the gateway supervised by gokrazy's init.
//
// Run it from the Lambgate checkout, because it compiles the programs that
// go into the image:
//
//	go run ./images/cmd/lambgate-image -target vm -o images/out/lambgate-vm.img
//
// The flash subcommand builds an image whose perm partition fills a device
// and writes it there:
//
//	go run ./images/cmd/lambgate-image flash -target pi -dev /dev/sdX
//
// The update subcommand pushes a root file system written with -root-o to
// a running appliance and reboots it into the new root:
//
//	go run ./images/cmd/lambgate-image update -target 192.0.2.10 -root images/out/root.squashfs
//
// Only the flash subcommand writes to a device, and only to the one named
// with -dev after confirmation.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lambgate/lambgate/images/internal/builder"
	"github.com/lambgate/lambgate/images/internal/disk"
)

func main() {
	command := buildImage
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "update":
			command, args = pushUpdate, args[1:]
		case "flash":
			command, args = flashDevice, args[1:]
		}
	}
	if err := command(args); err != nil {
		fmt.Fprintln(os.Stderr, "lambgate-image:", err)
		os.Exit(1)
	}
}

func buildImage(args []string) error {
	fl := flag.NewFlagSet("lambgate-image", flag.ExitOnError)
	output := fl.String("o", "", "image file to write (default images/out/lambgate-TARGET.img)")
	size := fl.String("size", "2G", "image size in bytes, or with a K, M or G suffix (powers of 1024); perm takes the rest")
	opts, err := parseBuildFlags(fl, args, func(o *builder.Options) error {
		if *output == "" {
			*output = filepath.Join("images", "out", "lambgate-"+o.Target+".img")
		}
		o.Output = *output
		var err error
		o.Size, err = parseSize(*size)
		return err
	})
	if err != nil {
		return err
	}
	return run(opts, func(ctx context.Context) (*builder.Result, error) { return builder.Build(ctx, opts) })
}

// flashDevice builds an image sized to a device and writes it there.
func flashDevice(args []string) error {
	fl := flag.NewFlagSet("lambgate-image flash", flag.ExitOnError)
	dev := fl.String("dev", "", "device to write, such as /dev/sdX or /dev/mmcblk0 (everything on it is lost)")
	yes := fl.Bool("yes", false, "do not ask for confirmation")
	opts, err := parseBuildFlags(fl, args, func(o *builder.Options) error {
		if *dev == "" {
			return errors.New("flash needs -dev DEVICE")
		}
		o.Output = *dev
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := os.Stat(*dev); err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(os.Stderr, "This erases %s. Type the device name again to continue: ", *dev)
		var answer string
		fmt.Scanln(&answer)
		if answer != *dev {
			return errors.New("not confirmed, so nothing was written")
		}
	}
	return run(opts, func(ctx context.Context) (*builder.Result, error) { return builder.Flash(ctx, opts, *dev) })
}

// parseBuildFlags defines the flags that every image build takes, parses
// args and lets finish fill in Output and Size.
func parseBuildFlags(fl *flag.FlagSet, args []string, finish func(*builder.Options) error) (builder.Options, error) {
	target := fl.String("target", builder.TargetVM, "hardware: vm (PC or virtual machine, amd64) or pi (Raspberry Pi 3, 4, 5)")
	rootOutput := fl.String("root-o", "", "also write the root squashfs to this file, for updates")
	hostname := fl.String("hostname", "lambgate", "hostname of the appliance")
	settingsFile := fl.String("settings", "", "settings file (lambgate.toml) to bake in; default: the gateway's defaults on port 25")
	passwordFile := fl.String("password-file", filepath.Join("images", "out", "gokr-pw.txt"),
		"file with the password of gokrazy's update endpoints; created with a random password if missing")
	buildID := fl.String("build-id", "", "build identifier shown on the appliance (default: the commit and its time)")
	probe := fl.Bool("probe", false, "put the boot probe in place of the gateway, to tell image faults from gateway faults")
	fl.Parse(args)
	if fl.NArg() > 0 {
		return builder.Options{}, fmt.Errorf("unexpected arguments %q: all options are flags, see -help", fl.Args())
	}

	opts := builder.Options{Target: *target, RootOutput: *rootOutput, Hostname: *hostname, Probe: *probe, Progress: os.Stderr}
	if err := finish(&opts); err != nil {
		return opts, err
	}
	for _, f := range []string{opts.Output, *passwordFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return opts, err
		}
	}
	var err error
	if opts.Password, err = readOrCreatePassword(*passwordFile); err != nil {
		return opts, err
	}
	if *settingsFile != "" {
		if opts.Settings, err = os.ReadFile(*settingsFile); err != nil {
			return opts, err
		}
	}
	var commit string
	if opts.Time, commit, err = sourceTime(); err != nil {
		return opts, err
	}
	opts.BuildID = *buildID
	if opts.BuildID == "" {
		opts.BuildID = commit + "-" + opts.Time.UTC().Format("20060102T150405Z")
	}
	return opts, nil
}

func run(opts builder.Options, do func(context.Context) (*builder.Result, error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	res, err := do(ctx)
	if err != nil {
		return err
	}
	printSummary(res, opts.BuildID, time.Since(start))
	return nil
}

func printSummary(res *builder.Result, buildID string, took time.Duration) {
	fmt.Printf("image   %s\n", res.Path)
	fmt.Printf("size    %d bytes (%d MiB)\n", res.Size, res.Size>>20)
	fmt.Printf("build   %s (%.0fs)\n", buildID, took.Seconds())
	fmt.Printf("cmdline %s\n", res.Cmdline)
	fmt.Printf("%-3s %-8s %10s %10s %9s  %s\n", "#", "name", "first LBA", "last LBA", "MiB", "PARTUUID")
	for i, p := range res.Partitions {
		mib := (p.LastLBA - p.FirstLBA + 1) * disk.SectorSize >> 20
		fmt.Printf("%-3d %-8s %10d %10d %9d  %s\n", i+1, p.Name, p.FirstLBA, p.LastLBA, mib, p.GUID)
	}
	if res.SHA256 != "" {
		fmt.Printf("sha256  %s\n", res.SHA256)
	}
}

// parseSize reads "2G", "1500M", "512K" (powers of 1024) or plain bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(num, "G"):
		mult, num = 1<<30, strings.TrimSuffix(num, "G")
	case strings.HasSuffix(num, "M"):
		mult, num = 1<<20, strings.TrimSuffix(num, "M")
	case strings.HasSuffix(num, "K"):
		mult, num = 1<<10, strings.TrimSuffix(num, "K")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid -size %q: use bytes or a number with K, M or G, such as 2G", s)
	}
	return n * mult, nil
}

// readOrCreatePassword returns the password in path, or writes a new random
// one there (mode 0600). Keeping it in a file gives repeated builds the
// same password, which updates need and reproducible builds require.
func readOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty: delete it to get a new random password", path)
		}
		return pw, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "wrote a new password for gokrazy's update endpoints to %s\n", path)
	return pw, nil
}

// sourceTime returns the time stamp for every file in the image:
// SOURCE_DATE_EPOCH when set, otherwise the time of the checkout's last
// commit. It also returns the short commit hash ("unknown" outside git).
func sourceTime() (time.Time, string, error) {
	commit := "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
		sec, err := strconv.ParseInt(env, 10, 64)
		if err != nil {
			return time.Time{}, "", fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: use seconds since 1970", env)
		}
		return time.Unix(sec, 0).UTC(), commit, nil
	}
	out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
	if err != nil {
		return time.Time{}, "", fmt.Errorf("git log for the build time failed: %v: set SOURCE_DATE_EPOCH outside a git checkout", err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("git log printed %q, not a time", out)
	}
	return time.Unix(sec, 0).UTC(), commit, nil
}
