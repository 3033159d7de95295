package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Genesis is the prev of the first record of a fresh log: a hash that no
// record can have, so the start of the chain is explicit.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxRecordBytes bounds one encoded record (one line). Append refuses larger
// records and Verify reports longer lines as malformed, so neither has to
// hold an unbounded line in memory.
const MaxRecordBytes = 1 << 20

// Kind says which step of the healer's pipeline a record is about. Any
// lowercase snake_case word is accepted; the constants below are the ones
// the healer writes.
type Kind string

// The steps the healer records, in the order a run goes through them.
const (
	KindReceived    Kind = "received"    // an alert was accepted at intake
	KindMatched     Kind = "matched"     // a runbook matched it (or none did: Reason)
	KindSkipped     Kind = "skipped"     // nothing will be done, and why
	KindPrechecked  Kind = "prechecked"  // the PromQL precheck's result
	KindGuarded     Kind = "guarded"     // the guards' decision: allowed, or why not
	KindApproved    Kind = "approved"    // a person approved a run waiting above the tier ceiling
	KindDenied      Kind = "denied"      // a person denied it, or the approval expired
	KindStarted     Kind = "started"     // an action is about to run (written before it runs)
	KindFinished    Kind = "finished"    // it ended, with Result and duration
	KindVerified    Kind = "verified"    // the post-action verification's result
	KindRolledBack  Kind = "rolled_back" // a rollback ran
	KindEscalated   Kind = "escalated"   // humans were paged through Alertmanager
	KindReaped      Kind = "reaped"      // after a crash, what was left of a run's commands was looked for and killed
	KindRequested   Kind = "requested"   // a person asked for a run by hand
	KindSilenced    Kind = "silenced"    // an Alertmanager silence was created for the time a run acts
	KindInterrupted Kind = "interrupted" // the healer stopped while a run acted; whether it is re-planned
	KindScheduled   Kind = "scheduled"   // a run deferred to a maintenance window became due
	KindIncident    Kind = "incident"    // an incident opened, grew, or resolved (Result says which)
	KindAssessed    Kind = "assessed"    // the brain's assessment of a run: act, none or ask_human, by whom and why
)

// Kinds written by the log itself. Append refuses them so that only the log
// can vouch for a recovery or for the anchor left by Prune.
const (
	// KindRecovered says Open found an incomplete last line (a crash during
	// an append) and cut it off. Fields: file, offset, dropped_bytes,
	// dropped_sha256.
	KindRecovered Kind = "recovered"
	// KindPruned says Prune deleted a rotated file. Fields: file, first_seq,
	// last_seq, last_hash (the hash of the deleted file's last record, from
	// which Verify checks the rest of the chain).
	KindPruned Kind = "audit_pruned"
)

func (k Kind) valid() bool {
	if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' || k[len(k)-1] == '_' {
		return false
	}
	for i := range len(k) {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_' && k[i-1] != '_':
		default:
			return false
		}
	}
	return true
}

func (k Kind) reserved() bool { return k == KindRecovered || k == KindPruned }

