// Command init is process 1 of a Lambgate appliance. It lets gokrazy's
// runtime mount the file systems and serve its status and update
// endpoints, seeds the gateway's data directory on /perm, and supervises
// the gateway, DHCP clients, NTP and randomd, restarting any that exit.
//
// It never exits (the kernel would panic) and never writes outside
// /perm/lambgate.
package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gokrazy/gokrazy"

	"github.com/lambgate/lambgate/appliance/settings"
)

// buildTimestamp is shown on gokrazy's status page. The image builder sets
// it to the build ID with -ldflags "-X main.buildTimestamp=...".
var buildTimestamp = "unknown"

const (
	// dataDir is the gateway's data directory: settings, spool,
	// quarantine and plugins. /perm is the only writable file system.
	dataDir = "/perm/lambgate"
	// seedSettings is the settings file baked into the root file system. It
	// is copied to dataDir when dataDir contains none yet.
	seedSettings = "/etc/lambgate/" + settings.FileName
	// userDir holds the supervised programs that the image builder adds.
	userDir = "/user"
)

// gatewayPrograms are the programs in userDir that take the data directory:
// the gateway, or the boot probe in an image built with -probe.
var gatewayPrograms = []string{"lambgate", "bootprobe"}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("program", "init")

	if err := gokrazy.Boot(buildTimestamp); err != nil {
		// Without /proc, /dev and /perm nothing else can work. Exiting makes
		// the kernel panic and reboot after panic= seconds.
		logger.Error("gokrazy boot failed", "err", err)
		os.Exit(1)
	}

	if err := seedDataDir(); err != nil {
		logger.Error("seeding the data directory failed; the gateway starts with its built-in defaults",
			"data_dir", dataDir, "err", err)
	}

	s, err := readSettings()
	if err != nil {
		logger.Error("reading settings failed; running DHCP on eth0 so the appliance stays reachable",
			"err", err)
	}

	var services []*gokrazy.Service
	for _, iface := range dhcpInterfaces(s) {
		services = append(services, gokrazy.NewService(exec.Command("/gokrazy/dhcp", "-interface", iface)))
	}
	services = append(services,
		gokrazy.NewService(exec.Command("/gokrazy/ntp")),
		gokrazy.NewService(exec.Command("/gokrazy/randomd")),
	)
	for _, name := range gatewayPrograms {
		path := filepath.Join(userDir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		args := []string{"-data", dataDir}
		if name == "lambgate" {
			// The gateway configures static interfaces with netcfg and
			// writes their DNS servers where /etc/resolv.conf points.
			args = append(args, "-resolv-conf", "/tmp/resolv.conf")
		}
		services = append(services, gokrazy.NewService(exec.Command(path, args...)))
	}
	logger.Info("supervising services", "count", len(services), "build", buildTimestamp)

	if err := gokrazy.SuperviseServices(services); err != nil {
		logger.Error("supervising services failed", "err", err)
		os.Exit(1)
	}
	select {} // the supervisor runs in goroutines; process 1 must stay alive
}

// seedDataDir copies the baked-in settings to the data directory on the
// first boot, so that a fresh /perm starts with the image's settings and
// later edits on /perm survive updates of the root file system.
func seedDataDir() error {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	dst := filepath.Join(dataDir, settings.FileName)
	if _, err := os.Stat(dst); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := os.ReadFile(seedSettings)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the gateway writes its own default on first start
	}
	if err != nil {
		return err
	}
	return settings.WriteFileAtomic(dst, data, 0o640)
}

func readSettings() (*settings.Settings, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, settings.FileName))
	if errors.Is(err, fs.ErrNotExist) {
		data, err = os.ReadFile(seedSettings)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return settings.Default(), nil
	}
	if err != nil {
		return nil, err
	}
	return settings.Parse(data)
}

// dhcpInterfaces returns the interfaces that get a DHCP client: those whose
// settings ask for DHCP, or eth0 when the settings configure no interface
// (a fresh appliance must be reachable without configuration).
func dhcpInterfaces(s *settings.Settings) []string {
	if s == nil || len(s.Interfaces) == 0 {
		return []string{"eth0"}
	}
	var names []string
	for _, iface := range s.Interfaces {
		if iface.DHCP {
			names = append(names, iface.Name)
		}
	}
	// Static interfaces are configured by the gateway itself (netcfg).
	return names
}
