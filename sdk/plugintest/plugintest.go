// Package plugintest runs one Lambgate plugin over a message file the way
// the gateway would, phase by phase, and reports each callback's verdict,
// reply, edits and time. It backs `lambgate plugin test` and the bundled
// plugins' tests. It never sends mail and never touches the appliance's
// plugins directory: each run loads the plugin into a temporary one.
package plugintest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
	"github.com/lambgate/lambgate/plugins/host"
)

// Options describe the SMTP session the message arrives in.
type Options struct {
	// Client is the connecting address (default 192.0.2.1).
	Client netip.Addr
	// HELO is the client's HELO name (default "client.example").
	HELO string
	TLS  bool
	// SPF is the gateway's SPF result to report ("" when unchecked).
	SPF string
	// From is the envelope sender; Rcpts the recipients (default
	// "postmaster@example.com").
	From  string
	Rcpts []string
	// Resolver serves dns_lookup; nil uses the system resolver.
	Resolver host.Resolver
	// CacheDir keeps compiled modules between runs ("" compiles each time).
	CacheDir string
	// Now is the clock for now_ms and key-value expiry (default time.Now).
	Now func() time.Time
	// Log receives the host's and the plugin's log records (default: discarded).
	Log *slog.Logger
}

// Result is the outcome of one run.
type Result struct {
	// Steps lists each plugin callback in the order it ran.
	Steps []host.Trace
	// Verdict is the final verdict; StoppedAt names the SMTP phase that
	// produced it ("" when every phase continued).
	Verdict   filter.Verdict
	StoppedAt string
	// Edits are the header edits and tags the gateway would apply.
	Edits filter.Edits
}

// RunFile runs the module at path with the manifest beside it
// (NAME.toml for NAME.wasm) over the message file eml.
func RunFile(ctx context.Context, modulePath, emlPath string, opt Options) (*Result, error) {
	wasm, err := os.ReadFile(modulePath)
	if err != nil {
		return nil, err
	}
	manifestPath := strings.TrimSuffix(modulePath, ".wasm") + ".toml"
	manifest, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w: put NAME.toml beside NAME.wasm", err)
	}
	eml, err := os.ReadFile(emlPath)
	if err != nil {
		return nil, err
	}
	return Run(ctx, wasm, manifest, eml, opt)
}

// Run loads one plugin from its module and manifest bytes and runs it
// over the message. The message may use LF line ends; they are converted
// to the CRLF the gateway spools.
func Run(ctx context.Context, wasm, manifest, eml []byte, opt Options) (*Result, error) {
	opt.defaults()
	man, err := host.ParseManifest(manifest)
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "lambgate-plugintest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, man.Name+".toml"), manifest, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, man.Name+".wasm"), wasm, 0o644); err != nil {
		return nil, err
	}

	var mu sync.Mutex
	res := &Result{}
	h, err := host.New(ctx, host.Config{
		Dir: dir, CacheDir: opt.CacheDir, Resolver: opt.Resolver, Now: opt.Now, Log: opt.Log,
		Trace: func(tr host.Trace) {
			mu.Lock()
			res.Steps = append(res.Steps, tr)
			mu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	defer h.Close(context.WithoutCancel(ctx))
	if len(h.Plugins()) == 0 {
		r, _ := h.Reload(ctx)
		if len(r.Rejected) > 0 {
			return nil, fmt.Errorf("plugin rejected: %w", r.Rejected[0].Err)
		}
		return nil, errors.New("plugin rejected: see the log")
	}

	runSession(ctx, h, crlf(eml), opt, res)
	return res, nil
}

func runSession(ctx context.Context, h *host.Host, eml []byte, opt Options, res *Result) {
	conn := &filter.Conn{ClientIP: opt.Client, ClientPort: 49152, HELO: opt.HELO, TLS: opt.TLS, SPF: opt.SPF}
	stop := func(phase string, v filter.Verdict) bool {
		if !v.Action.Final() {
			return false
		}
		res.Verdict, res.StoppedAt = v, phase
		return true
	}
	if stop("connect", h.Connect(ctx, conn)) || stop("helo", h.Helo(ctx, conn)) {
		return
	}
	txn := &filter.Txn{Conn: conn, QueueID: "TEST0000000001", From: opt.From}
	if stop("mail", h.Mail(ctx, txn)) {
		return
	}
	for _, r := range opt.Rcpts {
		v := h.Rcpt(ctx, txn, r)
		if v.Action == filter.Reject || v.Action == filter.Tempfail {
			// A refused recipient does not end the transaction.
			res.Verdict, res.StoppedAt = v, "rcpt"
			continue
		}
		if v.Action.Final() {
			res.Verdict, res.StoppedAt = v, "rcpt"
		}
		txn.Recipients = append(txn.Recipients, r)
	}
	if len(txn.Recipients) == 0 {
		return
	}
	res.Verdict, res.StoppedAt = filter.Verdict{}, ""
	v, edits := h.Data(ctx, txn, bytes.NewReader(eml))
	res.Edits = edits
	stop("data", v)
}

func (o *Options) defaults() {
	if !o.Client.IsValid() {
		o.Client = netip.MustParseAddr("192.0.2.1")
	}
	if o.HELO == "" {
		o.HELO = "client.example"
	}
	if len(o.Rcpts) == 0 {
		o.Rcpts = []string{"postmaster@example.com"}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
}

// crlf converts bare LF line ends to CRLF, as the gateway's spool stores
// messages.
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}
