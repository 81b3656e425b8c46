package host

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// maxKVEntries bounds one plugin's store; a set past it returns
// statusLimit until entries expire.
const maxKVEntries = 100_000

// kvStore is one plugin's small persistent key-value store: a map in
// memory, written to a JSON file on Flush and read back when the plugin is
// loaded, so counters survive reloads and restarts.
type kvStore struct {
	path string // "" keeps the store in memory only

	mu        sync.Mutex
	entries   map[string]kvEntry
	dirty     bool
	lastSweep time.Time
}

type kvEntry struct {
	Value   []byte `json:"v"`
	Expires int64  `json:"e,omitempty"` // Unix milliseconds; 0 never expires
}

func openKV(path string) (*kvStore, error) {
	kv := &kvStore{path: path, entries: make(map[string]kvEntry)}
	if path == "" {
		return kv, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return kv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key-value store: %w", err)
	}
	if err := json.Unmarshal(data, &kv.entries); err != nil {
		return nil, fmt.Errorf("key-value store %s is corrupt (%v): delete it to start empty", path, err)
	}
	return kv, nil
}

func (kv *kvStore) get(key string, now time.Time) ([]byte, bool) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.entries[key]
	if !ok || e.expired(now) {
		return nil, false
	}
	return e.Value, true
}

func (e kvEntry) expired(now time.Time) bool {
	return e.Expires != 0 && now.UnixMilli() >= e.Expires
}

func expiry(ttl int32, now time.Time) int64 {
	if ttl == 0 {
		return 0
	}
	return now.Add(time.Duration(ttl) * time.Second).UnixMilli()
}

func (kv *kvStore) set(key string, val []byte, ttl int32, now time.Time) int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if _, ok := kv.entries[key]; !ok && !kv.roomLocked(now) {
		return statusLimit
	}
	kv.entries[key] = kvEntry{Value: append([]byte(nil), val...), Expires: expiry(ttl, now)}
	kv.dirty = true
	return statusOK
}

func (kv *kvStore) incr(key string, delta int64, ttl int32, now time.Time) (int64, int) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.entries[key]
	if ok && e.expired(now) {
		ok = false
	}
	var n int64
	if ok {
		var err error
		n, err = strconv.ParseInt(string(e.Value), 10, 64)
		if err != nil {
			return 0, statusBadArgument
		}
	} else {
		if !kv.roomLocked(now) {
			return 0, statusLimit
		}
		e = kvEntry{Expires: expiry(ttl, now)}
	}
	n += delta
	e.Value = strconv.AppendInt(e.Value[:0], n, 10)
	kv.entries[key] = e
	kv.dirty = true
	return n, statusOK
}

// roomLocked reports whether a new key fits, dropping expired entries first
// when the store is full. It sweeps at most once a second, so that a full
// store of unexpired keys does not cost a scan per insert.
func (kv *kvStore) roomLocked(now time.Time) bool {
	if len(kv.entries) < maxKVEntries {
		return true
	}
	if now.Sub(kv.lastSweep) < time.Second {
		return false
	}
	kv.lastSweep = now
	for k, e := range kv.entries {
		if e.expired(now) {
			delete(kv.entries, k)
		}
	}
	return len(kv.entries) < maxKVEntries
}

// flush writes the store atomically (write, sync, rename) if it changed.
func (kv *kvStore) flush() error {
	if kv.path == "" {
		return nil
	}
	kv.mu.Lock()
	if !kv.dirty {
		kv.mu.Unlock()
		return nil
	}
	data, err := json.Marshal(kv.entries)
	kv.dirty = false
	kv.mu.Unlock()
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(kv.path), ".kv-*")
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
	return os.Rename(tmp.Name(), kv.path)
}
