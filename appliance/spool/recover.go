package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// recover brings the directory to a state where every message file is
// complete: it empties tmp, removes torn or corrupt message files with their
// state, completes interrupted moves and removes orphaned state files. It
// runs before the committer starts, so it syncs directories itself.
func (s *Spool) recover() error {
	if err := s.emptyTmp(); err != nil {
		return err
	}

	present := make(map[Area]map[string]bool)
	for _, a := range areas {
		ids, err := s.verifyArea(a)
		if err != nil {
			return err
		}
		present[a] = ids
	}
	if err := s.recoverSegments(present); err != nil {
		return err
	}
	for id := range s.index {
		present[AreaQueue][id] = true
	}
	for _, a := range areas {
		if err := s.placeStates(a, present); err != nil {
			return err
		}
	}

	for _, d := range append([]*os.File{s.root}, s.dirs[AreaQueue], s.dirs[AreaQuarantine]) {
		if err := d.Sync(); err != nil {
			return wrapError("sync "+d.Name(), err)
		}
	}
	return nil
}

func (s *Spool) emptyTmp() error {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return fmt.Errorf("spool: list tmp: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return fmt.Errorf("spool: clean tmp: %w", err)
		}
	}
	if len(entries) > 0 {
		s.log.Info("removed uncommitted messages", "count", len(entries))
	}
	return nil
}

// verifyArea checks the full checksum of every message in area, removes the
// ones that fail with their state file, and returns the ids that remain.
// TODO: this reads every spooled byte at each start, so a spool of many
// gigabytes delays the start of the gateway.
func (s *Spool) verifyArea(area Area) (map[string]bool, error) {
	ids, err := s.listIDs(area)
	if err != nil {
		return nil, err
	}
	valid := make(map[string]bool, len(ids))
	for _, id := range ids {
		err := s.verifyMessage(area, id)
		if err == nil {
			valid[id] = true
			continue
		}
		if !errors.Is(err, errTorn) {
			return nil, fmt.Errorf("spool: verify %s in %s: %w", id, area, err)
		}

		// Only a message whose Commit never returned can be torn, because
		// Commit returns after the sync. No client got a 250 for it.
		s.log.Warn("removed incomplete message", "queue_id", id, "reason", err.Error())
		if err := os.Remove(s.messagePath(area, id)); err != nil {
			return nil, fmt.Errorf("spool: remove incomplete message: %w", err)
		}
		if err := os.Remove(s.statePath(area, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("spool: remove state of incomplete message: %w", err)
		}
	}
	return valid, nil
}

func (s *Spool) verifyMessage(area Area, id string) error {
	f, err := os.Open(s.messagePath(area, id))
	if err != nil {
		return err
	}
	defer f.Close()

	t, err := readTrailer(f)
	if err != nil {
		return err
	}
	if err := verifyChecksum(f, t); err != nil {
		return err
	}
	_, err = readEnvelope(f, t)
	return err
}

// placeStates moves each state file of area whose message sits in another
// area (a move that a crash interrupted) next to its message, and removes
// state files that have no message at all.
func (s *Spool) placeStates(area Area, present map[Area]map[string]bool) error {
	entries, err := os.ReadDir(s.dirs[area].Name())
	if err != nil {
		return fmt.Errorf("spool: list %s: %w", area, err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), stateSuffix)
		if !ok || present[area][id] {
			continue
		}
		path := s.statePath(area, id)

		var home Area
		for _, other := range areas {
			if present[other][id] {
				home = other
			}
		}
		if home != "" {
			if _, err := os.Stat(s.statePath(home, id)); errors.Is(err, os.ErrNotExist) {
				s.log.Info("completed interrupted move", "queue_id", id, "area", string(home))
				if err := os.Rename(path, s.statePath(home, id)); err != nil {
					return fmt.Errorf("spool: complete move of state: %w", err)
				}
				continue
			}
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("spool: remove orphaned state: %w", err)
		}
	}
	return nil
}
