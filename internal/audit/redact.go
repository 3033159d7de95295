package audit

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Redactor returns what may be written for the value of a field: the value
// itself, or a masked version. Append calls it for every free-text field of
// a record before the record is hashed, with the field's JSON name as key
// (run_id, fingerprint, alertname, runbook, action, target, result, reason),
// each Fields key, and "argv" for each argument (or, for the argument after
// a flag without "=", such as "--password" "x", the flag's name without its
// dashes: "password"). What it returns is what the log holds: a secret it
// lets through is on disk for good.
type Redactor func(key, value string) string

// Redacted replaces a secret in the log.
const Redacted = "[REDACTED]"

// secretWords are the key names whose values are always masked.
const secretWords = `pass|secret|token|key|authorization|cookie|credential`

var (
	// authScheme finds HTTP credentials anywhere in a value:
	// "Bearer abc", "Authorization: Basic dXNlcjpwdw==".
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[^\s"',;]+`)
	// secretAssign finds key=value and key: value pairs whose key names a
	// secret, as in "--password=x", "api_token: x", "?access_key=x&".
	secretAssign = regexp.MustCompile(`(?i)([a-z0-9_.-]*(?:` + secretWords + `)[a-z0-9_.-]*\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&,;"']+)`)
	// urlUserinfo finds the password in scheme://user:password@host.
	urlUserinfo = regexp.MustCompile(`(://[^/\s:@]*:)[^/\s@]+@`)
)

// DefaultRedactor masks the whole value of a key that names a secret (any
// key containing pass, secret, token, key, authorization, cookie or
// credential, in any case), and inside any other value: HTTP credentials
// ("Bearer ...", "Basic ..."), key=value or key: value pairs whose key names
// a secret, and the password of a URL. It errs on the side of masking: a
// word after "basic" is masked even in prose.
func DefaultRedactor(key, value string) string {
	if value == "" {
		return value
	}
	if secretKeyName(key) {
		return Redacted
	}
	if !strings.ContainsAny(value, " \t=:") || !secretHint(value) {
		return value
	}
	value = authScheme.ReplaceAllString(value, "${1}${2}"+Redacted)
	value = secretAssign.ReplaceAllStringFunc(value, func(m string) string {
		sub := secretAssign.FindStringSubmatch(m)
		if strings.EqualFold(sub[2], "bearer") || strings.EqualFold(sub[2], "basic") {
			return m // "Authorization: Basic [REDACTED]", already masked above
		}
		return sub[1] + Redacted
	})
	value = urlUserinfo.ReplaceAllString(value, "${1}"+Redacted+"@")
	return value
}

// redact applies fn to every free-text field of r, keeping it valid UTF-8
// whatever fn returns. r must be normalized. Argv and fields are copied
// before the first value that changes, so the caller's are never modified.
func (r *Record) redact(redactor Redactor) {
	fn := func(key, value string) string { return strings.ToValidUTF8(redactor(key, value), "\uFFFD") }
	for _, f := range r.stringFields() {
		*f.val = fn(f.key, *f.val)
	}
	r.Result = fn("result", r.Result)
	r.Reason = fn("reason", r.Reason)
	argv, copied := r.Argv, false
	for i, a := range argv {
		key := "argv"
		if i > 0 {
			if prev := argv[i-1]; strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") {
				key = strings.TrimLeft(prev, "-")
			}
		}
		if v := fn(key, a); v != a {
			if !copied {
				r.Argv, copied = slices.Clone(argv), true
			}
			r.Argv[i] = v
		}
	}
	fields, copied := r.Fields, false
	for k, v := range fields {
		if red := fn(k, v); red != v {
			if !copied {
				r.Fields, copied = maps.Clone(fields), true
			}
			r.Fields[k] = red
		}
	}
}

// secretHints are what every pattern below needs to find in a value before
// it can match: the secret words, the HTTP schemes and a URL's userinfo.
var secretHints = []string{"pass", "secret", "token", "key", "authorization", "cookie", "credential", "bearer", "basic", "@"}

// secretHint reports whether value holds any of secretHints, in any case:
// a cheap test that spares the regular expressions most values.
func secretHint(value string) bool {
	lower := strings.ToLower(value)
	for _, h := range secretHints {
		if strings.Contains(lower, h) {
			return true
		}
	}
	return false
}

// secretWordList is secretWords as a list, for secretKeyName.
var secretWordList = strings.Split(secretWords, "|")

// secretKeyName reports whether key holds a secret word, in any case.
func secretKeyName(key string) bool {
	lower := strings.ToLower(key)
	for _, w := range secretWordList {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}
