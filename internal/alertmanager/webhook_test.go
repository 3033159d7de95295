package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// ignoreUnexported skips template.Data's routeLabelsRendered, which no
// payload sets.
var ignoreUnexported = cmpopts.IgnoreUnexported(template.Data{})

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestDecodeFixtures(t *testing.T) {
	t.Parallel()
	labels := template.KV{
		"alertname":   "HealerTestTrigger",
		"instance":    "127.0.0.1:19100",
		"job":         "node",
		"remediation": "restart_service",
		"severity":    "critical",
	}
	annotations := template.KV{
		"runbook_url": "https://example.invalid/runbook",
		"summary":     "Test trigger is 1 on 127.0.0.1:19100",
	}
	message := func(status string, endsAt time.Time) *Message {
		return &Message{
			Data: template.Data{
				Receiver: "healer",
				Status:   status,
				Alerts: template.Alerts{{
					Status:       status,
					Labels:       labels,
					Annotations:  annotations,
					StartsAt:     mustTime(t, "2026-11-23T18:19:19.694Z"),
					EndsAt:       endsAt,
					GeneratorURL: "http://vm:19090/graph?g0.expr=healer_test_trigger+%3E+0&g0.tab=1",
					Fingerprint:  "03dcb9292ee7cedb",
				}},
				GroupLabels:       template.KV{"alertname": "HealerTestTrigger"},
				CommonLabels:      labels,
				CommonAnnotations: annotations,
				ExternalURL:       "http://vm:19093",
			},
			Version:  "4",
			GroupKey: `{}:{alertname="HealerTestTrigger"}`,
		}
	}
	alert := func(status Status, endsAt time.Time) Alert {
		return Alert{
			Status: status,
			Labels: model.LabelSet{
				"alertname":   "HealerTestTrigger",
				"instance":    "127.0.0.1:19100",
				"job":         "node",
				"remediation": "restart_service",
				"severity":    "critical",
			},
			Annotations: model.LabelSet{
				"runbook_url": "https://example.invalid/runbook",
				"summary":     "Test trigger is 1 on 127.0.0.1:19100",
			},
			StartsAt:     mustTime(t, "2026-11-23T18:19:19.694Z"),
			EndsAt:       endsAt,
			GeneratorURL: "http://vm:19090/graph?g0.expr=healer_test_trigger+%3E+0&g0.tab=1",
			Fingerprint:  "03dcb9292ee7cedb",
			Receiver:     "healer",
			GroupKey:     `{}:{alertname="HealerTestTrigger"}`,
			ExternalURL:  "http://vm:19093",
		}
	}
	resolvedAt := mustTime(t, "2026-11-23T18:19:22.694Z")
	tests := []struct {
		name    string
		fixture string
		want    *Message
		alerts  []Alert
		keys    []string
	}{
		{
			name:    "a firing notification from Alertmanager decodes field for field",
			fixture: "webhook-firing.json",
			want:    message("firing", time.Time{}),
			alerts:  []Alert{alert(StatusFiring, time.Time{})},
			keys:    []string{"03dcb9292ee7cedb/firing/2026-11-23T18:19:19.694000000Z"},
		},
		{
			name:    "its resolved notification decodes field for field",
			fixture: "webhook-resolved.json",
			want:    message("resolved", resolvedAt),
			alerts:  []Alert{alert(StatusResolved, resolvedAt)},
			keys:    []string{"03dcb9292ee7cedb/resolved/2026-11-23T18:19:19.694000000Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(bytes.NewReader(readFixture(t, tt.fixture)))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.fixture, err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreUnexported); diff != "" {
				t.Errorf("Decode(%s) mismatch (-want +got):\n%s", tt.fixture, diff)
			}
			alerts := Split(got)
			if diff := cmp.Diff(tt.alerts, alerts); diff != "" {
				t.Errorf("Split(%s) mismatch (-want +got):\n%s", tt.fixture, diff)
			}
			var keys []string
			for _, a := range alerts {
				keys = append(keys, a.Key())
			}
			if diff := cmp.Diff(tt.keys, keys); diff != "" {
				t.Errorf("keys of %s mismatch (-want +got):\n%s", tt.fixture, diff)
			}
		})
	}
}

