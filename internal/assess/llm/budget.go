package llm

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBudget is returned when the hourly budget of requests or tokens is
// spent; the server was not contacted.
var ErrBudget = errors.New("budget spent")

// budget counts requests and tokens over a rolling hour.
type budget struct {
	maxRequests, maxTokens int
	now                    func() time.Time

	mu       sync.Mutex
	requests []time.Time
	tokens   []spent
}

type spent struct {
	at time.Time
	n  int
}

func newBudget(maxRequests, maxTokens int, now func() time.Time) *budget {
	return &budget{maxRequests: maxRequests, maxTokens: maxTokens, now: now}
}

// take reserves one request, or refuses with ErrBudget.
func (b *budget) take() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.prune(now)
	if b.maxRequests > 0 && len(b.requests) >= b.maxRequests {
		return fmt.Errorf("%w: %d requests in the last hour, the limit is %d", ErrBudget, len(b.requests), b.maxRequests)
	}
	if used := b.used(); b.maxTokens > 0 && used >= b.maxTokens {
		return fmt.Errorf("%w: %d tokens in the last hour, the limit is %d", ErrBudget, used, b.maxTokens)
	}
	b.requests = append(b.requests, now)
	return nil
}

// spend records the tokens a request used.
func (b *budget) spend(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = append(b.tokens, spent{at: b.now(), n: n})
}

// prune forgets what is more than an hour old. Both lists are in time order.
func (b *budget) prune(now time.Time) {
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(b.requests) && !b.requests[i].After(cut) {
		i++
	}
	b.requests = b.requests[i:]
	j := 0
	for j < len(b.tokens) && !b.tokens[j].at.After(cut) {
		j++
	}
	b.tokens = b.tokens[j:]
}

func (b *budget) used() int {
	n := 0
	for _, s := range b.tokens {
		n += s.n
	}
	return n
}
