package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
)

func TestOpsCountQueriesAndWriteTransactions(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	step := func(what string, wantReads, wantWrites uint64, do func() error) {
		t.Helper()
		r0, w0 := s.Ops()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		r, w := s.Ops()
		if r-r0 != wantReads || w-w0 != wantWrites {
			t.Errorf("%s: counted %d reads and %d writes, want %d and %d", what, r-r0, w-w0, wantReads, wantWrites)
		}
	}
	if r, w := s.Ops(); r != 0 || w != 0 {
		t.Errorf("a store just opened: counted %d reads and %d writes, want none", r, w)
	}
	a := alert("00000000000000ab", alertmanager.StatusFiring, time.Unix(1700000000, 0))
	run := Run{ID: "r1", AlertKey: a.Key(), Fingerprint: a.Fingerprint, Runbook: "rb", Action: "restart_service", Target: "t", State: RunPending, CreatedAt: time.Now()}
	step("an Accept of two alerts", 0, 1, func() error {
		_, err := s.Accept(ctx, "webhook", []alertmanager.Alert{a, alert("00000000000000ac", alertmanager.StatusFiring, time.Unix(1700000000, 0))})
		return err
	})
	var refs []AlertRef
	step("QueuedRefs", 1, 0, func() (err error) { refs, err = s.QueuedRefs(ctx, 10); return err })
	step("a PlanBatch of two decisions with a run", 0, 1, func() error {
		return s.PlanBatch(ctx, []Decision{{ID: refs[0].ID, State: AlertPlanned, Runs: []Run{run}}, {ID: refs[1].ID, State: AlertDone}})
	})
	step("Run", 1, 0, func() error { _, err := s.Run(ctx, "r1"); return err })
	step("AlertByKey", 1, 0, func() error { _, err := s.AlertByKey(ctx, a.Key()); return err })
	step("Resolved", 1, 0, func() error { _, err := s.Resolved(ctx, a.Fingerprint, a.StartsAt); return err })
	step("Counts, which asks two queries", 2, 0, func() error { _, err := s.Counts(ctx, "rb", "t", time.Now()); return err })
	step("Breaker", 1, 0, func() error { _, err := s.Breaker(ctx, "rb", "t"); return err })
	step("Stats", 1, 0, func() error { _, err := s.Stats(ctx); return err })
	step("an UpdateRun that applies", 0, 1, func() error {
		return s.UpdateRun(ctx, "r1", Update{State: RunRunning, StartedAt: time.Now()}, RunPending)
	})
	step("an UpdateRun that conflicts, and reads the run to tell why", 1, 1, func() error {
		if err := s.UpdateRun(ctx, "r1", Update{State: RunRunning}, RunPending); !errors.Is(err, ErrConflict) {
			return err
		}
		return nil
	})
}

func TestOpsCountConcurrentCallers(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.Stats(ctx); err != nil {
					t.Error(err)
				}
				if err := s.SaveBreaker(ctx, Breaker{Runbook: "rb", Target: "t", Failures: 1, LastFailure: time.Now()}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if r, w := s.Ops(); r != workers*each || w != workers*each {
		t.Errorf("counted %d reads and %d writes, want %d of each", r, w, workers*each)
	}
}

func TestOpsDoNotCountAWriteRefusedByAClosedStore(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(t.Context(), "webhook", []alertmanager.Alert{alert("0000000000000001", "firing", time.Now())}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: got %v, want ErrClosed", err)
	}
	if _, w := s.Ops(); w != 0 {
		t.Errorf("counted %d writes, want none", w)
	}
}