// payload returns a valid notification with n firing alerts, as a map that
// a test can change before marshalling it.
func payload(n int) map[string]any {
	alerts := make([]any, n)
	for i := range alerts {
		alerts[i] = map[string]any{
			"status":       "firing",
			"labels":       map[string]any{"alertname": "DiskWillFillSoon", "instance": fmt.Sprintf("host-%d:9100", i), "job": "node", "mountpoint": "/"},
			"annotations":  map[string]any{"summary": "Disk / on host will fill in 4h", "runbook_url": "https://example.invalid/runbook"},
			"startsAt":     "2026-11-23T18:19:19.694Z",
			"endsAt":       "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus:9090/graph?g0.expr=x",
			"fingerprint":  fmt.Sprintf("%016x", 0xabc0+i),
		}
	}
	return map[string]any{
		"receiver":          "healer",
		"status":            "firing",
		"alerts":            alerts,
		"groupLabels":       map[string]any{"alertname": "DiskWillFillSoon"},
		"commonLabels":      map[string]any{"alertname": "DiskWillFillSoon", "job": "node"},
		"commonAnnotations": map[string]any{},
		"externalURL":       "http://alertmanager:9093",
		"version":           "4",
		"groupKey":          `{}:{alertname="DiskWillFillSoon"}`,
		"truncatedAlerts":   0,
	}
}

func alertOf(p map[string]any, i int) map[string]any {
	return p["alerts"].([]any)[i].(map[string]any)
}

func marshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fieldsOf returns the Field of every *ValidationError joined in err, and
// fails the test if err holds anything else.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var fields []string
	var visit func(error)
	visit = func(err error) {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				visit(e)
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("error %v (%T) is not a *ValidationError", err, err)
			return
		}
		fields = append(fields, ve.Field)
	}
	visit(err)
	return fields
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	// edit returns the marshalled payload of n alerts after change.
	edit := func(n int, change func(p map[string]any)) []byte {
		p := payload(n)
		change(p)
		return marshal(t, p)
	}
	// corrupt marshals a payload with a label value of "@BAD@", then puts
	// bad in its place byte for byte, which json.Marshal would not do.
	corrupt := func(change func(p map[string]any), bad string) []byte {
		b := edit(1, change)
		if !bytes.Contains(b, []byte("@BAD@")) {
			t.Fatal("no @BAD@ in the payload")
		}
		return bytes.ReplaceAll(b, []byte("@BAD@"), []byte(bad))
	}
	valid := marshal(t, payload(1))
	tests := []struct {
		name   string
		body   []byte
		fields []string
	}{
		{
			name:   "a payload without a version is refused",
			body:   edit(1, func(p map[string]any) { delete(p, "version") }),
			fields: []string{"version"},
		},
		{
			name:   "version 3 is refused",
			body:   edit(1, func(p map[string]any) { p["version"] = "3" }),
			fields: []string{"version"},
		},
		{
			name:   "a notification status other than firing or resolved is refused",
			body:   edit(1, func(p map[string]any) { p["status"] = "pending" }),
			fields: []string{"status"},
		},
		{
			name:   "status is case-sensitive",
			body:   edit(1, func(p map[string]any) { p["status"] = "FIRING" }),
			fields: []string{"status"},
		},
		{
			name:   "a notification without alerts is refused",
			body:   edit(0, func(map[string]any) {}),
			fields: []string{"alerts"},
		},
		{
			name:   "an alert status other than firing or resolved names the alert",
			body:   edit(5, func(p map[string]any) { alertOf(p, 3)["status"] = "pending" }),
			fields: []string{"alerts[3].status"},
		},
		{
			name:   "an alert without a status is refused",
			body:   edit(2, func(p map[string]any) { delete(alertOf(p, 1), "status") }),
			fields: []string{"alerts[1].status"},
		},
		{
			name:   "an alert without a fingerprint is refused",
			body:   edit(1, func(p map[string]any) { delete(alertOf(p, 0), "fingerprint") }),
			fields: []string{"alerts[0].fingerprint"},
		},
		{
			name:   "an upper-case fingerprint is refused",
			body:   edit(1, func(p map[string]any) { alertOf(p, 0)["fingerprint"] = "03DCB9292EE7CEDB" }),
			fields: []string{"alerts[0].fingerprint"},
		},
		{
			name:   "a fingerprint that is not 16 hex digits is refused",
			body:   edit(1, func(p map[string]any) { alertOf(p, 0)["fingerprint"] = "03dcb9292ee7cedb/firing" }),
			fields: []string{"alerts[0].fingerprint"},
		},
		{
			name:   "an alert without startsAt is refused",
			body:   edit(1, func(p map[string]any) { delete(alertOf(p, 0), "startsAt") }),
			fields: []string{"alerts[0].startsAt"},
		},
		{
			name:   "a zero startsAt is refused",
			body:   edit(1, func(p map[string]any) { alertOf(p, 0)["startsAt"] = "0001-01-01T00:00:00Z" }),
			fields: []string{"alerts[0].startsAt"},
		},
		{
			name:   "a startsAt that is not a time names the alert",
			body:   edit(3, func(p map[string]any) { alertOf(p, 2)["startsAt"] = "yesterday" }),
			fields: []string{"alerts[2].startsAt"},
		},
		{
			name:   "an endsAt that is a number names the alert",
			body:   edit(2, func(p map[string]any) { alertOf(p, 1)["endsAt"] = 42 }),
			fields: []string{"alerts[1].endsAt"},
		},
		{
			name:   "an alert without labels is refused",
			body:   edit(1, func(p map[string]any) { alertOf(p, 0)["labels"] = map[string]any{} }),
			fields: []string{"alerts[0].labels"},
		},
		{
			name:   "a label value that is a number names the label",
			body:   edit(2, func(p map[string]any) { alertOf(p, 1)["labels"].(map[string]any)["job"] = 1 }),
			fields: []string{"alerts[1].labels.job"},
		},
		{
			name:   "an alert status that is a number names the alert",
			body:   edit(2, func(p map[string]any) { alertOf(p, 1)["status"] = true }),
			fields: []string{"alerts[1].status"},
		},
		{
			name:   "alerts that are an object are refused",
			body:   edit(1, func(p map[string]any) { p["alerts"] = map[string]any{} }),
			fields: []string{"alerts"},
		},
		{
			name:   "a negative truncatedAlerts is refused",
			body:   edit(1, func(p map[string]any) { p["truncatedAlerts"] = -1 }),
			fields: []string{"truncatedAlerts"},
		},
		{
			name:   "a label value that is not UTF-8 names the label",
			body:   corrupt(func(p map[string]any) { alertOf(p, 0)["labels"].(map[string]any)["job"] = "@BAD@" }, "node\xff"),
			fields: []string{"alerts[0].labels.job"},
		},
		{
			name: "a label name that is not UTF-8 names the label",
			body: corrupt(func(p map[string]any) { alertOf(p, 0)["labels"].(map[string]any)["@BAD@"] = "x" }, "a\xc3"),
			// encoding/json has replaced the bad byte by the time the path is
			// written; the path still says which label.
			fields: []string{"alerts[0].labels[\"a\ufffd\"]"},
		},
		{
			name:   "an unpaired high surrogate escape is refused",
			body:   corrupt(func(p map[string]any) { alertOf(p, 0)["annotations"].(map[string]any)["summary"] = "@BAD@" }, `disk \ud83d full`),
			fields: []string{"alerts[0].annotations.summary"},
		},
		{
			name:   "an unpaired low surrogate escape is refused",
			body:   corrupt(func(p map[string]any) { p["receiver"] = "@BAD@" }, `\udc00`),
			fields: []string{"receiver"},
		},
		{
			name:   "invalid UTF-8 is refused even in a field Decode ignores",
			body:   corrupt(func(p map[string]any) { p["extra"] = []any{1, map[string]any{"x": "@BAD@"}} }, "\xfe"),
			fields: []string{"extra[1].x"},
		},
		{
			name: "every problem is reported, each with its path",
			body: edit(3, func(p map[string]any) {
				p["version"] = "5"
				p["status"] = ""
				alertOf(p, 0)["status"] = "pending"
				delete(alertOf(p, 2), "fingerprint")
				delete(alertOf(p, 2), "startsAt")
				alertOf(p, 2)["labels"] = nil
			}),
			fields: []string{"version", "status", "alerts[0].status", "alerts[2].fingerprint", "alerts[2].startsAt", "alerts[2].labels"},
		},
		{name: "an empty body is refused", body: nil, fields: []string{""}},
		{name: "white space alone is refused", body: []byte(" \n"), fields: []string{""}},
		{name: "null is refused", body: []byte("null"), fields: []string{""}},
		{name: "an array is refused", body: []byte("[" + string(valid) + "]"), fields: []string{""}},
		{name: "a cut-off payload is refused", body: valid[:len(valid)/2], fields: []string{""}},
		{name: "trailing garbage after the object is refused", body: append(bytes.Clone(valid), "garbage"...), fields: []string{""}},
		{name: "a second JSON value is refused", body: append(bytes.Clone(valid), valid...), fields: []string{""}},
		{name: "a second JSON value after a newline is refused", body: append(append(bytes.Clone(valid), '\n'), "{}"...), fields: []string{""}},
		{name: "a raw NUL byte is not JSON", body: corrupt(func(p map[string]any) { p["receiver"] = "@BAD@" }, "\x00"), fields: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := Decode(bytes.NewReader(tt.body))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, nil; want an error", tt.body, msg)
			}
			if msg != nil {
				t.Errorf("Decode(%q) returned a message with error %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.fields, fieldsOf(t, err)); diff != "" {
				t.Errorf("Decode(%q) error fields mismatch (-want +got):\n%s\nerror: %v", tt.body, diff, err)
			}
		})
	}
}

