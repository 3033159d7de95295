package action

import (
	"context"
	"fmt"
	"time"
)

// VacuumJournal is vacuum_journal: journalctl --vacuum-size, which deletes
// the oldest archived journal files until the journal fits. It cannot be
// undone.
type VacuumJournal struct {
	runner Runner
}

// NewVacuumJournal returns vacuum_journal, running journalctl through
// runner.
func NewVacuumJournal(runner Runner) (*VacuumJournal, error) {
	if runner == nil {
		return nil, fmt.Errorf("vacuum_journal: no runner")
	}
	return &VacuumJournal{runner: runner}, nil
}

// Spec implements Action.
func (v *VacuumJournal) Spec() Spec {
	return Spec{
		Name:    "vacuum_journal",
		Doc:     "Delete the oldest archived systemd journal files until the journal is at most max_size (journalctl --vacuum-size).",
		Tier:    TierLow,
		Timeout: 2 * time.Minute,
		Params: []Param{{
			Name: "max_size", Type: TypeString, Pattern: `[0-9]{1,6}[KMG]`, Default: "500M",
			Doc: "Size to shrink the journal to, in K, M or G (500M).",
		}},
	}
}

// Run implements Action.
func (v *VacuumJournal) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(v.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	argv := []string{"journalctl", "--vacuum-size=" + params["max_size"]}
	res := Result{Target: "journal", Argv: argv}
	if req.DryRun {
		res.Summary = "would run " + quoteArgv(argv)
		return res, nil
	}
	out, err := v.runner.Run(ctx, argv, nil)
	res.Output = out.Text
	if err != nil {
		return res, fmt.Errorf("vacuum_journal: %w", err)
	}
	res.Summary = "vacuumed the journal to at most " + params["max_size"]
	return res, nil
}
