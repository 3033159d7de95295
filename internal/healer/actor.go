package healer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Actor is who asked for something by hand: the principal the request
// authenticated as, and the name the client claimed. The principal is what
// the audit and the run hold as the decider; the claimed name is kept
// beside it, never instead of it, since any client can claim any name.
type Actor struct {
	// Principal is everything the request proved, joined with "+" in
	// this order: "cert:SUBJECT" (a verified client certificate),
	// "user:NAME" (basic auth), "token:FILE" (the bearer token read from
	// FILE), as in "cert:CN=alice+user:alice"; "" when nothing did (an
	// unauthenticated request on loopback).
	Principal string
	// Claimed is the name the client gave ("by"); may be empty.
	Claimed string
}

// Anonymous is how an actor with no principal is recorded.
const Anonymous = "anonymous (unauthenticated, loopback)"

// MaxClaimedName is the longest claimed name accepted, in bytes.
const MaxClaimedName = 128

// ErrInvalidActor is returned for a claimed name that is not a short line
// of printable text.
var ErrInvalidActor = errors.New("invalid name")

// Validate refuses a claimed name that could not be shown on one line of an
// audit record or a page: too long, not UTF-8, or holding control
// characters, invisible formatting characters, or the line and paragraph
// separators (U+2028, U+2029) that some tools split lines on.
func (a Actor) Validate() error {
	if len(a.Claimed) > MaxClaimedName {
		return fmt.Errorf("by: %d bytes, at most %d: %w", len(a.Claimed), MaxClaimedName, ErrInvalidActor)
	}
	if !utf8.ValidString(a.Claimed) {
		return fmt.Errorf("by: not UTF-8: %w", ErrInvalidActor)
	}
	for i, r := range a.Claimed {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == unicode.ReplacementChar {
			return fmt.Errorf("by: character %U at byte %d is not printable: %w", r, i, ErrInvalidActor)
		}
	}
	return nil
}

// Who is the principal as recorded: Anonymous when there is none.
func (a Actor) Who() string {
	if a.Principal == "" {
		return Anonymous
	}
	return a.Principal
}

// String is the decider as the run holds it and the log says it: the
// principal, with the claimed name when it says something more.
func (a Actor) String() string {
	if a.Claimed == "" || a.Claimed == a.Principal {
		return a.Who()
	}
	return fmt.Sprintf("%q (%s)", a.Claimed, a.Who())
}

// fields are the audit record's fields naming the actor.
func (a Actor) fields() map[string]string {
	f := map[string]string{"principal": a.Who()}
	if a.Claimed != "" {
		f["by"] = a.Claimed
	}
	return f
}

// identitySchemes begin the identities a principal joins.
var identitySchemes = []string{"cert:", "user:", "token:"}

// identities splits a principal into the identities it joins: at each "+"
// that begins another identity ("+cert:", "+user:", "+token:"), so that a
// "+" inside a subject (CN=a+O=b) stays in it. The split of an identity
// depends on it alone, so two principals that share an identity share its
// parts.
func identities(principal string) []string {
	var ids []string
	start := 0
	for i := 0; i < len(principal); i++ {
		if principal[i] != '+' {
			continue
		}
		if slices.ContainsFunc(identitySchemes, func(s string) bool { return strings.HasPrefix(principal[i+1:], s) }) {
			ids = append(ids, principal[start:i])
			start = i + 1
		}
	}
	if start < len(principal) {
		ids = append(ids, principal[start:])
	}
	return ids
}

// personal is whether an identity is one person's (a user, a certificate)
// rather than a token anyone given it holds.
func personal(id string) bool { return !strings.HasPrefix(id, "token:") }

// mayBe reports whether the actor may be whoever the principal requester
// names, for four eyes: they share a person's identity (the same user or
// certificate, whichever else each proved), or one of them proved no
// person's identity and they share a token, which anyone given it holds.
func (a Actor) mayBe(requester string) bool {
	mine, theirs := identities(a.Principal), identities(requester)
	anonymous := !slices.ContainsFunc(mine, personal) || !slices.ContainsFunc(theirs, personal)
	for _, id := range mine {
		if slices.Contains(theirs, id) && (personal(id) || anonymous) {
			return true
		}
	}
	return false
}
