package healer

import (
	"context"
	"fmt"

	"github.com/deus-ex-machina/deus/internal/audit"
)

// chainBroken returns why the audit chain failed its check at start
// (Options.AuditChain), or nil.
func (h *Healer) chainBroken() error {
	if h.opts.AuditChain == nil {
		return nil
	}
	return h.opts.AuditChain()
}

// notActing is the reason a run ends with while the audit chain is broken.
func notActing(err error) string {
	return "not acting while the audit log fails its check against the head stored in the database (" + err.Error() +
		"); see docs/healer.md, Audit, for what to do"
}

// escalateChain pages people once, at start, that the audit chain is broken
// and the healer holds off acting: a HealerEscalation with
// problem="audit_chain_broken" and the reason. A failure to post is logged
// and recorded, not retried.
func (h *Healer) escalateChain(ctx context.Context, broken error) {
	rec := audit.Record{Kind: audit.KindEscalated, Reason: broken.Error(), Fields: map[string]string{"problem": "audit_chain_broken"}}
	if h.opts.Alertmanager == nil {
		rec.Result = "no_alertmanager"
	} else {
		labels := map[string]string{"severity": "critical", "problem": "audit_chain_broken"}
		if id := h.cfg.Load().Global.Identity; len(id) > 0 {
			labels["instance"] = id[0]
		}
		ann := map[string]string{
			"summary":     "The healer's audit log does not match the head stored in its database; it runs no action.",
			"description": fmt.Sprintf("HealerAuditChainBroken: %s. Records may have been cut from the log or the chain rewritten. Every run ends skipped until a person has looked and the healer was restarted on a log that matches.", broken),
		}
		if err := h.opts.Alertmanager.Escalate(ctx, labels, ann, h.now()); err != nil {
			rec.Result, rec.Reason = "failed", broken.Error()+"; posting to Alertmanager failed: "+err.Error()
			h.logger.Error("audit_chain_escalation_failed", "err", err)
		} else {
			rec.Result = "posted"
			h.opts.Metrics.escalations.Inc()
		}
	}
	h.logger.Warn("audit_chain_escalated", "result", rec.Result)
	// The record goes onto the log as it is: it says what happened, and
	// the stored head stays where it was, so the mismatch stands.
	_ = h.record(ctx, rec) // record logs its own failure
}
