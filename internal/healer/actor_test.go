package healer

import (
	"errors"
	"strings"
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

// Four eyes compares every identity each request proved: alice asking as
// her user and approving with her certificate and her user is still alice.
func TestFourEyesRefusesAnyIdentityOfTheRequester(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                string
		requester, approver string
		refused             bool
	}{
		{"alice's certificate beside her user cannot approve what her user asked for", "user:alice", "cert:CN=alice+user:alice", true},
		{"alice's user cannot approve what she asked for with her certificate and user", "cert:CN=alice+user:alice", "user:alice", true},
		{"a token holder's certificate cannot approve what the token alone asked for", "token:/etc/deus/api.token", "cert:CN=alice+token:/etc/deus/api.token", true},
		{"the token alone cannot approve what a certificate with the token asked for", "cert:CN=alice+token:/etc/deus/api.token", "token:/etc/deus/api.token", true},
		{"bob approves what alice asked for", "cert:CN=alice+user:alice", "cert:CN=bob+user:bob", false},
		{"bob approves what alice asked for though both hold the token", "cert:CN=alice+token:/etc/deus/api.token", "cert:CN=bob+token:/etc/deus/api.token", false},
		{"a subject with several attributes is one identity", "cert:CN=alice+O=ops", "cert:CN=bob+O=ops", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, strings.Replace(restart, "max_tier: medium}", "max_tier: low}\napprovals: {distinct_approver: true}", 1))
			run, err := e.h.RunAction(t.Context(), "restart_service", map[string]string{"unit": "nginx.service"}, false, Actor{Principal: tt.requester})
			if err != nil {
				t.Fatal(err)
			}
			err = e.h.Approve(t.Context(), run.ID, Actor{Principal: tt.approver})
			if !tt.refused {
				if err != nil {
					t.Fatalf("got %v, want it approved", err)
				}
				if runs := e.settle(); runs[0].DecidedBy != tt.approver {
					t.Errorf("decided by %q, want %q", runs[0].DecidedBy, tt.approver)
				}
				return
			}
			if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "distinct_approver") {
				t.Errorf("got %v, want ErrNotAllowed naming approvals.distinct_approver", err)
			}
			if n, _ := e.act.count(); n != 0 {
				t.Errorf("the action ran %d times", n)
			}
		})
	}
}
