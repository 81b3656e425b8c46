// Package host runs the appliance's Wasm filter plugins. It loads every
// module of the plugins directory with its manifest and validates it
// against ABI v1 (sdk/ABI.md). It compiles each module once with an
// on-disk cache, pools its instances and calls them at each SMTP phase as
// a filter.Chain, and it swaps the plugin set atomically when the
// directory changes.
//
// The host never lets a plugin reach the filesystem, the network or the
// clock except through the host calls its manifest grants. It never lets a
// failing plugin stop the gateway: a trap, a time-out or a bad call costs
// one instance, and the plugin's failure mode decides the verdict.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/lambgate/lambgate/appliance/filter"
)

var _ filter.Chain = (*Host)(nil)

// Config configures a Host.
type Config struct {
	// Dir is the plugins directory: NAME.wasm with NAME.toml beside it.
	// New creates it when it is missing.
	Dir string
	// CacheDir holds wazero's compiled modules across restarts; "" keeps
	// them in memory only. A Go guest compiles in 0.6-3 s, from the cache
	// in about 40 ms (wazero v1.12.0, amd64).
	CacheDir string
	// StateDir holds each plugin's key-value store (NAME.kv.json); ""
	// keeps the stores in memory only.
	StateDir string
	// Resolver serves dns_lookup; nil makes dns_lookup return "not
	// supported" to plugins that have the grant.
	Resolver Resolver
	// Now is the clock behind now_ms and key-value expiry (default
	// time.Now).
	Now func() time.Time
	// MaxInstances bounds the live instances of each plugin, that is its
	// concurrent calls (default 32). A Go guest instance takes about 3 MB.
	MaxInstances int
	// MaxConcurrentCalls bounds the callbacks that run guest code at once
	// across all plugins (default GOMAXPROCS, at least 2). A call that
	// recurses without end added about 165 MB of memory (amd64) before
	// wazero stopped it, so the bound also bounds that memory (see
	// callSlots).
	MaxConcurrentCalls int
	// Log receives load, reload and failure records (default slog.Default).
	Log *slog.Logger
	// Trace, when set, is called after every plugin callback.
	Trace func(Trace)
}

type rejected struct {
	fingerprint string
	err         error
}

// Host is the plugin runtime. It implements filter.Chain and is safe for
// concurrent use.
type Host struct {
	dir      string
	stateDir string
	cache    wazero.CompilationCache
	resolver Resolver
	now      func() time.Time
	maxInst  int
	watchdog *watchdog
	calls    callSlots
	log      *slog.Logger
	trace    func(Trace)

	set atomic.Pointer[pluginSet]

	// reloadMu serializes reloads; the fields below it belong to them.
	reloadMu sync.Mutex
	rejected map[string]rejected // by file: versions already rejected and logged
	kvs      map[string]*kvStore
	closed   bool
}

// New creates a host and loads the plugins directory once. A module that
// fails validation is logged and left out. New returns an error only when
// the plugins directory, the cache or the state directory cannot be used.
func New(ctx context.Context, cfg Config) (*Host, error) {
	h := &Host{
		dir:      cfg.Dir,
		stateDir: cfg.StateDir,
		resolver: cfg.Resolver,
		now:      cfg.Now,
		maxInst:  cfg.MaxInstances,
		log:      cfg.Log,
		trace:    cfg.Trace,
		rejected: make(map[string]rejected),
		kvs:      make(map[string]*kvStore),
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxInst <= 0 {
		h.maxInst = 32
	}
	maxCalls := cfg.MaxConcurrentCalls
	if maxCalls <= 0 {
		maxCalls = max(2, runtime.GOMAXPROCS(0))
	}
	h.calls = newCallSlots(maxCalls)
	h.watchdog = newWatchdog()
	if h.log == nil {
		h.log = slog.Default()
	}

	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	if h.dir == "" {
		return nil, errors.New("plugins directory not set: set Config.Dir")
	}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create plugins directory: %w", err)
	}
	if h.stateDir != "" {
		if err := os.MkdirAll(h.stateDir, 0o700); err != nil {
			return nil, fmt.Errorf("create plugin state directory: %w", err)
		}
	}

	h.set.Store(&pluginSet{})
	if _, err := h.Reload(ctx); err != nil {
		h.cache.Close(ctx)
		return nil, err
	}
	return h, nil
}

// Plugins returns the manifests of the running plugins in call order.
func (h *Host) Plugins() []Manifest {
	s := h.acquireSet()
	defer s.release()
	out := make([]Manifest, len(s.plugins))
	for i, p := range s.plugins {
		out[i] = *p.man
	}
	return out
}

// Stats returns a snapshot of each running plugin's counters.
func (h *Host) Stats() []PluginStats {
	s := h.acquireSet()
	defer s.release()
	out := make([]PluginStats, len(s.plugins))
	for i, p := range s.plugins {
		out[i] = p.snapshot()
	}
	return out
}

// Watch reloads the directory every interval until ctx ends or the host is
// closed, and flushes the key-value stores at each tick. Polling, rather than inotify, also
// works on the appliance's FAT and overlay mounts and needs no dependency.
func (h *Host) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := h.Reload(ctx)
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			h.log.Error("plugin directory reload failed", "dir", h.dir, "reason", err)
		}
		h.flushKV()
	}
}

func (h *Host) flushKV() {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	for name, kv := range h.kvs {
		if err := kv.flush(); err != nil {
			h.log.Error("write plugin key-value store failed", "plugin", name, "reason", err)
		}
	}
}

// Close waits for in-flight calls, closes every plugin and writes the
// key-value stores. The host must not be used afterwards.
func (h *Host) Close(ctx context.Context) error {
	h.flushKV()
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	h.closed = true
	old := h.set.Swap(&pluginSet{})
	old.retire(ctx, nil)
	h.watchdog.close()
	return h.cache.Close(ctx)
}
