// Package listener decides whom a listener may serve. A web configuration
// file (exporter-toolkit's format, --web.config.file) counts as
// authentication only when it makes every request prove something: basic
// auth users, or client certificates that are required and verified. TLS
// alone encrypts but admits anyone, and an empty file admits anyone in
// clear text. A listener that nothing authenticates stays on loopback, and
// its requests are answered only when they name a loopback host (or one
// configured), so that a page in a browser that rebinds its own DNS name to
// 127.0.0.1 cannot read or drive it.
package listener

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
)

// Auth is what a web configuration makes every request prove.
type Auth struct {
	// BasicAuth: basic_auth_users is not empty, so exporter-toolkit answers
	// 401 to a request without a valid user and password.
	BasicAuth bool
	// ClientCerts: client_auth_type is RequireAndVerifyClientCert, so a
	// connection without a certificate signed by client_ca_file fails.
	ClientCerts bool
	// TLS: the listener speaks TLS (which alone authenticates nobody).
	TLS bool
}

// Authenticates reports whether every request must prove who it is.
func (a Auth) Authenticates() bool { return a.BasicAuth || a.ClientCerts }

// String names what authenticates, for errors and logs.
func (a Auth) String() string {
	var parts []string
	if a.BasicAuth {
		parts = append(parts, "basic auth")
	}
	if a.ClientCerts {
		parts = append(parts, "verified client certificates")
	}
	if len(parts) == 0 {
		if a.TLS {
			return "TLS without client authentication"
		}
		return "nothing"
	}
	return strings.Join(parts, " and ")
}

// webConfig is the part of exporter-toolkit's web configuration that says
// who is let in; web.Validate checks the whole file strictly first.
type webConfig struct {
	TLS struct {
		Cert       string `yaml:"cert"`
		CertFile   string `yaml:"cert_file"`
		ClientAuth string `yaml:"client_auth_type"`
		ClientCA   string `yaml:"client_ca"`
		ClientCAs  string `yaml:"client_ca_file"`
	} `yaml:"tls_server_config"`
	Users map[string]string `yaml:"basic_auth_users"`
}

// ReadWebConfig reads a web configuration file and says what it makes
// requests prove. An empty path is no file: nothing.
func ReadWebConfig(path string) (Auth, error) {
	if path == "" {
		return Auth{}, nil
	}
	if err := web.Validate(path); err != nil {
		return Auth{}, fmt.Errorf("web configuration %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Auth{}, fmt.Errorf("web configuration: %w", err)
	}
	var c webConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return Auth{}, fmt.Errorf("web configuration %s: %w", path, err)
	}
	tls := c.TLS.Cert != "" || c.TLS.CertFile != ""
	return Auth{
		BasicAuth:   len(c.Users) > 0,
		ClientCerts: tls && c.TLS.ClientAuth == "RequireAndVerifyClientCert" && (c.TLS.ClientCA != "" || c.TLS.ClientCAs != ""),
		TLS:         tls,
	}, nil
}

// WebConfig follows a web configuration file that exporter-toolkit re-reads
// on every request: Current reads it again when it changed on disk, so what
// the handler believes about a request is what the toolkit checked.
type WebConfig struct {
	path string

	mu      sync.Mutex
	auth    Auth
	err     error
	size    int64
	modTime time.Time
	ino     uint64
}

// NewWebConfig reads the file at path (none when empty).
func NewWebConfig(path string) (*WebConfig, error) {
	w := &WebConfig{path: path}
	_, err := w.Current()
	return w, err
}

// Path is the file's path, "" for none.
func (w *WebConfig) Path() string { return w.path }

// Current is what the file makes requests prove now. When the file cannot
// be read or is invalid the error says why, and the Auth is the zero value:
// nothing is believed about a request that the toolkit may not have checked.
func (w *WebConfig) Current() (Auth, error) {
	if w == nil || w.path == "" {
		return Auth{}, nil
	}
	fi, err := os.Stat(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.auth, w.err, w.modTime = Auth{}, fmt.Errorf("web configuration: %w", err), time.Time{}
		return w.auth, w.err
	}
	if ino := inode(fi); w.modTime.IsZero() || !fi.ModTime().Equal(w.modTime) || fi.Size() != w.size || ino != w.ino {
		w.auth, w.err = ReadWebConfig(w.path)
		w.size, w.modTime, w.ino = fi.Size(), fi.ModTime(), ino
	}
	return w.auth, w.err
}

