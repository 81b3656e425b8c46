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

	"github.com/lambgate/lambgate/images/internal/update"
)

// pushUpdate writes a new root to a running appliance's inactive root
// partition, switches to it and reboots. /perm is kept.
func pushUpdate(args []string) error {
	fl := flag.NewFlagSet("lambgate-image update", flag.ExitOnError)
	host := fl.String("target", "", "appliance to update: HOST or HOST:PORT of gokrazy's web interface (port 80)")
	root := fl.String("root", "", "root squashfs to push, written by a build with -root-o")
	passwordFile := fl.String("password-file", filepath.Join("images", "out", "gokr-pw.txt"),
		"password file the image was built with")
	reboot := fl.Bool("reboot", true, "reboot into the new root after switching")
	kexec := fl.Bool("kexec", true, "reboot by kexec (amd64), skipping firmware and boot loader")
	wait := fl.Duration("wait", 5*time.Minute, "how long to wait for the appliance to run the new build after the reboot")
	fl.Parse(args)
	if *host == "" || *root == "" {
		// TODO: build the root here from -arch vm|pi, so that one command
		// does a whole update. The root must now come from -root-o.
		return errors.New("update needs -target HOST and -root FILE (from a build with -root-o)")
	}
	pw, err := os.ReadFile(*passwordFile)
	if err != nil {
		return fmt.Errorf("read the update password: %w", err)
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
