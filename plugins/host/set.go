package host

import (
	"context"
	"sync"
)

// pluginSet is an immutable, ordered set of plugins. Calls hold a read
// lock for their duration. Retiring a set takes the write lock, so the
// plugins it drops are closed only after the last in-flight call ends.
type pluginSet struct {
	plugins []*Plugin
	byPhase [numPhases][]*Plugin

	mu      sync.RWMutex
	retired bool
}

func newPluginSet(plugins []*Plugin) *pluginSet {
	s := &pluginSet{plugins: plugins}
	for _, p := range plugins {
		for ph := range numPhases {
			if p.man.phases[ph] {
				s.byPhase[ph] = append(s.byPhase[ph], p)
			}
		}
	}
	return s
}

// acquireSet returns the current set, read-locked. A set retired between
// the load and the lock is skipped for its successor.
func (h *Host) acquireSet() *pluginSet {
	for {
		s := h.set.Load()
		s.mu.RLock()
		if !s.retired {
			return s
		}
		s.mu.RUnlock()
	}
}

func (s *pluginSet) release() { s.mu.RUnlock() }

// retire waits for the set's in-flight calls and closes the plugins that
// are not in keep.
func (s *pluginSet) retire(ctx context.Context, keep map[*Plugin]bool) {
	s.mu.Lock()
	s.retired = true
	s.mu.Unlock()
	for _, p := range s.plugins {
		if !keep[p] {
			p.close(ctx)
		}
	}
}
