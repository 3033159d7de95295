-- The layout of a version 1 database (user_version 0), as a healer of that version
-- wrote it.
CREATE TABLE IF NOT EXISTS alerts (
	key          TEXT PRIMARY KEY,
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
	note         TEXT NOT NULL DEFAULT ''
);
-- Intake writes an alert into the table and its key, and appends its rowid
-- to the queue; the planner takes alerts from the head of the queue. A
-- fingerprint's alerts are a range of keys (the key starts with the
-- fingerprint), and rowid order is arrival order, so neither needs an index
-- of its own.
CREATE TABLE IF NOT EXISTS queue (alert INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS alerts_enqueue AFTER INSERT ON alerts BEGIN
	INSERT INTO queue (alert) VALUES (new.rowid);
END;
DROP INDEX IF EXISTS alerts_state;
DROP INDEX IF EXISTS alerts_fp;
DROP INDEX IF EXISTS alerts_received;

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
	decided_by   TEXT NOT NULL DEFAULT ''
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
