package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/store"
)

// chain is the audit chain as the store sees it: the head committed with
// every state change (store.Options.AuditHead) is the log's, once the log
// was found to match the head stored before; while it does not, the
// stored head stays as it was.
type chain struct {
	log *audit.Log
	ok  atomic.Bool
	// err is what the check at start found; nil when the log matched.
	err error
}

// head is store.Options.AuditHead.
func (c *chain) head() (uint64, string, bool) {
	if !c.ok.Load() {
		return 0, "", false
	}
	seq, hash := c.log.Head()
	return seq, hash, true
}

// check runs checkAuditChain and keeps what it found.
func (c *chain) check(ctx context.Context, st *store.Store, dir string, key []byte, logger *slog.Logger) {
	c.err = checkAuditChain(ctx, st, dir, key, logger)
	c.ok.Store(c.err == nil)
}

// checkAuditChain verifies the audit log once at start, after Open has cut
// off a record torn by a crash (appends after that keep the chain), against
// the head stored in the database and with the key when there is one. The
// log may hold records past the head: their state changes had not committed
// when the healer stopped. It returns nil when the log matches, or what
// does not.
func checkAuditChain(ctx context.Context, st *store.Store, dir string, key []byte, logger *slog.Logger) error {
	seq, hash, stored, err := st.AuditHead(ctx)
	if err != nil {
		logger.Error("audit_chain_broken", "path", dir, "err", err)
		return err
	}
	// A log without keyed records may be keyed from now on: the stored
	// head vouches for what it holds.
	o := audit.VerifyOptions{Key: key, AcceptUnkeyed: true}
	if stored {
		o.Anchor = &audit.Anchor{Seq: seq, Hash: hash}
	}
	rep, err := audit.VerifyWith(dir, o)
	if err != nil {
		if stored {
			err = fmt.Errorf("the audit log does not match the head stored in the database (seq %d): %w", seq, err)
		}
		logger.Error("audit_chain_broken", "path", dir, "stored_head", stored, "head_seq", seq, "err", err)
		return err
	}
	if !stored && rep.Records > 0 {
		// A database from before the head was kept (migrated just now)
		// has none yet: the log vouches for itself once. Any other
		// database without a head beside a log with records was replaced
		// or had its head deleted, which is how a cut would be hidden.
		if v := st.OpenedAt(); v < 0 || v >= 3 {
			err := fmt.Errorf("the database holds no audit head but the log holds %d records: the database was replaced or its head removed; look, then run healer audit accept", rep.Records)
			logger.Error("audit_chain_broken", "path", dir, "stored_head", false, "err", err)
			return err
		}
		logger.Warn("audit_head_missing", "path", dir, "records", rep.Records, "note", "a database migrated from before the head was kept: the log was checked alone; the head is stored from now on")
	}
	logger.Info("audit_chain_verified", "path", dir, "records", rep.Records, "head_seq", seq, "past_head", rep.PastAnchor, "keyed", rep.Keyed)
	return nil
}
