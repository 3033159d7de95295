// Package llm is the brain's model provider: an assess.Assessor over any
// OpenAI-compatible chat completions API (OpenAI, Gemini's compatible
// endpoint, Ollama, vLLM, llama.cpp), by the openai-go client.
//
// What it sends is masked (package mask): no IP address, configured host
// or user name, or secret from the alert leaves the host. The alert and its
// context travel as one JSON data block between delimiters, and the system
// prompt says that the block is data, never instructions; the system prompt
// holds only what the configuration says (the allowed actions and their
// parameters' names, the answer's schema). Answers are parsed strictly:
// unknown fields (a "tier", an "approve") are refused, not ignored.
//
// What it never does: choose anything the runbook does not allow (the
// caller validates every answer, assess.WithFallback does), read a key
// from the environment, or put the key in a log line, an error or the
// request body Request returns. Requests and tokens are budgeted per
// rolling hour; a spent budget refuses without contacting the server.
package llm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deus-ex-machina/deus/internal/assess/mask"
)

// DefaultTimeout bounds one assessment, retries included, when
// Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Options configures a Client.
type Options struct {
	// BaseURL is the API's base, as http(s)://host[:port]/path, such as
	// https://api.openai.com/v1 or http://localhost:11434/v1.
	BaseURL string
	// Model is the model's name, as the server knows it.
	Model string
	// APIKeyFile holds the API key; empty for a server that needs none.
	APIKeyFile string
	// Timeout bounds one assessment, retries included (DefaultTimeout
	// when zero).
	Timeout time.Duration
	// MaxRetries is how many times a failed request (a connection error,
	// 408, 409, 429 or 5xx) is retried; zero means never.
	MaxRetries int
	// RequestsPerHour and TokensPerHour are the budget over any rolling
	// hour; zero means unlimited.
	RequestsPerHour, TokensPerHour int
	// JSONSchema asks for structured output (a json_schema response
	// format). When false, or once the server refuses it with a 400, the
	// client asks for a JSON object and describes the schema in the prompt.
	JSONSchema bool
	// Mask says which fields are masked beside IP addresses and secrets.
	Mask mask.Options
	// Registerer registers the client's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger logs the client's lifecycle; nil logs nothing.
	Logger *slog.Logger
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Now is the budget's clock; nil means time.Now.
	Now func() time.Time
}

// Client assesses alerts with a model. It is safe for concurrent use.
type Client struct {
	opts    Options
	api     openai.Client
	budget  *budget
	metrics *metrics
	logger  *slog.Logger
	// schemaRefused is set once the server refused a json_schema format.
	schemaRefused atomic.Bool
	// promptTokens and completionTokens add up what the server reported.
	promptTokens, completionTokens atomic.Int64
}

// New returns a Client for o, or an error naming what is wrong with it.
func New(o Options) (*Client, error) {
	if err := checkBaseURL(o.BaseURL); err != nil {
		return nil, err
	}
	if o.Model == "" {
		return nil, errors.New("model: must be set")
	}
	if o.MaxRetries < 0 || o.Timeout < 0 || o.RequestsPerHour < 0 || o.TokensPerHour < 0 {
		return nil, errors.New("timeout, max retries and budgets must not be negative")
	}
	key, err := readKey(o.APIKeyFile)
	if err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		opts:    o,
		api:     openai.NewClient(clientOptions(o, key)...),
		budget:  newBudget(o.RequestsPerHour, o.TokensPerHour, o.Now),
		metrics: newMetrics(o.Registerer),
		logger:  logger.With("model", o.Model),
	}, nil
}

// clientOptions set everything the SDK would otherwise take from the
// environment (OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_ORG_ID, ...): the
// key and the server are the configuration's alone.
func clientOptions(o Options, key string) []option.RequestOption {
	return []option.RequestOption{
		option.WithBaseURL(o.BaseURL),
		option.WithAPIKey(key),
		option.WithAdminAPIKey(""),
		option.WithHeaderDel("OpenAI-Organization"),
		option.WithHeaderDel("OpenAI-Project"),
		option.WithHTTPClient(o.HTTPClient),
		option.WithMaxRetries(o.MaxRetries),
		option.WithMaxRetryDelay(max(o.Timeout/4, time.Millisecond)),
	}
}

func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("base url: must be set")
	case err != nil:
		return fmt.Errorf("base url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("base url %q: the scheme must be http or https", u.Redacted())
	case u.Host == "":
		return fmt.Errorf("base url %q: no host", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("base url %q: must not hold credentials; use the key file", u.Redacted())
	}
	return nil
}

func readKey(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read api key file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("api key file %s is empty", path)
	}
	if strings.ContainsAny(key, "\r\n") {
		return "", fmt.Errorf("api key file %s holds more than one line", path)
	}
	return key, nil
}