// ErrUnauthenticated is returned by CheckAddresses for an address beyond
// loopback that nothing authenticates.
var ErrUnauthenticated = errors.New("refusing to serve beyond loopback without authentication")

// CheckAddresses refuses listen addresses beyond loopback unless
// authenticated; what names what would authenticate, for the error.
func CheckAddresses(addrs []string, authenticated bool, what string) error {
	if authenticated {
		return nil
	}
	var errs []error
	for _, addr := range addrs {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: %w", addr, err))
			continue
		}
		if !loopbackListenHost(host) {
			errs = append(errs, fmt.Errorf("listen address %q is not loopback (a loopback address such as 127.0.0.1 or [::1], or localhost) and %s: %w", addr, what, ErrUnauthenticated))
		}
	}
	return errors.Join(errs...)
}

// loopbackListenHost reports whether a listen address' host binds only
// loopback: a loopback address, or the name localhost, which every system's
// hosts file maps to loopback. Other names, those under .localhost and
// "localhost." included, go to the resolver (the hosts file, then DNS) when
// the listener binds, and may name any address: they are refused.
func loopbackListenHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// CheckSystemdSocket refuses --web.systemd-socket unless authenticated:
// the listener then serves the sockets systemd passes, whatever address
// they are bound to, and ignores the listen addresses CheckAddresses
// checked. what names what would authenticate, for the error.
func CheckSystemdSocket(enabled, authenticated bool, what string) error {
	if !enabled || authenticated {
		return nil
	}
	return fmt.Errorf("--web.systemd-socket serves the sockets systemd passes, whatever their address, and %s: %w", what, ErrUnauthenticated)
}

// LoopbackHost reports whether host (a name or address, without port), as
// a browser sends it in a Host header, always means this machine: localhost, a name under .localhost (RFC 6761)
// or a loopback address. An empty host (every interface) is not.
func LoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // a zone: fe80::1%lo
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Hosts are the Host names a listener answers unauthenticated requests
// for: loopback ones and those configured.
type Hosts struct {
	extra map[string]bool
}

// NewHosts allows loopback host names plus names (host names without
// port, matched case-insensitively).
func NewHosts(names []string) (Hosts, error) {
	h := Hosts{extra: map[string]bool{}}
	for _, n := range names {
		n = strings.TrimSuffix(strings.ToLower(n), ".")
		if n == "" || strings.ContainsAny(n, "/@:?# \t\n") {
			return Hosts{}, fmt.Errorf("allowed host %q: want a host name without scheme, port or path", n)
		}
		h.extra[n] = true
	}
	return h, nil
}

// Allowed reports whether a request's Host header (with or without port)
// names a host this listener answers unauthenticated requests for.
func (h Hosts) Allowed(hostHeader string) bool {
	host := hostHeader
	if hh, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = hh
	}
	if host == "" {
		return false
	}
	if LoopbackHost(host) {
		return true
	}
	return h.extra[strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")]
}

// Unauthenticated serves h to requests that name an allowed host and come
// from loopback, while the web configuration authenticates nobody; once it
// does (the file changed), every request is the toolkit's to check. It is
// the rule for a listener whose requests only read.
func Unauthenticated(wc *WebConfig, hosts Hosts, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth, err := wc.Current(); err == nil && auth.Authenticates() {
			h.ServeHTTP(w, r)
			return
		}
		if code, msg := hosts.Refuse(r); code != 0 {
			http.Error(w, msg, code)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Refuse says why a request that nothing authenticates is not served (0 and
// "" when it is): it must come from loopback and name an allowed host, since
// another name is a page that rebound its own to this address.
func (h Hosts) Refuse(r *http.Request) (code int, msg string) {
	if !h.Allowed(r.Host) {
		return http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not a loopback name and nothing authenticates this request: use http://localhost", r.Host)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !LoopbackHost(host) {
		return http.StatusForbidden, "nothing authenticates this request and it does not come from loopback"
	}
	return 0, ""
}
