package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeWebhook feeds Decode arbitrary bodies. It must never panic;
// whatever it refuses must be refused with *ValidationErrors only (so the
// intake answers 400, not 500); and whatever it accepts must split into one
// alert per payload alert, each firing or resolved, with a key that depends
// on nothing but the alert.
func FuzzDecodeWebhook(f *testing.F) {
	for _, name := range []string{"webhook-firing.json", "webhook-resolved.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add(marshal(f, payload(3)))
	for _, s := range []string{
		"",
		"null",
		"{}",
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"\ud83d\ude80"},"fingerprint":"0123456789abcdef","startsAt":"2026-01-01T00:00:00.123456789+02:00"}]}`,
		`{"version":"4","status":"resolved","truncatedAlerts":2,"alerts":[{"status":"firing","labels":{"a":"\u0000"},"fingerprint":"0123456789abcdef","startsAt":"2026-01-01T00:00:00Z"}]}`,
		`{"alerts":[{"startsAt":"x","labels":{"\ud800":1}}]}`,
		"{\"receiver\":\"\xff\"}",
		// Where two JSON libraries may part ways: names in another case or
		// escaped, duplicates, nulls, numbers out of range, deep unknowns.
		`{"VERSION":"4","Alerts":[{"STATUS":"firing","Labels":{"a":"b"},"FingerPrint":"0123456789abcdef","startsat":"2026-01-01T00:00:00Z"}]}`,
		`{"version":"3","version":"4","\u0061lerts":[{"status":"firing","status":"resolved","labels":{"a":"1","a":"2"},"fingerprint":"0123456789abcdef","startsAt":"2026-01-01T00:00:00Z"}]}`,
		`{"version":null,"alerts":[{"status":"firing","labels":null,"annotations":{"x":null},"fingerprint":"0123456789abcdef","startsAt":null,"endsAt":"0001-01-01T00:00:00Z"}]}`,
		`{"version":"4","truncatedAlerts":18446744073709551616,"alerts":[]}`,
		`{"version":"4","truncatedAlerts":-1}`,
		`{"version":"4","truncatedAlerts":1.5}`,
		`{"version":"4","truncatedAlerts":1e2}`,
		`{"version":"4","extra":{"a":[[[[{"b":[1,2,{"c":null}]}]]]]},"alerts":[{"status":"firing","labels":{"a":"b"},"fingerprint":"0123456789abcdef","startsAt":"2026-01-01T00:00:00Z","extra":[true,false]}]}`,
		`{"version":4,"alerts":[{"status":"firing","labels":{"a":1}}]}`,
		`{"version":"4","alerts":{}}`,
		`{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"fingerprint":"0123456789abcdef","startsAt":"2026-01-01T00:00:00Z"}]} trailing`,
		"{\"version\":\"4\"}\n \t",
		"{}\x00",
		"{\"version\":\"4\"}\x00 trailing {",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsStandardLibrary(t, body)
		msg, err := Decode(bytes.NewReader(body))
		if err != nil {
			if msg != nil {
				t.Errorf("Decode(%q) returned a message and error %v", body, err)
			}
			checkValidationErrors(t, body, err)
			return
		}
		alerts := Split(msg)
		if len(alerts) != len(msg.Alerts) || len(alerts) == 0 {
			t.Fatalf("Decode(%q): Split returned %d alerts of %d", body, len(alerts), len(msg.Alerts))
		}
		again, err := Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Decode(%q) failed the second time: %v", body, err)
		}
		for i, a := range alerts {
			if a.Status != StatusFiring && a.Status != StatusResolved {
				t.Errorf("Decode(%q): alert %d has status %q", body, i, a.Status)
			}
			if a.Status != Status(msg.Alerts[i].Status) {
				t.Errorf("Decode(%q): alert %d has status %q; the payload says %q", body, i, a.Status, msg.Alerts[i].Status)
			}
			key := a.Key()
			if key != a.Key() || key != Split(again)[i].Key() {
				t.Errorf("Decode(%q): alert %d has key %q, then %q", body, i, key, Split(again)[i].Key())
			}
			if want := a.Fingerprint + "/" + string(a.Status) + "/"; !strings.HasPrefix(key, want) || len(key) != len(want)+len(keyTime) {
				t.Errorf("Decode(%q): alert %d has key %q; want %s and a %d-byte time", body, i, key, want, len(keyTime))
			}
			if at, err := KeyStartsAt(key); err != nil || !at.Equal(a.StartsAt) {
				t.Errorf("Decode(%q): alert %d's key %q gives startsAt %v, %v; want %v", body, i, key, at, err, a.StartsAt)
			}
			other := a
			other.ExternalURL += "-2"
			if other.Key() != key {
				t.Errorf("Decode(%q): alert %d's key depends on externalURL", body, i)
			}
		}
	})
}

// sameAsStandardLibrary requires fastJSON to take what encoding/json takes,
// to the same message (when it refuses what encoding/json takes, decode
// falls back to encoding/json, so that is allowed). Bodies with invalid
// UTF-8 or unpaired surrogates are left out: decode refuses them whatever
// either library makes of them.
func sameAsStandardLibrary(t *testing.T, body []byte) {
	t.Helper()
	if !utf8.Valid(body) || hasLoneSurrogate(body) {
		return
	}
	var fast, std Message
	fastErr := fastJSONUnmarshal(body, &fast)
	stdErr := json.Unmarshal(body, &std)
	switch {
	case fastErr == nil && stdErr != nil:
		t.Fatalf("fastJSON took %q, which encoding/json refuses: %v", body, stdErr)
	case fastErr == nil && !reflect.DeepEqual(fast, std):
		t.Fatalf("fastJSON decoded %q to\n%+v\nencoding/json to\n%+v", body, fast, std)
	}
}

func checkValidationErrors(t *testing.T, body []byte, err error) {
	t.Helper()
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			checkValidationErrors(t, body, e)
		}
		return
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("Decode(%q) error %v (%T) is not a *ValidationError", body, err, err)
	}
}
