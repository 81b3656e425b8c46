package host

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Manifest is the TOML file beside each module (NAME.toml for NAME.wasm).
// It declares what the plugin may do and the limits it runs under.
type Manifest struct {
	// Name identifies the plugin in logs, metrics and key-value state.
	Name    string `toml:"name"`
	Version string `toml:"version"`
	// Order sorts plugins within a phase, lowest first; ties sort by name.
	Order int `toml:"order"`
	// Phases lists the callbacks the host calls. Each must be exported by
	// the module; an exported callback that is not listed is never called.
	Phases []string `toml:"phases"`
	// Grants lists capabilities: "dns", "clock", "kv".
	Grants []string `toml:"grants"`
	// MemoryLimitMB caps the module's linear memory, in MiB (default 64).
	MemoryLimitMB int `toml:"memory_limit_mb"`
	// TimeLimit bounds the wall-clock time of one callback, DNS lookups
	// included (default 250ms). It is wall-clock time, so it must leave room
	// for a loaded appliance to deschedule the gateway.
	TimeLimit string `toml:"time_limit"`
	// FailureMode decides the verdict when the plugin fails: "open"
	// continues as if the plugin were absent, "closed" (the default)
	// tempfails the transaction with 451 4.3.0.
	FailureMode string `toml:"failure_mode"`
	// Settings are the plugin's own options, read with get_setting.
	// Values are strings, numbers, booleans or lists of those.
	Settings map[string]any `toml:"settings"`

	phases    [numPhases]bool
	timeLimit time.Duration
	failOpen  bool
	grants    grantSet
	settings  map[string]string
}

type grantSet struct{ dns, clock, kv bool }

// Defaults and bounds of manifest fields.
const (
	DefaultMemoryLimitMB = 64
	MaxMemoryLimitMB     = 1024
	DefaultTimeLimit     = 250 * time.Millisecond
	MaxTimeLimit         = 30 * time.Second
)

var pluginName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ParseManifest decodes and validates a manifest.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	md, err := toml.Decode(string(data), &m)
	if err != nil {
		return nil, fmt.Errorf("invalid manifest TOML: %w", err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return nil, fmt.Errorf("unknown manifest key %q: check its spelling against sdk/ABI.md", keys[0].String())
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !pluginName.MatchString(m.Name) {
		bad("name %q is invalid: use 1-64 of a-z, 0-9, '-' and '_'", m.Name)
	}
	if len(m.Phases) == 0 {
		bad("phases is empty: list at least one of %s", strings.Join(phaseNames[:], ", "))
	}
	for _, s := range m.Phases {
		p, ok := ParsePhase(s)
		if !ok {
			bad("phase %q is unknown: use one of %s", s, strings.Join(phaseNames[:], ", "))
			continue
		}
		m.phases[p] = true
	}
	for _, g := range m.Grants {
		switch g {
		case "dns":
			m.grants.dns = true
		case "clock":
			m.grants.clock = true
		case "kv":
			m.grants.kv = true
		default:
			bad("grant %q is unknown: use dns, clock or kv", g)
		}
	}

	if m.MemoryLimitMB == 0 {
		m.MemoryLimitMB = DefaultMemoryLimitMB
	}
	if m.MemoryLimitMB < 1 || m.MemoryLimitMB > MaxMemoryLimitMB {
		bad("memory_limit_mb %d is out of range: use 1 to %d", m.MemoryLimitMB, MaxMemoryLimitMB)
	}

	m.timeLimit = DefaultTimeLimit
	if m.TimeLimit != "" {
		d, err := time.ParseDuration(m.TimeLimit)
		if err != nil || d <= 0 || d > MaxTimeLimit {
			bad("time_limit %q is invalid: use a duration such as \"50ms\", at most %s", m.TimeLimit, MaxTimeLimit)
		}
		m.timeLimit = d
	}

	switch m.FailureMode {
	case "", "closed":
		m.FailureMode = "closed"
	case "open":
		m.failOpen = true
	default:
		bad("failure_mode %q is invalid: use \"open\" or \"closed\"", m.FailureMode)
	}

	m.settings = make(map[string]string, len(m.Settings))
	for k, v := range m.Settings {
		s, err := settingString(v)
		if err != nil {
			bad("setting %q: %v", k, err)
			continue
		}
		m.settings[k] = s
	}
	return errors.Join(errs...)
}

// settingString flattens a TOML value into the text get_setting returns:
// lists become one element per line, so a guest needs no TOML parser.
func settingString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64, float64, bool:
		return fmt.Sprint(v), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, err := settingString(e)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, "\n") {
				return "", fmt.Errorf("list element %q contains a newline, which separates elements", s)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "\n"), nil
	default:
		return "", fmt.Errorf("value of type %T is not supported: use a string, number, boolean or list", v)
	}
}

// HasPhase reports whether the manifest lists the phase.
func (m *Manifest) HasPhase(p Phase) bool { return m.phases[p] }

// phaseList returns the listed phases in transaction order.
func (m *Manifest) phaseList() []Phase {
	var ps []Phase
	for p := range numPhases {
		if m.phases[p] {
			ps = append(ps, p)
		}
	}
	return ps
}
