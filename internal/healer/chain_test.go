package healer

import (
	"errors"
	"strings"
	"testing"

	"github.com/deus-ex-machina/deus/internal/store"
)

// While the audit log does not match the head stored in the database, no
// action runs: the run ends skipped before its guards, a rollback by hand
// is refused, and people are paged once.
func TestABrokenAuditChainRunsNothing(t *testing.T) {
	t.Parallel()
	broken := errors.New("audit.log:14 (seq 15): anchored record missing: records cut from the end")
	e := newEnv(t, restart, func(o *Options) { o.AuditChain = func() error { return broken } })
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if n, _ := e.act.count(); n != 0 {
		t.Errorf("the action ran %d times with the chain broken; want never", n)
	}
	if len(runs) != 1 || runs[0].State != store.RunSkipped || !strings.Contains(runs[0].Reason, broken.Error()) {
		t.Fatalf("runs: %+v; want one skipped, naming the mismatch", runs)
	}
	if got, want := auditKinds(t, e.dir), "escalated:posted received:firing matched:matched incident:opened skipped:skipped"; got != want {
		t.Errorf("audit:\n got %s\nwant %s", got, want)
	}
	if n := e.am.count(); n != 1 {
		t.Fatalf("%d escalations; want 1", n)
	}
	e.am.mu.Lock()
	esc := e.am.escalations[0]
	e.am.mu.Unlock()
	if esc["problem"] != "audit_chain_broken" || esc["severity"] != "critical" || !strings.Contains(esc["description"], broken.Error()) {
		t.Errorf("escalation %v; want problem audit_chain_broken, critical, with the reason", esc)
	}
	e.post("webhook-resolved.json", nil)
	e.settle()
	if n := e.am.count(); n != 1 {
		t.Errorf("%d escalations after more alerts; want still 1", n)
	}
	if _, err := e.h.Rollback(t.Context(), runs[0].ID, Actor{Principal: "user:ops"}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Rollback with the chain broken: got %v, want ErrNotAllowed", err)
	}
}
