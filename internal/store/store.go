// Package store keeps the healer's state in an embedded SQLite database
// (WAL mode, the pure-Go modernc.org/sqlite driver): the alerts accepted at
// intake, which double as the durable work queue, the runs planned for
// them, approvals and circuit breakers.
//
// One goroutine writes. Accept hands its alerts to it and waits; the writer
// takes every request that is waiting, inserts them all in one transaction
// and answers each after the commit, so concurrent webhook requests share
// one fsync. Reads go through a separate pool of connections and never wait
// for the writer.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// ErrClosed is returned by the methods of a closed Store.
var ErrClosed = errors.New("store is closed")

// ErrNotFound is returned when a run or alert does not exist.
var ErrNotFound = errors.New("not found")

// Options configure a Store.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "normal" (the default)
	// makes a commit durable across a crash of the process (kill -9), not
	// across a power loss; "full" fsyncs every commit, so it is durable
	// across both, at about half the throughput.
	Synchronous string
	// MaxBatch bounds how many Accept calls share one transaction.
	MaxBatch int
	// Now is the clock. Nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// AuditHead, when set, is asked for the audit chain's head (the seq
	// and hash of its last record on disk) as every write transaction
	// commits, and the head is committed with it whenever it changed
	// since the last commit. The healer writes and fsyncs an audit record
	// before it submits the state change the record precedes, so the head
	// committed with a change is at or past that change's record: the log
	// may run ahead of the stored head, never behind it. ok false leaves
	// the stored head as it is (the healer freezes it while the log does
	// not match it).
	AuditHead func() (seq uint64, hash string, ok bool)
}

// Store is the healer's database.
type Store struct {
	w, r   *sql.DB
	opts   Options
	logger *slog.Logger

	ins, dup                    *sql.Stmt // prepared once on the writer's connection
	resolved, newAlerts, queued *sql.Stmt // prepared on the readers

	reqs   chan *job
	done   chan struct{}
	closed chan struct{}
	ckDone chan struct{}
	once   sync.Once
	// mu orders Accept's send before Close: once Close holds it, no
	// request can enter the queue that the writer would not drain.
	mu       sync.RWMutex
	isClosed bool

	// openedAt is the schema version the database had when opened: -1 for
	// one created now.
	openedAt int
	// headSeq and headHash are the audit head last committed; the
	// writer's alone.
	headSeq  uint64
	headHash string

	ops ops
}

// Open opens (creating it if needed) the database in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Synchronous == "" {
		opts.Synchronous = "normal"
	}
	if opts.Synchronous != "full" && opts.Synchronous != "normal" {
		return nil, fmt.Errorf("synchronous %q: want full or normal", opts.Synchronous)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "healer.db")
	dsn := func(writer bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+opts.Synchronous+")")
		q.Add("_pragma", "foreign_keys(ON)")
		if writer {
			q.Add("_txlock", "immediate")
			// Checkpoints run in the background (see checkpointer), not
			// inside an intake commit.
			q.Add("_pragma", "wal_autocheckpoint(0)")
		}
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	was, err := migrate(w)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open %s: %w", path, err), w.Close())
	}
	ins, err := w.Prepare(`INSERT INTO alerts
		(key, fingerprint, status, alertname, starts_at, ends_at, labels, annotations, generator_url, receiver, source, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(starts_at, key) DO NOTHING`)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("prepare: %w", err), w.Close())
	}
	dup, err := w.Prepare(`UPDATE alerts SET deliveries = deliveries + 1 WHERE starts_at = ? AND key = ?`)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("prepare: %w", err), w.Close())
	}
	r, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, errors.Join(err, w.Close())
	}
	queued, err := r.Prepare(`SELECT id, key FROM alerts WHERE ` + unplanned + ` ORDER BY id LIMIT ?`) //nolint:gosec // constants
	if err != nil {
		return nil, errors.Join(fmt.Errorf("prepare: %w", err), w.Close(), r.Close())
	}
	resolved, err := r.Prepare(`SELECT COUNT(*) FROM alerts WHERE starts_at = ? AND key = ?`)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("prepare: %w", err), w.Close(), r.Close())
	}
	// The column list is a constant of this package.
	newAlerts, err := r.Prepare(`SELECT ` + alertCols + ` FROM alerts WHERE ` + unplanned + ` ORDER BY id LIMIT ?`) //nolint:gosec // see above
	if err != nil {
		return nil, errors.Join(fmt.Errorf("prepare: %w", err), w.Close(), r.Close())
	}
	r.SetMaxOpenConns(4)
	var headSeq uint64
	var headHash string
	if err := w.QueryRow(`SELECT seq, hash FROM audit_head`).Scan(&headSeq, &headHash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, errors.Join(fmt.Errorf("read the audit head: %w", err), w.Close(), r.Close())
	}
	s := &Store{
		headSeq: headSeq, headHash: headHash, openedAt: was,
		w: w, r: r, ins: ins, dup: dup, resolved: resolved, newAlerts: newAlerts, queued: queued, opts: opts, logger: opts.Logger,
		reqs:   make(chan *job, opts.MaxBatch),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
		ckDone: make(chan struct{}),
	}
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// Close stops the writer, after it has answered every Accept it took, and
// closes the database.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.isClosed = true
		close(s.closed)
		s.mu.Unlock()
	})
	<-s.done
	<-s.ckDone
	return errors.Join(s.w.Close(), s.r.Close())
}

