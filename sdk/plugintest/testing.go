package plugintest

import (
	"os"
	"path/filepath"
	"strings"
)

// TestCacheDir is a compilation cache shared by test runs on one machine:
// wazero keys it by module content, so sharing is safe, and it spares each
// run the seconds a Go guest takes to compile.
var TestCacheDir = filepath.Join(os.TempDir(), "lambgate-test-wazero-cache")

// WithSetting returns a manifest with the line that sets key replaced by
// "key = value" (value in TOML syntax), for tests of other settings. It
// panics when the manifest has no such line, since the test would then
// run against the shipped value.
func WithSetting(manifest []byte, key, value string) []byte {
	lines := strings.Split(string(manifest), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), key+" =") {
			lines[i] = key + " = " + value
			// A list may continue on the following lines up to "]".
			if strings.Contains(l, "[") && !strings.Contains(l, "]") {
				j := i + 1
				for j < len(lines) && !strings.Contains(lines[j], "]") {
					j++
				}
				lines = append(lines[:i+1], lines[j+1:]...)
			}
			return []byte(strings.Join(lines, "\n"))
		}
	}
	panic("plugintest: manifest has no setting " + key)
}
