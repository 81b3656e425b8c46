package spool

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, string(AreaQueue)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentSuffix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func listIDsOf(t *testing.T, s *Spool) []string {
	t.Helper()
	envs, err := s.List(AreaQueue)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range envs {
		ids = append(ids, e.QueueID)
	}
	return ids
}

func TestSmallMessagesShareSegments(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	s.sealSize = 20 << 10
	var ids []string
	for range 12 {
		env, err := commitMessage(s, AreaQueue, 5000)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.QueueID)
	}
	for _, id := range ids {
		if _, err := os.Stat(s.messagePath(AreaQueue, id)); err == nil {
			t.Errorf("%s got a file of its own", id)
		}
		checkBody(t, s, AreaQueue, id)
	}
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Errorf("12 messages of 5 KB with a seal size of 20 KB went into %d segments", n)
	}

	for _, id := range ids {
		if err := s.Remove(AreaQueue, id); err != nil {
			t.Fatal(err)
		}
	}
	// Every sealed segment is gone at once, and the finished active one
	// soon after the last removal.
	if n := len(segmentFiles(t, dir)); n > 1 {
		t.Errorf("%d segments left after every message was removed, want at most the active one", n)
	}
	waitForNoSegments(t, dir)
	s.Close()
	s = openSpool(t, dir)
	if got := listIDsOf(t, s); len(got) != 0 {
		t.Errorf("removed messages came back after a restart: %v", got)
	}
	if n := len(segmentFiles(t, dir)); n != 0 {
		t.Errorf("%d segments left after recovery found nothing in them", n)
	}
}

func TestDoneRecordsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	var kept []string
	for i := range 10 {
		env, err := commitMessage(s, AreaQueue, 700)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.Remove(AreaQueue, env.QueueID); err != nil {
				t.Fatal(err)
			}
			continue
		}
		kept = append(kept, env.QueueID)
	}
	s.Close()

	s = openSpool(t, dir)
	if got := listIDsOf(t, s); !slices.Equal(got, kept) {
		t.Errorf("after a restart the queue holds %v, want %v", got, kept)
	}
	for _, id := range kept {
		checkBody(t, s, AreaQueue, id)
	}
}

func TestRecoveryCutsTornSegmentTail(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	var ids []string
	for range 3 {
		env, err := commitMessage(s, AreaQueue, 900)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.QueueID)
	}
	s.Close()

	segs := segmentFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("want one segment, have %v", segs)
	}
	path := filepath.Join(dir, string(AreaQueue), segs[0])
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	valid := info.Size()
	// A batch that a crash cut short: the start of a record, then zeros.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := make([]byte, 600)
	putRecordHeader(torn, kindMessage, "TornRecord", 5000, 100)
	f.Write(torn)
	f.Close()

	s = openSpool(t, dir)
	if got := listIDsOf(t, s); !slices.Equal(got, ids) {
		t.Errorf("after the torn tail the queue holds %v, want %v", got, ids)
	}
	info, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != valid {
		t.Errorf("segment has %d bytes after recovery, want the %d valid ones", info.Size(), valid)
	}
	// Done records written after the cut must be found by the next start.
	if err := s.Remove(AreaQueue, ids[1]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openSpool(t, dir)
	if got := listIDsOf(t, s); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("after removing %s the queue holds %v", ids[1], got)
	}
}

// TestFileCopyWinsOverSegmentRecord covers a crash while a message was
// taken out of its segment: the file was durable, the done record not.
func TestFileCopyWinsOverSegmentRecord(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	env, err := commitMessage(s, AreaQueue, 1500)
	if err != nil {
		t.Fatal(err)
	}
	other, err := commitMessage(s, AreaQueue, 1500)
	if err != nil {
		t.Fatal(err)
	}
	// The same message again as a file, as an interrupted extract leaves it.
	s.memLimit = 0
	copyEnv := testEnvelope("user@example.test")
	copyEnv.QueueID = env.QueueID
	w, err := s.Create(copyEnv)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bodyFor(env.QueueID, 1500))
	if err := w.Commit(context.Background(), AreaQueue); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openSpool(t, dir)
	want := []string{env.QueueID, other.QueueID}
	if got := listIDsOf(t, s); !slices.Equal(got, want) {
		t.Fatalf("queue holds %v, want %v once each", got, want)
	}
	if err := s.Remove(AreaQueue, env.QueueID); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openSpool(t, dir)
	if got := listIDsOf(t, s); !slices.Equal(got, []string{other.QueueID}) {
		t.Errorf("the segment record came back after its file was removed: queue holds %v", got)
	}
}

func TestLargeMessageGetsItsOwnFile(t *testing.T) {
	s := openSpool(t, t.TempDir())
	env, err := commitMessage(s, AreaQueue, segmentMaxBody+1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.messagePath(AreaQueue, env.QueueID)); err != nil {
		t.Errorf("a message over the memory limit has no file: %v", err)
	}
	checkBody(t, s, AreaQueue, env.QueueID)
}

