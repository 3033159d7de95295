package llm

import (
	"errors"
	"testing"
)

func FuzzParseAnswer(f *testing.F) {
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
		a, err := parseAnswer(content)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("parseAnswer(%q) = %v; want every error to be a malformed answer", content, err)
			}
			return
		}
		if a.By != "" || a.Fallback != "" {
			t.Fatalf("parseAnswer(%q) set by %q or fallback %q, which only the client sets", content, a.By, a.Fallback)
		}
	})
}
