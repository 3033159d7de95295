package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is a clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

var start = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func newClock() *clock { return &clock{now: start} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { closeLog(t, l) })
	return l
}

// closeLog closes l; closing twice is fine.
func closeLog(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Error(err)
	}
}

// step returns the i-th record of a plausible run of the healer.
func step(i int) Record {
	kinds := []Kind{KindReceived, KindMatched, KindGuarded, KindStarted, KindFinished, KindVerified}
	rec := Record{
		Kind:        kinds[i%len(kinds)],
		RunID:       fmt.Sprintf("run-%d", i/len(kinds)),
		Fingerprint: "5f6e7d8c9b0a1f2e",
		Alertname:   "DiskWillFillSoon",
	}
	switch rec.Kind {
	case KindMatched:
		rec.Runbook = "disk-full"
	case KindGuarded:
		rec.Result, rec.Reason = "allowed", "tier low <= ceiling medium"
	case KindStarted:
		rec.Action, rec.Target = "clean_temp_files", "/var/tmp"
		rec.Argv = []string{"clean", "--older-than=7d", "/var/tmp"}
	case KindFinished:
		rec.Action, rec.Result = "clean_temp_files", "ok"
		rec.Fields = map[string]string{"duration_seconds": "0.042", "moved_files": "17"}
	}
	return rec
}

func appendN(t testing.TB, l *Log, from, n int) []Record {
	t.Helper()
	var out []Record
	for i := from; i < from+n; i++ {
		rec, err := l.Append(context.Background(), step(i))
		if err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		out = append(out, rec)
	}
	return out
}

func mustVerify(t *testing.T, dir string) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	l := openLog(t, dir, Options{Now: c.Now})
	first := appendN(t, l, 0, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir, Options{Now: c.Now})
	if got, want := l.LastSeq(), uint64(10); got != want {
		t.Fatalf("LastSeq after reopen = %d; want %d", got, want)
	}
	if got, want := l.LastHash(), first[9].Hash; got != want {
		t.Fatalf("LastHash after reopen = %s; want %s", got, want)
	}
	more := appendN(t, l, 10, 5)
	if got, want := more[0].Prev, first[9].Hash; got != want {
		t.Errorf("first record after reopen chains from %s; want %s", got, want)
	}
	if got, want := l.Records(), uint64(5); got != want {
		t.Errorf("Records() = %d; want %d", got, want)
	}

	rep := mustVerify(t, dir)
	want := Report{Files: 1, Records: 15, FirstSeq: 1, FirstPrev: Genesis, LastSeq: 15, LastHash: more[4].Hash}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("Verify report (-want +got):\n%s", diff)
	}
}

func TestAppendReturnsWhatIsOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{Now: newClock().Now})
	in := step(4)
	in.Seq, in.Prev, in.Hash = 99, "forged", "forged" // Append owns these
	got, err := l.Append(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || got.Prev != Genesis || !got.Time.Equal(start) {
		t.Errorf("Append set seq %d, prev %s, time %s; want 1, genesis, %s", got.Seq, got.Prev, got.Time, start)
	}
	b, err := os.ReadFile(filepath.Join(dir, currentName))
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := decodeLine(bytes.TrimSuffix(b, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, onDisk); diff != "" {
		t.Errorf("returned record differs from the line on disk (-returned +disk):\n%s", diff)
	}
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]Record{
		"an empty kind":                   {},
		"a kind in capitals":              {Kind: "Started"},
		"a kind with a dash":              {Kind: "rolled-back"},
		"a kind with a double underscore": {Kind: "rolled__back"},
		"a kind ending in an underscore":  {Kind: "rolled_"},
		"the recovered kind":              {Kind: KindRecovered},
		"the audit_pruned kind":           {Kind: KindPruned},
		"a record over the size limit":    {Kind: KindFinished, Reason: strings.Repeat("x", MaxRecordBytes)},
	}
	for name, rec := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			if _, err := l.Append(t.Context(), rec); err == nil {
				t.Fatalf("Append(%q) succeeded; want an error", rec.Kind)
			}
			if got := l.LastSeq(); got != 0 {
				t.Errorf("LastSeq after a rejected append = %d; want 0", got)
			}
		})
	}
}

func TestAppendAcceptsAnySnakeCaseKind(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), Options{})
	for _, k := range []Kind{"silenced", "circuit_opened", "approval_expired2"} {
		if _, err := l.Append(t.Context(), Record{Kind: k}); err != nil {
			t.Errorf("Append(%q): %v", k, err)
		}
	}
}