func TestDoneRecordsFlushDuringSteadyRemovals(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	var ids []string
	for range 30 {
		env, err := commitMessage(s, AreaQueue, 300)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.QueueID)
	}
	path := filepath.Join(dir, string(AreaQueue), segmentFiles(t, dir)[0])
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	// One removal every 10 ms, closer than the flush delay, for 200 ms.
	// Ten messages stay, so the segment stays too.
	for _, id := range ids[:20] {
		if err := s.Remove(AreaQueue, id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() == before.Size() {
		t.Error("no done record was written while removals kept coming")
	}
}

// waitForNoSegments fails unless every segment file is deleted within a
// second.
func waitForNoSegments(t *testing.T, dir string) {
	t.Helper()
	for range 100 {
		if len(segmentFiles(t, dir)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("segments %v still on disk a second after their messages were removed", segmentFiles(t, dir))
}

func TestDeferredMessagesFreeTheirSegment(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	for range 5 {
		env, err := commitMessage(s, AreaQueue, 4000)
		if err != nil {
			t.Fatal(err)
		}
		// A deferral saves state, which copies the message to a file.
		if err := s.SaveState(AreaQueue, env); err != nil {
			t.Fatal(err)
		}
	}
	waitForNoSegments(t, dir)
	if got := listIDsOf(t, s); len(got) != 5 {
		t.Errorf("queue holds %d messages, want the 5 deferred ones", len(got))
	}
}

func TestFullDiskFreesFinishedSegmentForNewMail(t *testing.T) {
	dir := mountTmpfs(t, "size=1m")
	s := openSpool(t, dir)
	// Fill most of the disk with messages, then deliver them all.
	var ids []string
	for {
		env, err := commitMessage(s, AreaQueue, 100<<10)
		if err != nil {
			checkNoSpace(t, err)
			break
		}
		ids = append(ids, env.QueueID)
	}
	if len(ids) == 0 {
		t.Fatal("not even one message fit")
	}
	for _, id := range ids {
		if err := s.Remove(AreaQueue, id); err != nil {
			t.Fatal(err)
		}
	}
	// The space of the delivered messages must serve new mail.
	for i := range len(ids) {
		if _, err := commitMessage(s, AreaQueue, 100<<10); err != nil {
			t.Fatalf("message %d after every earlier one was delivered: %v", i+1, err)
		}
	}
}

// damagedSpool commits n messages into one segment, closes the spool and
// returns the directory, the ids and the segment's path and record offsets.
func damagedSpool(t *testing.T, n int) (string, []string, string, []int64) {
	t.Helper()
	dir := t.TempDir()
	s := openSpool(t, dir)
	var ids []string
	for range n {
		env, err := commitMessage(s, AreaQueue, 800)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.QueueID)
	}
	s.Close()
	path := filepath.Join(dir, string(AreaQueue), segmentFiles(t, dir)[0])
	return dir, ids, path, recordOffsets(t, path)
}

// recordOffsets returns where each record of the segment at path starts.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scan, err := scanSegment(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for _, r := range scan.records {
		offsets = append(offsets, r.loc.bodyOff-int64(recordPrefixSize(r.id)))
	}
	return offsets
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedRecordBodyLosesOnlyThatMessage(t *testing.T) {
	dir, ids, path, offsets := damagedSpool(t, 12)
	flipByte(t, path, offsets[3]+200)
	s := openSpool(t, dir)
	want := slices.Delete(slices.Clone(ids), 3, 4)
	if got := listIDsOf(t, s); !slices.Equal(got, want) {
		t.Errorf("after damage inside message 4 the queue holds %v, want the other 11 %v", got, want)
	}
}

func TestDamagedFirstMagicLosesOnlyThatMessage(t *testing.T) {
	dir, ids, path, _ := damagedSpool(t, 12)
	flipByte(t, path, 0)
	s := openSpool(t, dir)
	if got := listIDsOf(t, s); !slices.Equal(got, ids[1:]) {
		t.Errorf("after damage to the first record's magic the queue holds %v, want %v", got, ids[1:])
	}
}

func TestDamagedSizeFieldSetsSegmentAside(t *testing.T) {
	dir, ids, path, offsets := damagedSpool(t, 12)
	// The body size's top byte: the record chain cannot be followed.
	flipByte(t, path, offsets[3]+10)
	s := openSpool(t, dir)

	if got := listIDsOf(t, s); !slices.Equal(got, ids[:3]) {
		t.Errorf("queue contains %v, want the 3 messages before the damage %v", got, ids[:3])
	}
	for _, id := range ids[:3] {
		checkBody(t, s, AreaQueue, id)
	}

	// The intact messages after the damage wait in quarantine for review.
	envs, err := s.List(AreaQuarantine)
	if err != nil {
		t.Fatal(err)
	}
	var quarantined []string
	for _, e := range envs {
		quarantined = append(quarantined, e.QueueID)
	}
	if !slices.Equal(quarantined, ids[4:]) {
		t.Errorf("quarantine contains %v, want the messages after the damage %v", quarantined, ids[4:])
	}
	for _, id := range ids[4:] {
		checkBody(t, s, AreaQuarantine, id)
	}
	if _, err := os.Stat(path + damagedSuffix); err != nil {
		t.Errorf("the damaged segment was not kept aside: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the damaged segment is still in use: %v", err)
	}
}

func TestSecondDamagedSegmentKeepsTheFirst(t *testing.T) {
	dir, _, path, offsets := damagedSpool(t, 6)
	flipByte(t, path, offsets[2]+10)
	s := openSpool(t, dir)
	s.Close()

	// New mail after the restart goes into a segment with a new number.
	s = openSpool(t, dir)
	for range 6 {
		if _, err := commitMessage(s, AreaQueue, 800); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs := segmentFiles(t, dir)
	if len(segs) != 1 || segs[0] == filepath.Base(path) {
		t.Fatalf("segments after the restart: %v, want one that does not reuse %s", segs, filepath.Base(path))
	}
	second := filepath.Join(dir, string(AreaQueue), segs[0])
	flipByte(t, second, recordOffsets(t, second)[2]+10)
	openSpool(t, dir).Close()

	entries, err := os.ReadDir(filepath.Join(dir, string(AreaQueue)))
	if err != nil {
		t.Fatal(err)
	}
	aside := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), damagedSuffix) {
			aside++
		}
	}
	if aside != 2 {
		t.Errorf("%d damaged segments kept aside, want both", aside)
	}
}
