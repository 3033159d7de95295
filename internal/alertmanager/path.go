package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The functions here run only on a body that json.Unmarshal accepted but that
// is wrong somewhere: they walk its tokens to name the path of what is wrong.
// The common case, a good payload, never walks.

// frame is one level of the walk: an object or an array being read.
type frame struct {
	array   bool
	index   int    // in an array: the index of the current value
	key     string // in an object: the key of the current value
	wantKey bool   // in an object: the next string is a key
}

// walk calls visit for every token of body with the path of its value (for a
// key, the path of the value it names; for { and [, the path of the object
// or array they open), the token's bytes and the offset just after it. It
// stops when visit returns false or at the first token it cannot read.
func walk(body []byte, visit func(path []frame, raw []byte, end int64, isKey bool) bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // 1e400 is valid JSON but not a float64
	var stack []frame
	advance := func() {
		if len(stack) == 0 {
			return
		}
		top := &stack[len(stack)-1]
		if top.array {
			top.index++
		} else {
			top.wantKey = true
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return
		}
		end := dec.InputOffset()
		raw := bytes.TrimLeft(body[start:end], " \t\r\n,:")
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if !visit(stack, raw, end, false) {
					return
				}
				stack = append(stack, frame{array: d == '[', wantKey: d == '{'})
			default:
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				advance()
			}
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].wantKey {
			key, _ := tok.(string)
			stack[n-1].key, stack[n-1].wantKey = key, false
			if !visit(stack, raw, end, true) {
				return
			}
			continue
		}
		if !visit(stack, raw, end, false) {
			return
		}
		advance()
	}
}

// formatPath renders a path as alerts[3].labels["a b"]: keys that are plain
// identifiers after a dot, others quoted in brackets.
func formatPath(path []frame) string {
	var b strings.Builder
	for _, f := range path {
		switch {
		case f.array:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		case isIdentifier(f.key):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		default:
			b.WriteString("[" + quote(f.key) + "]")
		}
	}
	return b.String()
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// pathEndingAt returns the path of the last value that ends at or before
// offset, which is where json.UnmarshalTypeError points: just after a scalar
// of the wrong type, or just after the { or [ of a wrong object or array.
func pathEndingAt(body []byte, offset int64) string {
	var path string
	walk(body, func(p []frame, _ []byte, end int64, isKey bool) bool {
		if end > offset {
			return false
		}
		if !isKey {
			path = formatPath(p)
		}
		return true
	})
	return path
}

// badStrings returns an error for every key or string value of body that
// encoding/json would not decode byte for byte: invalid UTF-8, or a \u
// escape of an unpaired UTF-16 surrogate. Both become U+FFFD silently.
func badStrings(body []byte) []error {
	var errs []error
	walk(body, func(p []frame, raw []byte, _ int64, isKey bool) bool {
		if len(raw) == 0 || raw[0] != '"' {
			return true
		}
		what := "value"
		if isKey {
			what = "key"
		}
		switch {
		case !utf8.Valid(raw):
			errs = append(errs, &ValidationError{Field: formatPath(p), Err: errors.New(what + " is not valid UTF-8")})
		case hasLoneSurrogate(raw):
			errs = append(errs, &ValidationError{Field: formatPath(p), Err: errors.New(what + " escapes an unpaired UTF-16 surrogate")})
		}
		return true
	})
	if len(errs) == 0 {
		// The quick check on the whole body found something the walk did
		// not; refuse the body rather than let a replaced string through.
		errs = append(errs, &ValidationError{Err: errors.New("payload is not valid UTF-8")})
	}
	return errs
}

// hasLoneSurrogate reports whether the JSON text b holds a \uXXXX escape of a
// UTF-16 surrogate that is not half of a high-low pair. b must be JSON that
// json.Unmarshal accepted, so every backslash starts an escape.
func hasLoneSurrogate(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			b = b[i+2:]
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok {
			return false // not JSON; json.Unmarshal said so already
		}
		b = b[i+6:]
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
				return true
			}
			low, ok := hex4(b[2:])
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			b = b[6:]
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// badTimes returns an error for every alerts[i].startsAt and endsAt of body
// that time.Time does not accept as JSON. Keys match case-insensitively, as
// encoding/json matches them.
func badTimes(body []byte) []error {
	var errs []error
	walk(body, func(p []frame, raw []byte, _ int64, isKey bool) bool {
		if isKey || len(p) != 3 || !strings.EqualFold(p[0].key, "alerts") || !p[1].array || p[2].array ||
			!strings.EqualFold(p[2].key, "startsAt") && !strings.EqualFold(p[2].key, "endsAt") {
			return true
		}
		var t time.Time
		if err := t.UnmarshalJSON(raw); err != nil {
			got := "a JSON " + jsonKind(raw)
			var s string
			if json.Unmarshal(raw, &s) == nil {
				got = quote(s)
			}
			errs = append(errs, &ValidationError{Field: formatPath(p), Err: errors.New("must be an RFC 3339 time, got " + got)})
		}
		return true
	})
	return errs
}

// jsonKind names the kind of JSON value whose first token is raw.
func jsonKind(raw []byte) string {
	switch {
	case len(raw) == 0:
		return "value"
	case raw[0] == '{':
		return "object"
	case raw[0] == '[':
		return "array"
	case raw[0] == '"':
		return "string"
	case raw[0] == 't' || raw[0] == 'f':
		return "boolean"
	case raw[0] == 'n':
		return "null"
	default:
		return "number"
	}
}