func TestAppendHonoursCancelledContext(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Append(ctx, step(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v; want context.Canceled", err)
	}
}

func TestConcurrentAppendsKeepAValidChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{MaxBytes: 8 << 10})
	const goroutines, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				rec := step(i)
				rec.RunID = fmt.Sprintf("g%d-%d", g, i)
				if _, err := l.Append(t.Context(), rec); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.Records != goroutines*each || rep.LastSeq != goroutines*each {
		t.Errorf("Verify counted %d records up to seq %d; want %d", rep.Records, rep.LastSeq, goroutines*each)
	}
	if rep.Files < 2 {
		t.Errorf("Verify read %d files; want the log to have rotated", rep.Files)
	}
}

func TestOpenIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openLog(t, dir, Options{})
	if l, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		if l != nil {
			closeLog(t, l)
		}
		t.Fatalf("second Open = %v; want ErrLocked", err)
	}
}

// files returns the names of the log's files in chain order.
func files(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range segs {
		names = append(names, s.name)
	}
	return names
}

func TestRotation(t *testing.T) {
	t.Parallel()
	// Records of one length, so that size limits fall between records.
	rec := Record{Kind: KindReceived, Fingerprint: "5f6e7d8c9b0a1f2e"}
	sized := rec
	sized.Seq, sized.Time, sized.Prev = 1, start, Genesis
	size := int64(len(line(sized.body(), Genesis)))
	tests := map[string]struct {
		opts      Options
		tick      time.Duration // clock advance before each append
		appends   int
		wantFiles []string
	}{
		"by size, when the next record would not fit": {
			opts:      Options{MaxBytes: 2*size + size/2},
			appends:   7,
			wantFiles: []string{"audit-1-2.log", "audit-3-4.log", "audit-5-6.log", "audit.log"},
		},
		"by size, with a limit smaller than a record": {
			opts:      Options{MaxBytes: size / 2},
			appends:   3,
			wantFiles: []string{"audit-1-1.log", "audit-2-2.log", "audit.log"},
		},
		"by age, when the first record is MaxAge old": {
			opts:      Options{MaxAge: time.Hour},
			tick:      25 * time.Minute,
			appends:   7,
			wantFiles: []string{"audit-1-3.log", "audit-4-6.log", "audit.log"},
		},
		"never, with neither limit": {
			tick:      24 * time.Hour,
			appends:   7,
			wantFiles: []string{"audit.log"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := newClock()
			tt.opts.Now = c.Now
			l := openLog(t, dir, tt.opts)
			var last Record
			for i := range tt.appends {
				c.advance(tt.tick)
				got, err := l.Append(t.Context(), rec)
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 && got.Prev != last.Hash {
					t.Fatalf("record %d chains from %s; want %s", got.Seq, got.Prev, last.Hash)
				}
				last = got
				if i == 3 { // the rotation state survives a restart
					closeLog(t, l)
					l = openLog(t, dir, tt.opts)
				}
			}
			if diff := cmp.Diff(tt.wantFiles, files(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			rep := mustVerify(t, dir)
			if rep.Records != uint64(tt.appends) || rep.Files != len(tt.wantFiles) {
				t.Errorf("Verify counted %d records in %d files; want %d in %d", rep.Records, rep.Files, tt.appends, len(tt.wantFiles))
			}
		})
	}
}

func TestOpenResumesFromRotatedFileWhenAuditLogIsEmpty(t *testing.T) {
	t.Parallel()
	// A crash between the rename and the first write to the new audit.log,
	// or between the rename and its creation.
	for _, removeCurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("audit.log removed %v", removeCurrent), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			recs := appendN(t, l, 0, 3)
			l.mu.Lock()
			if err := l.rotate(); err != nil {
				t.Fatal(err)
			}
			l.mu.Unlock()
			closeLog(t, l)
			if removeCurrent {
				if err := os.Remove(filepath.Join(dir, currentName)); err != nil {
					t.Fatal(err)
				}
			}
			l = openLog(t, dir, Options{})
			if got := l.LastSeq(); got != 3 {
				t.Fatalf("LastSeq = %d; want 3", got)
			}
			next := appendN(t, l, 3, 1)
			if next[0].Prev != recs[2].Hash {
				t.Errorf("next record chains from %s; want %s", next[0].Prev, recs[2].Hash)
			}
			mustVerify(t, dir)
		})
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	opts := Options{MaxAge: time.Hour, Now: c.Now}
	l := openLog(t, dir, opts)
	for i := range 10 {
		if i > 0 {
			c.advance(30 * time.Minute) // two records a file
		}
		appendN(t, l, i, 1)
	}
	want := []string{"audit-1-2.log", "audit-3-4.log", "audit-5-6.log", "audit-7-8.log", "audit.log"}
	if diff := cmp.Diff(want, files(t, dir)); diff != "" {
		t.Fatalf("files before pruning (-want +got):\n%s", diff)
	}

	// Records 1-4 are older than start+2h; record 5 is at start+2h.
	n, err := l.Prune(t.Context(), start.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Prune deleted %d files; want 2", n)
	}
	want = []string{"audit-5-6.log", "audit-7-8.log", "audit.log"}
	if diff := cmp.Diff(want, files(t, dir)); diff != "" {
		t.Errorf("files after pruning (-want +got):\n%s", diff)
	}
	rep := mustVerify(t, dir)
	if rep.FirstSeq != 5 || rep.Pruned != 2 || rep.LastSeq != 12 {
		t.Errorf("Verify after pruning: first seq %d, %d pruned, last seq %d; want 5, 2, 12", rep.FirstSeq, rep.Pruned, rep.LastSeq)
	}

	// Pruning again, after a restart, anchors on the new start. Record 6 is
	// at start+2h30m, record 8 at start+3h30m.
	closeLog(t, l)
	l = openLog(t, dir, opts)
	if _, err := l.Prune(t.Context(), start.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep = mustVerify(t, dir)
	if rep.FirstSeq != 7 || rep.Pruned != 3 {
		t.Errorf("Verify after pruning again: first seq %d, %d pruned; want 7, 3", rep.FirstSeq, rep.Pruned)
	}

	// Deleting a file by hand after pruning is still caught.
	closeLog(t, l)
	names := files(t, dir)
	if len(names) < 2 {
		t.Fatalf("files %v; want a rotated file left to delete", names)
	}
	if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir); problem(err) != ProblemUnanchored {
		t.Errorf("Verify after deleting %s by hand = %v; want %s", names[0], err, ProblemUnanchored)
	}
}

