package action

import (
	"context"
	"slices"
	"sync"
)

// fakeRunner records the commands it is asked to run and runs none.
type fakeRunner struct {
	mu    sync.Mutex
	calls [][]string
	stdin [][]byte
	// reply, when set, answers a call; otherwise the call succeeds with
	// no output.
	reply func(argv []string) (Output, error)
}

func (f *fakeRunner) Run(_ context.Context, argv []string, stdin []byte) (Output, error) {
	f.mu.Lock()
	f.calls = append(f.calls, slices.Clone(argv))
	f.stdin = append(f.stdin, slices.Clone(stdin))
	reply := f.reply
	f.mu.Unlock()
	if reply != nil {
		return reply(argv)
	}
	return Output{}, nil
}

func (f *fakeRunner) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
