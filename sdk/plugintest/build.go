package plugintest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Build compiles the plugin source in dir into the module out. A
// directory with index.ts is AssemblyScript, built with the asc pinned by
// sdk/assemblyscript (installed by its install.sh, found by walking up
// from dir); otherwise it must be a Go main package, built with
// GOOS=wasip1 -buildmode=c-shared.
func Build(ctx context.Context, dir, out string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(abs, "index.ts")); err == nil {
		return buildAS(ctx, abs, out)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", dir, err, msg)
	}
	return nil
}

func buildAS(ctx context.Context, dir, out string) error {
	sdk, err := findASSDK(dir)
	if err != nil {
		return err
	}
	install := exec.CommandContext(ctx, filepath.Join(sdk, "install.sh"))
	if msg, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("install AssemblyScript (needs node >= 20 and npm): %w\n%s", err, msg)
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(sdk, "node_modules", ".bin", "asc"),
		"index.ts", "-O3", "--exportStart", "_initialize", "-o", out)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("asc %s: %w\n%s", dir, err, msg)
	}
	return nil
}

// findASSDK walks up from dir to the directory holding
// sdk/assemblyscript/install.sh.
func findASSDK(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		sdk := filepath.Join(d, "sdk", "assemblyscript")
		if _, err := os.Stat(filepath.Join(sdk, "install.sh")); err == nil {
			return sdk, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("sdk/assemblyscript not found above " + dir + ": build inside a Lambgate checkout")
		}
	}
}

var (
	builtMu sync.Mutex
	built   = map[string][]byte{}
)

// BuildOnce builds the plugin in dir once per process and returns the
// module bytes, so that a test file with many cases pays for one build.
func BuildOnce(ctx context.Context, dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	builtMu.Lock()
	defer builtMu.Unlock()
	if wasm, ok := built[abs]; ok {
		return wasm, nil
	}
	tmp, err := os.MkdirTemp("", "lambgate-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "plugin.wasm")
	if err := Build(ctx, abs, out); err != nil {
		return nil, err
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	built[abs] = wasm
	return wasm, nil
}
