package host

import (
	"sync/atomic"
	"time"

	"github.com/lambgate/lambgate/appliance/filter"
)

// FailureKind classifies why a plugin call failed.
type FailureKind int

// Failure kinds, also the keys of PluginStats.Failures.
const (
	FailTrap          FailureKind = iota // the guest trapped (Go panic, unreachable, AssemblyScript abort)
	FailTimeLimit                        // stopped at the manifest's time limit
	FailMemoryLimit                      // trapped with its memory at the manifest's cap
	FailABI                              // a host call outside guest memory or without a grant
	FailInvalidAction                    // the callback returned no valid action
	FailNoInstance                       // no instance could be created, or the session ended waiting
	FailCanceled                         // the session's context ended during the call
	numFailureKinds
)

var failureNames = [numFailureKinds]string{
	"trap", "time_limit", "memory_limit", "abi_violation", "invalid_action", "no_instance", "canceled",
}

func (k FailureKind) String() string {
	if k < 0 || k >= numFailureKinds {
		return "invalid"
	}
	return failureNames[k]
}

// Failure is why one plugin call produced no verdict of its own; the
// plugin's failure mode decides the verdict instead.
type Failure struct {
	Kind   FailureKind
	Detail string
}

func (f *Failure) Error() string { return f.Kind.String() + ": " + f.Detail }

type pluginStats struct {
	calls       [numPhases]atomic.Uint64
	nanos       [numPhases]atomic.Uint64
	verdicts    [filter.Bounce + 1]atomic.Uint64
	failures    [numFailureKinds]atomic.Uint64
	instances   atomic.Uint64
	discarded   atomic.Uint64
	dnsLookups  atomic.Uint64
	dnsErrors   atomic.Uint64
	logsDropped atomic.Uint64

	repliesRefused atomic.Uint64 // replies the host did not use
	repliesCleaned atomic.Uint64
}

// PluginStats is a snapshot of one loaded plugin's counters since it was
// loaded; a reload of a changed module starts them from zero.
type PluginStats struct {
	Name, Version, File string
	// Calls and Time are per phase name.
	Calls map[string]uint64
	Time  map[string]time.Duration
	// Verdicts counts the actions returned, by action name.
	Verdicts map[string]uint64
	// Failures counts failed calls by kind (FailureKind.String).
	Failures map[string]uint64
	// InstancesCreated and InstancesDiscarded count pool churn; a
	// discarded instance had trapped or hit a limit.
	InstancesCreated, InstancesDiscarded uint64
	DNSLookups, DNSErrors                uint64
	LogLinesDropped                      uint64
	// RepliesRefused counts replies the host did not use: an invalid code
	// or enhanced code, or a class that does not match the verdict.
	// RepliesCleaned counts reply texts cut or cleaned of control
	// characters (CR/LF injection).
	RepliesRefused, RepliesCleaned uint64
}

func (p *Plugin) snapshot() PluginStats {
	s := &p.stats
	out := PluginStats{
		Name: p.man.Name, Version: p.man.Version, File: p.file,
		Calls: map[string]uint64{}, Time: map[string]time.Duration{},
		Verdicts: map[string]uint64{}, Failures: map[string]uint64{},
		InstancesCreated:   s.instances.Load(),
		InstancesDiscarded: s.discarded.Load(),
		DNSLookups:         s.dnsLookups.Load(),
		DNSErrors:          s.dnsErrors.Load(),
		LogLinesDropped:    s.logsDropped.Load(),
		RepliesRefused:     s.repliesRefused.Load(),
		RepliesCleaned:     s.repliesCleaned.Load(),
	}
	for ph := range numPhases {
		if n := s.calls[ph].Load(); n > 0 {
			out.Calls[ph.String()] = n
			out.Time[ph.String()] = time.Duration(s.nanos[ph].Load())
		}
	}
	for a := filter.Continue; a <= filter.Bounce; a++ {
		if n := s.verdicts[a].Load(); n > 0 {
			out.Verdicts[a.String()] = n
		}
	}
	for k := range numFailureKinds {
		if n := s.failures[k].Load(); n > 0 {
			out.Failures[k.String()] = n
		}
	}
	return out
}
