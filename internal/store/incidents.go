package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deus-ex-machina/deus/internal/incident"
)

// incidentsTable (schema version 4) keeps each incident whole as JSON,
// with the columns it is looked up by beside it.
const incidentsTable = `
CREATE TABLE IF NOT EXISTS incidents (
	id          TEXT PRIMARY KEY,
	grp         TEXT NOT NULL,
	state       TEXT NOT NULL,
	opened_at   INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	resolved_at INTEGER NOT NULL DEFAULT 0,
	body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents(state, grp);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents(opened_at);`

// addV4Columns gives a version 3 database the columns of version 4: the
// incident of each alert and run, and each run's assessment.
func addV4Columns(tx *sql.Tx) error {
	for _, c := range []struct{ table, col string }{{"alerts", "incident_id"}, {"runs", "incident_id"}, {"runs", "assessment"}} {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.col).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		// table and col are the constants above.
		if _, err := tx.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.col + ` TEXT NOT NULL DEFAULT ''`); err != nil { //nolint:gosec // see above
			return err
		}
	}
	return nil
}

// OpenIncidents returns the open incidents of the given groups that
// changed since since: those an alert may still join.
func (s *Store) OpenIncidents(ctx context.Context, groups []string, since time.Time) ([]incident.Incident, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	args := []any{string(incident.Open), since.UnixNano()}
	for _, g := range groups {
		args = append(args, g)
	}
	// Only placeholders are concatenated; values are bound.
	return s.queryIncidents(ctx, `WHERE state = ? AND updated_at >= ? AND grp IN (?`+strings.Repeat(", ?", len(groups)-1)+`) ORDER BY opened_at`, args...)
}

// Outcome is how a past run ended.
type Outcome struct {
	State     RunState
	CreatedAt time.Time
}

// Outcomes returns how the latest runs of runbook for the alert
// fingerprint (this alert on this host) ended, newest first, dry runs
// left out: what the brain is told of the past.
func (s *Store) Outcomes(ctx context.Context, fingerprint, runbook string, limit int) ([]Outcome, error) {
	s.read(1)
	rows, err := s.r.QueryContext(ctx, `SELECT state, created_at FROM runs WHERE fingerprint = ? AND runbook = ? AND dry_run = 0
		ORDER BY created_at DESC LIMIT ?`, fingerprint, runbook, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Outcome
	for rows.Next() {
		var o Outcome
		var created int64
		if err := rows.Scan(&o.State, &created); err != nil {
			return nil, err
		}
		o.CreatedAt = fromNano(created)
		out = append(out, o)
	}
	return out, rows.Err()
}

// IncidentFilter selects incidents.
type IncidentFilter struct {
	// State is open, resolved, or empty for both.
	State incident.State
	Limit int
}

// Incidents returns incidents, newest first.
func (s *Store) Incidents(ctx context.Context, f IncidentFilter) ([]incident.Incident, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	if f.State != "" {
		return s.queryIncidents(ctx, `WHERE state = ? ORDER BY opened_at DESC LIMIT ?`, string(f.State), f.Limit)
	}
	return s.queryIncidents(ctx, `ORDER BY opened_at DESC LIMIT ?`, f.Limit)
}

// Incident returns the incident called id, or ErrNotFound.
func (s *Store) Incident(ctx context.Context, id string) (incident.Incident, error) {
	ins, err := s.queryIncidents(ctx, `WHERE id = ?`, id)
	if err != nil {
		return incident.Incident{}, err
	}
	if len(ins) == 0 {
		return incident.Incident{}, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	return ins[0], nil
}

func (s *Store) queryIncidents(ctx context.Context, where string, args ...any) ([]incident.Incident, error) {
	s.read(1)
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM incidents `+where, args...) //nolint:gosec // where is a constant clause
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incident.Incident
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var in incident.Incident
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			return nil, fmt.Errorf("decode an incident: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

func saveIncident(ctx context.Context, tx *sql.Tx, in incident.Incident) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO incidents (id, grp, state, opened_at, updated_at, resolved_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
			resolved_at = excluded.resolved_at, body = excluded.body`,
		in.ID, in.Group, string(in.State), in.OpenedAt.UnixNano(), in.UpdatedAt.UnixNano(), unixNano(in.ResolvedAt), string(body))
	if err != nil {
		return fmt.Errorf("save incident %s: %w", in.ID, err)
	}
	return nil
}
