// Package answer reads a model's answer strictly into an assessment: one
// JSON object of the answer schema and nothing else. It is the untrusted
// input of the brain, kept apart from the client so that it is fuzzed
// alone.
package answer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/deus-ex-machina/deus/internal/assess"
)

// maxAnswer bounds the answer's content, in bytes.
const maxAnswer = 16 << 10

// answer is the JSON a model answers with.
type answer struct {
	Cause      string       `json:"cause"`
	Confidence *float64     `json:"confidence"`
	Decision   *string      `json:"decision"`
	Action     string       `json:"action"`
	Params     []paramValue `json:"params"`
	Why        string       `json:"why"`
}

type paramValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ErrMalformed marks an answer that is not the schema's JSON.
var ErrMalformed = errors.New("malformed answer")

// Parse reads a model's content strictly: one JSON object of the
// answer schema (in a Markdown code fence or not), with no unknown field,
// no duplicate parameter and nothing after it. Fields a model adds (a
// "tier", an "approve") make the answer malformed, not ignored.
func Parse(content string) (assess.Assessment, error) {
	if len(content) > maxAnswer {
		return assess.Assessment{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(content), maxAnswer)
	}
	dec := json.NewDecoder(strings.NewReader(unfence(content)))
	dec.DisallowUnknownFields()
	var a answer
	if err := dec.Decode(&a); err != nil {
		return assess.Assessment{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return assess.Assessment{}, fmt.Errorf("%w: data after the answer", ErrMalformed)
	}
	if a.Decision == nil || a.Confidence == nil {
		return assess.Assessment{}, fmt.Errorf("%w: decision and confidence are required", ErrMalformed)
	}
	out := assess.Assessment{
		Cause: a.Cause, Confidence: *a.Confidence, Decision: assess.Decision(*a.Decision),
		Action: a.Action, Why: a.Why,
	}
	for _, p := range a.Params {
		if out.Params == nil {
			out.Params = map[string]string{}
		}
		if _, dup := out.Params[p.Name]; dup {
			return assess.Assessment{}, fmt.Errorf("%w: parameter %q given twice", ErrMalformed, p.Name)
		}
		out.Params[p.Name] = p.Value
	}
	return out, nil
}

// unfence removes a Markdown code fence around content, which models in
// JSON mode sometimes add.
func unfence(content string) string {
	s := strings.TrimSpace(content)
	if !strings.HasPrefix(s, "```") {
		return s
	}
	s = strings.TrimPrefix(s, "```")
	if i := strings.IndexByte(s, '\n'); i >= 0 && !bytes.ContainsAny([]byte(s[:i]), "{[") {
		s = s[i+1:]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "```"))
}
