package spool

import (
	"testing"
)

func TestQueueIDSortsByCreation(t *testing.T) {
	prev := NewQueueID()
	for range 10000 {
		id := NewQueueID()
		if id <= prev {
			t.Fatalf("id %s is not greater than the previous %s", id, prev)
		}
		prev = id
	}
}

func TestQueueIDUsesOnlyAlphanumerics(t *testing.T) {
	for range 1000 {
		id := NewQueueID()
		if len(id) != idLength {
			t.Fatalf("id %q has %d characters, want %d", id, len(id), idLength)
		}
		if !validQueueID(id) {
			t.Fatalf("id %q has characters outside [0-9A-Za-z]", id)
		}
	}
}

func TestQueueIDRejectsPathTricks(t *testing.T) {
	for _, id := range []string{"", "../etc", "a/b", "a.msg", "a b", "ä", string(make([]byte, 65))} {
		if validQueueID(id) {
			t.Errorf("validQueueID(%q) = true", id)
		}
	}
}
