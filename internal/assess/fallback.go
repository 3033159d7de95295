package assess

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// FallbackReason says why WithFallback used the local analyzer: a bounded
// value, fit for a metric label.
type FallbackReason string

// The reasons for a fallback.
const (
	// FallbackError: the primary assessor returned an error.
	FallbackError FallbackReason = "error"
	// FallbackInvalid: the primary's answer failed Validate.
	FallbackInvalid FallbackReason = "invalid"
)

// WithFallback returns an Assessor that asks primary and, when it fails or
// its answer fails Validate, returns local's assessment with Fallback set
// to why. The caller audits the assessment, Fallback included.
func WithFallback(primary, local Assessor) Assessor {
	return WithFallbackNotify(primary, local, nil)
}

// WithFallbackNotify is WithFallback that also calls notify, when not nil,
// with the reason of each fallback (to count them).
func WithFallbackNotify(primary, local Assessor, notify func(FallbackReason)) Assessor {
	return fallback{primary: primary, local: local, notify: notify}
}

type fallback struct {
	primary, local Assessor
	notify         func(FallbackReason)
}

func (f fallback) Assess(ctx context.Context, c Context) (Assessment, error) {
	a, err := f.primary.Assess(ctx, c)
	if err == nil {
		if err = Validate(c, a); err == nil {
			return a, nil
		}
		return f.fall(ctx, c, FallbackInvalid, fmt.Errorf("answer refused: %w", err))
	}
	return f.fall(ctx, c, FallbackError, fmt.Errorf("assessor failed: %w", err))
}

func (f fallback) fall(ctx context.Context, c Context, reason FallbackReason, why error) (Assessment, error) {
	if f.notify != nil {
		f.notify(reason)
	}
	a, err := f.local.Assess(ctx, c)
	if err != nil {
		return Assessment{}, errors.Join(why, fmt.Errorf("local assessor: %w", err))
	}
	a.Fallback = bound(why.Error(), MaxFallback)
	if err := Validate(c, a); err != nil {
		return Assessment{}, errors.Join(why, fmt.Errorf("local assessment: %w", err))
	}
	return a, nil
}

// bound cuts s to at most n bytes on a rune boundary, marking the cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
