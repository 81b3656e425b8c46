package main

import (
	"fmt"
	"os"
)

// runPluginTest runs "lambgate plugin test".
// TODO: replaced by the plugin test runner; until then it reports that.
func runPluginTest(args []string) int {
	fmt.Fprintln(os.Stderr, "lambgate plugin test: not built into this binary yet")
	return 2
}
