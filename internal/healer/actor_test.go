package healer

import (
	"errors"
	"testing"
)

func TestClaimedNamesStayOnOneLine(t *testing.T) {
	t.Parallel()
	for name, claimed := range map[string]string{
		"a line separator (U+2028)":      "ops\u2028kind: approved",
		"a paragraph separator (U+2029)": "ops\u2029kind: approved",
		"a newline":                      "ops\nkind: approved",
	} {
		if err := (Actor{Principal: "user:ops", Claimed: claimed}).Validate(); !errors.Is(err, ErrInvalidActor) {
			t.Errorf("a name with %s: got %v, want ErrInvalidActor", name, err)
		}
	}
	for _, claimed := range []string{"", "Zoë O'Brien", "ops team", "运维"} {
		if err := (Actor{Claimed: claimed}).Validate(); err != nil {
			t.Errorf("%q: got %v, want it accepted", claimed, err)
		}
	}
}
