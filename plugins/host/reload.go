package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrClosed is returned by Reload after Close.
var ErrClosed = errors.New("plugin host is closed")

// ReloadResult lists what a reload changed.
type ReloadResult struct {
	Loaded   []string    // plugins new or changed
	Removed  []string    // plugins whose files are gone
	Rejected []Rejection // files that failed validation
}

// Rejection is a module file that failed validation, with the reason.
type Rejection struct {
	File string
	Err  error
}

// Reload scans the plugins directory and swaps in a new plugin set when
// anything changed. Unchanged modules keep their compiled code and
// instances. A module that fails validation is logged with its file and
// reason and left out, and if an earlier version of it was running, that
// version keeps running. In-flight calls finish on the set they started
// with. It returns an error only when the directory cannot be read.
func (h *Host) Reload(ctx context.Context) (ReloadResult, error) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	return h.reloadLocked(ctx)
}

func (h *Host) reloadLocked(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	if h.closed {
		return res, ErrClosed
	}

	files, err := filepath.Glob(filepath.Join(h.dir, "*.wasm"))
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(h.dir); err != nil {
		return res, fmt.Errorf("plugins directory: %w", err)
	}
	sort.Strings(files)

	old := h.set.Load()
	byFile := make(map[string]*Plugin, len(old.plugins))
	for _, p := range old.plugins {
		byFile[p.file] = p
	}

	var next []*Plugin
	names := make(map[string]string) // plugin name -> file
	changed := false
	for _, file := range files {
		p, loaded, err := h.loadFile(ctx, file, byFile[file])
		if err != nil {
			res.Rejected = append(res.Rejected, Rejection{File: file, Err: err})
		}
		if p == nil {
			continue
		}
		if other, dup := names[p.man.Name]; dup {
			h.log.Error("plugin rejected", "file", file,
				"reason", fmt.Sprintf("name %q is already used by %s: give each manifest its own name", p.man.Name, other))
			if loaded {
				p.close(ctx)
			}
			continue
		}
		names[p.man.Name] = file
		if loaded {
			changed = true
			res.Loaded = append(res.Loaded, p.man.Name)
		}
		next = append(next, p)
	}

	keep := make(map[*Plugin]bool, len(next))
	for _, p := range next {
		keep[p] = true
	}
	for _, p := range old.plugins {
		if !keep[p] {
			changed = true
			if _, still := names[p.man.Name]; !still {
				res.Removed = append(res.Removed, p.man.Name)
			}
		}
	}
	if !changed {
		return res, nil
	}

	sort.SliceStable(next, func(i, j int) bool {
		if next[i].man.Order != next[j].man.Order {
			return next[i].man.Order < next[j].man.Order
		}
		return next[i].man.Name < next[j].man.Name
	})
	h.set.Store(newPluginSet(next))
	go old.retire(context.WithoutCancel(ctx), keep)

	for _, n := range res.Loaded {
		h.log.Info("plugin loaded", "plugin", n)
	}
	for _, n := range res.Removed {
		h.log.Info("plugin removed", "plugin", n)
	}
	return res, nil
}

// loadFile returns the plugin for one module file: running unchanged
// (loaded false), freshly loaded (loaded true), or the running version
// when the file on disk fails validation (err set). It logs a rejection
// once per version of the files.
func (h *Host) loadFile(ctx context.Context, file string, running *Plugin) (p *Plugin, loaded bool, err error) {
	manifestFile := strings.TrimSuffix(file, ".wasm") + ".toml"
	fp := fingerprint(file, manifestFile)
	if running != nil && running.fingerprint == fp {
		return running, false, nil
	}
	if r, ok := h.rejected[file]; ok && r.fingerprint == fp {
		return running, false, r.err
	}

	p, err = h.load(ctx, file, manifestFile)
	if err != nil {
		attrs := []any{"file", file, "reason", err}
		if running != nil {
			attrs = append(attrs, "running_version", running.man.Version)
		}
		h.log.Error("plugin rejected", attrs...)
		h.rejected[file] = rejected{fingerprint: fp, err: err}
		return running, false, err
	}
	delete(h.rejected, file)
	p.fingerprint = fp
	return p, true, nil
}

func (h *Host) load(ctx context.Context, file, manifestFile string) (*Plugin, error) {
	mdata, err := os.ReadFile(manifestFile)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w: every NAME.wasm needs a NAME.toml beside it", err)
	}
	man, err := ParseManifest(mdata)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", filepath.Base(manifestFile), err)
	}
	wasm, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}

	kv, err := h.kvFor(man)
	if err != nil {
		return nil, err
	}
	return loadPlugin(ctx, loadConfig{
		cache: h.cache, resolver: h.resolver, now: h.now, log: h.log,
		kv: kv, maxInstances: h.maxInst, watchdog: h.watchdog, calls: h.calls,
	}, file, man, wasm)
}

// kvFor returns the plugin's key-value store, shared by every version of
// the plugin so that counters survive a module update.
func (h *Host) kvFor(man *Manifest) (*kvStore, error) {
	if !man.grants.kv {
		return nil, nil
	}
	if kv, ok := h.kvs[man.Name]; ok {
		return kv, nil
	}
	path := ""
	if h.stateDir != "" {
		path = filepath.Join(h.stateDir, man.Name+".kv.json")
	}
	kv, err := openKV(path)
	if err != nil {
		return nil, err
	}
	h.kvs[man.Name] = kv
	return kv, nil
}

// fingerprint identifies a version of a module and its manifest by size
// and modification time, which is cheap enough to poll. Installers should
// write a new file and rename it into place, so that a half-written module
// is never seen.
func fingerprint(files ...string) string {
	var sb strings.Builder
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			sb.WriteString("missing;")
			continue
		}
		fmt.Fprintf(&sb, "%d:%d;", st.Size(), st.ModTime().UnixNano())
	}
	return sb.String()
}