func TestPruneSurvivesACrashBetweenFiles(t *testing.T) {
	t.Parallel()
	// Prune appends the audit_pruned record for a file, then deletes it. A
	// crash after the record and before the delete leaves a file that is
	// both present and pruned; Verify must accept that, and a later Prune
	// finishes the job.
	dir := t.TempDir()
	c := newClock()
	l := openLog(t, dir, Options{MaxAge: time.Hour, Now: c.Now})
	for i := range 5 {
		appendN(t, l, i, 1)
		c.advance(time.Hour)
	}
	l.mu.Lock()
	last, err := lastRecord(filepath.Join(dir, "audit-1-1.log"), nil)
	if err == nil {
		_, err = l.append(Record{Kind: KindPruned, Fields: map[string]string{
			"file": "audit-1-1.log", "first_seq": "1", "last_seq": "1", "last_hash": last.Hash,
		}})
	}
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, dir)
	if _, err := l.Prune(t.Context(), start.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.FirstSeq != 3 {
		t.Errorf("first seq after pruning = %d; want 3", rep.FirstSeq)
	}
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		good int    // complete records before the crash
		torn string // what the crash left after them
	}{
		"a partial line after complete records": {good: 3, torn: `{"seq":4,"time":"2026-03-01T12:00:00Z","ki`},
		"a whole record without its newline":    {good: 3, torn: "whole"},
		"a partial first line":                  {good: 0, torn: `{"seq":1,"ti`},
		"a lone byte":                           {good: 2, torn: "{"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			recs := appendN(t, l, 0, tt.good+1)
			closeLog(t, l)
			path := filepath.Join(dir, currentName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Drop the last record and put the crash's leftovers in its place.
			lastLine := line(recs[tt.good].body(), recs[tt.good].Hash)
			b = b[:len(b)-len(lastLine)]
			torn := tt.torn
			if torn == "whole" {
				torn = string(lastLine[:len(lastLine)-1])
			}
			b = append(b, torn...)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}

			_, err = Verify(dir)
			var verr *VerifyError
			if !errors.As(err, &verr) || verr.Problem != ProblemTruncated || verr.Line != tt.good+1 {
				t.Fatalf("Verify before recovery = %v; want %s at line %d", err, ProblemTruncated, tt.good+1)
			}

			l = openLog(t, dir, Options{})
			if got, want := l.LastSeq(), uint64(tt.good+1); got != want {
				t.Errorf("LastSeq after recovery = %d; want %d (the recovered record)", got, want)
			}
			appendN(t, l, 10, 1)
			rep := mustVerify(t, dir)
			if rep.Recovered != 1 || rep.Records != uint64(tt.good+2) {
				t.Errorf("Verify after recovery: %d recovered, %d records; want 1, %d", rep.Recovered, rep.Records, tt.good+2)
			}
			b, err = os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(fmt.Sprintf(`"dropped_bytes":"%d"`, len(torn)))) {
				t.Errorf("no recovered record with dropped_bytes %d in:\n%s", len(torn), b)
			}
		})
	}
}

