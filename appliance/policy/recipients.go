package policy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// addressSet is a recipient list: whole addresses and whole domains.
// Addresses compare case-insensitively, as almost every mail server treats
// local parts (RFC 5321 allows case-sensitive ones, but no real site
// relies on them).
type addressSet struct {
	addresses map[string]bool
	domains   map[string]bool
}

// parseAddressSet accepts "local@domain" and "@domain" entries.
func parseAddressSet(entries []string) (*addressSet, error) {
	s := &addressSet{addresses: make(map[string]bool), domains: make(map[string]bool)}
	for _, e := range entries {
		if err := s.add(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *addressSet) add(entry string) error {
	if d, ok := strings.CutPrefix(entry, "@"); ok {
		n, err := NormalizeDomain(d)
		if err != nil {
			return fmt.Errorf("entry %q is not a valid @domain: %v", entry, err)
		}
		s.domains[n] = true
		return nil
	}
	local, domain, err := ParseAddress(entry, true)
	if err != nil {
		return fmt.Errorf("entry %q is not a valid address: %v", entry, err)
	}
	s.addresses[strings.ToLower(local)+"@"+domain] = true
	return nil
}

func (s *addressSet) contains(local, domain string) bool {
	return s.domains[domain] || s.addresses[strings.ToLower(local)+"@"+domain]
}

// fileList is a recipient file that is read again whenever its
// modification time or size changes, so that an administrator's edit takes
// effect without a reload.
type fileList struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	modTime time.Time
	size    int64
	set     *addressSet
}

func newFileList(path string, log *slog.Logger) *fileList {
	return &fileList{path: path, log: log}
}

// load returns the current list, reading the file again if it changed. A
// file that cannot be read is an error (the recipient gets a tempfail), so
// a deleted or unreadable list never turns into "nobody exists".
func (f *fileList) load() (*addressSet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("recipient file: %w", err)
	}
	if f.set != nil && fi.ModTime().Equal(f.modTime) && fi.Size() == f.size {
		return f.set, nil
	}

	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("recipient file: %w", err)
	}
	set := &addressSet{addresses: make(map[string]bool), domains: make(map[string]bool)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if err := set.add(text); err != nil {
			// One bad line must not hide every other recipient.
			f.log.Warn("recipient file line skipped", "file", f.path, "line", line, "reason", err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("recipient file %s: %w", f.path, err)
	}

	f.set, f.modTime, f.size = set, fi.ModTime(), fi.Size()
	f.log.Info("recipient file loaded", "file", f.path,
		"addresses", len(set.addresses), "domains", len(set.domains))
	return set, nil
}

// maxCacheEntries bounds the callout cache, so that a client probing random
// recipients cannot grow memory without limit.
const maxCacheEntries = 50000

type cacheEntry struct {
	exists  bool
	expires time.Time
}

// calloutCache stores probe results: positive ones for the positive TTL and
// negative ones for the negative TTL. Errors are never cached.
type calloutCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cacheEntry
}

func newCalloutCache(max int) *calloutCache {
	return &calloutCache{max: max, entries: make(map[string]cacheEntry)}
}

func (c *calloutCache) get(key string, now time.Time) (exists, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return false, false
	}
	return e.exists, true
}

func (c *calloutCache) put(key string, exists bool, expires time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = cacheEntry{exists: exists, expires: expires}
}

func (c *calloutCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// callout probes the recipient through the cache. A probe error is returned
// and never cached, so the next RCPT probes again.
func (c *Checker) callout(ctx context.Context, r *rules, addr string) (bool, error) {
	key := strings.ToLower(addr)
	now := time.Now()
	if exists, ok := c.cache.get(key, now); ok {
		return exists, nil
	}

	exists, err := c.prober.Probe(ctx, addr)
	if err != nil {
		// The caller logs it with the client's details.
		return false, fmt.Errorf("callout for %s failed: %w", addr, err)
	}
	ttl := r.negTTL
	if exists {
		ttl = r.posTTL
	}
	if ttl > 0 {
		c.cache.put(key, exists, now.Add(ttl), now)
	}
	return exists, nil
}
