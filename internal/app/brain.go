package app

import (
	"log/slog"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/assess/llm"
	"github.com/deus-ex-machina/deus/internal/assess/mask"
	"github.com/deus-ex-machina/deus/internal/config"
)

// brain is the assessor runs go through: the local analyzer, or a model
// in front of it, and what shows a model's request without sending it.
type brain struct {
	assessor assess.Assessor
	request  func(assess.Context) ([]byte, error)
}

// newBrain builds the brain of cfg: a client of the model when one is
// configured, with the local analyzer as its fallback; the local analyzer
// alone otherwise.
func newBrain(cfg config.Brain, reg prometheus.Registerer, logger *slog.Logger) (brain, error) {
	if cfg.Model == nil {
		return brain{assessor: assess.Local{}}, nil
	}
	m := cfg.Model
	fields := maps.Clone(mask.DefaultFields)
	maps.Copy(fields, cfg.Mask.Fields)
	cl, err := llm.New(llm.Options{
		BaseURL: m.BaseURL, Model: m.Model, APIKeyFile: m.APIKeyFile,
		Timeout: time.Duration(m.Timeout), MaxRetries: *m.MaxRetries,
		RequestsPerHour: m.RequestsPerHour, TokensPerHour: m.TokensPerHour, JSONSchema: *m.JSONSchema,
		Mask:       mask.Options{Fields: fields, KeepIPs: cfg.Mask.KeepIPs},
		Registerer: reg, Logger: logger.With("component", "brain"),
	})
	if err != nil {
		return brain{}, err
	}
	logger.Info("brain_model", "base_url", m.BaseURL, "model", m.Model, "timeout", time.Duration(m.Timeout))
	return brain{assessor: cl.Fallback(assess.Local{}), request: cl.Request}, nil
}