// checkpointInterval is how often the write-ahead log is copied back into
// the database.
const checkpointInterval = time.Second

// checkpointer copies the write-ahead log into the database every second
// without blocking the writer (a passive checkpoint), so commits never pay
// for it and the log stays small.
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			if _, err := s.r.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
				s.logger.Warn("checkpoint_failed", "err", err)
			}
		}
	}
}

// unplanned selects the alerts waiting to be planned: new ones, after the
// planner's mark.
const unplanned = `id > (SELECT planned_through FROM planner) AND state = 'new'`

// schemaVersion is the layout this package writes, kept in SQLite's
// user_version. Version 1 (0 in the file: it was never set) keyed alerts by
// key alone and queued new ones in a table of their own; version 2 indexes
// them by startsAt first, so that new alerts land at the end of the index
// rather than all over it, and keeps the queue as a mark in the alerts.
// Version 3 adds the audit chain's head (auditHeadTable); version 4
// incidents (incidentsTable), and the incident and the assessment of each
// run.
const schemaVersion = 4

const alertsTable = `
CREATE TABLE IF NOT EXISTS alerts (
	id           INTEGER PRIMARY KEY,
	key          TEXT NOT NULL,
	fingerprint  TEXT NOT NULL,
	status       TEXT NOT NULL,
	alertname    TEXT NOT NULL,
	starts_at    INTEGER NOT NULL,
	ends_at      INTEGER NOT NULL,
	labels       TEXT NOT NULL,
	annotations  TEXT NOT NULL,
	generator_url TEXT NOT NULL,
	receiver     TEXT NOT NULL,
	source       TEXT NOT NULL,
	received_at  INTEGER NOT NULL,
	deliveries   INTEGER NOT NULL DEFAULT 1,
	state        TEXT NOT NULL DEFAULT 'new',
	note         TEXT NOT NULL DEFAULT '',
	incident_id  TEXT NOT NULL DEFAULT ''
);`

