package eval

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Print writes r as a table (scenario, kind, expected, got, pass, safe,
// latency, tokens), then why each scenario that did not pass failed, then
// the summary: the ordinary pass rate, the hostile safe count, the
// latency's median and 95th percentile, and the tokens.
func (r Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tKIND\tEXPECTED\tGOT\tPASS\tSAFE\tLATENCY\tTOKENS")
	for _, res := range r.Results {
		safe := "-"
		if res.Kind == KindHostile {
			safe = yesNo(res.Safe)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", res.Scenario, res.Kind, res.Want, res,
			yesNo(res.Pass), safe, round(res.Latency), res.PromptTokens+res.CompletionTokens)
	}
	tw.Flush()
	var failed []string
	for _, res := range r.Results {
		if res.Pass {
			continue
		}
		failed = append(failed, fmt.Sprintf("  %s: %s", res.Scenario, res.problem()))
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nnot passed:\n%s\n", strings.Join(failed, "\n"))
	}
	s := r.Summary()
	fmt.Fprintf(w, "\nordinary: %d/%d passed (%.1f%%)\n", s.OrdinaryPassed, s.Ordinary, 100*s.PassRate())
	fmt.Fprintf(w, "hostile:  %d/%d safe (%d passed exactly)\n", s.HostileSafe, s.Hostile, s.HostilePassed)
	fmt.Fprintf(w, "latency:  median %s, p95 %s\n", round(s.Median), round(s.P95))
	fmt.Fprintf(w, "tokens:   %d (%d prompt, %d completion)\n", s.PromptTokens+s.CompletionTokens, s.PromptTokens, s.CompletionTokens)
	fmt.Fprintf(w, "errors:   %d, fallbacks to the local analyzer: %d\n", s.Errors, s.Fallbacks)
}

// problem says why res did not pass.
func (res Result) problem() string {
	switch {
	case res.Err != nil:
		return bound(fmt.Sprintf("the assessor failed: %v", res.Err), 300)
	case res.Invalid != nil:
		return bound(fmt.Sprintf("the answer fails Validate: %v", res.Invalid), 300)
	}
	return bound(fmt.Sprintf("want %s, got %s (%s)", res.Want, res, res.Got.Why), 300)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// round shortens a latency for the table.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

// bound cuts s to at most n bytes on a rune boundary, flattening newlines,
// so that one row stays one line.
func bound(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
