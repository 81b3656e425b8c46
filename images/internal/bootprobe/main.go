// Command bootprobe replaces the gateway in an image built with -probe, to
// tell image faults from gateway faults. It counts its starts in a file of
// its data directory and sends an SMTP-style banner with the count, the
// build ID and whether the settings file exists. One TCP connection then
// shows that the image booted, that /perm is writable and that it survived
// a reboot. It is never part of a production image.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

func main() {
	dataDir := flag.String("data", "/perm/lambgate", "data directory that holds the boot counter")
	listen := flag.String("listen", ":25", "TCP address to accept connections on")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("program", "bootprobe")

	boots, err := countBoot(filepath.Join(*dataDir, "bootprobe-boots"))
	if err != nil {
		logger.Error("counting the boot failed", "data_dir", *dataDir, "err", err)
	}
	_, statErr := os.Stat(filepath.Join(*dataDir, settings.FileName))
	hasSettings := statErr == nil
	version := "unknown"
	if b, err := os.ReadFile("/etc/lambgate/build-id"); err == nil {
		version = strings.TrimSpace(string(b))
	}
	banner := fmt.Sprintf("220 bootprobe boots=%d settings=%t build=%s", boots, hasSettings, version)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen failed", "addr", *listen, "err", err)
		os.Exit(1)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "banner", banner)
	for {
		conn, err := ln.Accept()
		if err != nil {
			logger.Error("accept failed", "err", err)
			time.Sleep(time.Second)
			continue
		}
		go serve(conn, banner)
	}
}

// serve sends the banner, then replies 250 to every line until QUIT.
func serve(conn net.Conn, banner string) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "%s\r\n", banner)
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.EqualFold(strings.TrimSpace(line), "QUIT") {
			fmt.Fprint(conn, "221 bye\r\n")
			return
		}
		fmt.Fprint(conn, "250 ok\r\n")
	}
}

// countBoot increments the counter in path and returns the new value, which
// is 1 on a fresh data directory.
func countBoot(path string) (int, error) {
	n := 0
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return 0, fmt.Errorf("invalid boot counter in %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, err
	}
	n++
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return 0, err
	}
	return n, settings.WriteFileAtomic(path, []byte(strconv.Itoa(n)+"\n"), 0o640)
}
