package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// This file holds the lint checks pint would make offline (pint is not
// served by the module proxy here): templates only use labels the
// expression keeps, and rate-like functions see enough samples.

// labelSet is what static analysis knows of the labels an expression's
// result carries: either exactly a subset of keep (closed), or anything
// but drop (open, as a plain selector is).
type labelSet struct {
	open bool
	keep map[string]bool
	drop map[string]bool
}

func openSet() labelSet { return labelSet{open: true, drop: map[string]bool{}} }

func closedSet(names ...string) labelSet {
	s := labelSet{keep: map[string]bool{}}
	for _, n := range names {
		s.keep[n] = true
	}
	return s
}

func (s labelSet) has(name string) bool {
	if s.open {
		return !s.drop[name]
	}
	return s.keep[name]
}

func (s labelSet) without(names ...string) labelSet {
	out := labelSet{open: s.open, keep: map[string]bool{}, drop: map[string]bool{}}
	for k := range s.keep {
		out.keep[k] = !slices.Contains(names, k)
	}
	for k := range s.drop {
		out.drop[k] = true
	}
	for _, n := range names {
		out.drop[n] = true
		delete(out.keep, n)
	}
	return out
}

func (s labelSet) only(names ...string) labelSet {
	out := closedSet()
	for _, n := range names {
		if s.has(n) {
			out.keep[n] = true
		}
	}
	return out
}

func (s labelSet) with(names ...string) labelSet {
	out := s.without() // copy
	for _, n := range names {
		delete(out.drop, n)
		if !out.open {
			out.keep[n] = true
		}
	}
	return out
}

func union(a, b labelSet) labelSet {
	if a.open || b.open {
		out := openSet()
		for k := range a.drop {
			if !b.has(k) {
				out.drop[k] = true
			}
		}
		for k := range b.drop {
			if !a.has(k) {
				out.drop[k] = true
			}
		}
		return out
	}
	out := closedSet()
	for k := range a.keep {
		out.keep[k] = true
	}
	for k := range b.keep {
		out.keep[k] = true
	}
	return out
}

// resultLabels follows PromQL's rules for which labels survive each node.
func resultLabels(e parser.Expr) labelSet {
	switch n := e.(type) {
	case *parser.VectorSelector, *parser.MatrixSelector:
		return openSet()
	case *parser.NumberLiteral, *parser.StringLiteral:
		return closedSet()
	case *parser.ParenExpr:
		return resultLabels(n.Expr)
	case *parser.UnaryExpr:
		return resultLabels(n.Expr)
	case *parser.SubqueryExpr:
		return resultLabels(n.Expr)
	case *parser.StepInvariantExpr:
		return resultLabels(n.Expr)
	case *parser.AggregateExpr:
		inner := resultLabels(n.Expr)
		switch {
		case n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO:
			return inner
		case n.Without:
			return inner.without(n.Grouping...)
		default:
			out := inner.only(n.Grouping...)
			if n.Op == parser.COUNT_VALUES {
				if s, ok := n.Param.(*parser.StringLiteral); ok {
					out = out.with(s.Val)
				}
			}
			return out
		}
	case *parser.BinaryExpr:
		l, r := resultLabels(n.LHS), resultLabels(n.RHS)
		lScalar, rScalar := n.LHS.Type() == parser.ValueTypeScalar, n.RHS.Type() == parser.ValueTypeScalar
		switch {
		case lScalar && rScalar:
			return closedSet()
		case lScalar:
			return r
		case rScalar:
			return l
		}
		switch n.Op {
		case parser.LAND, parser.LUNLESS:
			return l
		case parser.LOR:
			return union(l, r)
		}
		m := n.VectorMatching
		if m == nil {
			return l
		}
		switch m.Card {
		case parser.CardManyToOne:
			return l.with(m.Include...)
		case parser.CardOneToMany:
			return r.with(m.Include...)
		}
		if m.On {
			return l.only(m.MatchingLabels...)
		}
		return l.without(m.MatchingLabels...)
	case *parser.Call:
		switch n.Func.Name {
		case "vector", "time", "scalar", "pi", "absent", "absent_over_time":
			return closedSet()
		case "label_replace":
			if dst, ok := n.Args[1].(*parser.StringLiteral); ok {
				return resultLabels(n.Args[0]).with(dst.Val)
			}
		case "label_join":
			if dst, ok := n.Args[1].(*parser.StringLiteral); ok {
				return resultLabels(n.Args[0]).with(dst.Val)
			}
		}
		for _, a := range n.Args {
			if a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix {
				return resultLabels(a)
			}
		}
		return closedSet()
	}
	return openSet()
}

var templateLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

func TestAlertTemplatesUseLabelsTheExpressionKeeps(t *testing.T) {
	t.Parallel()
	for _, file := range ruleFiles(t) {
		groups, errs := parseRules(file)
		if len(errs) > 0 {
			t.Errorf("%s: %v", file, errs)
			continue
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
				if err != nil {
					t.Errorf("%s: alert %s: %v", file, r.Alert, err)
					continue
				}
				set := resultLabels(expr)
				texts := map[string]string{}
				for k, v := range r.Annotations {
					texts["annotation "+k] = v
				}
				for k, v := range r.Labels {
					texts["label "+k] = v
				}
				for where, text := range texts {
					for _, m := range templateLabel.FindAllStringSubmatch(text, -1) {
						if !set.has(m[1]) {
							t.Errorf("%s: alert %s: %s uses $labels.%s, which the expression's result never has", file, r.Alert, where, m[1])
						}
					}
				}
			}
		}
	}
}

// minRateRange is the shortest window a rate-like function may take: four
// scrapes at a one-minute interval, so a missed scrape leaves enough.
const minRateRange = 4 * time.Minute

func TestRateWindowsSpanSeveralScrapes(t *testing.T) {
	t.Parallel()
	rateLike := []string{"rate", "irate", "increase", "deriv", "predict_linear", "delta", "idelta", "resets", "changes"}
	for _, file := range ruleFiles(t) {
		groups, errs := parseRules(file)
		if len(errs) > 0 {
			t.Errorf("%s: %v", file, errs)
			continue
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
				if err != nil {
					continue // reported by the parse test
				}
				name := r.Alert + r.Record
				parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
					call, ok := node.(*parser.Call)
					if !ok || !slices.Contains(rateLike, call.Func.Name) {
						return nil
					}
					for _, a := range call.Args {
						if ms, ok := a.(*parser.MatrixSelector); ok && ms.Range < minRateRange {
							t.Errorf("%s: %s: %s over %s; want at least %s", file, name, call.Func.Name, ms.Range, minRateRange)
						}
					}
					return nil
				})
			}
		}
	}
}

func TestLabelAnalysis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr     string
		has, not []string
	}{
		{`up == 0`, []string{"instance", "job"}, nil},
		{`max by (instance) (up) == 0`, []string{"instance"}, []string{"job"}},
		{`sum without (device) (rate(x[5m]))`, []string{"instance"}, []string{"device"}},
		{`a / on (instance) b`, []string{"instance"}, []string{"job"}},
		{`a / ignoring (mode) b`, []string{"instance"}, []string{"mode"}},
		{`a * on (instance) group_left (nodename) b`, []string{"instance", "job", "nodename"}, nil},
		{`(count by (instance, port) (x) unless count by (instance, port) (x offset 1h)) and on (instance) count by (instance) (x)`, []string{"instance", "port"}, []string{"job"}},
		{`time() - x > 5`, []string{"instance"}, nil},
		{`label_replace(sum by (a) (x), "b", "$1", "a", "(.*)")`, []string{"a", "b"}, []string{"c"}},
		{`vector(1)`, nil, []string{"instance"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			set := resultLabels(expr)
			for _, l := range tt.has {
				if !set.has(l) {
					t.Errorf("resultLabels(%s) lacks %s; want it (%s)", tt.expr, l, describe(set))
				}
			}
			for _, l := range tt.not {
				if set.has(l) {
					t.Errorf("resultLabels(%s) has %s; want it dropped (%s)", tt.expr, l, describe(set))
				}
			}
		})
	}
}

func describe(s labelSet) string {
	keys := func(m map[string]bool) string {
		var out []string
		for k, v := range m {
			if v {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	if s.open {
		return fmt.Sprintf("any label but {%s}", keys(s.drop))
	}
	return fmt.Sprintf("at most {%s}", keys(s.keep))
}