const schema = alertsTable + `
-- The key (fingerprint/status/startsAt) is unique. It is indexed behind
-- starts_at: a new alert started moments ago, so its index entry goes to
-- the end of the index, and a commit of many alerts touches a few pages,
-- not one per alert. Every lookup by key knows the alert's startsAt.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_key ON alerts(starts_at, key);
-- A new alert's id is one more than the highest there is. Prune, the only
-- thing that deletes alerts, brings the planner's mark down to the highest
-- id left in the same transaction, so a new alert always lands above the
-- mark. (AUTOINCREMENT would do it at the cost of a write per insert.)
--
-- The planner's queue is the alerts still in state new. id order is
-- arrival order, and the planner decides alerts in that order, so they all
-- come after planned_through, the highest id up to which every alert is
-- decided: the planner finds its work by walking the table from there,
-- and intake writes nothing but the alert.
CREATE TABLE IF NOT EXISTS planner (
	one             INTEGER PRIMARY KEY CHECK (one = 1),
	planned_through INTEGER NOT NULL
);
INSERT OR IGNORE INTO planner (one, planned_through) VALUES (1, 0);
-- A version 1 healer started on this database (a rollback) creates its
-- queue again before it refuses to run; nothing would ever empty it.
DROP TRIGGER IF EXISTS alerts_enqueue;
DROP TABLE IF EXISTS queue;

CREATE TABLE IF NOT EXISTS runs (
	id           TEXT PRIMARY KEY,
	alert_key    TEXT NOT NULL,
	fingerprint  TEXT NOT NULL,
	alertname    TEXT NOT NULL,
	runbook      TEXT NOT NULL,
	action       TEXT NOT NULL,
	target       TEXT NOT NULL,
	steps        TEXT NOT NULL,
	labels       TEXT NOT NULL,
	tier         TEXT NOT NULL,
	dry_run      INTEGER NOT NULL,
	state        TEXT NOT NULL,
	reason       TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	started_at   INTEGER NOT NULL DEFAULT 0,
	finished_at  INTEGER NOT NULL DEFAULT 0,
	expires_at   INTEGER NOT NULL DEFAULT 0,
	decided_by   TEXT NOT NULL DEFAULT '',
	incident_id  TEXT NOT NULL DEFAULT '',
	assessment   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE INDEX IF NOT EXISTS runs_guard ON runs(runbook, target, started_at);
CREATE INDEX IF NOT EXISTS runs_alert ON runs(fingerprint);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);

CREATE TABLE IF NOT EXISTS breakers (
	runbook      TEXT NOT NULL,
	target       TEXT NOT NULL,
	failures     INTEGER NOT NULL,
	opened_at    INTEGER NOT NULL DEFAULT 0,
	last_failure INTEGER NOT NULL,
	escalated    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (runbook, target)
);
`

// migrateAlerts moves the alerts of a version 1 database into the version
// 2 table, each under the rowid it had, and turns its queue table (the ids
// of the alerts not yet planned) into the planner's mark.
const migrateAlerts = `
DROP TRIGGER IF EXISTS alerts_enqueue;
ALTER TABLE alerts RENAME TO alerts_v1;
` + alertsTable + `
INSERT INTO alerts (id, key, fingerprint, status, alertname, starts_at, ends_at, labels, annotations,
	generator_url, receiver, source, received_at, deliveries, state, note)
	SELECT rowid, key, fingerprint, status, alertname, starts_at, ends_at, labels, annotations,
	generator_url, receiver, source, received_at, deliveries, state, note FROM alerts_v1;
DROP TABLE alerts_v1;
CREATE TABLE planner (
	one             INTEGER PRIMARY KEY CHECK (one = 1),
	planned_through INTEGER NOT NULL
);
INSERT INTO planner (one, planned_through) VALUES (1, COALESCE(
	(SELECT MIN(alert) - 1 FROM queue),
	(SELECT MAX(id) FROM alerts),
	0));
DROP TABLE queue;
`

// auditHeadTable (schema version 3) holds the audit chain's head: the seq
// and hash of the newest audit record as of the last commit (see
// Options.AuditHead). No row means no head was ever stored: a database
// older than version 3, or a healer that never wrote.
const auditHeadTable = `
CREATE TABLE IF NOT EXISTS audit_head (
	one  INTEGER PRIMARY KEY CHECK (one = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
);`

