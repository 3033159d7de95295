// Package alertmanager decodes and validates the payload that Alertmanager's
// webhook receiver posts (version 4), and splits a notification into the
// alerts it carries.
//
// It is pure: it reads a body and returns values. The healer's intake wraps
// the request body in http.MaxBytesReader, answers 413 when Decode's error is
// an *http.MaxBytesError, 400 with the error's text when it is a
// *ValidationError, and stores what Split returns.
package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/alertmanager/template"
)

// Version is the only webhook payload version Decode accepts.
const Version = "4"

// Message is the body of one webhook notification, as Alertmanager's
// notify/webhook.Message marshals it. Unlike upstream, Data is embedded by
// value so that a payload without any of its fields never leaves it nil.
type Message struct {
	template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// ValidationError is one reason a body is not a webhook notification that
// Alertmanager could have sent. Field is the path of the offending value in
// the payload (alerts[3].status, alerts[0].labels["a b"]), or empty when the
// body as a whole is wrong (not JSON, trailing data).
type ValidationError struct {
	Field string
	Err   error
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Decode reads one webhook notification from r and validates it.
//
// An error from r is returned wrapped (an *http.MaxBytesError stays reachable
// with errors.As). Every other error is a *ValidationError, or several joined
// with errors.Join: a body that is not exactly one JSON object (trailing data
// or a second value included) or whose values have the wrong JSON types is
// reported once, with the path of the first bad value; a body that decodes
// is checked in full and every problem is reported.
//
// What Decode accepts, and why:
//
//   - Unknown fields are ignored: Alertmanager keeps adding fields
//     (routeLabels, notification_reason).
//   - version must be "4", and the notification's and every alert's status
//     must be "firing" or "resolved".
//   - Every alert needs a fingerprint, and it must be the 16 lowercase hex
//     digits that Alertmanager always sends (model.Fingerprint.String). It is
//     not computed from the labels when missing: a payload without one did not
//     come from Alertmanager, and recomputing it could disagree with the
//     fingerprint Alertmanager uses in its own state and silences. The fixed
//     form also keeps Alert.Key bounded and unambiguous.
//   - Every alert needs a startsAt (a non-zero time) and at least one label,
//     as Alertmanager's API itself requires. A startsAt in the future is
//     accepted: Alertmanager forwards one when an alert was posted with only
//     an end time.
//   - alerts must not be empty: Alertmanager never notifies about nothing.
//   - Strings are data, taken byte for byte: any valid UTF-8 is accepted,
//     NUL (\u0000), newlines, quotes and shell metacharacters included. Bytes
//     that are not valid UTF-8, and \u escapes of unpaired UTF-16 surrogates,
//     are rejected with the path of the string: encoding/json would otherwise
//     replace them silently with U+FFFD, and Alertmanager's own encoder never
//     produces either.
//
// encoding/json matches keys case-insensitively and keeps the last of
// duplicate keys. Alertmanager sends neither, so Decode does not look for
// them.
func Decode(r io.Reader) (*Message, error) {
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		// A buffer grown by one huge body is let go rather than kept.
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodies.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("read webhook body: %w", err)
	}
	// The message holds copies: nothing of it points into buf.
	return decode(buf.Bytes())
}

// fastJSON decodes webhooks faster than encoding/json, to the same result
// (FuzzDecodeWebhook compares the two); it is already in the binary
// through client_golang's API client.
var fastJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// fastJSONUnmarshal decodes body with fastJSON once encoding/json's own
// scanner has found it valid JSON: fastJSON alone takes some bodies that
// are not (control characters in strings, anything after a NUL byte).
func fastJSONUnmarshal(body []byte, msg *Message) error {
	if !json.Valid(body) {
		return errors.New("not valid JSON")
	}
	return fastJSON.Unmarshal(body, msg)
}

// bodies are the buffers request bodies are read into, reused so that
// every webhook does not grow a new one from nothing.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

func decode(body []byte) (*Message, error) {
	if !isObject(body) {
		return nil, &ValidationError{Err: errors.New("payload must be a JSON object")}
	}
	var msg Message
	if err := fastJSONUnmarshal(body, &msg); err != nil {
		// The standard library says where and what is wrong; and what it
		// takes is what is taken.
		msg = Message{}
		if err := json.Unmarshal(body, &msg); err != nil {
			return nil, decodeError(body, err)
		}
	}
	var errs []error
	if !utf8.Valid(body) || hasLoneSurrogate(body) {
		errs = badStrings(body)
	}
	errs = append(errs, msg.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &msg, nil
}

// isObject reports whether the first byte of body after white space opens a
// JSON object. Without this, json.Unmarshal accepts a bare null as an empty
// message.
func isObject(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// decodeError turns an error of json.Unmarshal into a *ValidationError that
// names the path of the value at fault where it can be found.
func decodeError(body []byte, err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return &ValidationError{Err: fmt.Errorf("invalid JSON at offset %d: %w", syntaxErr.Offset, err)}
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		path := pathEndingAt(body, typeErr.Offset)
		return &ValidationError{Field: path, Err: fmt.Errorf("unexpected JSON %s", typeErr.Value)}
	}
	// Otherwise a time.Time refused a startsAt or endsAt; find which.
	if errs := badTimes(body); len(errs) > 0 {
		return errors.Join(errs...)
	}
	return &ValidationError{Err: err}
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

func (m *Message) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &ValidationError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	if m.Version != Version {
		add("version", "must be %q, got %s", Version, quote(m.Version))
	}
	if !validStatus(m.Status) {
		add("status", "must be %q or %q, got %s", StatusFiring, StatusResolved, quote(m.Status))
	}
	if len(m.Alerts) == 0 {
		add("alerts", "must not be empty")
	}
	for i, a := range m.Alerts {
		field := func(name string) string { return fmt.Sprintf("alerts[%d].%s", i, name) }
		if !validStatus(a.Status) {
			add(field("status"), "must be %q or %q, got %s", StatusFiring, StatusResolved, quote(a.Status))
		}
		switch {
		case a.Fingerprint == "":
			add(field("fingerprint"), "must not be empty")
		case !fingerprintRE.MatchString(a.Fingerprint):
			add(field("fingerprint"), "must be 16 lowercase hex digits, got %s", quote(a.Fingerprint))
		}
		if a.StartsAt.IsZero() {
			add(field("startsAt"), "must be set")
		}
		if len(a.Labels) == 0 {
			add(field("labels"), "must not be empty")
		}
	}
	return errs
}

func validStatus(s string) bool {
	return s == string(StatusFiring) || s == string(StatusResolved)
}

// quote returns s quoted for an error message, cut to a length that keeps a
// 400 answer short whatever the sender put in the payload.
func quote(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return fmt.Sprintf("%q", s)
	}
	cut := maxLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}
