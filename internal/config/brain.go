package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Brain configures the assessment of each run. The local analyzer always
// answers; with Model, a model is asked first and the local analyzer is
// the fallback whenever the model fails or answers out of bounds.
type Brain struct {
	// Disabled turns the assessment stage off: runs go from the guards to
	// approval and action unassessed.
	Disabled bool        `yaml:"disabled"`
	Model    *BrainModel `yaml:"model"`
	// Mask says what is masked before a request leaves the host.
	Mask BrainMask `yaml:"mask"`
}

// BrainModel is an OpenAI-compatible chat completions endpoint: OpenAI,
// Gemini's compatible endpoint, Ollama, vLLM, llama.cpp's server.
type BrainModel struct {
	// BaseURL is the API's base, e.g. http://127.0.0.1:11434/v1.
	BaseURL string `yaml:"base_url"`
	Model   string `yaml:"model"`
	// APIKeyFile holds the key; none for a local server that needs none.
	APIKeyFile string         `yaml:"api_key_file"`
	Timeout    model.Duration `yaml:"timeout"`
	// MaxRetries bounds the retries of a failed request (429, 5xx).
	MaxRetries *int `yaml:"max_retries"`
	// RequestsPerHour and TokensPerHour are the budget; 0 is none.
	RequestsPerHour int `yaml:"requests_per_hour"`
	TokensPerHour   int `yaml:"tokens_per_hour"`
	// JSONSchema asks for structured output by JSON schema (falling back
	// to a JSON object when the server refuses it).
	JSONSchema *bool `yaml:"json_schema"`
}

// BrainMask says what is masked in what the model is sent: addresses
// always unless KeepIPs, and the label keys of Fields (key: kind of
// placeholder, e.g. instance: host), on top of the shipped ones.
type BrainMask struct {
	KeepIPs bool              `yaml:"keep_ips"`
	Fields  map[string]string `yaml:"fields"`
}

func (c *Config) defaultBrain() {
	m := c.Brain.Model
	if m == nil {
		return
	}
	if m.Timeout == 0 {
		m.Timeout = model.Duration(30 * time.Second)
	}
	if m.MaxRetries == nil {
		two := 2
		m.MaxRetries = &two
	}
	if m.JSONSchema == nil {
		yes := true
		m.JSONSchema = &yes
	}
}

func (c *Config) validateBrain(bad func(string, ...any)) {
	m := c.Brain.Model
	if m == nil {
		return
	}
	if !strings.HasPrefix(m.BaseURL, "http://") && !strings.HasPrefix(m.BaseURL, "https://") {
		bad(fmt.Sprintf("%q is not an http or https URL", m.BaseURL), "brain", "model", "base_url")
	}
	if m.Model == "" {
		bad("the model's name is required", "brain", "model", "model")
	}
	if m.Timeout <= 0 {
		bad("must be > 0", "brain", "model", "timeout")
	}
	if *m.MaxRetries < 0 || *m.MaxRetries > 10 {
		bad(fmt.Sprintf("%d: want 0 to 10", *m.MaxRetries), "brain", "model", "max_retries")
	}
	if m.RequestsPerHour < 0 || m.TokensPerHour < 0 {
		bad("the budget must not be negative", "brain", "model")
	}
	for k := range c.Brain.Mask.Fields {
		if !model.LegacyValidation.IsValidLabelName(k) {
			bad(fmt.Sprintf("%q is not a label name", k), "brain", "mask", "fields")
		}
	}
}
