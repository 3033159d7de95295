package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/incident"
)

// Alert states: an accepted alert is new until the planner has decided what
// to do about it (planned: runs were created; done: nothing to do, Note says
// why).
const (
	AlertNew     = "new"
	AlertPlanned = "planned"
	AlertDone    = "done"
)

// StoredAlert is an alert as stored at intake.
type StoredAlert struct {
	alertmanager.Alert
	ID         int64     `json:"id"` // the order of arrival
	Key        string    `json:"key"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	Deliveries int       `json:"deliveries"`
	State      string    `json:"state"`
	Note       string    `json:"note,omitempty"`
	// IncidentID is the incident the alert is part of, once planned.
	IncidentID string `json:"incident_id,omitempty"`
}

// StepRecord is one step of a run: the action, its validated parameters
// and what it did.
type StepRecord struct {
	Action string            `json:"action"`
	Params map[string]string `json:"params"`
	Target string            `json:"target,omitempty"`
	State  StepState         `json:"state,omitempty"`
	Error  string            `json:"error,omitempty"`
	Argv   []string          `json:"argv,omitempty"`
	Output string            `json:"output,omitempty"`
	Undo   json.RawMessage   `json:"undo,omitempty"`
	// Held says what held the processes of the commands the step ran
	// (a list of action.Hold, opaque to the store), written as each
	// command starts, so that recovery can kill what a crash left.
	Held json.RawMessage `json:"held,omitempty"`
}

// Run is one execution of a runbook for one alert (or of one action by
// hand, with Runbook empty).
type Run struct {
	ID          string            `json:"id"`
	AlertKey    string            `json:"alert_key"`
	Fingerprint string            `json:"fingerprint"`
	Alertname   string            `json:"alertname"`
	Runbook     string            `json:"runbook"`
	Action      string            `json:"action"` // the first step's, for listing and metrics
	Target      string            `json:"target"` // what cooldowns and breakers are kept per
	Steps       []StepRecord      `json:"steps"`
	Tier        action.Tier       `json:"tier"` // the highest of its steps'
	Labels      map[string]string `json:"labels,omitempty"`
	DryRun      bool              `json:"dry_run"`
	State       RunState          `json:"state"`
	Reason      string            `json:"reason,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	StartedAt   time.Time         `json:"started_at,omitzero"`
	FinishedAt  time.Time         `json:"finished_at,omitzero"`
	ExpiresAt   time.Time         `json:"expires_at,omitzero"`
	DecidedBy   string            `json:"decided_by,omitempty"`
	// IncidentID is the incident the run acts for, if its alert is in one.
	IncidentID string `json:"incident_id,omitempty"`
	// Assessment is the brain's, as JSON, once the run was assessed.
	Assessment json.RawMessage `json:"assessment,omitempty"`
}

// NewAlerts returns up to limit alerts in state new, oldest first.
func (s *Store) NewAlerts(ctx context.Context, limit int) ([]StoredAlert, error) {
	s.read(1)
	rows, err := s.newAlerts.QueryContext(ctx, limit)
	if err != nil {
		return nil, err
	}
	return scanAlerts(rows)
}

// AlertRef names a queued alert.
type AlertRef struct {
	ID  int64
	Key string
}

