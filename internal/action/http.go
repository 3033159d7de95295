package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// maxResponseBytes bounds the response body http_request keeps.
const maxResponseBytes = 64 << 10

// HTTPRequest is http_request: send the alert as JSON to a URL on an
// allow-list (a chat webhook, a load balancer's drain endpoint). A 2xx
// answer is success. It acts elsewhere (Remote) and cannot be undone.
type HTTPRequest struct {
	client *http.Client
	allow  []*url.URL
}

// NewHTTPRequest returns http_request. allow lists URL prefixes: a URL is
// allowed when its scheme and host (with port) equal a prefix's and its
// path is the prefix's path or below it. Redirects are followed only to
// allowed URLs. A nil client means one with a 30s timeout.
func NewHTTPRequest(client *http.Client, allow []string) (*HTTPRequest, error) {
	h := &HTTPRequest{}
	var errs []error
	for _, a := range allow {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("http_request: allowed prefix %q must be an http or https URL with a host and no user, query or fragment", a))
			continue
		}
		u.Host = strings.ToLower(u.Host)
		h.allow = append(h.allow, u)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if err := h.allowed(req.URL); err != nil {
			return fmt.Errorf("redirect: %w", err)
		}
		return nil
	}
	h.client = &c
	return h, nil
}

// allowed says why u is not allowed, or nil.
func (h *HTTPRequest) allowed(u *url.URL) error {
	if u.User != nil {
		return refusef("http_request: %s holds a user name", redactURL(u))
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == ".." || seg == "." {
			return refusef("http_request: %s has a dot segment", redactURL(u))
		}
	}
	for _, a := range h.allow {
		if u.Scheme != a.Scheme || strings.ToLower(u.Host) != a.Host {
			continue
		}
		base := strings.TrimSuffix(a.Path, "/")
		if base == "" || u.Path == base || strings.HasPrefix(u.Path, base+"/") {
			return nil
		}
	}
	if len(h.allow) == 0 {
		return refusef("http_request: no URLs are allowed")
	}
	return refusef("http_request: %s is not on the allow-list", redactURL(u))
}

// redactURL writes u without its user, query and fragment, which may hold
// secrets.
func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment, c.RawFragment = nil, "", "", ""
	return c.String()
}

// Spec implements Action.
func (h *HTTPRequest) Spec() Spec {
	return Spec{
		Name:    "http_request",
		Doc:     "Send the alert as JSON to an allowed URL; a 2xx answer is success.",
		Tier:    TierLow,
		Timeout: 30 * time.Second,
		Remote:  true,
		Params: []Param{
			{Name: "url", Type: TypeURL, Required: true, Doc: "URL to call; must be under an allowed prefix."},
			{Name: "method", Type: TypeEnum, Enum: []string{"GET", "POST", "PUT"}, Default: "POST"},
		},
	}
}

// Run implements Action.
func (h *HTTPRequest) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(h.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	u, err := url.Parse(params["url"])
	if err != nil {
		return Result{}, refusef("http_request: %q is not a URL", params["url"])
	}
	if err := h.allowed(u); err != nil {
		return Result{}, err
	}
	method := params["method"]
	res := Result{Target: redactURL(u)}
	if req.DryRun {
		res.Summary = fmt.Sprintf("would %s the alert to %s", method, res.Target)
		return res, nil
	}
	var body io.Reader
	if method != http.MethodGet && req.Alert != nil {
		body = bytes.NewReader(req.Alert)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return res, refusef("http_request: %v", err)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("User-Agent", "deus-healer")
	resp, err := h.client.Do(hreq)
	if err != nil {
		// Failing to connect means nothing was sent.
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return res, retryable(fmt.Errorf("http_request: %s %s: %w", method, res.Target, err))
		}
		return res, final(fmt.Errorf("http_request: %s %s: %w", method, res.Target, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if len(b) > maxResponseBytes {
		b = append(b[:maxResponseBytes], "\n[response cut]"...)
	}
	res.Output = strings.ToValidUTF8(string(b), string(utf8.RuneError))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("http_request: %s %s: status %s", method, res.Target, resp.Status)
		if resp.StatusCode == http.StatusTooManyRequests {
			// The server says it did not take the request.
			return res, retryable(err)
		}
		return res, final(err)
	}
	res.Summary = fmt.Sprintf("%s %s: %s", method, res.Target, resp.Status)
	return res, nil
}
