package store

import (
	"errors"
	"fmt"
	"slices"
)

// RunState is where a run is in its life.
type RunState string

// Run states.
const (
	RunPending     RunState = "pending"      // planned, guards not yet passed
	RunWaiting     RunState = "waiting"      // waiting for approval
	RunApproved    RunState = "approved"     // approved, not yet started
	RunRunning     RunState = "running"      // the action is running or being verified
	RunSucceeded   RunState = "succeeded"    // ran (and verified, when asked)
	RunFailed      RunState = "failed"       // the action or its verification failed
	RunRolledBack  RunState = "rolled_back"  // undone after a failed verification or by hand
	RunSkipped     RunState = "skipped"      // a guard or precheck said no; Reason says why
	RunDenied      RunState = "denied"       // a person denied it
	RunExpired     RunState = "expired"      // its approval expired
	RunCancelled   RunState = "cancelled"    // the alert resolved before it acted
	RunInterrupted RunState = "interrupted"  // the healer stopped while it ran
	RunDryRun      RunState = "dry_run"      // what it would have done, recorded
	RunRollingBack RunState = "rolling_back" // being rolled back by hand
	RunScheduled   RunState = "scheduled"    // waiting for a maintenance window until ExpiresAt
)

// RunStates are every run state, in the order of a run's life.
var RunStates = []RunState{
	RunPending, RunWaiting, RunApproved, RunRunning, RunSucceeded, RunFailed, RunRolledBack, RunSkipped,
	RunDenied, RunExpired, RunCancelled, RunInterrupted, RunDryRun, RunRollingBack, RunScheduled,
}

// transitions are the moves a run may make, from each state to the states
// it may become; UpdateRun and Interrupt refuse every other.
var transitions = map[RunState][]RunState{
	RunPending:  {RunWaiting, RunScheduled, RunRunning, RunSkipped, RunCancelled},
	RunWaiting:  {RunApproved, RunDenied, RunExpired, RunCancelled},
	RunApproved: {RunScheduled, RunRunning, RunSkipped, RunCancelled},
	// A scheduled run goes back to where it was when its window opens: an
	// approved one stays approved.
	RunScheduled: {RunPending, RunApproved, RunCancelled},
	RunRunning:   {RunSucceeded, RunFailed, RunRolledBack, RunDryRun, RunInterrupted},
	// A finished run is rolled back by hand; a rollback that undid nothing
	// returns it to where it was.
	RunSucceeded:   {RunRollingBack},
	RunFailed:      {RunRollingBack},
	RunRollingBack: {RunRolledBack, RunSucceeded, RunFailed},
}

// ErrTransition is returned for a change of state the lifecycle forbids: a
// bug in the caller, not a race.
var ErrTransition = errors.New("the run's lifecycle forbids this change of state")

// CanTransition reports whether a run in state from may become to.
func CanTransition(from, to RunState) bool { return slices.Contains(transitions[from], to) }

// Final reports whether a run in state s will not change again (except by a
// rollback by hand).
func (s RunState) Final() bool {
	switch s {
	case RunPending, RunWaiting, RunApproved, RunRunning, RunRollingBack, RunScheduled:
		return false
	}
	return true
}

// Valid reports whether s is a run state.
func (s RunState) Valid() bool { return slices.Contains(RunStates, s) }

// Final reports whether a run in state will not change again (except by a
// rollback by hand).
func Final(state RunState) bool { return state.Final() }

// checkTransition returns the states a run may be in for it to become to:
// from, each of which must be allowed, or when from is empty every state
// the table allows.
func checkTransition(to RunState, from []RunState) ([]RunState, error) {
	if !to.Valid() {
		return nil, fmt.Errorf("%q is not a run state: %w", to, ErrTransition)
	}
	if len(from) == 0 {
		for _, f := range RunStates {
			if CanTransition(f, to) {
				from = append(from, f)
			}
		}
		if len(from) == 0 {
			return nil, fmt.Errorf("no state may become %s: %w", to, ErrTransition)
		}
		return from, nil
	}
	for _, f := range from {
		if !CanTransition(f, to) {
			return nil, fmt.Errorf("%s to %s: %w", f, to, ErrTransition)
		}
	}
	return from, nil
}

// StepState is where a step of a run is.
type StepState string

// Step states.
const (
	StepPending    StepState = ""            // not run yet
	StepOK         StepState = "ok"          // it ran and did what it said
	StepFailed     StepState = "failed"      // it ran and failed (or timed out)
	StepDryRun     StepState = "dry_run"     // it said what it would do
	StepRolledBack StepState = "rolled_back" // it was undone
)