// QueuedRefs returns up to limit alerts waiting to be planned, oldest
// first, by ID and key only: the planner takes the alerts themselves from
// memory when this process accepted them (see AlertsByID for the others).
func (s *Store) QueuedRefs(ctx context.Context, limit int) ([]AlertRef, error) {
	s.read(1)
	rows, err := s.queued.QueryContext(ctx, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertRef
	for rows.Next() {
		var r AlertRef
		if err := rows.Scan(&r.ID, &r.Key); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AlertsByID returns the alerts with the given IDs, in ID order.
func (s *Store) AlertsByID(ctx context.Context, ids []int64) ([]StoredAlert, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// Only placeholders are concatenated; the IDs are bound.
	return s.queryAlerts(ctx, `WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY id`, args...)
}

// Alerts returns the newest alerts, at most limit, optionally of one
// fingerprint.
func (s *Store) Alerts(ctx context.Context, fingerprint string, limit int) ([]StoredAlert, error) {
	if fingerprint != "" {
		// No index leads with the fingerprint (see alerts_key): this
		// walks back from the newest alert until it has limit of them.
		return s.queryAlerts(ctx, `WHERE fingerprint = ? ORDER BY id DESC LIMIT ?`, fingerprint, limit)
	}
	return s.queryAlerts(ctx, `ORDER BY id DESC LIMIT ?`, limit)
}

// AlertsSince returns the alerts that started at or after since, oldest
// first, at most limit: the history an analysis reads.
func (s *Store) AlertsSince(ctx context.Context, since time.Time, limit int) ([]StoredAlert, error) {
	return s.queryAlerts(ctx, `WHERE starts_at >= ? ORDER BY starts_at, key LIMIT ?`, since.UnixNano(), limit)
}

// AlertByKey returns the alert stored under key, or ErrNotFound.
func (s *Store) AlertByKey(ctx context.Context, key string) (StoredAlert, error) {
	starts, err := alertmanager.KeyStartsAt(key)
	if err != nil {
		return StoredAlert{}, err
	}
	alerts, err := s.queryAlerts(ctx, `WHERE starts_at = ? AND key = ?`, starts.UnixNano(), key)
	if err != nil {
		return StoredAlert{}, err
	}
	if len(alerts) == 0 {
		return StoredAlert{}, fmt.Errorf("alert %s: %w", key, ErrNotFound)
	}
	return alerts[0], nil
}

// Resolved reports whether a resolved notification is stored for the
// firing of fingerprint that started at startsAt.
func (s *Store) Resolved(ctx context.Context, fingerprint string, startsAt time.Time) (bool, error) {
	a := alertmanager.Alert{Fingerprint: fingerprint, Status: alertmanager.StatusResolved, StartsAt: startsAt}
	var n int
	s.read(1)
	err := s.resolved.QueryRowContext(ctx, startsAt.UnixNano(), a.Key()).Scan(&n)
	return n > 0, err
}

// ResolvedOf returns, of the given firing alerts, the keys of those whose
// resolution is stored: Resolved for many alerts in one query.
func (s *Store) ResolvedOf(ctx context.Context, firing []StoredAlert) (map[string]bool, error) {
	out := map[string]bool{}
	const chunk = 500
	for len(firing) > 0 {
		n := min(len(firing), chunk)
		byResolvedKey := make(map[string]string, n)
		args := make([]any, 0, n)
		for _, a := range firing[:n] {
			r := a.Alert
			r.Status = alertmanager.StatusResolved
			byResolvedKey[r.Key()] = a.Key
			args = append(args, r.StartsAt.UnixNano(), r.Key())
		}
		firing = firing[n:]
		// Only placeholders are concatenated; the keys are bound.
		q := `SELECT key FROM alerts WHERE (starts_at, key) IN (VALUES (?, ?)` + strings.Repeat(", (?, ?)", len(args)/2-1) + `)` //nolint:gosec // see above
		s.read(1)
		rows, err := s.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			out[byResolvedKey[k]] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const alertCols = `id, key, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, receiver, source, received_at, deliveries, state, note, incident_id`

func (s *Store) queryAlerts(ctx context.Context, where string, args ...any) ([]StoredAlert, error) {
	// where is one of this package's constant clauses; values are bound.
	s.read(1)
	rows, err := s.r.QueryContext(ctx, `SELECT `+alertCols+` FROM alerts `+where, args...) //nolint:gosec // see above
	if err != nil {
		return nil, err
	}
	return scanAlerts(rows)
}

func scanAlerts(rows *sql.Rows) ([]StoredAlert, error) {
	defer rows.Close()
	var out []StoredAlert
	for rows.Next() {
		var (
			a                   StoredAlert
			status, lab, ann    string
			starts, ends, recvd int64
		)
		if err := rows.Scan(&a.ID, &a.Key, &a.Fingerprint, &status, &starts, &ends, &lab, &ann, &a.GeneratorURL,
			&a.Receiver, &a.Source, &recvd, &a.Deliveries, &a.State, &a.Note, &a.IncidentID); err != nil {
			return nil, err
		}
		a.Status = alertmanager.Status(status)
		a.StartsAt, a.EndsAt, a.ReceivedAt = fromNano(starts), fromNano(ends), fromNano(recvd)
		a.Labels, a.Annotations = model.LabelSet{}, model.LabelSet{}
		if err := json.Unmarshal([]byte(lab), &a.Labels); err != nil {
			return nil, fmt.Errorf("alert %s labels: %w", a.Key, err)
		}
		if err := json.Unmarshal([]byte(ann), &a.Annotations); err != nil {
			return nil, fmt.Errorf("alert %s annotations: %w", a.Key, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Plan records the planner's decision on an alert in one transaction: its
// new state and note, and the runs created for it.
func (s *Store) Plan(ctx context.Context, id int64, state, note string, runs []Run) error {
	return s.PlanBatch(ctx, []Decision{{ID: id, State: state, Note: note, Runs: runs}})
}

// Decision is the planner's decision on one alert, by its ID.
type Decision struct {
	ID          int64
	State, Note string
	Runs        []Run
	// Incident, when set, is saved as it is after this decision, with
	// the incidents it merged.
	Incident *incident.Incident
	Merged   []incident.Incident
}

// PlanBatch records several decisions in one transaction.
func (s *Store) PlanBatch(ctx context.Context, ds []Decision) error {
	// Most decisions in a storm are alike (no runbook matches), so alerts
	// with the same state and note are updated with one statement per few
	// hundred rather than one per alert.
	type group struct{ state, note string }
	groups := map[group][]any{}
	var order []group
	for _, d := range ds {
		g := group{d.State, d.Note}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], d.ID)
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, g := range order {
			ids := groups[g]
			if err := inChunks(ids, func(chunk []any) error {
				// Only placeholders are concatenated; values are bound.
				q := `UPDATE alerts SET state = ?, note = ? WHERE id IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)` //nolint:gosec // see above
				res, err := tx.ExecContext(ctx, q, append([]any{g.state, g.note}, chunk...)...)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n != int64(len(chunk)) {
					return fmt.Errorf("%d of %d alerts to plan: %w", int64(len(chunk))-n, len(chunk), ErrNotFound)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		// Move the mark up to just before the first alert still new (the
		// walk covers the alerts just decided), or to the last alert.
		if _, err := tx.ExecContext(ctx, `UPDATE planner SET planned_through = COALESCE(
			(SELECT id - 1 FROM alerts WHERE id > planned_through AND state = 'new' ORDER BY id LIMIT 1),
			(SELECT MAX(id) FROM alerts))`); err != nil {
			return fmt.Errorf("advance the planner's mark: %w", err)
		}
		for _, d := range ds {
			for _, r := range d.Runs {
				if err := insertRun(ctx, tx, r); err != nil {
					return err
				}
			}
			for _, m := range d.Merged {
				if err := saveIncident(ctx, tx, m); err != nil {
					return err
				}
			}
			if d.Incident != nil {
				if err := saveIncident(ctx, tx, *d.Incident); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE alerts SET incident_id = ? WHERE id = ?`, d.Incident.ID, d.ID); err != nil {
					return fmt.Errorf("alert %d: %w", d.ID, err)
				}
			}
		}
		return nil
	})
}

// inChunks calls fn with args in chunks small enough for one statement.
func inChunks(args []any, fn func([]any) error) error {
	const max = 500
	for len(args) > 0 {
		n := min(len(args), max)
		if err := fn(args[:n]); err != nil {
			return err
		}
		args = args[n:]
	}
	return nil
}

// Interrupt marks a run that was running when the healer stopped as
// interrupted and, in the same commit, stores the run re-planned for it
// (nil for none).
func (s *Store) Interrupt(ctx context.Context, id, reason string, at time.Time, replan *Run) error {
	if replan != nil && replan.State != RunPending {
		return fmt.Errorf("run %s: a re-planned run starts pending, not %s: %w", replan.ID, replan.State, ErrTransition)
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ? WHERE id = ? AND state = ?`,
			RunInterrupted, reason, at.UnixNano(), at.UnixNano(), id, RunRunning)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %s: %w", id, ErrConflict)
		}
		if replan != nil {
			return insertRun(ctx, tx, *replan)
		}
		return nil
	})
}

// InsertRun stores a run made outside the planner (healer run by hand).
func (s *Store) InsertRun(ctx context.Context, r Run) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return insertRun(ctx, tx, r) })
}

func insertRun(ctx context.Context, tx *sql.Tx, r Run) error {
	steps, _ := json.Marshal(r.Steps)
	labels, _ := json.Marshal(r.Labels)
	_, err := tx.ExecContext(ctx, `INSERT INTO runs
		(id, alert_key, fingerprint, alertname, runbook, action, target, steps, labels, tier, dry_run, state, reason, created_at, updated_at, expires_at, incident_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.AlertKey, r.Fingerprint, r.Alertname, r.Runbook, r.Action, r.Target, string(steps), string(labels), r.Tier.String(),
		r.DryRun, r.State, r.Reason, r.CreatedAt.UnixNano(), r.CreatedAt.UnixNano(), unixNano(r.ExpiresAt), r.IncidentID)
	if err != nil {
		return fmt.Errorf("insert run %s: %w", r.ID, err)
	}
	return nil
}

// Update is a change to a run. Zero fields are left as they are.
type Update struct {
	State      RunState
	Reason     string
	Target     string
	StartedAt  time.Time
	FinishedAt time.Time
	ExpiresAt  time.Time
	DecidedBy  string
	// Steps replaces the run's steps when not nil.
	Steps []StepRecord
	// Assessment, when set, is the brain's assessment of the run (JSON).
	Assessment json.RawMessage
}

// ErrConflict is returned by UpdateRun when the run is not in any of the
// states the update expects (someone else moved it first).
var ErrConflict = errors.New("run is not in the expected state")

// UpdateRun applies u to run id if its state is one of from. A change of
// state must be one the lifecycle allows from each state in from (from
// every state that may become u.State when from is empty), or it is refused
// with ErrTransition before anything is written; a run that is not in one
// of those states (someone moved it first) is ErrConflict. An update that
// changes no state applies in any state of from (any state when empty).
func (s *Store) UpdateRun(ctx context.Context, id string, u Update, from ...RunState) error {
	if u.State != "" {
		var err error
		if from, err = checkTransition(u.State, from); err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
	}
	set := []string{"updated_at = ?"}
	args := []any{s.opts.Now().UnixNano()}
	add := func(col string, v any) { set = append(set, col+" = ?"); args = append(args, v) }
	if u.State != "" {
		add("state", u.State)
	}
	if u.Reason != "" {
		add("reason", u.Reason)
	}
	if u.Target != "" {
		add("target", u.Target)
	}
	if !u.StartedAt.IsZero() {
		add("started_at", u.StartedAt.UnixNano())
	}
	if !u.FinishedAt.IsZero() {
		add("finished_at", u.FinishedAt.UnixNano())
	}
	if !u.ExpiresAt.IsZero() {
		add("expires_at", u.ExpiresAt.UnixNano())
	}
	if u.Assessment != nil {
		if !json.Valid(u.Assessment) {
			return fmt.Errorf("run %s: the assessment is not JSON", id)
		}
		add("assessment", string(u.Assessment))
	}
	if u.DecidedBy != "" {
		add("decided_by", u.DecidedBy)
	}
	if u.Steps != nil {
		b, _ := json.Marshal(u.Steps)
		add("steps", string(b))
	}
	// The SET list is built from constant column names; values are bound.
	q := `UPDATE runs SET ` + strings.Join(set, ", ") + ` WHERE id = ?` //nolint:gosec // see above
	args = append(args, id)
	if len(from) > 0 {
		q += ` AND state IN (?` + strings.Repeat(", ?", len(from)-1) + `)`
		for _, f := range from {
			args = append(args, f)
		}
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("update run %s: %w", id, err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := s.Run(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("run %s: %w", id, ErrConflict)
	}
	return nil
}

const runCols = `id, alert_key, fingerprint, alertname, runbook, action, target, steps, labels, tier, dry_run, state, reason,
	created_at, updated_at, started_at, finished_at, expires_at, decided_by, incident_id, assessment`

// Run returns the run called id.
func (s *Store) Run(ctx context.Context, id string) (Run, error) {
	runs, err := s.queryRuns(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return runs[0], nil
}

// RunFilter selects runs.
type RunFilter struct {
	States      []RunState
	Fingerprint string
	AlertKey    string
	// Since, when set, keeps the runs created at or after it.
	Since time.Time
	// IncidentID, when set, keeps the runs of that incident.
	IncidentID string
	Limit      int
}

// Runs returns runs, newest first.
func (s *Store) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		where = append(where, `state IN (?`+strings.Repeat(", ?", len(f.States)-1)+`)`)
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if f.Fingerprint != "" {
		where = append(where, `fingerprint = ?`)
		args = append(args, f.Fingerprint)
	}
	if f.AlertKey != "" {
		where = append(where, `alert_key = ?`)
		args = append(args, f.AlertKey)
	}
	if !f.Since.IsZero() {
		where = append(where, `created_at >= ?`)
		args = append(args, f.Since.UnixNano())
	}
	if f.IncidentID != "" {
		where = append(where, `incident_id = ?`)
		args = append(args, f.IncidentID)
	}
	q := ""
	if len(where) > 0 {
		q = `WHERE ` + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	return s.queryRuns(ctx, q, args...)
}

func (s *Store) queryRuns(ctx context.Context, where string, args ...any) ([]Run, error) {
	// where is built from constant clauses; values are bound.
	s.read(1)
	rows, err := s.r.QueryContext(ctx, `SELECT `+runCols+` FROM runs `+where, args...) //nolint:gosec // see above
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var (
			r                                 Run
			steps, labels, tier, assessment   string
			created, updated, started, fin, x int64
		)
		if err := rows.Scan(&r.ID, &r.AlertKey, &r.Fingerprint, &r.Alertname, &r.Runbook, &r.Action, &r.Target,
			&steps, &labels, &tier, &r.DryRun, &r.State, &r.Reason, &created, &updated, &started, &fin, &x, &r.DecidedBy, &r.IncidentID, &assessment); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(steps), &r.Steps); err != nil {
			return nil, fmt.Errorf("run %s steps: %w", r.ID, err)
		}
		if r.Tier, err = action.ParseTier(tier); err != nil {
			return nil, fmt.Errorf("run %s: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
			return nil, fmt.Errorf("run %s labels: %w", r.ID, err)
		}
		r.CreatedAt, r.UpdatedAt, r.StartedAt, r.FinishedAt, r.ExpiresAt = fromNano(created), fromNano(updated), fromNano(started), fromNano(fin), fromNano(x)
		if assessment != "" {
			r.Assessment = json.RawMessage(assessment)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GuardCounts are what the guards need to know of past runs of a runbook.
type GuardCounts struct {
	// LastStart is when a run of the runbook on the target last started
	// (zero if never), for the cooldown.
	LastStart time.Time
	// InWindow is how many runs of the runbook started since the window's
	// start, on any target, for the rate limit.
	InWindow int
	// Targets is how many distinct targets the runbook's runs acted on
	// since the window's start, for the blast radius.
	Targets int
	// TargetSeen reports whether target is among them.
	TargetSeen bool
}

// Counts returns the guard counts of runbook and target, counting runs that
// started (dry runs excluded) since since.
func (s *Store) Counts(ctx context.Context, runbook, target string, since time.Time) (GuardCounts, error) {
	var c GuardCounts
	var last sql.NullInt64
	s.read(1)
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(started_at) FROM runs WHERE runbook = ? AND target = ? AND started_at > 0 AND dry_run = 0`,
		runbook, target).Scan(&last); err != nil {
		return c, err
	}
	if last.Valid {
		c.LastStart = fromNano(last.Int64)
	}
	var seen int
	s.read(1)
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT target), COALESCE(SUM(target = ?), 0) FROM runs
		WHERE runbook = ? AND started_at >= ? AND dry_run = 0`, target, runbook, since.UnixNano()).Scan(&c.InWindow, &c.Targets, &seen); err != nil {
		return c, err
	}
	c.TargetSeen = seen > 0
	return c, nil
}

// Breaker is the state of the circuit breaker of a runbook on a target.
type Breaker struct {
	Runbook     string    `json:"runbook"`
	Target      string    `json:"target"`
	Failures    int       `json:"failures"`
	OpenedAt    time.Time `json:"opened_at,omitzero"`
	LastFailure time.Time `json:"last_failure"`
	Escalated   bool      `json:"escalated"`
}

// Breaker returns the breaker of runbook and target (zero if it never
// failed).
func (s *Store) Breaker(ctx context.Context, runbook, target string) (Breaker, error) {
	b := Breaker{Runbook: runbook, Target: target}
	var opened, last int64
	s.read(1)
	err := s.r.QueryRowContext(ctx, `SELECT failures, opened_at, last_failure, escalated FROM breakers WHERE runbook = ? AND target = ?`,
		runbook, target).Scan(&b.Failures, &opened, &last, &b.Escalated)
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil
	}
	b.OpenedAt, b.LastFailure = fromNano(opened), fromNano(last)
	return b, err
}

// SaveBreaker stores b.
func (s *Store) SaveBreaker(ctx context.Context, b Breaker) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO breakers (runbook, target, failures, opened_at, last_failure, escalated)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(runbook, target) DO UPDATE SET
		failures = excluded.failures, opened_at = excluded.opened_at, last_failure = excluded.last_failure, escalated = excluded.escalated`,
			b.Runbook, b.Target, b.Failures, unixNano(b.OpenedAt), unixNano(b.LastFailure), b.Escalated)
		return err
	})
}

// OpenBreakers returns the breakers that are open.
func (s *Store) OpenBreakers(ctx context.Context) ([]Breaker, error) {
	s.read(1)
	rows, err := s.r.QueryContext(ctx, `SELECT runbook, target, failures, opened_at, last_failure, escalated FROM breakers WHERE opened_at > 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Breaker
	for rows.Next() {
		var b Breaker
		var opened, last int64
		if err := rows.Scan(&b.Runbook, &b.Target, &b.Failures, &opened, &last, &b.Escalated); err != nil {
			return nil, err
		}
		b.OpenedAt, b.LastFailure = fromNano(opened), fromNano(last)
		out = append(out, b)
	}
	return out, rows.Err()
}

// Retention says how long to keep what.
type Retention struct {
	Alerts time.Duration
	Runs   time.Duration
}

// liveStates are the states that are not final, as an SQL list.
var liveStates = func() string {
	var q []string
	for _, st := range RunStates {
		if !st.Final() {
			q = append(q, "'"+string(st)+"'")
		}
	}
	return "(" + strings.Join(q, ", ") + ")"
}()

// Prune deletes alerts received and final runs created before their
// retention, and returns how many of each. Alerts that still have runs
// which are not final are kept.
func (s *Store) Prune(ctx context.Context, ret Retention) (alerts, runs int64, err error) {
	now := s.opts.Now()
	if ret.Runs > 0 {
		s.ops.writes.Add(1)
		res, err := s.w.ExecContext(ctx, `DELETE FROM runs WHERE created_at < ? AND state NOT IN `+liveStates, //nolint:gosec // constants
			now.Add(-ret.Runs).UnixNano())
		if err != nil {
			return 0, 0, fmt.Errorf("prune runs: %w", err)
		}
		runs, _ = res.RowsAffected()
		// Incidents go with their runs: those not changed within the
		// retention, open ones too (a resolution that never came).
		if _, err := s.w.ExecContext(ctx, `DELETE FROM incidents WHERE updated_at < ?`, now.Add(-ret.Runs).UnixNano()); err != nil {
			return 0, runs, fmt.Errorf("prune incidents: %w", err)
		}
	}
	if ret.Alerts > 0 {
		// A firing alert with no resolution stored is kept, however old:
		// Alertmanager's repeat notifications of it must stay duplicates.
		// The planner's mark comes down to the newest alert left, in the
		// same transaction: SQLite numbers a new alert after the highest
		// id there is, which must be above the mark (see the schema).
		err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			//nolint:gosec // liveStates is built from constants
			q := `DELETE FROM alerts WHERE received_at < ? AND state != 'new'
				AND NOT (status = 'firing' AND replace(key, '/firing/', '/resolved/') NOT IN (SELECT key FROM alerts WHERE status = 'resolved'))
				AND key NOT IN (SELECT alert_key FROM runs WHERE state IN ` + liveStates + `)`
			res, err := tx.ExecContext(ctx, q, now.Add(-ret.Alerts).UnixNano())
			if err != nil {
				return err
			}
			alerts, _ = res.RowsAffected()
			_, err = tx.ExecContext(ctx, `UPDATE planner SET planned_through = MIN(planned_through, COALESCE((SELECT MAX(id) FROM alerts), 0))`)
			return err
		})
		if err != nil {
			return 0, runs, fmt.Errorf("prune alerts: %w", err)
		}
	}
	return alerts, runs, nil
}

// Stats are counts for the healer's metrics.
type Stats struct {
	NewAlerts       int
	PendingRuns     int
	WaitingApproval int
	OldestWaiting   time.Time
}

// Stats returns the current counts.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullInt64
	s.read(1)
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM alerts WHERE `+unplanned+`),
		(SELECT COUNT(*) FROM runs WHERE state IN ('pending', 'approved', 'running')),
		(SELECT COUNT(*) FROM runs WHERE state = 'waiting'),
		(SELECT MIN(created_at) FROM runs WHERE state = 'waiting')`).Scan(&st.NewAlerts, &st.PendingRuns, &st.WaitingApproval, &oldest)
	if oldest.Valid {
		st.OldestWaiting = fromNano(oldest.Int64)
	}
	return st, err
}
