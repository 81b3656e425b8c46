// Command benchreport turns the output of BenchmarkRelayVsPostfix and
// BenchmarkGatewayPlugins into the Markdown tables of docs/benchmarks.md:
// one row per message size and concurrency with Lambgate and Postfix side by
// side, and the gateway without and with the bundled plugins.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A result line looks like
// BenchmarkRelayVsPostfix/size=5KB/conc=10/lambgate-2  2000  1 ns/op  0.3 cpu-ms/msg  1500 msg/s  20 peak-rss-MB
var lineRE = regexp.MustCompile(`^BenchmarkRelayVsPostfix/size=(\d+)KB/conc=(\d+)/(\w+)(-\d+)?\s+\d+\s+(.*)$`)

// pluginRE matches BenchmarkGatewayPlugins/plugins=bundled-2 lines.
var pluginRE = regexp.MustCompile(`^BenchmarkGatewayPlugins/plugins=(\w+)(-\d+)?\s+\d+\s+(.*)$`)

type key struct{ size, conc int }

type figures map[string]float64 // unit -> value

func parseFigures(text string) figures {
	f := figures{}
	fields := strings.Fields(text)
	for i := 0; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err == nil {
			f[fields[i+1]] = v
		}
	}
	return f
}

func parse(r io.Reader) (map[key]map[string][]figures, map[string][]figures, error) {
	relay := map[key]map[string][]figures{}
	plugins := map[string][]figures{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := pluginRE.FindStringSubmatch(line); m != nil {
			plugins[m[1]] = append(plugins[m[1]], parseFigures(m[3]))
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		size, _ := strconv.Atoi(m[1])
		conc, _ := strconv.Atoi(m[2])
		k := key{size, conc}
		if relay[k] == nil {
			relay[k] = map[string][]figures{}
		}
		relay[k][m[3]] = append(relay[k][m[3]], parseFigures(m[5]))
	}
	return relay, plugins, sc.Err()
}

// median of one unit over repeated runs, so that one disturbed run on a
// shared machine does not decide the figure.
func median(runs []figures, unit string) float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, r[unit])
	}
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func main() {
	table := "relay"
	if len(os.Args) > 1 {
		table = os.Args[1]
	}
	results, plugins, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if table == "plugins" {
		printPlugins(plugins)
		return
	}
	if len(results) == 0 {
		fmt.Fprintln(os.Stderr, "benchreport: no BenchmarkRelayVsPostfix lines on standard input")
		os.Exit(1)
	}
	keys := make([]key, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].size != keys[j].size {
			return keys[i].size < keys[j].size
		}
		return keys[i].conc < keys[j].conc
	})

	fmt.Println("| size | concurrency | Lambgate msg/s | Postfix msg/s | ratio | Lambgate CPU ms/msg | Postfix CPU ms/msg | Lambgate peak RSS MB | Postfix peak RSS MB |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range keys {
		lg, pf := results[k]["lambgate"], results[k]["postfix"]
		lr, pr := median(lg, "msg/s"), median(pf, "msg/s")
		ratio := "n/a"
		if pr > 0 {
			ratio = fmt.Sprintf("%.1fx", lr/pr)
		}
		fmt.Printf("| %d KB | %d | %.0f | %.0f | %s | %.2f | %.2f | %.0f | %.0f |\n",
			k.size, k.conc, lr, pr, ratio,
			median(lg, "cpu-ms/msg"), median(pf, "cpu-ms/msg"),
			median(lg, "peak-rss-MB"), median(pf, "peak-rss-MB"))
	}
}

// printPlugins writes the gateway's figures without and with the bundled
// plugins, and what the plugins cost.
func printPlugins(runs map[string][]figures) {
	none, bundled := runs["none"], runs["bundled"]
	if len(none) == 0 || len(bundled) == 0 {
		fmt.Fprintln(os.Stderr, "benchreport: no BenchmarkGatewayPlugins lines for both variants on standard input")
		os.Exit(1)
	}
	fmt.Println("| plugins | msg/s | CPU ms/msg | peak RSS MB |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, v := range []struct {
		name string
		runs []figures
	}{{"none", none}, {"five bundled", bundled}} {
		fmt.Printf("| %s | %.0f | %.2f | %.0f |\n", v.name,
			median(v.runs, "msg/s"), median(v.runs, "cpu-ms/msg"), median(v.runs, "peak-rss-MB"))
	}
	loss := 100 * (1 - median(bundled, "msg/s")/median(none, "msg/s"))
	extra := 1000 * (median(bundled, "cpu-ms/msg") - median(none, "cpu-ms/msg"))
	fmt.Printf("\nThe bundled plugins cost %.0f%% of throughput and %.0f µs of CPU per message.\n", loss, extra)
}
