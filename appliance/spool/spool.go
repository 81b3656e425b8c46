// Package spool owns the durable store of accepted messages: one file per
// message with its envelope, a small state file per message for delivery
// progress, and the queue and quarantine areas. When Commit returns nil the
// message and its envelope survive a crash or power loss. The spool never
// delivers, schedules or bounces anything: that is the queue's work. It runs
// on Linux only, because group commit relies on syncfs and renameat2.
package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
)

// Area is a directory of committed messages.
type Area string

const (
	// AreaQueue holds messages waiting for delivery.
	AreaQueue Area = "queue"
	// AreaQuarantine holds messages that a plugin held for review.
	AreaQuarantine Area = "quarantine"
)

var areas = []Area{AreaQueue, AreaQuarantine}

func (a Area) valid() bool { return a == AreaQueue || a == AreaQuarantine }

const (
	tmpDirName    = "tmp"
	lockFileName  = "lock"
	messageSuffix = ".msg"
	stateSuffix   = ".state"
)

// noSpaceError matches syscall.ENOSPC in errors.Is, so that callers that
// only check the standard errno (smtpd replies 452 4.3.1) recognise it.
type noSpaceError struct{}

func (noSpaceError) Error() string {
	return "no space left for the spool: free space on its file system or raise the quota"
}

func (noSpaceError) Is(target error) bool { return target == syscall.ENOSPC }

// ErrNoSpace is wrapped by every error that a full file system (ENOSPC) or
// an exhausted quota (EDQUOT) caused. errors.Is(err, syscall.ENOSPC) is true
// for it as well.
var ErrNoSpace error = noSpaceError{}

// ErrNotFound is wrapped when a queue id is not in the requested area.
var ErrNotFound = errors.New("message not found in spool")

// ErrClosed is returned by operations on a closed spool.
var ErrClosed = errors.New("spool is closed")

// Spool is a spool directory opened by one process. Its methods are safe for
// concurrent use.
type Spool struct {
	dir  string
	log  *slog.Logger
	root *os.File // the spool directory, the handle that syncfs needs
	lock *os.File // holds an exclusive flock while the spool is open
	dirs map[Area]*os.File

	// memLimit is the largest body kept in memory until Commit appends it
	// to a segment; larger messages get a file of their own.
	memLimit int
	// sealSize is the segment size after which a new segment starts.
	sealSize int64

	// segMu guards index, segments and the segments' counters. active
	// and nextSeq belong to the committer.
	segMu    sync.Mutex
	index    map[string]location
	segments map[uint64]*segment
	active   *segment
	nextSeq  uint64
	doneKick chan struct{}
	// extracting holds the ids being taken out of their segment.
	extracting map[string]bool

	// writing counts the Writers between Create and Commit, which the
	// committer waits for briefly so that they share its sync.
	writing atomic.Int32

	requests chan *syncRequest
	closing  chan struct{}
	stopped  chan struct{}
	close    sync.Once
}

// segmentMaxBody is the default memLimit: 128 KiB covers most mail, and
// 500 sessions at the limit hold 64 MiB.
const segmentMaxBody = 128 << 10

// Open opens or creates the spool in dir and recovers it. It removes
// temporary files and every message file that is incomplete or corrupt,
// which only a crash before its Commit returned can leave, and it finishes
// moves between areas that a crash interrupted. A message that was already
// complete on disk when the crash came is kept even if its Commit had not
// returned yet. Its client saw no reply and sends it again, so the
// recipient may get it twice: SMTP prefers that duplicate to a loss.
// Only one process may have a spool open, so a second Open of the same
// directory fails.
func Open(dir string, log *slog.Logger) (*Spool, error) {
	for _, sub := range []string{"", tmpDirName, string(AreaQueue), string(AreaQuarantine)} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, wrapError("create spool directory", err)
		}
	}

	s := &Spool{
		dir:        dir,
		log:        log,
		dirs:       make(map[Area]*os.File),
		memLimit:   segmentMaxBody,
		sealSize:   segmentSealSize,
		index:      make(map[string]location),
		segments:   make(map[uint64]*segment),
		doneKick:   make(chan struct{}, 1),
		extracting: make(map[string]bool),
		requests:   make(chan *syncRequest, 1024),
		closing:    make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()

	var err error
	if s.root, err = os.Open(dir); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", dir, err)
	}
	if s.lock, err = lockDir(filepath.Join(dir, lockFileName)); err != nil {
		return nil, err
	}
	for _, a := range areas {
		if s.dirs[a], err = os.Open(filepath.Join(dir, string(a))); err != nil {
			return nil, fmt.Errorf("spool: open area: %w", err)
		}
	}

	if err := s.recover(); err != nil {
		return nil, err
	}

	go s.runCommitter()
	ok = true
	return s, nil
}

// Close stops the committer and releases the directory. Commits waiting for
// a sync that has not started fail with ErrClosed.
func (s *Spool) Close() error {
	s.close.Do(func() {
		close(s.closing)
		<-s.stopped
		s.closeFiles()
	})
	return nil
}

func (s *Spool) closeFiles() {
	for _, seg := range s.segments {
		seg.file.Close()
	}
	for _, f := range s.dirs {
		f.Close()
	}
	if s.root != nil {
		s.root.Close()
	}
	if s.lock != nil {
		// Closing the descriptor releases the flock.
		s.lock.Close()
	}
}

func (s *Spool) messagePath(area Area, id string) string {
	return filepath.Join(s.dir, string(area), id+messageSuffix)
}

func (s *Spool) statePath(area Area, id string) string {
	return filepath.Join(s.dir, string(area), id+stateSuffix)
}

func (s *Spool) tmpDir() string { return filepath.Join(s.dir, tmpDirName) }

// checkOpen returns ErrClosed once Close was called, so that no file is
// changed without the sync that would make the change durable.
func (s *Spool) checkOpen() error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
		return nil
	}
}

func checkArea(area Area) error {
	if !area.valid() {
		return fmt.Errorf("spool: invalid area %q: use %q or %q", area, AreaQueue, AreaQuarantine)
	}
	return nil
}

func checkQueueID(id string) error {
	if !validQueueID(id) {
		return fmt.Errorf("spool: invalid queue id %q: use 1 to %d characters from [0-9A-Za-z]",
			id, maxQueueIDLength)
	}
	return nil
}

// isNoSpace reports whether err means the file system is full or the quota
// is exhausted.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// wrapError prefixes err with the failed operation, and adds ErrNoSpace for a
// full file system or quota.
func wrapError(op string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("spool: %s: %w: %w", op, ErrNoSpace, err)
	}
	return fmt.Errorf("spool: %s: %w", op, err)
}