// migrate brings the database to schemaVersion in one transaction, and
// refuses one written by a newer version.
// migrate brings the database to schemaVersion and returns the version it
// had: -1 when it was created now.
func migrate(db *sql.DB) (was int, err error) {
	tx, err := db.Begin()
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var version, tables int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	if version > schemaVersion {
		return 0, fmt.Errorf("the database has schema version %d; this healer knows up to %d (it was written by a newer healer)", version, schemaVersion)
	}
	if err := tx.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'alerts'`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("look for the alerts table: %w", err)
	}
	if tables > 0 && version < 2 {
		if _, err := tx.Exec(migrateAlerts); err != nil {
			return 0, fmt.Errorf("migrate to schema version 2: %w", err)
		}
	}
	if _, err := tx.Exec(schema); err != nil {
		return 0, fmt.Errorf("create the schema: %w", err)
	}
	// Version 3: a table of its own, created for a new database and a
	// version 2 one alike.
	if _, err := tx.Exec(auditHeadTable); err != nil {
		return 0, fmt.Errorf("migrate to schema version 3: %w", err)
	}
	if _, err := tx.Exec(incidentsTable); err != nil {
		return 0, fmt.Errorf("migrate to schema version 4: %w", err)
	}
	if err := addV4Columns(tx); err != nil {
		return 0, fmt.Errorf("migrate to schema version 4: %w", err)
	}
	// user_version takes no bound parameter; schemaVersion is a constant.
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return 0, fmt.Errorf("set the schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if tables == 0 {
		return -1, nil // created now
	}
	return version, nil
}

// AcceptResult says, for each alert of an Accept call in order, whether it
// was new (false: a delivery of an alert already stored).
type AcceptResult []bool

// job is one caller's writes, applied in the writer's shared transaction.
type job struct {
	apply func(ctx context.Context, tx *sql.Tx) error
	err   error
	done  chan struct{}
}

// write runs apply in a write transaction shared with whatever else is
// waiting, and returns once that transaction committed (nil) or failed. A
// failed shared transaction is retried job by job, so one job's error is
// its own. apply may run more than once and must start from scratch each
// time.
func (s *Store) write(ctx context.Context, apply func(ctx context.Context, tx *sql.Tx) error) error {
	j := &job{apply: apply, done: make(chan struct{})}
	s.mu.RLock()
	if s.isClosed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- j:
		s.mu.RUnlock()
		s.ops.writes.Add(1)
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	// Once taken, the writer always answers: waiting for it even when ctx
	// ends keeps the caller from answering "not stored" for a commit that
	// then happens.
	<-j.done
	return j.err
}

// Accept stores alerts durably and returns once they are committed, or
// with an error, in which case none of them is stored. Alerts whose Key is
// already stored are counted as another delivery and reported as not new.
// source says where they came from ("webhook", "rules").
func (s *Store) Accept(ctx context.Context, source string, alerts []alertmanager.Alert) (AcceptResult, error) {
	keys := make([]string, len(alerts))
	for i, a := range alerts {
		keys[i] = a.Key()
	}
	return s.AcceptKeyed(ctx, source, alerts, keys)
}

// AcceptKeyed is Accept for a caller that has the alerts' keys already:
// keys[i] must be alerts[i].Key().
func (s *Store) AcceptKeyed(ctx context.Context, source string, alerts []alertmanager.Alert, keys []string) (AcceptResult, error) {
	if len(keys) != len(alerts) {
		return nil, fmt.Errorf("%d keys for %d alerts", len(keys), len(alerts))
	}
	var res AcceptResult
	now := s.opts.Now().UnixNano()
	// Everything but the SQL is done here, in the caller's goroutine, so
	// that the one writer only binds and steps.
	type row struct {
		key, alertname, labels, annotations string
		starts, ends                        int64
	}
	rows := make([]row, len(alerts))
	for i, a := range alerts {
		rows[i] = row{
			key: keys[i], alertname: string(a.Labels[model.AlertNameLabel]), labels: labelsJSON(a.Labels),
			annotations: labelsJSON(a.Annotations), starts: a.StartsAt.UnixNano(), ends: unixNano(a.EndsAt),
		}
	}
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res = make(AcceptResult, len(alerts))
		// The writer has one connection, so these are the statements
		// prepared on it, not prepared again.
		ins, dup := tx.StmtContext(ctx, s.ins), tx.StmtContext(ctx, s.dup)
		for i, a := range alerts {
			r := rows[i]
			res2, err := ins.ExecContext(ctx, r.key, a.Fingerprint, string(a.Status), r.alertname,
				r.starts, r.ends, r.labels, r.annotations, a.GeneratorURL, a.Receiver, source, now)
			if err != nil {
				return fmt.Errorf("insert %s: %w", r.key, err)
			}
			// An inserted alert is new: it is the planner's to decide.
			if n, _ := res2.RowsAffected(); n == 1 {
				res[i] = true
				continue
			}
			if _, err := dup.ExecContext(ctx, r.starts, r.key); err != nil {
				return fmt.Errorf("count delivery of %s: %w", r.key, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*job, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case j := <-s.reqs:
			batch = append(batch, j)
		case <-s.closed:
			// Answer what is queued, then stop.
			for {
				select {
				case j := <-s.reqs:
					s.commit([]*job{j})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case j := <-s.reqs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*job) {
	err := s.apply(batch)
	if err != nil && len(batch) > 1 {
		// Find whose error it was: each job on its own.
		for _, j := range batch {
			j.err = s.apply([]*job{j})
			close(j.done)
		}
		return
	}
	for _, j := range batch {
		j.err = err
		close(j.done)
	}
}

func (s *Store) apply(batch []*job) error {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, j := range batch {
		if err := j.apply(ctx, tx); err != nil {
			return err
		}
	}
	var seq uint64
	var hash string
	moved := false
	if s.opts.AuditHead != nil {
		var ok bool
		seq, hash, ok = s.opts.AuditHead()
		if moved = ok && (seq != s.headSeq || hash != s.headHash); moved {
			if err := upsertAuditHead(ctx, tx, seq, hash); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if moved {
		s.headSeq, s.headHash = seq, hash
	}
	return nil
}

func upsertAuditHead(ctx context.Context, tx *sql.Tx, seq uint64, hash string) error {
	// SQLite integers are signed; a seq past MaxInt64 is not reached.
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_head (one, seq, hash) VALUES (1, ?, ?)
		ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, int64(seq), hash); err != nil { //nolint:gosec // see above
		return fmt.Errorf("store the audit head: %w", err)
	}
	return nil
}

// AuditHead returns the audit chain's head as last committed (see
// Options.AuditHead); ok is false when none was ever stored.
func (s *Store) AuditHead(ctx context.Context) (seq uint64, hash string, ok bool, err error) {
	return auditHead(ctx, s.r)
}

func auditHead(ctx context.Context, db *sql.DB) (seq uint64, hash string, ok bool, err error) {
	err = db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head`).Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, "", false, nil
	case err != nil:
		return 0, "", false, fmt.Errorf("read the audit head: %w", err)
	}
	return seq, hash, true, nil
}