func TestDecodeErrorText(t *testing.T) {
	t.Parallel()
	p := payload(2)
	alertOf(p, 1)["status"] = "pending"
	alertOf(p, 0)["fingerprint"] = strings.Repeat("x", 10000)
	_, err := Decode(bytes.NewReader(marshal(t, p)))
	want := `alerts[0].fingerprint: must be 16 lowercase hex digits, got "` + strings.Repeat("x", 64) + `"...` + "\n" +
		`alerts[1].status: must be "firing" or "resolved", got "pending"`
	if err == nil || err.Error() != want {
		t.Errorf("Decode() error = %v; want %s", err, want)
	}
}

func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	edit := func(change func(p map[string]any)) []byte {
		p := payload(1)
		change(p)
		return marshal(t, p)
	}
	tests := []struct {
		name string
		body []byte
		// check looks at the decoded message; nil when decoding is enough.
		check func(t *testing.T, msg *Message)
	}{
		{
			name: "unknown fields are ignored at every level",
			body: edit(func(p map[string]any) {
				p["routeLabels"] = map[string]any{"team": "infra"}
				p["futureField"] = map[string]any{"nested": []any{1, "two", nil, json.RawMessage("1e400")}}
				alertOf(p, 0)["silencedBy"] = []any{"abc"}
			}),
		},
		{
			name: "trailing white space, as Alertmanager's json.Encoder writes, is accepted",
			body: append(marshal(t, payload(1)), "\n\t \r\n"...),
		},
		{
			name: "a resolved notification may carry firing alerts",
			body: edit(func(p map[string]any) { p["status"] = "resolved"; p["truncatedAlerts"] = 3 }),
		},
		{
			name: "a startsAt in the future is accepted",
			body: edit(func(p map[string]any) { alertOf(p, 0)["startsAt"] = "2999-01-01T00:00:00Z" }),
		},
		{
			name: "a startsAt with nanoseconds and an offset is accepted",
			body: edit(func(p map[string]any) { alertOf(p, 0)["startsAt"] = "2026-11-23T19:19:19.694000001+01:00" }),
			check: func(t *testing.T, msg *Message) {
				want := "000000000000abc0/firing/2026-11-23T18:19:19.694000001Z"
				if got := Split(msg)[0].Key(); got != want {
					t.Errorf("Key() = %q; want %q", got, want)
				}
			},
		},
		{
			name: "an escaped surrogate pair is one character",
			body: bytes.Replace(marshal(t, payload(1)), []byte(`"job":"node"`), []byte(`"job":"\ud83d\ude80 \u00e9"`), 1),
			check: func(t *testing.T, msg *Message) {
				if got, want := msg.Alerts[0].Labels["job"], "🚀 é"; got != want {
					t.Errorf("labels.job = %q; want %q", got, want)
				}
			},
		},
		{
			name: "an escaped backslash before u is not an escape",
			body: bytes.Replace(marshal(t, payload(1)), []byte(`"job":"node"`), []byte(`"job":"C:\\ud800"`), 1),
			check: func(t *testing.T, msg *Message) {
				if got, want := msg.Alerts[0].Labels["job"], `C:\ud800`; got != want {
					t.Errorf("labels.job = %q; want %q", got, want)
				}
			},
		},
		{
			name: "a U+FFFD that the sender put there stays",
			body: edit(func(p map[string]any) { alertOf(p, 0)["labels"].(map[string]any)["job"] = "\ufffd" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := Decode(bytes.NewReader(tt.body))
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.body, err)
			}
			if tt.check != nil {
				tt.check(t, msg)
			}
		})
	}
}

