// Command lambgate is the mail gateway daemon.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	dataDir := flag.String("data", "data", "data directory: settings, spool, maildir")
	flag.Parse()
	// TODO: start the gateway; this placeholder lets the image builder link a binary.
	fmt.Fprintln(os.Stderr, "lambgate: data directory", *dataDir)
	os.Exit(1)
}
