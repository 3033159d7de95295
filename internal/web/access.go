package web

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/listener"
)

// Surface is a part of the HTTP surface with its own credentials.
type Surface int

// The surfaces: the Alertmanager webhook, and everything else (the JSON
// API, the status page, the embedded Prometheus' query API, reload).
const (
	SurfaceWebhook Surface = iota
	SurfaceAPI
)

// Tokens are the bearer tokens the handler accepts, re-read on reload.
type Tokens struct {
	mu      sync.RWMutex
	webhook token
	api     token
}

type token struct {
	value []byte // nil: none required
	file  string
}

// LoadTokens reads the token files; an empty path means no token is
// required by the handler for that surface (basic auth or client
// certificates from the web config file may still apply to every
// endpoint).
func LoadTokens(webhookFile, apiFile string) (*Tokens, error) {
	t := &Tokens{}
	return t, t.Load(webhookFile, apiFile)
}

// Load re-reads the token files.
func (t *Tokens) Load(webhookFile, apiFile string) error {
	read := func(path string) (token, error) {
		if path == "" {
			return token{}, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return token{}, fmt.Errorf("read bearer token: %w", err)
		}
		b = []byte(strings.TrimSpace(string(b)))
		if len(b) == 0 {
			return token{}, fmt.Errorf("bearer token file %s is empty", path)
		}
		return token{value: b, file: path}, nil
	}
	w, err := read(webhookFile)
	if err != nil {
		return err
	}
	a, err := read(apiFile)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.webhook, t.api = w, a
	return nil
}

// required returns the token a surface requires (nil value for none).
func (t *Tokens) required(s Surface) token {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if s == SurfaceWebhook {
		return t.webhook
	}
	return t.api
}

// bearer is the credentials of an Authorization header with the Bearer
// scheme, which RFC 7235 makes case-insensitive.
func bearer(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}

// Access decides who a request is and whether it may be served: the
// surface's bearer token when one is configured, with what the web
// configuration made the request prove beside it; otherwise what the web
// configuration made the request prove (a basic-auth user, a verified
// client certificate); otherwise nothing, which is served only to loopback
// clients that name a loopback (or configured) host.
type Access struct {
	Tokens *Tokens
	// Web is the web configuration exporter-toolkit applies; nil for none.
	Web    *listener.WebConfig
	Logger *slog.Logger
	// Peers, when set, is told the address of every request Protect
	// serves, for block_ip to refuse (see action.Peers). Open's requests
	// are not: anyone may ask for /metrics.
	Peers *action.Peers

	mu    sync.RWMutex
	hosts listener.Hosts
}

// NewAccess returns an Access allowing unauthenticated requests for
// loopback host names and hosts.
func NewAccess(tokens *Tokens, wc *listener.WebConfig, hosts []string, logger *slog.Logger) (*Access, error) {
	a := &Access{Tokens: tokens, Web: wc, Logger: logger}
	return a, a.SetHosts(hosts)
}

// SetHosts replaces the host names besides loopback ones that
// unauthenticated requests may name (api.allowed_hosts, on reload).
func (a *Access) SetHosts(names []string) error {
	h, err := listener.NewHosts(names)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.hosts = h
	a.mu.Unlock()
	return nil
}

type principalKey struct{}

// Actor is who the request authenticated as (set by Protect), with the
// name it claims.
func Actor(r *http.Request, claimed string) healer.Actor {
	p, _ := r.Context().Value(principalKey{}).(string)
	return healer.Actor{Principal: p, Claimed: claimed}
}

// refusal is why a request is not served.
type refusal struct {
	code      int
	msg       string
	challenge bool
}

// authenticate returns the request's principal ("" for none) or why it is
// refused.
func (a *Access) authenticate(r *http.Request, s Surface) (string, *refusal) {
	if tok := a.Tokens.required(s); tok.value != nil {
		got, ok := bearer(r)
		if !ok || subtle.ConstantTimeCompare([]byte(got), tok.value) != 1 {
			return "", &refusal{http.StatusUnauthorized, "a valid bearer token is required", true}
		}
		if p := a.proven(r); p != "" {
			return p + "+token:" + tok.file, nil
		}
		return "token:" + tok.file, nil
	}
	if p := a.proven(r); p != "" {
		return p, nil
	}
	return "", a.local(r)
}

