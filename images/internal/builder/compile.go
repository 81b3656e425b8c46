package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// program is a Go program that goes into the root file system.
type program struct {
	// Package is the import path to build.
	Package string
	// RootPath is the binary's path in the root file system.
	RootPath string
	// LDFlags are extra linker flags, such as -X settings.
	LDFlags string
}

// compile builds prog for goarch into dir and returns the binary's path.
// The flags make the output depend only on the source: -trimpath drops
// host paths, -buildid= drops the per-build linker ID, and -buildvcs=false
// keeps the checkout's dirty state out of the binary.
func compile(ctx context.Context, moduleDir, dir, goarch string, prog program) (string, error) {
	out := filepath.Join(dir, strings.ReplaceAll(prog.RootPath, "/", "_"))
	ldflags := "-s -w -buildid= " + prog.LDFlags
	cmd := exec.CommandContext(ctx, "go", "build",
		"-trimpath", "-buildvcs=false",
		"-tags", "gokrazy,netgo,osusergo",
		"-ldflags", ldflags,
		"-o", out, prog.Package)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for linux/%s failed: %v\n%s", prog.Package, goarch, err, stderr.Bytes())
	}
	return out, nil
}

// moduleDir returns the directory of a module at the version that the
// main module's go.mod selects, downloading it into the module cache if
// needed.
func moduleDir(ctx context.Context, mainDir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = mainDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct {
		Dir   string
		Error string
	}
	if jsonErr := json.Unmarshal(out, &m); jsonErr == nil && m.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", module, m.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s failed: %v\n%s", module, err, stderr.Bytes())
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s printed no directory: is %s required in go.mod?", module, module)
	}
	return m.Dir, nil
}

// findModuleRoot returns the directory of the go.mod that encloses dir.
func findModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run the image builder inside the Lambgate checkout", dir)
		}
	}
}
