// Command lambgate-image builds Lambgate firmware: a gokrazy disk image for
// a PC or virtual machine (-target vm) or a Raspberry Pi 3, 4 or 5
// (-target pi), with the gateway supervised by gokrazy's init.
//
// Run it from the Lambgate checkout, because it compiles the programs that
// go into the image:
//
//	go run ./images/cmd/lambgate-image -target vm -o images/out/lambgate-vm.img
//
// The update subcommand pushes a root file system written with -root-o to
// a running appliance and reboots it into the new root:
//
//	go run ./images/cmd/lambgate-image update -target 192.0.2.10 -root images/out/root.squashfs
//
// It never writes to a block device itself; flashing is a separate dd.
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
	run := buildImage
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "update" {
		run, args = pushUpdate, args[1:]
	}
	if err := run(args); err != nil {
		fmt.Fprintln(os.Stderr, "lambgate-image:", err)
		os.Exit(1)
	}
}

func buildImage(args []string) error {
	fl := flag.NewFlagSet("lambgate-image", flag.ExitOnError)
	target := fl.String("target", builder.TargetVM, "hardware: vm (PC or virtual machine, amd64) or pi (Raspberry Pi 3, 4, 5)")
	output := fl.String("o", "", "image file to write (default images/out/lambgate-TARGET.img)")
	rootOutput := fl.String("root-o", "", "also write the root squashfs to this file, for updates")
	size := fl.String("size", "2G", "image size in bytes, or with a K, M or G suffix (powers of 1024); perm takes the rest")
	hostname := fl.String("hostname", "lambgate", "hostname of the appliance")
	settingsFile := fl.String("settings", "", "settings file (lambgate.toml) to bake in; default: the gateway's defaults on port 25")
	passwordFile := fl.String("password-file", "", "file with the password of gokrazy's update endpoints; "+
		"created with a random password if missing (default gokr-pw.txt beside the image)")
	buildID := fl.String("build-id", "", "build identifier shown on the appliance (default: the commit and its time)")
	probe := fl.Bool("probe", false, "put the boot probe in place of the gateway (boot tests)")
	fl.Parse(args)
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: all options are flags, see -help", fl.Args())
	}

	if *output == "" {
		*output = filepath.Join("images", "out", "lambgate-"+*target+".img")
	}
	if err := os.MkdirAll(filepath.Dir(*output), 0o755); err != nil {
		return err
	}
	sizeBytes, err := parseSize(*size)
	if err != nil {
		return err
	}
	if *passwordFile == "" {
		*passwordFile = filepath.Join(filepath.Dir(*output), "gokr-pw.txt")
	}
	password, err := readOrCreatePassword(*passwordFile)
	if err != nil {
		return err
	}
	var settingsData []byte
	if *settingsFile != "" {
		if settingsData, err = os.ReadFile(*settingsFile); err != nil {
			return err
		}
	}
	buildTime, commit, err := sourceTime()
	if err != nil {
		return err
	}
	if *buildID == "" {
		*buildID = commit + "-" + buildTime.UTC().Format("20060102T150405Z")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	res, err := builder.Build(ctx, builder.Options{
		Target:     *target,
		Output:     *output,
		RootOutput: *rootOutput,
		Size:       sizeBytes,
		Hostname:   *hostname,
		Settings:   settingsData,
		Password:   password,
		BuildID:    *buildID,
		Time:       buildTime,
		Probe:      *probe,
		Progress:   os.Stderr,
	})
	if err != nil {
		return err
	}
	printSummary(res, *buildID, time.Since(start))
	return nil
}

func printSummary(res *builder.Result, buildID string, took time.Duration) {
	fmt.Printf("image   %s\n", res.Path)
	fmt.Printf("size    %d bytes (%d MiB), sparse\n", res.Size, res.Size>>20)
	fmt.Printf("build   %s (%.0fs)\n", buildID, took.Seconds())
	fmt.Printf("cmdline %s\n", res.Cmdline)
	fmt.Printf("%-3s %-8s %10s %10s %9s  %s\n", "#", "name", "first LBA", "last LBA", "MiB", "PARTUUID")
	for i, p := range res.Partitions {
		mib := (p.LastLBA - p.FirstLBA + 1) * disk.SectorSize >> 20
		fmt.Printf("%-3d %-8s %10d %10d %9d  %s\n", i+1, p.Name, p.FirstLBA, p.LastLBA, mib, p.GUID)
	}
	fmt.Printf("sha256  %s\n", res.SHA256)
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