// Record is one line of the audit log. Append sets Seq, Time, Prev and Hash;
// the caller fills in the rest. The typed fields are what every run of the
// healer has; Fields holds the rest (duration_seconds, precheck values,
// approver, ...). Empty fields are left out of the line.
type Record struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Kind  Kind      `json:"kind"`
	RunID string    `json:"run_id,omitempty"`
	// Incident names the incident the record's alert or run is part of.
	Incident    string            `json:"incident,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"` // the alert's
	Alertname   string            `json:"alertname,omitempty"`
	Runbook     string            `json:"runbook,omitempty"`
	Action      string            `json:"action,omitempty"`
	Target      string            `json:"target,omitempty"` // what the action acts on: unit, path, address
	DryRun      bool              `json:"dry_run,omitempty"`
	Argv        []string          `json:"argv,omitempty"`
	Result      string            `json:"result,omitempty"` // allowed, denied, ok, failed, timeout, ...
	Reason      string            `json:"reason,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
	// Alg is AlgHMAC in the records of a keyed chain (Options.Key), whose
	// Hash is then an HMAC; empty in an unkeyed chain's.
	Alg  Alg    `json:"alg,omitempty"`
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// Alg says how a record's Hash was computed.
type Alg string

// AlgHMAC marks a record of a keyed chain: its Hash is the hex
// HMAC-SHA256 of its body under the log's key, so that nobody without the
// key can write a record that verifies. A record without an alg is
// unkeyed: its Hash is the plain SHA-256 of its body.
const AlgHMAC Alg = "hmac-sha256"

// field is one free-text field of a record and its JSON name.
type field struct {
	key string
	val *string
}

// stringFields lists the record's free-text fields with their JSON names, in
// canonical order, for encoding and redaction alike.
func (r *Record) stringFields() [7]field {
	return [7]field{
		{"run_id", &r.RunID},
		{"incident", &r.Incident},
		{"fingerprint", &r.Fingerprint},
		{"alertname", &r.Alertname},
		{"runbook", &r.Runbook},
		{"action", &r.Action},
		{"target", &r.Target},
	}
}

// The canonical encoding.
//
// A record's line is a JSON object with its keys in one fixed order (seq,
// time, kind, run_id, incident, fingerprint, alertname, runbook, action, target,
// dry_run, argv, result, reason, fields, alg, prev, hash), empty values left out,
// fields' keys sorted, no spaces, strings escaped by the rules of
// appendString, time in RFC 3339 with nanoseconds in UTC. Hash is the hex
// SHA-256 of that same object without its hash member, that is the line up
// to and excluding `,"hash":"...` with the closing brace put back; in a
// keyed record (alg hmac-sha256) it is the hex HMAC-SHA256 of the same
// bytes. An unkeyed record has no alg member, so its bytes, and the hashes
// of logs written before keys existed, are what they always were. Verify
// re-encodes every record it reads and requires the same bytes, so a record
// cannot be changed even in ways JSON would ignore (spacing, key order,
// duplicate or unknown keys).

// body returns the canonical encoding of r without its hash.
func (r Record) body() []byte {
	return r.appendBody(make([]byte, 0, 256))
}

