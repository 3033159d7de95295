package install

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const maxIndexBytes = 8 << 20

// Index is a signed list of plugins, the marketplace Install resolves a
// bare name through. Its file is JSON, {"plugins": [Entry, ...]}, with its
// signature (SignIndex) beside it as INDEX.sig. Unknown fields are
// ignored, so that an index can grow fields older healers skip.
type Index struct {
	Plugins []Entry `json:"plugins"`

	// source is where the index came from; an entry's relative URL is
	// resolved against it.
	source string
}

// Entry is one version of one plugin in an index. URL may be relative to
// the index's own location. SHA256 is the archive's checksum, which must
// match as well as the archive's signature.
type Entry struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	URL         string `json:"url"`
	SHA256      string `json:"sha256"`
	Description string `json:"description,omitempty"`
}

// ParseIndex decodes an index file and validates every entry, reporting
// each problem with its position (plugins[2].sha256).
func ParseIndex(data []byte) (*Index, error) {
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("decode index: %w", err)
	}
	var errs []error
	seen := map[string]int{}
	for i, e := range idx.Plugins {
		at := fmt.Sprintf("plugins[%d]", i)
		if !ValidName(e.Name) {
			errs = append(errs, fmt.Errorf("%s.name %q: not a plugin name", at, e.Name))
		}
		if !validVersion(e.Version) {
			errs = append(errs, fmt.Errorf("%s.version %q: not a version", at, e.Version))
		}
		if e.URL == "" {
			errs = append(errs, fmt.Errorf("%s.url: missing", at))
		}
		if !sha256Pattern.MatchString(e.SHA256) {
			errs = append(errs, fmt.Errorf("%s.sha256 %q: want 64 lowercase hex digits", at, e.SHA256))
		}
		key := e.Name + "@" + e.Version
		if j, ok := seen[key]; ok {
			errs = append(errs, fmt.Errorf("%s: %s is listed already at plugins[%d]", at, key, j))
		}
		seen[key] = i
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &idx, nil
}

// FetchIndex gets the index at src (an https URL, or a path) and its
// signature at src+".sig", verifies the signature with trusted and only
// then parses it. A nil client is http.Client's zero value.
func FetchIndex(ctx context.Context, src string, trusted *Keyring, client *http.Client) (*Index, error) {
	f := newFetcher(client, 0)
	data, err := f.get(ctx, src, maxIndexBytes)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	sigSrc := src + ".sig"
	if isURL(src) {
		if sigSrc, err = sigURL(src); err != nil {
			return nil, err
		}
	}
	sigData, err := f.get(ctx, sigSrc, maxSignatureBytes)
	if err != nil {
		return nil, fmt.Errorf("index signature: %w", err)
	}
	sig, err := ParseSignature(sigData)
	if err != nil {
		return nil, fmt.Errorf("index signature %s: %w", sigSrc, err)
	}
	if err := trusted.VerifyIndex(data, sig); err != nil {
		return nil, fmt.Errorf("index %s: %w", src, err)
	}
	idx, err := ParseIndex(data)
	if err != nil {
		return nil, err
	}
	idx.source = src
	return idx, nil
}

// Search returns the entries whose name or description contains query,
// ignoring case (all of them for an empty query), by name and then newest
// version first.
func Search(idx *Index, query string) []Entry {
	if idx == nil {
		return nil
	}
	q := strings.ToLower(query)
	var out []Entry
	for _, e := range idx.Plugins {
		if strings.Contains(e.Name, q) || strings.Contains(strings.ToLower(e.Description), q) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), -compareVersions(a.Version, b.Version))
	})
	return out
}

// Lookup finds name in the index: the given version, or the newest when
// version is empty.
func (idx *Index) Lookup(name, version string) (Entry, error) {
	var found []Entry
	for _, e := range idx.Plugins {
		if e.Name == name && (version == "" || e.Version == version) {
			found = append(found, e)
		}
	}
	if len(found) == 0 {
		if version != "" {
			return Entry{}, fmt.Errorf("%s %s is not in the index", name, version)
		}
		return Entry{}, fmt.Errorf("%s is not in the index", name)
	}
	return slices.MaxFunc(found, func(a, b Entry) int { return compareVersions(a.Version, b.Version) }), nil
}

// location is where an entry's archive is: its URL, resolved against the
// index's when relative.
func (idx *Index) location(e Entry) (string, error) {
	if isURL(e.URL) || idx.source == "" {
		return e.URL, nil
	}
	if isURL(idx.source) {
		base, err := url.Parse(idx.source)
		if err != nil {
			return "", err
		}
		ref, err := url.Parse(e.URL)
		if err != nil {
			return "", fmt.Errorf("%s %s: url: %w", e.Name, e.Version, err)
		}
		return base.ResolveReference(ref).String(), nil
	}
	if filepath.IsAbs(e.URL) {
		return e.URL, nil
	}
	return filepath.Join(filepath.Dir(idx.source), e.URL), nil
}

// compareVersions orders versions by their dot-separated parts, numbers
// as numbers and anything else as text, so that 1.10.0 follows 1.9.2.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		na, ea := strconv.ParseUint(pa[i], 10, 64)
		nb, eb := strconv.ParseUint(pb[i], 10, 64)
		var c int
		if ea == nil && eb == nil {
			c = cmp.Compare(na, nb)
		} else {
			c = strings.Compare(pa[i], pb[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}
