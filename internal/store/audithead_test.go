package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
)

// fakeHead stands for the audit log's head as the healer hands it to the
// store.
type fakeHead struct {
	mu     sync.Mutex
	seq    uint64
	hash   string
	frozen bool
}

func (f *fakeHead) set(seq uint64, hash string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq, f.hash = seq, hash
}

func (f *fakeHead) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = true
}

func (f *fakeHead) get() (uint64, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq, f.hash, !f.frozen
}

func headOf(t *testing.T, s *Store) string {
	t.Helper()
	seq, hash, ok, err := s.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%d %s", seq, hash)
}

// The head is committed in the same transaction as the state change the
// audit record precedes, by whichever write commits next.
func TestAuditHeadIsCommittedWithTheStateChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := &fakeHead{}
	s, err := Open(dir, Options{AuditHead: head.get})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if got := headOf(t, s); got != "none" {
		t.Errorf("head of a new database: got %s, want none", got)
	}
	start := time.Date(2026, 11, 23, 18, 19, 19, 0, time.UTC)
	head.set(2, "aa")
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{alert("00000000000000d1", alertmanager.StatusFiring, start)}); err != nil {
		t.Fatal(err)
	}
	if got, want := headOf(t, s), "2 aa"; got != want {
		t.Errorf("after Accept: got %s, want %s", got, want)
	}
	head.set(5, "bb")
	if err := s.InsertRun(ctx, Run{ID: "r1", State: RunPending, Steps: []StepRecord{}, Labels: map[string]string{}, CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	if got, want := headOf(t, s), "5 bb"; got != want {
		t.Errorf("after InsertRun: got %s, want %s", got, want)
	}
	// A transaction that fails stores no head.
	head.set(6, "cc")
	boom := errors.New("boom")
	if err := s.write(ctx, func(context.Context, *sql.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("write = %v; want boom", err)
	}
	if got, want := headOf(t, s), "5 bb"; got != want {
		t.Errorf("after a failed write: got %s, want %s", got, want)
	}
	// Frozen (the log did not match it at start): commits leave it be.
	head.set(1, "dd")
	head.freeze()
	if err := s.UpdateRun(ctx, "r1", Update{State: RunRunning, StartedAt: start}); err != nil {
		t.Fatal(err)
	}
	if got, want := headOf(t, s), "5 bb"; got != want {
		t.Errorf("after a commit with the head frozen: got %s, want %s", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seq, hash, ok, err := ReadAuditHead(ctx, dir)
	if err != nil || !ok || seq != 5 || hash != "bb" {
		t.Errorf("ReadAuditHead after Close = %d, %q, %v, %v; want 5, bb", seq, hash, ok, err)
	}
}

// A commit whose head did not move writes no row: the store remembers what
// it committed last, also across a restart.
func TestAuditHeadIsWrittenOnlyWhenItMoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := &fakeHead{seq: 3, hash: "aa"}
	if err := SetAuditHead(t.Context(), dir, 3, "aa"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{AuditHead: head.get})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := t.Context()
	var changes int
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// total_changes() counts the rows this connection changed: none, as
	// the head stood where the database had it.
	if err := s.w.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&changes); err != nil {
		t.Fatal(err)
	}
	if changes != 0 {
		t.Errorf("a commit with an unmoved head changed %d rows; want 0", changes)
	}
}

func TestReadAuditHeadWhileTheStoreIsOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := &fakeHead{seq: 9, hash: "ee"}
	s, err := Open(dir, Options{AuditHead: head.get})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := t.Context()
	if _, _, ok, err := ReadAuditHead(ctx, dir); err != nil || ok {
		t.Errorf("ReadAuditHead before any commit = %v, %v; want no head", ok, err)
	}
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{alert("00000000000000d2", alertmanager.StatusFiring, time.Now())}); err != nil {
		t.Fatal(err)
	}
	seq, hash, ok, err := ReadAuditHead(ctx, dir)
	if err != nil || !ok || seq != 9 || hash != "ee" {
		t.Errorf("ReadAuditHead = %d, %q, %v, %v; want 9, ee", seq, hash, ok, err)
	}
	if _, _, _, err := ReadAuditHead(ctx, t.TempDir()); err == nil {
		t.Error("ReadAuditHead of a directory without a database succeeded")
	}
}

// A version 2 database gains the audit head table and is version 3 after
// Open; a version 1 database goes through both steps.
func TestMigrateAddsTheAuditHead(t *testing.T) {
	t.Parallel()
	for name, setup := range map[string]func(t *testing.T, dir string){
		"from version 1": func(t *testing.T, dir string) {
			writeV1(t, dir, alert("03dcb9292ee7cedb", alertmanager.StatusFiring, time.Date(2026, 11, 23, 18, 19, 19, 0, time.UTC)))
		},
		"from version 2": func(t *testing.T, dir string) {
			olderDatabase(t, dir, `DROP TABLE audit_head; PRAGMA user_version = 2`)
			if _, _, _, err := ReadAuditHead(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "version 2") {
				t.Errorf("ReadAuditHead of a version 2 database = %v; want an error naming its version", err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			setup(t, dir)
			head := &fakeHead{seq: 4, hash: "ff"}
			s, err := Open(dir, Options{AuditHead: head.get})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			}()
			var version int
			if err := s.r.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&version); err != nil || version != schemaVersion {
				t.Errorf("schema version after Open: %d, %v; want %d", version, err, schemaVersion)
			}
			if got := headOf(t, s); got != "none" {
				t.Errorf("head after migration: got %s, want none", got)
			}
			if _, err := s.Accept(t.Context(), "webhook", []alertmanager.Alert{alert("00000000000000d3", alertmanager.StatusFiring, time.Now())}); err != nil {
				t.Fatal(err)
			}
			if got, want := headOf(t, s), "4 ff"; got != want {
				t.Errorf("head after the first commit: got %s, want %s", got, want)
			}
		})
	}
}