// appendBody appends the canonical encoding of r without its hash to b.
func (r *Record) appendBody(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	// RFC 3339 has nothing appendString would escape.
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, `,"kind":`...)
	b = appendString(b, string(r.Kind))
	for _, f := range r.stringFields() {
		b = appendMember(b, f.key, *f.val)
	}
	if r.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	if len(r.Argv) > 0 {
		b = append(b, `,"argv":[`...)
		for i, a := range r.Argv {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	b = appendMember(b, "result", r.Result)
	b = appendMember(b, "reason", r.Reason)
	if len(r.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		for i, k := range slices.Sorted(mapKeys(r.Fields)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, r.Fields[k])
		}
		b = append(b, '}')
	}
	b = appendMember(b, "alg", string(r.Alg))
	b = append(b, `,"prev":`...)
	b = appendString(b, r.Prev)
	b = append(b, '}')
	return b
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// hashBody returns the hex SHA-256 of a record's body.
func hashBody(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// macBody returns the hex HMAC-SHA256 of a record's body under key.
func macBody(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// seal returns the Hash of a record with this body: an HMAC under key when
// the record is keyed, its SHA-256 otherwise.
func seal(alg Alg, key, body []byte) string {
	if alg == AlgHMAC {
		return macBody(key, body)
	}
	return hashBody(body)
}

// sealOK reports whether hash is the record's Hash for body. A keyed
// record cannot be checked without key, and does not pass.
func sealOK(alg Alg, key, body []byte, hash string) bool {
	if alg == AlgHMAC {
		return key != nil && hmac.Equal([]byte(macBody(key, body)), []byte(hash))
	}
	return hashBody(body) == hash
}

// line returns the record's full line, newline included, from its body and
// hash.
func line(body []byte, hash string) []byte {
	b := make([]byte, 0, len(body)+len(hash)+12)
	return appendHash(append(b, body...), hash)
}

// appendHash turns b, which ends with a record's body, into its line: the
// hash member before the closing brace, and a newline.
func appendHash(b []byte, hash string) []byte {
	b = append(b[:len(b)-1], `,"hash":`...)
	b = appendString(b, hash)
	return append(b, '}', '\n')
}

func appendMember(b []byte, key, val string) []byte {
	if val == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, val)
}

// appendString appends s as a JSON string. The escaping is ours, not
// encoding/json's, so that the canonical bytes, and with them every hash
// already written, cannot change with the Go version: '"' and '\\' are
// escaped with a backslash, \n \r \t by name, other control characters as
// \u00XX; everything else is copied as is. s must be valid UTF-8 (Append
// makes it so).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// normalize makes r encodable and canonical: valid UTF-8 everywhere, time in
// UTC without a monotonic reading, no empty argv or fields. The caller's
// argv and fields are never modified: they are copied when anything in them
// changes, here or in redact.
func (r Record) normalize() Record {
	r.Time = r.Time.UTC().Round(0)
	for _, f := range r.stringFields() {
		*f.val = strings.ToValidUTF8(*f.val, "\uFFFD")
	}
	r.Result = strings.ToValidUTF8(r.Result, "\uFFFD")
	r.Reason = strings.ToValidUTF8(r.Reason, "\uFFFD")
	if len(r.Argv) == 0 {
		r.Argv = nil
	} else if slices.ContainsFunc(r.Argv, invalidUTF8) {
		argv := make([]string, len(r.Argv))
		for i, a := range r.Argv {
			argv[i] = strings.ToValidUTF8(a, "\uFFFD")
		}
		r.Argv = argv
	}
	if len(r.Fields) == 0 {
		r.Fields = nil
	} else if fieldsInvalid(r.Fields) {
		fields := make(map[string]string, len(r.Fields))
		for k, v := range r.Fields {
			fields[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
		}
		r.Fields = fields
	}
	return r
}

func invalidUTF8(s string) bool { return !utf8.ValidString(s) }

func fieldsInvalid(m map[string]string) bool {
	for k, v := range m {
		if invalidUTF8(k) || invalidUTF8(v) {
			return true
		}
	}
	return false
}

// errMalformed is wrapped by decodeLine for lines that are not records.
var errMalformed = errors.New("malformed record")

// errNonCanonical is returned by decodeLine for records that decode but are
// not in canonical form: someone rewrote the line.
var errNonCanonical = errors.New("non-canonical encoding")

// wireRecord is what a line decodes into before it is checked.
type wireRecord struct {
	Seq         uint64            `json:"seq"`
	Time        string            `json:"time"`
	Kind        string            `json:"kind"`
	RunID       string            `json:"run_id"`
	Incident    string            `json:"incident"`
	Fingerprint string            `json:"fingerprint"`
	Alertname   string            `json:"alertname"`
	Runbook     string            `json:"runbook"`
	Action      string            `json:"action"`
	Target      string            `json:"target"`
	DryRun      bool              `json:"dry_run"`
	Argv        []string          `json:"argv"`
	Result      string            `json:"result"`
	Reason      string            `json:"reason"`
	Fields      map[string]string `json:"fields"`
	Alg         string            `json:"alg"`
	Prev        string            `json:"prev"`
	Hash        string            `json:"hash"`
}

// decodeLine parses one line (without its newline) and checks that it is in
// canonical form. It does not check the hash; the caller compares
// hashBody(rec.body()) with rec.Hash.
func decodeLine(b []byte) (Record, error) {
	var w wireRecord
	if !utf8.Valid(b) {
		return Record{}, fmt.Errorf("%w: invalid UTF-8", errMalformed)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Record{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Record{}, fmt.Errorf("%w: time: %w", errMalformed, err)
	}
	if !Kind(w.Kind).valid() {
		return Record{}, fmt.Errorf("%w: kind %q is not lowercase snake_case", errMalformed, w.Kind)
	}
	if w.Alg != "" && Alg(w.Alg) != AlgHMAC {
		return Record{}, fmt.Errorf("%w: alg %q: want %s or none", errMalformed, w.Alg, AlgHMAC)
	}
	r := Record{
		Seq: w.Seq, Time: t, Kind: Kind(w.Kind),
		RunID: w.RunID, Incident: w.Incident, Fingerprint: w.Fingerprint, Alertname: w.Alertname,
		Runbook: w.Runbook, Action: w.Action, Target: w.Target,
		DryRun: w.DryRun, Argv: w.Argv, Result: w.Result, Reason: w.Reason,
		Fields: w.Fields, Alg: Alg(w.Alg), Prev: w.Prev, Hash: w.Hash,
	}
	got := line(r.body(), r.Hash)
	if string(got[:len(got)-1]) != string(b) {
		return Record{}, errNonCanonical
	}
	return r, nil
}
