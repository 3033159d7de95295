package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/store"
)

// prune applies the retention periods every hour (and once at start).
func prune(ctx context.Context, cfg func() *config.Config, st *store.Store, alog *audit.Log, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		c := cfg()
		ret := c.Storage.Retention
		if a, r, err := st.Prune(ctx, store.Retention{Alerts: time.Duration(ret.Alerts), Runs: time.Duration(ret.Runs)}); err != nil {
			logger.Error("prune_failed", "what", "store", "err", err)
		} else if a+r > 0 {
			logger.Info("pruned", "alerts", a, "runs", r)
		}
		if dirs, err := action.PruneQuarantine(c.Actions.QuarantineDir, time.Now().Add(-time.Duration(ret.Quarantine))); err != nil {
			logger.Error("prune_failed", "what", "quarantine", "err", err)
		} else if len(dirs) > 0 {
			logger.Info("pruned", "quarantine_runs", len(dirs))
		}
		if n, err := alog.Prune(ctx, time.Now().Add(-time.Duration(c.Audit.Retention))); err != nil {
			logger.Error("prune_failed", "what", "audit", "err", err)
		} else if n > 0 {
			logger.Info("pruned", "audit_files", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expirer is an action whose effects end on their own schedule (block_ip
// on iptables, which has no timeouts of its own).
type expirer interface {
	ExpireBlocks(ctx context.Context) ([]string, error)
}

// expireBlocks lifts expired blocks every minute.
func expireBlocks(ctx context.Context, reg *action.Registry, logger *slog.Logger) {
	a, ok := reg.Get("block_ip")
	if !ok {
		return
	}
	e, ok := a.(expirer)
	if !ok {
		return
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if lifted, err := e.ExpireBlocks(ctx); err != nil {
				logger.Error("expire_blocks_failed", "err", err)
			} else if len(lifted) > 0 {
				logger.Info("blocks_expired", "addresses", lifted)
			}
		}
	}
}
