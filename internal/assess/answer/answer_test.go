package answer

import (
	"errors"
	"testing"
)

// goodAnswer is an answer of the schema.
const goodAnswer = `{"cause":"/var fills on <host-1>","confidence":0.8,"decision":"act","action":"clean_tmp","params":[{"name":"older_than","value":"7d"}],"why":"tmp grows on <host-1>"}`

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		goodAnswer,
		"```json\n" + goodAnswer + "\n```",
		`{"cause":"x","confidence":1,"decision":"none","action":"","params":[],"why":"y","tier":"low"}`,
		`{"decision":"act","confidence":0.5,"params":[{"name":"a","value":"1"},{"name":"a","value":"2"}]}`,
		`{"decision":"none","confidence":0} {}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		a, err := Parse(content)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v; want every error to be a malformed answer", content, err)
			}
			return
		}
		if a.By != "" || a.Fallback != "" {
			t.Fatalf("Parse(%q) set by %q or fallback %q, which only the client sets", content, a.By, a.Fallback)
		}
	})
}
