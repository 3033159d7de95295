package store

import (
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
)

//go:embed testdata/schema-v1.sql
var schemaV1 string

// writeV1 makes dir hold a version 1 database with the given alerts, the
// first planned and the others waiting in the queue.
func writeV1(t *testing.T, dir string, alerts ...alertmanager.Alert) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "healer.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := db.Exec(schemaV1); err != nil {
		t.Fatal(err)
	}
	for i, a := range alerts {
		if _, err := db.Exec(`INSERT INTO alerts (key, fingerprint, status, alertname, starts_at, ends_at, labels, annotations, generator_url, receiver, source, received_at)
			VALUES (?, ?, ?, 'DiskFull', ?, 0, '{"alertname":"DiskFull"}', '{}', '', 'healer', 'webhook', 1)`,
			a.Key(), a.Fingerprint, string(a.Status), a.StartsAt.UnixNano()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := db.Exec(`UPDATE alerts SET state = 'done', note = 'planned by v1' WHERE key = ?`, a.Key()); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`DELETE FROM queue WHERE alert = (SELECT rowid FROM alerts WHERE key = ?)`, a.Key()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestMigrateFromV1KeepsAlertsAndQueue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Date(2026, 11, 23, 18, 19, 19, 694e6, time.UTC)
	planned := alert("03dcb9292ee7cedb", alertmanager.StatusFiring, start)
	queued := alert("a4c1f00dfeedbeef", alertmanager.StatusFiring, start.Add(time.Minute))
	writeV1(t, dir, planned, queued)

	s, err := Open(dir, Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := t.Context()
	refs, err := s.QueuedRefs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].Key != queued.Key() {
		t.Fatalf("queue after migration: got %+v, want only %s", refs, queued.Key())
	}
	got, err := s.AlertsByID(ctx, []int64{refs[0].ID})
	if err != nil || len(got) != 1 || got[0].Key != queued.Key() {
		t.Fatalf("the queued id names another alert after migration: %+v, %v", got, err)
	}
	// Both are still known: delivering them again is a duplicate.
	res, err := s.Accept(ctx, "webhook", []alertmanager.Alert{planned, queued, alert("a4c1f00dfeedbeef", alertmanager.StatusResolved, start.Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := fmt.Sprint(res), "[false false true]"; g != w {
		t.Errorf("deliveries after migration: got %s, want %s", g, w)
	}
	all, err := s.Alerts(ctx, planned.Fingerprint, 10)
	if err != nil || len(all) != 1 || all[0].State != "done" || all[0].Note != "planned by v1" || all[0].Deliveries != 2 {
		t.Errorf("the planned alert after migration: %+v, %v", all, err)
	}
	ok, err := s.Resolved(ctx, queued.Fingerprint, queued.StartsAt)
	if err != nil || !ok {
		t.Errorf("Resolved after migration: %v, %v", ok, err)
	}
	var left int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name IN ('queue', 'alerts_enqueue', 'alerts_v1')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("version 1's queue, trigger or table left after migration: %d, %v", left, err)
	}
	// New alerts are numbered after the migrated ones.
	refs, err = s.QueuedRefs(ctx, 10)
	if err != nil || len(refs) != 2 || refs[1].ID <= refs[0].ID {
		t.Errorf("queue after a new alert: %+v, %v", refs, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "healer.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{}); err == nil {
		t.Fatalf("Open of a database from a newer healer succeeded (and left open: %v)", s.Close())
	} else if !strings.Contains(err.Error(), "newer healer") {
		t.Errorf("error does not say why: %v", err)
	}
}

// The planner's mark never passes an alert still new, whatever order the
// decisions come in, and never brings back one decided.
func TestQueueOutOfOrderDecisions(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	start := time.Date(2026, 11, 23, 18, 19, 19, 0, time.UTC)
	var alerts []alertmanager.Alert
	for i := range 3 {
		alerts = append(alerts, alert(fmt.Sprintf("%016x", i+1), alertmanager.StatusFiring, start.Add(time.Duration(i)*time.Second)))
	}
	if _, err := s.Accept(ctx, "webhook", alerts); err != nil {
		t.Fatal(err)
	}
	queued := func() string {
		t.Helper()
		refs, err := s.QueuedRefs(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range refs {
			keys = append(keys, r.Key[:16])
		}
		return fmt.Sprintf("%s (%d new)", strings.Join(keys, ","), st.NewAlerts)
	}
	refs, err := s.QueuedRefs(ctx, 10)
	if err != nil || len(refs) != 3 {
		t.Fatalf("queued: %+v, %v", refs, err)
	}
	if err := s.Plan(ctx, refs[1].ID, "done", "second first", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := queued(), "0000000000000001,0000000000000003 (2 new)"; got != want {
		t.Errorf("after deciding the second: got %s, want %s", got, want)
	}
	if err := s.Plan(ctx, refs[0].ID, "done", "then the first", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := queued(), "0000000000000003 (1 new)"; got != want {
		t.Errorf("after deciding the first: got %s, want %s", got, want)
	}
	if err := s.Plan(ctx, refs[2].ID, "done", "and the last", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := queued(), " (0 new)"; got != want {
		t.Errorf("after deciding all: got %s, want %s", got, want)
	}
}

// Pruning the newest alerts must not let the next alert take an id at or
// below the planner's mark, where the planner would never see it.
func TestAlertAfterPruningEverythingIsQueued(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := openWithClock(t, func() time.Time { return now })
	ctx := t.Context()
	start := now.Add(-time.Hour)
	// Resolved alerts, so that Prune may take them all.
	old := []alertmanager.Alert{alert("00000000000000b1", alertmanager.StatusResolved, start), alert("00000000000000b2", alertmanager.StatusResolved, start)}
	if _, err := s.Accept(ctx, "webhook", old); err != nil {
		t.Fatal(err)
	}
	refs, err := s.QueuedRefs(ctx, 10)
	if err != nil || len(refs) != 2 {
		t.Fatalf("queued: %+v, %v", refs, err)
	}
	if err := s.PlanBatch(ctx, []Decision{{ID: refs[0].ID, State: AlertDone}, {ID: refs[1].ID, State: AlertDone}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(40 * 24 * time.Hour)
	if pruned, _, err := s.Prune(ctx, Retention{Alerts: 30 * 24 * time.Hour}); err != nil || pruned != 2 {
		t.Fatalf("pruned %d, %v; want both", pruned, err)
	}
	fresh := alert("00000000000000b3", alertmanager.StatusFiring, now)
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{fresh}); err != nil {
		t.Fatal(err)
	}
	refs, err = s.QueuedRefs(ctx, 10)
	if err != nil || len(refs) != 1 || refs[0].Key != fresh.Key() {
		t.Fatalf("after pruning everything, a new alert is queued as %+v (%v); want %s", refs, err, fresh.Key())
	}
}

// A version 1 healer started on a version 2 database (a rollback) creates
// its queue table and trigger again before it fails; the next version 2
// start removes them, or the queue would grow with every alert.
func TestOpenDropsAQueueLeftByAnOlderHealer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	olderDatabase(t, dir, `CREATE TABLE queue (alert INTEGER PRIMARY KEY);
		CREATE TRIGGER alerts_enqueue AFTER INSERT ON alerts BEGIN INSERT INTO queue (alert) VALUES (new.rowid); END;`)
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	var left int
	if err := s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_master WHERE name IN ('queue', 'alerts_enqueue')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("the older healer's queue or trigger is still there: %d, %v", left, err)
	}
}

func TestAlertByKey(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	a := alert("00000000000000c1", alertmanager.StatusFiring, time.Date(2026, 11, 23, 18, 19, 19, 694e6, time.UTC))
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{a}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AlertByKey(ctx, a.Key())
	if err != nil || got.Key != a.Key() || got.Labels["odd"] != a.Labels["odd"] {
		t.Errorf("AlertByKey(%s) = %+v, %v", a.Key(), got, err)
	}
	other := a
	other.StartsAt = other.StartsAt.Add(time.Nanosecond)
	if _, err := s.AlertByKey(ctx, other.Key()); !errors.Is(err, ErrNotFound) {
		t.Errorf("AlertByKey of an alert not stored: %v, want ErrNotFound", err)
	}
	if _, err := s.AlertByKey(ctx, "not-a-key"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("AlertByKey of a malformed key: %v, want an error saying so", err)
	}
}

// olderDatabase makes a database in dir as this version writes it, then
// runs stmts on it (which take it back to what an older one wrote).
func olderDatabase(t *testing.T, dir, stmts string) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "healer.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(stmts); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