// TestLabelsAreData checks that what an attacker or a careless rule puts in
// labels and annotations arrives as the same bytes, with nothing
// interpreted, trimmed or replaced.
func TestLabelsAreData(t *testing.T) {
	t.Parallel()
	hostile := map[string]string{
		"subshell":    "$(touch pwned)",
		"backticks":   "`touch pwned`",
		"semicolon":   "x; rm -rf / #",
		"newlines":    "line one\nline two\r\n\ttabbed",
		"nul":         "before\x00after",
		"html":        `<script>alert("x")</script> & co`,
		"quotes":      `'single' "double" \backslash\`,
		"path":        "../../etc/passwd",
		"unicode":     "日本語 🚀 ünïcødé \u202egnp.exe \u2028\u2029 \ufeff",
		"huge":        strings.Repeat("0123456789", 1024),
		"empty":       "",
		"a;b $(name)": "label names are data too",
		"alertname":   "DiskWillFillSoon",
	}
	p := payload(1)
	labels := map[string]any{}
	for k, v := range hostile {
		labels[k] = v
	}
	alertOf(p, 0)["labels"] = labels
	alertOf(p, 0)["annotations"] = labels
	body := marshal(t, p)
	if !bytes.Contains(body, []byte(`\u0000`)) {
		t.Fatalf("the payload should carry NUL as \\u0000, as Alertmanager sends it: %s", body)
	}

	msg, err := Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	for _, kv := range []template.KV{msg.Alerts[0].Labels, msg.Alerts[0].Annotations} {
		if diff := cmp.Diff(hostile, map[string]string(kv)); diff != "" {
			t.Errorf("decoded labels mismatch (-want +got):\n%s", diff)
		}
	}
	a := Split(msg)[0]
	for _, ls := range []model.LabelSet{a.Labels, a.Annotations} {
		for k, v := range hostile {
			if got := string(ls[model.LabelName(k)]); got != v {
				t.Errorf("Split label %q = %q; want %q", k, got, v)
			}
		}
		if len(ls) != len(hostile) {
			t.Errorf("Split kept %d labels; want %d", len(ls), len(hostile))
		}
	}
	if want := "000000000000abc0/firing/2026-11-23T18:19:19.694000000Z"; a.Key() != want {
		t.Errorf("Key() = %q; want %q", a.Key(), want)
	}
}

func TestSplitKeepsEachAlertsStatus(t *testing.T) {
	t.Parallel()
	// With max_alerts, Alertmanager cuts the alerts before it computes the
	// notification's status: it can say resolved and still carry firing
	// alerts, and the ones cut may have been firing too.
	p := payload(3)
	p["status"] = "resolved"
	p["truncatedAlerts"] = 7
	alertOf(p, 1)["status"] = "resolved"
	alertOf(p, 1)["endsAt"] = "2026-11-23T18:30:00Z"
	msg, err := Decode(bytes.NewReader(marshal(t, p)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if msg.TruncatedAlerts != 7 {
		t.Errorf("TruncatedAlerts = %d; want 7", msg.TruncatedAlerts)
	}
	var got []Status
	for _, a := range Split(msg) {
		got = append(got, a.Status)
	}
	want := []Status{StatusFiring, StatusResolved, StatusFiring}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Split statuses mismatch (-want +got):\n%s", diff)
	}
}

func TestSplitCopiesLabels(t *testing.T) {
	t.Parallel()
	msg, err := Decode(bytes.NewReader(readFixture(t, "webhook-firing.json")))
	if err != nil {
		t.Fatal(err)
	}
	a := Split(msg)[0]
	a.Labels["job"] = "changed"
	if got := msg.Alerts[0].Labels["job"]; got != "node" {
		t.Errorf("changing a split alert's labels changed the message: job = %q", got)
	}
}

func TestKeyIsTheSameForAnHAPair(t *testing.T) {
	t.Parallel()
	// Two Alertmanagers fed by one Prometheus send the same notification;
	// the bodies differ only in externalURL.
	for _, fixture := range []string{"webhook-firing.json", "webhook-resolved.json"} {
		t.Run(fixture, func(t *testing.T) {
			t.Parallel()
			first := readFixture(t, fixture)
			second := bytes.Replace(first, []byte(`"http://vm:19093"`), []byte(`"http://alertmanager-2.example:9093"`), 1)
			if bytes.Equal(first, second) {
				t.Fatal("externalURL not found in the fixture")
			}
			keys := func(body []byte) ([]string, string) {
				msg, err := Decode(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, a := range Split(msg) {
					keys = append(keys, a.Key())
				}
				return keys, msg.ExternalURL
			}
			k1, url1 := keys(first)
			k2, url2 := keys(second)
			if diff := cmp.Diff(k1, k2); diff != "" {
				t.Errorf("keys from %s and %s differ (-first +second):\n%s", url1, url2, diff)
			}
			if url1 == url2 {
				t.Errorf("both deliveries say externalURL %q", url1)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	base := Alert{Status: StatusFiring, Fingerprint: "03dcb9292ee7cedb", StartsAt: mustTime(t, "2026-11-23T18:19:19.694Z")}
	with := func(change func(a *Alert)) Alert {
		a := base
		change(&a)
		return a
	}
	tests := []struct {
		name  string
		a, b  Alert
		equal bool
	}{
		{
			name:  "a resolved notification has a key of its own",
			a:     base,
			b:     with(func(a *Alert) { a.Status = StatusResolved }),
			equal: false,
		},
		{
			name:  "the same instant written in another zone gives the same key",
			a:     base,
			b:     with(func(a *Alert) { a.StartsAt = mustTime(t, "2026-11-23T19:19:19.694000000+01:00") }),
			equal: true,
		},
		{
			name:  "a new firing of the same alert has a new key",
			a:     base,
			b:     with(func(a *Alert) { a.StartsAt = a.StartsAt.Add(time.Minute) }),
			equal: false,
		},
		{
			name:  "startsAt is kept to the nanosecond",
			a:     base,
			b:     with(func(a *Alert) { a.StartsAt = a.StartsAt.Add(time.Nanosecond) }),
			equal: false,
		},
		{
			name:  "another alert has another key",
			a:     base,
			b:     with(func(a *Alert) { a.Fingerprint = "03dcb9292ee7cedc" }),
			equal: false,
		},
		{
			name: "the sender, the receiver, endsAt and the labels are not part of the key",
			a:    base,
			b: with(func(a *Alert) {
				a.ExternalURL, a.Receiver, a.GroupKey, a.GeneratorURL = "http://am-2:9093", "other", "{}:{}", "http://p-2"
				a.EndsAt = a.StartsAt.Add(time.Hour)
				a.Labels = model.LabelSet{"x": "y"}
			}),
			equal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.a.Key() == tt.b.Key(); got != tt.equal {
				t.Errorf("%q == %q is %v; want %v", tt.a.Key(), tt.b.Key(), got, tt.equal)
			}
		})
	}
}

func TestDecodeReadErrors(t *testing.T) {
	t.Parallel()
	t.Run("an error from the reader is returned wrapped, not as a validation error", func(t *testing.T) {
		t.Parallel()
		cause := errors.New("connection reset")
		_, err := Decode(io.MultiReader(strings.NewReader(`{"version":`), iotest.ErrReader(cause)))
		var ve *ValidationError
		if !errors.Is(err, cause) || errors.As(err, &ve) {
			t.Errorf("Decode() error = %v; want it to wrap %v and not be a *ValidationError", err, cause)
		}
	})
	t.Run("a body over http.MaxBytesReader's limit is an *http.MaxBytesError", func(t *testing.T) {
		t.Parallel()
		body := readFixture(t, "webhook-firing.json")
		rec := httptest.NewRecorder()
		r := http.MaxBytesReader(rec, io.NopCloser(bytes.NewReader(body)), int64(len(body)-1))
		_, err := Decode(r)
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			t.Errorf("Decode() error = %v; want an *http.MaxBytesError", err)
		}
	})
}

// BenchmarkDecode measures what the intake does with a body before it
// stores the alerts: Decode and Split. The intake benchmark compares
// the healer against a handler that does only this.
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 50} {
		body, err := json.Marshal(payload(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				msg, err := Decode(bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				if len(Split(msg)) != n {
					b.Fatal("wrong number of alerts")
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}
