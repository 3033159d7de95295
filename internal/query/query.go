// Package query asks PromQL questions for the healer's prechecks,
// verifications and gates, of any server with the Prometheus query API
// (Prometheus, VictoriaMetrics, Thanos, Mimir, or the standalone healer's
// embedded engine), and scopes them to an alert's series without ever
// putting a label value into PromQL text.
package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Querier answers an instant query.
type Querier interface {
	Query(ctx context.Context, expr string, ts time.Time) (model.Vector, error)
}

// RangeQuerier answers a range query: the history forecasts and the
// maintenance windows are computed from.
type RangeQuerier interface {
	QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (model.Matrix, error)
}

// Client is a Querier over the Prometheus HTTP API, built with
// client_golang's API client and prometheus/common's HTTP client config
// (auth, TLS, proxy) like any Prometheus integration.
type Client struct {
	api     v1.API
	timeout time.Duration
}

// NewClient returns a client of the server at url.
func NewClient(url string, cfg promconfig.HTTPClientConfig, timeout time.Duration) (*Client, error) {
	rt, err := promconfig.NewRoundTripperFromConfig(cfg, "deus-healer")
	if err != nil {
		return nil, fmt.Errorf("prometheus http_config: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus url: %w", err)
	}
	return &Client{api: v1.NewAPI(c), timeout: timeout}, nil
}

// Query runs expr at ts and returns its result, which must be a vector or a
// scalar (returned as a one-sample vector).
func (c *Client) Query(ctx context.Context, expr string, ts time.Time) (model.Vector, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	v, _, _, err := c.api.Query(ctx, expr, ts)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	return asVector(v)
}

// QueryRange runs expr from start to end every step; the result must be a
// matrix.
func (c *Client) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	v, _, _, err := c.api.QueryRange(ctx, expr, v1.Range{Start: start, End: end, Step: step})
	if err != nil {
		return nil, fmt.Errorf("query_range %q: %w", expr, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query_range %q returned a %s, want a matrix", expr, v.Type())
	}
	return m, nil
}

func asVector(v model.Value) (model.Vector, error) {
	switch v := v.(type) {
	case model.Vector:
		return v, nil
	case *model.Scalar:
		return model.Vector{{Value: v.Value, Timestamp: v.Timestamp}}, nil
	default:
		return nil, fmt.Errorf("query returned a %s, want a vector", v.Type())
	}
}

// Scope returns expr with an equality matcher name="value" added to every
// series selector for each label name in names, taking the values from the
// alert's labels. The result is rendered from the parsed expression, so it
// always parses and a value can only ever be a matcher's value. A name the
// alert does not have is an error: a query scoped to nothing would ask about
// every series.
func Scope(expr string, names []string, alertLabels map[string]string) (string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", expr, err)
	}
	if len(names) == 0 {
		return e.String(), nil
	}
	add := make([]*labels.Matcher, 0, len(names))
	for _, n := range names {
		v, ok := alertLabels[n]
		if !ok {
			return "", fmt.Errorf("the alert has no label %q to scope the query with", n)
		}
		add = append(add, labels.MustNewMatcher(labels.MatchEqual, n, v))
	}
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		kept := vs.LabelMatchers[:0]
		for _, m := range vs.LabelMatchers {
			drop := false
			for _, a := range add {
				if m.Name == a.Name {
					drop = true
				}
			}
			if !drop {
				kept = append(kept, m)
			}
		}
		vs.LabelMatchers = append(kept, add...)
		return nil
	})
	return e.String(), nil
}

// Holds runs a scoped condition and reports whether it holds: for
// expect "nonempty" the query returns at least one sample, for "empty" none.
// It also returns the samples, for the audit.
func Holds(ctx context.Context, q Querier, expr, expect string, ts time.Time) (bool, model.Vector, error) {
	if q == nil {
		return false, nil, errors.New("no Prometheus is configured to ask")
	}
	v, err := q.Query(ctx, expr, ts)
	if err != nil {
		return false, nil, err
	}
	if expect == "empty" {
		return len(v) == 0, v, nil
	}
	return len(v) > 0, v, nil
}
