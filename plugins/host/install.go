package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Validate checks a module and its manifest as loading would (manifest
// fields, exports, imports, memory cap, _initialize) without installing
// anything, and returns the parsed manifest.
func (h *Host) Validate(ctx context.Context, wasm, manifest []byte) (*Manifest, error) {
	man, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	kv, _ := openKV("") // a throwaway store: validation must not touch the plugin's state
	p, err := loadPlugin(ctx, loadConfig{
		cache: h.cache, resolver: h.resolver, now: h.now, log: h.log, kv: kv, maxInstances: 1,
		watchdog: h.watchdog, calls: h.calls,
	}, "(upload)", man, wasm)
	if err != nil {
		return nil, err
	}
	p.close(ctx)
	return man, nil
}

// Install validates a module with its manifest and, when both are valid,
// writes them into the plugins directory as NAME.wasm and NAME.toml and
// reloads, replacing an installed plugin of the same name. Invalid input
// returns the validation error and leaves the directory untouched. Both
// files are written under the reload lock, so no reload can load a new
// module with an old manifest.
func (h *Host) Install(ctx context.Context, wasm, manifest []byte) (*Manifest, error) {
	man, err := h.Validate(ctx, wasm, manifest)
	if err != nil {
		return nil, err
	}

	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	base := filepath.Join(h.dir, man.Name)
	if err := writeFileAtomic(base+".toml", manifest); err != nil {
		return nil, fmt.Errorf("install plugin %s: %w", man.Name, err)
	}
	if err := writeFileAtomic(base+".wasm", wasm); err != nil {
		return nil, fmt.Errorf("install plugin %s: %w", man.Name, err)
	}
	res, err := h.reloadLocked(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range res.Rejected {
		if r.File == base+".wasm" {
			return nil, fmt.Errorf("plugin %s was written but rejected on load: %w", man.Name, r.Err)
		}
	}
	return man, nil
}

// Remove deletes a plugin's module and manifest and reloads, so that the
// plugin stops being called. The key-value store file stays, in case the
// plugin is installed again.
func (h *Host) Remove(ctx context.Context, name string) error {
	if !pluginName.MatchString(name) {
		return fmt.Errorf("plugin name %q is invalid", name)
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.closed {
		return ErrClosed
	}
	base := filepath.Join(h.dir, name)
	err := os.Remove(base + ".wasm")
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("plugin %s is not installed", name)
	}
	if err != nil {
		return err
	}
	if err := os.Remove(base + ".toml"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_, err = h.reloadLocked(ctx)
	return err
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it into place, so that readers see the old or the new file
// and a crash leaves no half-written one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".install-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
