package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultRedactor(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		key, value, want string
	}{
		"a password field":                 {key: "password", value: "hunter2", want: Redacted},
		"a key named in capitals":          {key: "DB_PASSWORD", value: "hunter2", want: Redacted},
		"an api_key field":                 {key: "api_key", value: "abc123", want: Redacted},
		"a token field":                    {key: "webhook_token", value: "t0k3n", want: Redacted},
		"a client secret":                  {key: "clientSecret", value: "s3cr3t", want: Redacted},
		"an authorization header":          {key: "Authorization", value: "Negotiate abc", want: Redacted},
		"a cookie":                         {key: "cookie", value: "session=abc", want: Redacted},
		"credentials":                      {key: "credentials_file", value: "/etc/x", want: Redacted},
		"an empty secret stays empty":      {key: "password", value: "", want: ""},
		"a bearer token in any field":      {key: "reason", value: "Bearer eyJhbGciOi.abc.def", want: "Bearer " + Redacted},
		"a lower-case bearer token":        {key: "reason", value: "sent bearer abc", want: "sent bearer " + Redacted},
		"basic credentials in a header":    {key: "result", value: "Authorization: Basic dXNlcjpwdw==", want: "Authorization: Basic " + Redacted},
		"basic credentials alone":          {key: "target", value: "Basic dXNlcjpwdw==", want: "Basic " + Redacted},
		"a flag with a password":           {key: "argv", value: "--password=hunter2", want: "--password=" + Redacted},
		"a token in a query string":        {key: "target", value: "https://x/hook?access_token=abc&x=1", want: "https://x/hook?access_token=" + Redacted + "&x=1"},
		"a secret in a YAML-ish line":      {key: "reason", value: "config has api_key: abc123 in it", want: "config has api_key: " + Redacted + " in it"},
		"a quoted secret":                  {key: "reason", value: `password="a b c"`, want: "password=" + Redacted},
		"a password in a URL":              {key: "target", value: "https://user:hunter2@example.com/x", want: "https://user:" + Redacted + "@example.com/x"},
		"an ordinary value":                {key: "alertname", value: "DiskWillFillSoon", want: "DiskWillFillSoon"},
		"a path":                           {key: "target", value: "/var/tmp/cache", want: "/var/tmp/cache"},
		"a label set without secrets":      {key: "reason", value: "instance=host1:9100 job=node", want: "instance=host1:9100 job=node"},
		"a URL without a password":         {key: "target", value: "http://localhost:9090/api/v1/query", want: "http://localhost:9090/api/v1/query"},
		"a duration":                       {key: "duration_seconds", value: "0.25", want: "0.25"},
		"the fingerprint of an alert":      {key: "fingerprint", value: "5f6e7d8c9b0a1f2e", want: "5f6e7d8c9b0a1f2e"},
		"a monkey is not a key":            {key: "monkey", value: "banana", want: Redacted},
		"several secrets in one value":     {key: "reason", value: "token=a secret=b", want: "token=" + Redacted + " secret=" + Redacted},
		"a secret after other assignments": {key: "reason", value: "user=bob passwd=x", want: "user=bob passwd=" + Redacted},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := DefaultRedactor(tt.key, tt.value); got != tt.want {
				t.Errorf("DefaultRedactor(%q, %q) = %q; want %q", tt.key, tt.value, got, tt.want)
			}
		})
	}
}

func TestSecretsNeverReachTheFile(t *testing.T) {
	t.Parallel()
	secrets := []string{"hunter2", "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig", "dXNlcjpwdw==", "s3cr3t-flag-value", "t0k3n-in-url"}
	rec := Record{
		Kind:   KindStarted,
		Action: "http_request",
		Target: "https://healer:t0k3n-in-url@example.com/hook",
		Argv:   []string{"curl", "-H", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig", "--password", "s3cr3t-flag-value", "-u", "Basic dXNlcjpwdw=="},
		Reason: "retrying with password=hunter2",
		Fields: map[string]string{"password": "hunter2", "header": "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig"},
	}
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	got, err := l.Append(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Fields["password"] != "hunter2" || rec.Argv[4] != "s3cr3t-flag-value" {
		t.Errorf("Append changed the caller's fields or argv: %v %v", rec.Fields, rec.Argv)
	}
	if got.Fields["password"] != Redacted || got.Argv[4] != Redacted {
		t.Errorf("returned record not redacted: %+v", got)
	}
	closeLog(t, l)
	b, err := os.ReadFile(filepath.Join(dir, currentName))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("the log holds the secret %q:\n%s", s, b)
		}
	}
	mustVerify(t, dir)
}

func TestCustomRedactor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var keys []string
	redact := func(key, value string) string {
		keys = append(keys, key)
		return strings.ReplaceAll(value, "host1", "[HOST]")
	}
	l := openLog(t, dir, Options{Redact: redact})
	got, err := l.Append(t.Context(), Record{Kind: KindMatched, Target: "host1", Argv: []string{"--host", "host1"}, Fields: map[string]string{"instance": "host1:9100"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Target != "[HOST]" || got.Argv[1] != "[HOST]" || got.Fields["instance"] != "[HOST]:9100" {
		t.Errorf("custom redactor not applied: %+v", got)
	}
	want := "run_id incident fingerprint alertname runbook action target result reason argv host instance"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("redactor called with keys %q; want %q", got, want)
	}
}
