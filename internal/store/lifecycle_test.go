package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestUpdateRunRefusesEveryTransitionTheLifecycleForbids(t *testing.T) {
	t.Parallel()
	s := open(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	allowed := 0
	for _, from := range RunStates {
		for _, to := range RunStates {
			id := fmt.Sprintf("%s-%s", from, to)
			if err := s.InsertRun(t.Context(), Run{ID: id, State: from, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			err := s.UpdateRun(t.Context(), id, Update{State: to}, from)
			got, rerr := s.Run(t.Context(), id)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if CanTransition(from, to) {
				allowed++
				if err != nil || got.State != to {
					t.Errorf("%s to %s (allowed): got %v, state %s", from, to, err, got.State)
				}
				continue
			}
			if !errors.Is(err, ErrTransition) || got.State != from {
				t.Errorf("%s to %s (forbidden): got %v, state %s; want ErrTransition and the run left %s", from, to, err, got.State, from)
			}
		}
	}
	if allowed < 15 {
		t.Errorf("only %d transitions are allowed; the table lost some", allowed)
	}
}

func TestUpdateRunWithoutFromAllowsOnlyTheTablesPredecessors(t *testing.T) {
	t.Parallel()
	s := open(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if err := s.InsertRun(t.Context(), Run{ID: "r", State: RunDenied, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRun(t.Context(), "r", Update{State: RunRunning}); !errors.Is(err, ErrConflict) {
		t.Errorf("a denied run to running with no from: got %v, want ErrConflict (denied may not become running)", err)
	}
	if err := s.UpdateRun(t.Context(), "r", Update{State: "exploded"}); !errors.Is(err, ErrTransition) {
		t.Errorf("an unknown state: got %v, want ErrTransition", err)
	}
	if err := s.UpdateRun(t.Context(), "r", Update{Reason: "a note"}); err != nil {
		t.Errorf("an update that changes no state: %v", err)
	}
}

func TestEveryRunStateIsFinalOrCanMove(t *testing.T) {
	t.Parallel()
	for _, st := range RunStates {
		moves := len(transitions[st]) > 0
		if !st.Final() && !moves {
			t.Errorf("%s is not final but can become nothing", st)
		}
	}
}

func TestPruneKeepsEveryRunThatIsNotFinal(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s := openWithClock(t, func() time.Time { return now })
	old := now.Add(-365 * 24 * time.Hour)
	for _, st := range RunStates {
		if err := s.InsertRun(t.Context(), Run{ID: string(st), State: st, CreatedAt: old}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Prune(t.Context(), Retention{Runs: 24 * time.Hour, Alerts: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, st := range RunStates {
		_, err := s.Run(t.Context(), string(st))
		if kept := err == nil; kept == st.Final() {
			t.Errorf("a year-old %s run: kept %v; want kept only while it is not final", st, kept)
		}
	}
}
