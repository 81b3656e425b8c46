package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/lambgate/lambgate/sdk/plugintest"
)

// runPluginTest implements `lambgate plugin test MODULE FILE.eml [flags]`.
// It runs one plugin over a message as the gateway would and prints each
// callback's verdict, reply, edits and time. It returns the exit status:
// 0 when the plugin ran (whatever its verdict), 1 when it could not be
// loaded or run, 2 for a usage error.
func runPluginTest(args []string) int {
	fs := flag.NewFlagSet("lambgate plugin test", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	from := fs.String("from", "sender@example.org", "envelope sender (MAIL FROM); empty for the null sender")
	var rcpts stringList
	fs.Var(&rcpts, "rcpt", "recipient (RCPT TO); repeat for several (default postmaster@example.com)")
	client := fs.String("client", "192.0.2.1", "client IP address")
	helo := fs.String("helo", "client.example", "client HELO name")
	tls := fs.Bool("tls", false, "report the session as using STARTTLS")
	spf := fs.String("spf", "", "the gateway's SPF result to report (pass, fail, ...); empty when unchecked")
	resolver := fs.String("resolver", "", "DNS server host:port for plugins with the dns grant (default: the system resolver)")
	cacheDir := fs.String("cache", "", "compilation cache directory, to skip recompiling between runs")
	verbose := fs.Bool("v", false, "print the host's and the plugin's log records")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: lambgate plugin test MODULE.wasm FILE.eml [flags]")
		fmt.Fprintln(os.Stderr, "The manifest MODULE.toml must be beside the module.")
		fs.PrintDefaults()
	}

	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(positional) != 2 {
		fs.Usage()
		return 2
	}
	ip, err := netip.ParseAddr(*client)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lambgate plugin test: invalid --client %q: use an IPv4 or IPv6 address\n", *client)
		return 2
	}

	opt := plugintest.Options{
		Client: ip, HELO: *helo, TLS: *tls, SPF: *spf, From: *from, Rcpts: rcpts, CacheDir: *cacheDir,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if *verbose {
		opt.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if *resolver != "" {
		if _, _, err := net.SplitHostPort(*resolver); err != nil {
			fmt.Fprintf(os.Stderr, "lambgate plugin test: invalid --resolver %q: use host:port\n", *resolver)
			return 2
		}
		opt.Resolver = dnsServer(*resolver)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := plugintest.RunFile(ctx, positional[0], positional[1], opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lambgate plugin test: %v\n", err)
		return 1
	}
	plugintest.Print(os.Stdout, res)
	return 0
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, as the usage line shows them after.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// dnsServer returns a resolver that sends every query to addr.
func dnsServer(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
