package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/assess/answer"
	"github.com/deus-ex-machina/deus/internal/assess/mask"
)

// By returns the By of the client's assessments: "model:" and the model.
func (cl *Client) By() string { return "model:" + cl.opts.Model }

// Tokens returns the prompt and completion tokens the server reported for
// every request of the client so far, as deus_brain_tokens_total counts
// them, so that a caller can tell what one assessment cost.
func (cl *Client) Tokens() (prompt, completion int64) {
	return cl.promptTokens.Load(), cl.completionTokens.Load()
}

// Request returns the exact body Assess would send for c now, masked, for
// a dry run. It holds no key: the key travels only in a header.
func (cl *Client) Request(c assess.Context) ([]byte, error) {
	p, err := cl.params(c, mask.New(cl.opts.Mask), cl.useSchema())
	if err != nil {
		return nil, err
	}
	// The client sends the body without escaping HTML (a placeholder's
	// angle brackets stay as they are); so does the dry run.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode the request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Fallback returns an assessor that asks the client and falls back to
// local, counting each fallback in deus_brain_fallbacks_total.
func (cl *Client) Fallback(local assess.Assessor) assess.Assessor {
	return assess.WithFallbackNotify(cl, local, func(r assess.FallbackReason) {
		cl.metrics.fallbacks.WithLabelValues(string(r)).Inc()
	})
}

// Assess asks the model about c. The answer's text and parameters are
// unmasked for display and for the action; the caller validates it
// (assess.Validate, as assess.WithFallback does).
func (cl *Client) Assess(ctx context.Context, c assess.Context) (assess.Assessment, error) {
	m := mask.New(cl.opts.Mask)
	content, err := cl.complete(ctx, c, m)
	if err != nil {
		return assess.Assessment{}, err
	}
	a, err := answer.Parse(content)
	if err != nil {
		cl.metrics.failures.WithLabelValues(reasonMalformed).Inc()
		return assess.Assessment{}, err
	}
	a.Cause, a.Why = m.Unmask(a.Cause), m.Unmask(a.Why)
	for k, v := range a.Params {
		a.Params[k] = m.Unmask(v)
	}
	a.By = cl.By()
	return a, nil
}

// complete sends the request for c and returns the answer's content. When
// the server refuses structured output with a 400, it asks again, once, for
// a JSON object, and does so from then on.
func (cl *Client) complete(ctx context.Context, c assess.Context, m *mask.Masker) (string, error) {
	schema := cl.useSchema()
	content, err := cl.send(ctx, c, m, schema)
	var apiErr *openai.Error
	if schema && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest {
		cl.schemaRefused.Store(true)
		cl.logger.Info("structured output refused, asking for a json object", "status", apiErr.StatusCode)
		return cl.send(ctx, c, m, false)
	}
	return content, err
}

func (cl *Client) useSchema() bool { return cl.opts.JSONSchema && !cl.schemaRefused.Load() }

// send makes one request within the budget and the timeout.
func (cl *Client) send(ctx context.Context, c assess.Context, m *mask.Masker, schema bool) (string, error) {
	if err := cl.budget.take(); err != nil {
		cl.metrics.requests.WithLabelValues(outcomeRefused).Inc()
		cl.metrics.failures.WithLabelValues(reasonBudget).Inc()
		return "", err
	}
	p, err := cl.params(c, m, schema)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, cl.opts.Timeout)
	defer cancel()
	start := time.Now()
	res, err := cl.api.Chat.Completions.New(ctx, p)
	took := time.Since(start)
	cl.metrics.duration.Observe(took.Seconds())
	if err != nil {
		cl.metrics.requests.WithLabelValues(outcomeFailed).Inc()
		cl.metrics.failures.WithLabelValues(failureReason(ctx, err)).Inc()
		return "", fmt.Errorf("chat completion: %w", err)
	}
	cl.metrics.requests.WithLabelValues(outcomeOK).Inc()
	cl.metrics.tokens.WithLabelValues("prompt").Add(float64(res.Usage.PromptTokens))
	cl.metrics.tokens.WithLabelValues("completion").Add(float64(res.Usage.CompletionTokens))
	cl.promptTokens.Add(res.Usage.PromptTokens)
	cl.completionTokens.Add(res.Usage.CompletionTokens)
	cl.budget.spend(int(res.Usage.TotalTokens))
	cl.logger.Debug("model answered", "duration_seconds", took.Seconds(),
		"prompt_tokens", res.Usage.PromptTokens, "completion_tokens", res.Usage.CompletionTokens)
	if len(res.Choices) == 0 {
		cl.metrics.failures.WithLabelValues(reasonMalformed).Inc()
		return "", fmt.Errorf("%w: no choices", answer.ErrMalformed)
	}
	return res.Choices[0].Message.Content, nil
}

// failureReason is the bounded reason a request failed, for the metric.
func failureReason(ctx context.Context, err error) string {
	var apiErr *openai.Error
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
		return reasonRateLimited
	case errors.As(err, &apiErr):
		return reasonStatus
	}
	return reasonTransport
}