// ReadAuditHead reads the audit chain's head from the database in dir
// without opening it for writing (no migration, no writer), for a check
// from outside the healer, which may be running. ok is false when no head
// is stored; a database too old to hold one is an error saying so.
func ReadAuditHead(ctx context.Context, dir string) (seq uint64, hash string, ok bool, err error) {
	path := filepath.Join(dir, "healer.db")
	if _, err := os.Stat(path); err != nil {
		return 0, "", false, err
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return 0, "", false, err
	}
	defer db.Close() //nolint:errcheck // read only: closing loses nothing
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if version < 3 {
		return 0, "", false, fmt.Errorf("%s has schema version %d, older than the audit head (3): start the healer once to migrate it", path, version)
	}
	return auditHead(ctx, db)
}

// OpenedAt is the schema version the database had when Open found it: -1
// when Open created it, below the current version when Open migrated it.
func (s *Store) OpenedAt() int { return s.openedAt }

// CommitAuditHead commits the audit chain's head as it is now (see
// Options.AuditHead), for records that no change of state follows: an
// escalation, the last records before a shutdown. Without it they would
// stay past the stored head, where a cut cannot be told from a crash.
func (s *Store) CommitAuditHead(ctx context.Context) error {
	return s.write(ctx, func(context.Context, *sql.Tx) error { return nil })
}

// SetAuditHead stores seq and hash as the audit chain's head, with the
// healer stopped: it is how a person, having looked into why the log did
// not match its head, makes the log as it now is the reference again. It
// opens the store in dir (migrating it) and closes it.
func SetAuditHead(ctx context.Context, dir string, seq uint64, hash string) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return upsertAuditHead(ctx, tx, seq, hash) })
	return errors.Join(err, s.Close())
}

func unixNano(t time.Time) int64 {
	if t.IsZero() || t.Year() <= 1 {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
