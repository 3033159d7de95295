// Package amapi talks to Alertmanager's API v2 for the healer: it posts
// escalations as alerts (so they reach people through the receivers a site
// already has), creates and expires silences, and asks whether an alert is
// silenced. Requests use prometheus/common's HTTP client config and the
// API's own models.
package amapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	promconfig "github.com/prometheus/common/config"
)

// Client is an Alertmanager API v2 client.
type Client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
}

// New returns a client of the Alertmanager at rawURL.
func New(rawURL string, cfg promconfig.HTTPClientConfig, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(rawURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("alertmanager url: %w", err)
	}
	hc, err := promconfig.NewClientFromConfig(cfg, "deus-healer")
	if err != nil {
		return nil, fmt.Errorf("alertmanager http_config: %w", err)
	}
	return &Client{base: u, http: hc, timeout: timeout}, nil
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	u := *c.base
	u.Path += "/api/v2" + path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alertmanager %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b[:min(len(b), 512)]))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("alertmanager %s %s: %w", method, path, err)
		}
	}
	return nil
}

// EscalationFor is how long an escalation stays active in Alertmanager;
// people resolve it by fixing the cause, after which it expires.
const EscalationFor = 4 * time.Hour

// Escalate posts a HealerEscalation alert with the given labels (alertname
// is set) and annotations.
func (c *Client) Escalate(ctx context.Context, labels, annotations map[string]string, now time.Time) error {
	ls := models.LabelSet{}
	for k, v := range labels {
		ls[k] = v
	}
	ls["alertname"] = "HealerEscalation"
	ann := models.LabelSet{}
	for k, v := range annotations {
		ann[k] = v
	}
	alerts := models.PostableAlerts{{
		Alert:       models.Alert{Labels: ls},
		Annotations: ann,
		StartsAt:    strfmt.DateTime(now),
		EndsAt:      strfmt.DateTime(now.Add(EscalationFor)),
	}}
	return c.do(ctx, http.MethodPost, "/alerts", nil, alerts, nil)
}

// Silence creates a silence matching labels exactly for d and returns its
// ID.
func (c *Client) Silence(ctx context.Context, labels map[string]string, d time.Duration, comment string, now time.Time) (string, error) {
	ms := make(models.Matchers, 0, len(labels))
	for k, v := range labels {
		name, value := k, v
		isEqual, isRegex := true, false
		ms = append(ms, &models.Matcher{Name: &name, Value: &value, IsEqual: &isEqual, IsRegex: &isRegex})
	}
	start, end := strfmt.DateTime(now), strfmt.DateTime(now.Add(d))
	by := "deus-healer"
	s := models.PostableSilence{Silence: models.Silence{
		Matchers: ms, StartsAt: &start, EndsAt: &end, CreatedBy: &by, Comment: &comment,
	}}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if err := c.do(ctx, http.MethodPost, "/silences", nil, s, &out); err != nil {
		return "", err
	}
	return out.SilenceID, nil
}

// Expire ends the silence id.
func (c *Client) Expire(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/silence/"+url.PathEscape(id), nil, nil, nil)
}

// Silenced reports whether Alertmanager holds the alert with fingerprint as
// silenced now. An alert Alertmanager does not know (it resolved, or came
// from elsewhere) is not silenced.
func (c *Client) Silenced(ctx context.Context, fingerprint string, labels map[string]string) (bool, error) {
	q := url.Values{}
	for k, v := range labels {
		q.Add("filter", fmt.Sprintf("%s=%q", k, v))
	}
	q.Set("silenced", "true")
	q.Set("inhibited", "true")
	q.Set("active", "true")
	var alerts models.GettableAlerts
	if err := c.do(ctx, http.MethodGet, "/alerts", q, nil, &alerts); err != nil {
		return false, err
	}
	for _, a := range alerts {
		if a.Fingerprint != nil && *a.Fingerprint == fingerprint && a.Status != nil && len(a.Status.SilencedBy) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// ActiveSilence returns an active silence all of whose matchers match
// labels ("" when none), as "ID by CREATOR: COMMENT": a silence a person
// made to declare a maintenance freeze.
func (c *Client) ActiveSilence(ctx context.Context, labels map[string]string) (string, error) {
	var silences models.GettableSilences
	if err := c.do(ctx, http.MethodGet, "/silences", nil, nil, &silences); err != nil {
		return "", err
	}
	for _, s := range silences {
		if s.Status == nil || s.Status.State == nil || *s.Status.State != models.SilenceStatusStateActive || len(s.Matchers) == 0 {
			continue
		}
		if matchesAll(s.Matchers, labels) {
			id, by, comment := deref(s.ID), deref(s.CreatedBy), deref(s.Comment)
			return fmt.Sprintf("%s by %s: %s", id, by, comment), nil
		}
	}
	return "", nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// matchesAll reports whether every matcher matches labels, with
// Alertmanager's semantics (a missing label is the empty string).
func matchesAll(ms models.Matchers, ls map[string]string) bool {
	for _, m := range ms {
		if m.Name == nil || m.Value == nil {
			return false
		}
		equal := m.IsEqual == nil || *m.IsEqual
		var t amlabels.MatchType
		switch regex := m.IsRegex != nil && *m.IsRegex; {
		case regex && equal:
			t = amlabels.MatchRegexp
		case regex:
			t = amlabels.MatchNotRegexp
		case equal:
			t = amlabels.MatchEqual
		default:
			t = amlabels.MatchNotEqual
		}
		mt, err := amlabels.NewMatcher(t, *m.Name, *m.Value)
		if err != nil || !mt.Matches(ls[*m.Name]) {
			return false
		}
	}
	return true
}