func TestOpenRefusesACorruptLastRecord(t *testing.T) {
	t.Parallel()
	tests := map[string]func([]byte) []byte{
		"an edited last record": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"kind":"verified"`), []byte(`"kind":"finished"`), 1)
		},
		"garbage as a last line": func(b []byte) []byte { return append(b, "not a record\n"...) },
	}
	for name, corrupt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			appendN(t, l, 0, 6)
			closeLog(t, l)
			path := filepath.Join(dir, currentName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, corrupt(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if l, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
				if l != nil {
					closeLog(t, l)
				}
				t.Fatalf("Open = %v; want ErrCorrupt", err)
			}
		})
	}
}

// faultyFile fails the operations it is told to, after doing part of the
// write when asked.
type faultyFile struct {
	file
	partialWrite bool
	failWrite    bool
	failSync     bool
	failTruncate bool
}

var errInjected = errors.New("injected fault")

func (f *faultyFile) Write(b []byte) (int, error) {
	if f.partialWrite {
		n, _ := f.file.Write(b[:len(b)/2])
		return n, errInjected
	}
	if f.failWrite {
		return 0, errInjected
	}
	return f.file.Write(b)
}

// Sync fails once: the fsync after the undo succeeds.
func (f *faultyFile) Sync() error {
	if f.failSync {
		f.failSync = false
		return errInjected
	}
	return f.file.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if f.failTruncate {
		return errInjected
	}
	return f.file.Truncate(size)
}

func TestFailedWrites(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		fault      faultyFile
		wantBroken bool
	}{
		"a write that fails":                       {fault: faultyFile{failWrite: true}},
		"a write that fails half way":              {fault: faultyFile{partialWrite: true}},
		"an fsync that fails":                      {fault: faultyFile{failSync: true}},
		"a partial write that cannot be undone":    {fault: faultyFile{partialWrite: true, failTruncate: true}, wantBroken: true},
		"an fsync that fails and cannot be undone": {fault: faultyFile{failSync: true, failTruncate: true}, wantBroken: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			good := appendN(t, l, 0, 3)
			real := l.f
			fault := tt.fault
			fault.file = real
			l.f = &fault

			_, err := l.Append(t.Context(), step(3))
			if !errors.Is(err, errInjected) {
				t.Fatalf("Append = %v; want the injected fault", err)
			}
			if got := errors.Is(err, ErrBroken); got != tt.wantBroken {
				t.Fatalf("Append error %v: ErrBroken %v; want %v", err, got, tt.wantBroken)
			}
			if l.LastSeq() != 3 || l.LastHash() != good[2].Hash {
				t.Errorf("after a failed append the log chains from seq %d; want 3", l.LastSeq())
			}

			l.f = real
			next, err := l.Append(t.Context(), step(4))
			if tt.wantBroken {
				if !errors.Is(err, ErrBroken) {
					t.Fatalf("Append on a broken log = %v; want ErrBroken", err)
				}
				// Reopening resumes from what is on disk.
				closeLog(t, l)
				l = openLog(t, dir, Options{})
				appendN(t, l, 4, 1)
				mustVerify(t, dir)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if next.Seq != 4 || next.Prev != good[2].Hash {
				t.Errorf("next append has seq %d prev %s; want 4 and the hash of seq 3", next.Seq, next.Prev)
			}
			if rep := mustVerify(t, dir); rep.Records != 4 {
				t.Errorf("Verify counted %d records; want 4", rep.Records)
			}
		})
	}
}

func TestLineReaderAndTail(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 5000) // longer than readTail's chunk
	tests := map[string]struct {
		in       string
		wantLast string
		wantTorn int
	}{
		"empty":                    {in: "", wantLast: "", wantTorn: 0},
		"one line":                 {in: "a\n", wantLast: "a", wantTorn: 2},
		"two lines":                {in: "a\nb\n", wantLast: "b", wantTorn: 4},
		"a torn line":              {in: "a\nb\nc", wantLast: "b", wantTorn: 4},
		"only a torn line":         {in: "abc", wantLast: "", wantTorn: 0},
		"a long last line":         {in: "a\n" + long + "\n", wantLast: long, wantTorn: len(long) + 3},
		"a long torn line":         {in: "a\n" + long, wantLast: "a", wantTorn: 2},
		"a long line and torn one": {in: long + "\n" + long, wantLast: long, wantTorn: len(long) + 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := readTail(strings.NewReader(tt.in), int64(len(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			if string(got.last) != tt.wantLast || got.tornFrom != int64(tt.wantTorn) {
				t.Errorf("readTail(%.20q) = %.20q, torn from %d; want %.20q, %d", tt.in, got.last, got.tornFrom, tt.wantLast, tt.wantTorn)
			}
		})
	}
}

func TestParseRotatedName(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		name        string
		first, last uint64
		ok          bool
	}{
		"a rotated file":            {name: "audit-1-100.log", first: 1, last: 100, ok: true},
		"the current file":          {name: "audit.log"},
		"leading zeros":             {name: "audit-01-100.log"},
		"a sign":                    {name: "audit-+1-100.log"},
		"a missing number":          {name: "audit-1-.log"},
		"another suffix":            {name: "audit-1-100.log.gz"},
		"a number that is too big":  {name: "audit-1-99999999999999999999.log"},
		"the lock":                  {name: "audit.lock"},
		"three numbers":             {name: "audit-1-2-3.log"},
		"a name written by rotated": {name: rotatedName(18446744073709551615, 18446744073709551615), first: 18446744073709551615, last: 18446744073709551615, ok: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			first, last, ok := parseRotatedName(tt.name)
			if first != tt.first || last != tt.last || ok != tt.ok {
				t.Errorf("parseRotatedName(%q) = %d, %d, %v; want %d, %d, %v", tt.name, first, last, ok, tt.first, tt.last, tt.ok)
			}
		})
	}
}

func TestRecordsAreSortedByKey(t *testing.T) {
	t.Parallel()
	// Maps iterate in random order; the encoding must not.
	rec := Record{Kind: KindFinished, Fields: map[string]string{}}
	for i := range 50 {
		rec.Fields[fmt.Sprintf("k%02d", i)] = "v"
	}
	want := string(rec.body())
	for range 20 {
		if got := string(rec.normalize().body()); got != want {
			t.Fatalf("body changed between encodings:\n%s\n%s", got, want)
		}
	}
	keys := slices.Sorted(mapKeys(rec.Fields))
	if i := strings.Index(want, keys[0]); i < 0 || i > strings.Index(want, keys[49]) {
		t.Errorf("fields not in key order: %s", want)
	}
}

func BenchmarkAppend(b *testing.B) {
	l := openLog(b, b.TempDir(), Options{MaxBytes: 64 << 20})
	rec := step(4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	l := openLog(b, dir, Options{MaxBytes: 256 << 10})
	appendN(b, l, 0, 2000)
	closeLog(b, l)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/record")
}

func TestAppendBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	appendN(t, l, 0, 2)
	batch := []Record{step(2), step(3), step(4)}
	got, err := l.AppendBatch(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 3 || got[2].Seq != 5 || got[1].Prev != got[0].Hash {
		t.Fatalf("AppendBatch returned seqs %d..%d; want 3..5 chained", got[0].Seq, got[len(got)-1].Seq)
	}
	if _, err := l.AppendBatch(t.Context(), []Record{step(5), {Kind: KindRecovered}}); err == nil {
		t.Fatal("a batch with a reserved kind was appended")
	}
	if l.LastSeq() != 5 {
		t.Errorf("a refused batch moved the chain to %d; want 5", l.LastSeq())
	}
	// A failed write leaves none of the batch.
	real := l.f
	l.f = &faultyFile{file: real, partialWrite: true}
	if _, err := l.AppendBatch(t.Context(), []Record{step(5), step(6)}); !errors.Is(err, errInjected) {
		t.Fatalf("AppendBatch with a failing write = %v; want the injected fault", err)
	}
	l.f = real
	appendN(t, l, 5, 1)
	if rep := mustVerify(t, dir); rep.Records != 6 {
		t.Errorf("Verify counted %d records; want 6", rep.Records)
	}
}

func TestAppendBatchAcrossRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{MaxBytes: 600})
	for i := 0; i < 20; i += 4 {
		if _, err := l.AppendBatch(t.Context(), []Record{step(i), step(i + 1), step(i + 2), step(i + 3)}); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustVerify(t, dir)
	if rep.Records != 20 || rep.Files < 2 {
		t.Errorf("Verify: %d records in %d files; want 20 in several", rep.Records, rep.Files)
	}
}
