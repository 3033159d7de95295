package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/listener"
)

// basicAuthWebConfig writes a web configuration with one basic-auth user
// and returns its path.
func basicAuthWebConfig(t *testing.T) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "web.yml")
	writeFile(t, p, "basic_auth_users:\n  alice: "+string(hash)+"\n")
	return p
}

func TestSystemdSocketsNeedAuthentication(t *testing.T) {
	t.Parallel()
	users := basicAuthWebConfig(t)
	empty := filepath.Join(t.TempDir(), "empty.yml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	both := func(c *config.Config) { c.Webhook.BearerTokenFile, c.API.BearerTokenFile = "/w", "/a" }
	for _, tt := range []struct {
		name    string
		tokens  func(*config.Config)
		webFile string
		refused bool
	}{
		{"without tokens or a web configuration they are refused", nil, "", true},
		{"with an empty web configuration they are refused", nil, empty, true},
		{"with only the webhook token they are refused", func(c *config.Config) { c.Webhook.BearerTokenFile = "/w" }, "", true},
		{"with both tokens they are served", both, "", false},
		{"with basic-auth users they are served", nil, users, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &config.Config{}
			if tt.tokens != nil {
				tt.tokens(cfg)
			}
			wc, err := listener.NewWebConfig(tt.webFile)
			if err != nil {
				t.Fatal(err)
			}
			addrs, systemd, file := []string{"127.0.0.1:9111"}, true, tt.webFile
			err = checkAuth(cfg, wc, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &file})
			if !tt.refused {
				if err != nil {
					t.Fatalf("got %v, want them served", err)
				}
				return
			}
			if !errors.Is(err, listener.ErrUnauthenticated) || !strings.Contains(err.Error(), "--web.systemd-socket") || !strings.Contains(err.Error(), "bearer_token_file") {
				t.Errorf("got %v, want ErrUnauthenticated naming --web.systemd-socket and what would authenticate", err)
			}
		})
	}
}

func TestBasicAuthAndABearerTokenAreRefusedTogether(t *testing.T) {
	t.Parallel()
	users := basicAuthWebConfig(t)
	for _, tt := range []struct {
		name    string
		webhook string
		api     string
		refused string
	}{
		{"an API token beside basic-auth users is refused", "", "/a", "api.bearer_token_file"},
		{"a webhook token beside basic-auth users is refused", "/w", "", "webhook.bearer_token_file"},
		{"both tokens beside basic-auth users are refused", "/w", "/a", "webhook.bearer_token_file and api.bearer_token_file"},
		{"basic-auth users alone are served", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &config.Config{}
			cfg.Webhook.BearerTokenFile, cfg.API.BearerTokenFile = tt.webhook, tt.api
			wc, err := listener.NewWebConfig(users)
			if err != nil {
				t.Fatal(err)
			}
			addrs, systemd, file := []string{"0.0.0.0:9111"}, false, users
			err = checkAuth(cfg, wc, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &file})
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("got %v, want it served", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), "http_config.basic_auth") {
				t.Errorf("got %v, want a refusal naming %s and what to do", err, tt.refused)
			}
		})
	}
}