// local is why a request that nothing authenticates is refused, nil when
// it is served: only to this machine, and only under a name that means
// this machine. Another name is a page that rebound its own to our
// address.
func (a *Access) local(r *http.Request) *refusal {
	a.mu.RLock()
	hosts := a.hosts
	a.mu.RUnlock()
	code, msg := hosts.Refuse(r)
	if code == 0 {
		return nil
	}
	if code == http.StatusMisdirectedRequest {
		msg += ", or set api.allowed_hosts"
	}
	return &refusal{code, msg, false}
}

// authenticatesAnything reports whether any request must prove something:
// a token for either surface, or a web configuration that authenticates.
func (a *Access) authenticatesAnything() bool {
	if a.Tokens.required(SurfaceWebhook).value != nil || a.Tokens.required(SurfaceAPI).value != nil {
		return true
	}
	auth, err := a.Web.Current()
	return err == nil && auth.Authenticates()
}

// Open serves h, which asks for no credentials of its own (/metrics,
// health), to everyone while anything on the listener authenticates, since
// a remote Prometheus scrapes it by the listener's address; while nothing
// does, the listener is on loopback and h is served as an unauthenticated
// request on another surface is, so that a rebinding page cannot read it.
func (a *Access) Open(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authenticatesAnything() {
			if no := a.local(r); no != nil {
				a.Logger.Debug("request_refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", no.code, "reason", no.msg)
				fail(w, no.code, no.msg)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// proven is everything the web configuration made the request prove,
// joined with "+" (see healer.Actor): a verified client certificate's
// subject, and the basic-auth user exporter-toolkit checked, so that one
// person is the same principal whichever they presented. A basic-auth
// header is believed only when the web configuration has users, since
// otherwise nothing checked it.
func (a *Access) proven(r *http.Request) string {
	var ids []string
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		ids = append(ids, "cert:"+r.TLS.VerifiedChains[0][0].Subject.String())
	}
	if auth, err := a.Web.Current(); err == nil && auth.BasicAuth {
		if user, _, ok := r.BasicAuth(); ok {
			ids = append(ids, "user:"+user)
		}
	}
	return strings.Join(ids, "+")
}

// Protect serves h only to requests allowed on surface s, with their
// principal in the context (see Actor).
func (a *Access) Protect(s Surface, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, no := a.authenticate(r, s)
		if no != nil {
			if no.challenge {
				w.Header().Set("WWW-Authenticate", `Bearer realm="deus-healer"`)
			}
			a.Logger.Debug("request_refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", no.code, "reason", no.msg)
			fail(w, no.code, no.msg)
			return
		}
		a.Peers.AddRemote(r.RemoteAddr)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// StateChange refuses a request that changes state unless it is JSON: a
// body of another type (text/plain, a form) is what a page on another site
// can send without asking the browser first. A request without a body and
// without a Content-Type (curl -X POST .../-/reload) is let through; the
// cross-origin check (Guard) has already refused it when a browser sent it
// from another site.
func StateChange(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		hasBody := r.ContentLength != 0
		if ct == "" && !hasBody {
			h.ServeHTTP(w, r)
			return
		}
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: a request that changes state must be application/json", ct))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Guard refuses requests that a browser sent from another origin to change
// state (net/http's CrossOriginProtection: Sec-Fetch-Site, else Origin
// against Host), and sets the headers that keep the pages from being
// framed or sniffed.
func Guard(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fail(w, http.StatusForbidden, "cross-origin request refused: a request that changes state must come from the healer's own pages or from a client that is not a browser")
	}))
	inner := cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		inner.ServeHTTP(w, r)
	})
}
