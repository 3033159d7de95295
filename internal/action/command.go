package action

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// placeholderRE matches {{name}} in an argv template.
var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Command is run_command: an action a site defines in its configuration,
// which runs a fixed argv. Elements of the argv may hold {{name}}, replaced
// by the validated value of the parameter name, either as the whole element
// or within it; a value is always within one element, never split into
// more and never read by a shell. A value that would be a whole element is
// refused if it starts with "-", so that it cannot be taken for an option:
// write --opt={{name}} or put "--" before it. The alert, as JSON, is the
// command's stdin.
type Command struct {
	spec   Spec
	argv   [][]segment
	runner Runner
}

// segment is a literal or, when param is set, a parameter's value.
type segment struct {
	lit   string
	param string
}

// NewCommand returns the action that spec describes, running argv through
// runner. Every {{name}} in argv must name a parameter of spec, and
// argv[0] may hold none: the program is fixed.
func NewCommand(spec Spec, argv []string, runner Runner) (*Command, error) {
	var errs []error
	if spec.Name == "" {
		errs = append(errs, errors.New("command has no name"))
	}
	if runner == nil {
		errs = append(errs, fmt.Errorf("command %q: no runner", spec.Name))
	}
	if len(argv) == 0 {
		errs = append(errs, fmt.Errorf("command %q: empty argv", spec.Name))
	} else if argv[0] == "" || strings.Contains(argv[0], "/") && !strings.HasPrefix(argv[0], "/") {
		errs = append(errs, fmt.Errorf("command %q: argv[0] %q must be an absolute path or a name looked up in %s", spec.Name, argv[0], Path))
	}
	seen := map[string]bool{}
	for i, p := range spec.Params {
		switch {
		case p.Name == "":
			errs = append(errs, fmt.Errorf("command %q: params[%d] has no name", spec.Name, i))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("command %q: param %q declared twice", spec.Name, p.Name))
		}
		seen[p.Name] = true
		if p.Default != "" {
			if _, err := p.Check(p.Default); err != nil {
				errs = append(errs, fmt.Errorf("command %q: param %q: default: %w", spec.Name, p.Name, err))
			}
		}
	}
	c := &Command{spec: spec, runner: runner}
	for i, el := range argv {
		segs, err := parseTemplate(el)
		if err != nil {
			errs = append(errs, fmt.Errorf("command %q: argv[%d]: %w", spec.Name, i, err))
			continue
		}
		for _, s := range segs {
			if s.param == "" {
				continue
			}
			if i == 0 {
				errs = append(errs, fmt.Errorf("command %q: argv[0] may not hold a parameter", spec.Name))
			} else if !seen[s.param] {
				errs = append(errs, fmt.Errorf("command %q: argv[%d]: {{%s}} is not a declared parameter", spec.Name, i, s.param))
			}
		}
		c.argv = append(c.argv, segs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// parseTemplate splits an argv element into literals and placeholders.
func parseTemplate(el string) ([]segment, error) {
	var segs []segment
	last := 0
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(el, -1) {
		if m[0] > last {
			segs = append(segs, segment{lit: el[last:m[0]]})
		}
		segs = append(segs, segment{param: el[m[2]:m[3]]})
		last = m[1]
	}
	if last < len(el) || len(segs) == 0 {
		segs = append(segs, segment{lit: el[last:]})
	}
	for _, s := range segs {
		if s.param == "" && (strings.Contains(s.lit, "{{") || strings.Contains(s.lit, "}}")) {
			return nil, fmt.Errorf("%q: unbalanced or malformed {{ }}", el)
		}
	}
	return segs, nil
}

// Spec implements Action.
func (c *Command) Spec() Spec { return c.spec }

// render returns the argv for params.
func (c *Command) render(params map[string]string) ([]string, error) {
	argv := make([]string, 0, len(c.argv))
	for _, segs := range c.argv {
		if len(segs) == 1 && segs[0].param != "" {
			v := params[segs[0].param]
			if strings.HasPrefix(v, "-") {
				return nil, refusef("param %q: %q would be read as an option", segs[0].param, v)
			}
			argv = append(argv, v)
			continue
		}
		var b strings.Builder
		for _, s := range segs {
			if s.param != "" {
				b.WriteString(params[s.param])
			} else {
				b.WriteString(s.lit)
			}
		}
		argv = append(argv, b.String())
	}
	return argv, nil
}

// Run implements Action.
func (c *Command) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(c.spec, req)
	if err != nil {
		return Result{}, err
	}
	argv, err := c.render(params)
	if err != nil {
		return Result{}, err
	}
	res := Result{Target: c.target(params), Argv: argv}
	if req.DryRun {
		res.Summary = "would run " + quoteArgv(argv) + " with the alert on stdin"
		return res, nil
	}
	if c.spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.spec.Timeout)
		defer cancel()
	}
	out, err := c.runner.Run(ctx, argv, req.Alert)
	res.Output = out.Text
	if err != nil {
		return res, fmt.Errorf("%s: %w", c.spec.Name, err)
	}
	res.Summary = fmt.Sprintf("ran %s: exit status %d", quoteArgv(argv), out.ExitCode)
	return res, nil
}

// target is the values of the parameters in their declared order, or the
// command's name when it has none.
func (c *Command) target(params map[string]string) string {
	var vals []string
	for _, p := range c.spec.Params {
		if v, ok := params[p.Name]; ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return c.spec.Name
	}
	return strings.Join(vals, " ")
}

// quoteArgv writes argv for a person to read: each element quoted when it
// holds anything but plain characters.
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./=:@,+%") == "" {
			q[i] = a
		} else {
			q[i] = fmt.Sprintf("%q", a)
		}
	}
	return strings.Join(q, " ")
}
