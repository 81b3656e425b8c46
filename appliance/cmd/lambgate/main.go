// Command lambgate is the mail gateway daemon. With no subcommand it runs the
// gateway on the settings in its data directory. "lambgate plugin test" runs
// a filter plugin against a message file, for plugin authors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lambgate/lambgate/appliance/gateway"
	"github.com/lambgate/lambgate/appliance/settings"
	"github.com/lambgate/lambgate/appliance/webui"
)

// logRingSize is how many recent log records the web setup can show.
const logRingSize = 10000

func main() {
	if len(os.Args) > 2 && os.Args[1] == "plugin" && os.Args[2] == "test" {
		os.Exit(runPluginTest(os.Args[3:]))
	}
	os.Exit(run())
}

func run() int {
	flags := flag.NewFlagSet("lambgate", flag.ExitOnError)
	dataDir := flags.String("data", "data", "data `directory`: settings, spool, maildir, certificates")
	check := flags.Bool("check", false, "validate the settings file and exit")
	resolvConf := flags.String("resolv-conf", "", "`file` to write the interfaces' DNS servers to (the appliance uses /tmp/resolv.conf); empty writes none")
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile to `file` until shutdown, for performance work")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "usage: lambgate [-data DIR] [-check]\n       lambgate plugin test MODULE FILE.eml [flags]\n\n")
		flags.PrintDefaults()
	}
	flags.Parse(os.Args[1:])

	s, created, err := settings.Load(*dataDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lambgate: invalid settings: %v\n", err)
		return 2
	}
	if *check {
		fmt.Printf("%s: settings are valid\n", *dataDir)
		return 0
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "lambgate: %v\n", err)
			return 1
		}
		defer stop()
	}

	level := new(slog.LevelVar)
	level.Set(parseLevel(s.Log.Level))
	// The web setup's Logs page and mail charts read the recent records
	// from this ring; standard output keeps the whole trail.
	ring := webui.NewLogRing(logRingSize, webui.NewSeries())
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: level})
	log := slog.New(webui.NewLogHandler(text, ring))
	if created {
		log.Info("wrote default settings", "path", *dataDir+"/"+settings.FileName)
	}

	g, err := gateway.New(*dataDir, s, log)
	if err != nil {
		log.Error("gateway setup failed", "err", err)
		return 1
	}
	g.SetResolvConf(*resolvConf)
	g.SetLogLevel(level)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := g.Start(ctx); err != nil {
		log.Error("gateway start failed", "err", err)
		return 1
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for sig := range signals {
		if sig == syscall.SIGHUP {
			reload(g, *dataDir, log)
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}

	shutdownCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := g.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("shutdown incomplete", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// reload applies a changed settings file. An invalid file is logged and the
// running settings stay in force, so a typo never stops mail.
func reload(g *gateway.Gateway, dataDir string, log *slog.Logger) {
	s, _, err := settings.Load(dataDir)
	if err != nil {
		log.Error("reload rejected, keeping the running settings", "err", err)
		return
	}
	if err := g.Reload(s); err != nil {
		log.Error("reload failed", "err", err)
		return
	}
	log.Info("settings reloaded")
}

func parseLevel(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(name)); err != nil {
		return slog.LevelInfo
	}
	return l
}
