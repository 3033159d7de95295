// Command brain-eval runs the brain's labelled scenarios (internal/assess/eval,
// or -scenarios FILE) through the local analyzer and prints how it did: a
// table of every scenario, then the ordinary pass rate, the hostile
// scenarios kept safe, the latency's median and 95th percentile and the
// tokens.
//
// With BRAIN_BASE_URL and BRAIN_MODEL set (and BRAIN_API_KEY_FILE for a
// server that needs a key), it also asks that model about every scenario,
// once each, and prints two more tables: the model behind the local
// analyzer's fallback, as the healer would use it, and the model's own
// answers judged alone (how often the model by itself was right, and safe).
// The fallback's latency and tokens are the model's: the local analyzer
// answers in microseconds and costs nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/assess/eval"
	"github.com/deus-ex-machina/deus/internal/assess/llm"
)

func main() {
	file := flag.String("scenarios", "", "scenario file (default: the shipped scenarios)")
	timeout := flag.Duration("timeout", llm.DefaultTimeout, "bound on one model assessment, retries included")
	schema := flag.Bool("json-schema", true, "ask the model for structured output (falls back to JSON mode when refused)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	model := modelOptions{
		baseURL: os.Getenv("BRAIN_BASE_URL"), model: os.Getenv("BRAIN_MODEL"), keyFile: os.Getenv("BRAIN_API_KEY_FILE"),
		timeout: *timeout, schema: *schema,
	}
	if err := run(ctx, *file, model, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "brain-eval:", err)
		os.Exit(1)
	}
}

type modelOptions struct {
	baseURL, model, keyFile string
	timeout                 time.Duration
	schema                  bool
}

func run(ctx context.Context, file string, mo modelOptions, w io.Writer) error {
	scenarios, err := load(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# local analyzer, %d scenarios\n\n", len(scenarios))
	eval.Run(ctx, assess.Local{}, scenarios).Print(w)
	if mo.baseURL == "" && mo.model == "" {
		fmt.Fprintln(w, "\nno model: set BRAIN_BASE_URL and BRAIN_MODEL (and BRAIN_API_KEY_FILE) to evaluate one")
		return nil
	}
	cl, err := llm.New(llm.Options{
		BaseURL: mo.baseURL, Model: mo.model, APIKeyFile: mo.keyFile, Timeout: mo.timeout, JSONSchema: mo.schema,
	})
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	raw := &recorder{primary: cl}
	guarded := eval.Run(ctx, eval.Meter(assess.WithFallback(raw, assess.Local{}), cl.Tokens), scenarios)
	if len(raw.answers) != len(guarded.Results) {
		return errors.New("the model was not asked once per scenario")
	}
	fmt.Fprintf(w, "\n# %s behind the local analyzer's fallback (as the healer uses it)\n\n", cl.By())
	guarded.Print(w)
	var alone eval.Report
	for i, ans := range raw.answers {
		res := eval.Judge(scenarios[i], ans.a, ans.err)
		g := guarded.Results[i]
		res.Latency, res.PromptTokens, res.CompletionTokens = g.Latency, g.PromptTokens, g.CompletionTokens
		alone.Results = append(alone.Results, res)
	}
	fmt.Fprintf(w, "\n# %s alone (its own answers, judged without the fallback)\n\n", cl.By())
	alone.Print(w)
	return ctx.Err()
}

func load(file string) ([]eval.Scenario, error) {
	if file == "" {
		return eval.Shipped()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read scenarios: %w", err)
	}
	s, err := eval.Load(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// recorder asks primary and keeps every answer in order, so that the model
// is asked once per scenario and judged both behind the fallback and alone.
// eval.Run asks one scenario at a time, and the fallback asks the primary
// once per assessment.
type recorder struct {
	primary assess.Assessor
	answers []answer
}

type answer struct {
	a   assess.Assessment
	err error
}

func (r *recorder) Assess(ctx context.Context, c assess.Context) (assess.Assessment, error) {
	a, err := r.primary.Assess(ctx, c)
	r.answers = append(r.answers, answer{a: a, err: err})
	return a, err
}
