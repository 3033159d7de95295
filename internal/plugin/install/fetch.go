package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// isURL reports whether src is fetched rather than read from disk.
func isURL(src string) bool {
	return strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://")
}

// checkURL allows https anywhere and plain http only to a loopback
// address, where nothing between the two ends can change the bytes (and
// where tests serve from).
func checkURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
			return nil
		}
		return fmt.Errorf("%s: plain http is allowed only to a loopback address; use https", u.Redacted())
	default:
		return fmt.Errorf("%s: scheme %q, want https", u.Redacted(), u.Scheme)
	}
}

// sigURL is where a URL's signature is: the same path with .sig appended,
// the query kept.
func sigURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse url: %w", err)
	}
	u.Path += ".sig"
	u.RawPath = ""
	return u.String(), nil
}

// fetcher gets files by URL or from disk, each bounded in size and time.
type fetcher struct {
	client  *http.Client
	timeout time.Duration
}

func newFetcher(client *http.Client, timeout time.Duration) fetcher {
	c := http.Client{}
	if client != nil {
		c = *client
	}
	// Each redirect must obey the rule the first URL did.
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		return checkURL(req.URL)
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return fetcher{client: &c, timeout: timeout}
}

// get returns the content of src, a URL or a path, refusing more than max
// bytes.
func (f fetcher) get(ctx context.Context, src string, max int64) ([]byte, error) {
	if !isURL(src) {
		return readFile(src, max)
	}
	u, err := url.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("get %s: %w: %d bytes, the limit is %d", u.Redacted(), ErrTooLarge, resp.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("get %s: %w: more than %d bytes", u.Redacted(), ErrTooLarge, max)
	}
	return b, nil
}

func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Size() > max {
		return nil, fmt.Errorf("read %s: %w: %d bytes, the limit is %d", path, ErrTooLarge, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: %w: more than %d bytes", path, ErrTooLarge, max)
	}
	return b, nil
}
