package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/lambgate/lambgate/images/internal/builder"
	"github.com/lambgate/lambgate/images/internal/update"
)

// pushUpdate writes a new root to a running appliance's inactive root
// partition, switches to it and reboots. /perm is kept.
//
// TODO: the boot partition (kernel, firmware, loader) is never updated. A
// boot update must also rewrite the BIOS loader's sector numbers in the MBR.
func pushUpdate(args []string) error {
	fl := flag.NewFlagSet("lambgate-image update", flag.ExitOnError)
	host := fl.String("target", "", "appliance to update: HOST or HOST:PORT of gokrazy's web interface (port 80)")
	root := fl.String("root", "", "root squashfs to push, written by a build with -root-o (or use -arch)")
	passwordFile := fl.String("password-file", filepath.Join("images", "out", "gokr-pw.txt"),
		"password file the image was built with")
	reboot := fl.Bool("reboot", true, "reboot into the new root after switching")
	kexec := fl.Bool("kexec", true, "reboot by kexec (amd64), skipping firmware and boot loader")
	wait := fl.Duration("wait", 5*time.Minute, "how long to wait for the appliance to run the new build after the reboot")
	arch := fl.String("arch", "", "build the root for this hardware (vm or pi) instead of pushing -root")
	hostname := fl.String("hostname", "", "with -arch: the appliance's hostname, as in its first image")
	settingsFile := fl.String("settings", "", "with -arch: settings seed for a perm without settings")
	newBuildID := fl.String("build-id", "", "with -arch: build identifier (default: the commit and its time)")
	fl.Parse(args)
	if *host == "" || (*root == "") == (*arch == "") {
		return errors.New("update needs -target HOST and either -root FILE (from a build with -root-o) or -arch vm|pi")
	}
	pw, err := os.ReadFile(*passwordFile)
	if err != nil {
		return fmt.Errorf("read the update password: %w", err)
	}
	if *arch != "" {
		// The root carries /etc/hostname and the password, so a guessed
		// hostname would rename the appliance.
		if *hostname == "" {
			return errors.New("update -arch needs -hostname, the appliance's current hostname")
		}
		work, err := os.MkdirTemp("", "lambgate-update-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		*root = filepath.Join(work, "root.squashfs")
		if err := buildRoot(*arch, *hostname, *settingsFile, *newBuildID, strings.TrimSpace(string(pw)), work, *root); err != nil {
			return err
		}
	}
	base := *host
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := &update.Client{BaseURL: base, Password: strings.TrimSpace(string(pw))}

	buildID, err := update.RootBuildID(*root)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	fmt.Fprintf(os.Stderr, "pushing %s to %s ... ", *root, base)
	if err := c.PushRoot(ctx, *root); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%.1fs\nswitching to the new root ... ", time.Since(start).Seconds())
	if err := c.Switch(ctx); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "done")
	if !*reboot {
		fmt.Fprintln(os.Stderr, "the new root takes effect on the next reboot")
		return nil
	}
	fmt.Fprintln(os.Stderr, "rebooting")
	if err := c.Reboot(ctx, 10*time.Second, *kexec); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "waiting for build %s ... ", buildID)
	waitCtx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	if err := c.WaitBuild(waitCtx, buildID, 2*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "running after %.0fs\n", time.Since(start).Seconds())
	return nil
}

// buildRoot builds an image in work and keeps its root squashfs at root.
// The image itself is thrown away, so it gets the minimum size.
func buildRoot(arch, hostname, settingsFile, buildID, password, work, root string) error {
	buildTime, commit, err := sourceTime()
	if err != nil {
		return err
	}
	if buildID == "" {
		buildID = commit + "-" + buildTime.UTC().Format("20060102T150405Z")
	}
	opts := builder.Options{
		Target:     arch,
		Output:     filepath.Join(work, "image.img"),
		RootOutput: root,
		Size:       builder.MinSize,
		Hostname:   hostname,
		Password:   password,
		BuildID:    buildID,
		Time:       buildTime,
		Progress:   os.Stderr,
	}
	if settingsFile != "" {
		if opts.Settings, err = os.ReadFile(settingsFile); err != nil {
			return err
		}
	}
	_, err = builder.Build(context.Background(), opts)
	return err
}
