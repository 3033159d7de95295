package alertmanager

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Status is whether an alert is firing or resolved.
type Status string

// The two statuses Alertmanager sends.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Alert is one alert of a notification, on its own: what the healer stores,
// deduplicates and plans for.
type Alert struct {
	// Status is the alert's own status, never the notification's: with
	// max_alerts set, a notification can say resolved while it carries
	// firing alerts (see Message.TruncatedAlerts).
	Status       Status         `json:"status"`
	Labels       model.LabelSet `json:"labels"`
	Annotations  model.LabelSet `json:"annotations"`
	StartsAt     time.Time      `json:"startsAt"` // in UTC
	EndsAt       time.Time      `json:"endsAt"`   // in UTC; zero while firing
	GeneratorURL string         `json:"generatorURL"`
	Fingerprint  string         `json:"fingerprint"`

	// What the notification says about where the alert came from. Two
	// Alertmanagers of an HA pair send the same alert with a different
	// ExternalURL, so none of these is part of Key.
	Receiver    string `json:"receiver"`
	GroupKey    string `json:"groupKey"`
	ExternalURL string `json:"externalURL"`
}

// Split returns the alerts of a message that Decode returned, one for each,
// in the message's order. Labels and annotations are copied, so the alerts
// do not share maps with msg or with each other.
func Split(msg *Message) []Alert {
	alerts := make([]Alert, 0, len(msg.Alerts))
	for _, a := range msg.Alerts {
		alerts = append(alerts, Alert{
			Status:       Status(a.Status),
			Labels:       labelSet(a.Labels),
			Annotations:  labelSet(a.Annotations),
			StartsAt:     a.StartsAt.UTC(),
			EndsAt:       a.EndsAt.UTC(),
			GeneratorURL: a.GeneratorURL,
			Fingerprint:  a.Fingerprint,
			Receiver:     msg.Receiver,
			GroupKey:     msg.GroupKey,
			ExternalURL:  msg.ExternalURL,
		})
	}
	return alerts
}

func labelSet(kv map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(kv))
	for k, v := range kv {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// keyTime is the layout of startsAt in a Key: UTC with all nine fractional
// digits, so that one instant always gives one string, whatever precision
// and time zone the sender wrote it in.
const keyTime = "2006-01-02T15:04:05.000000000Z"

// Key returns the deduplication key of the alert: one key per firing and one
// per resolution, the same however often and by however many Alertmanagers
// the alert is delivered. It is fingerprint/status/startsAt, for example
// 03dcb9292ee7cedb/firing/2026-11-23T18:19:19.694000000Z, and is stored, so
// its form must not change.
//
// startsAt is kept to the nanosecond, not truncated. Retries and repeat
// notifications are rendered from the same Alertmanager state, and both
// Alertmanagers of an HA pair receive the same startsAt from the same
// Prometheus, so deliveries of one firing never differ in precision; only
// senders differ (milliseconds from Prometheus, nanoseconds from vmalert and
// amtool), and each one always sends its own. Truncating would only risk
// merging two firings that start within the same millisecond. A startsAt
// written with an offset (+02:00) is the same instant as in UTC and gives
// the same key.
//
// A resolved notification has a key of its own, so it is recorded once and
// never mistaken for its firing; a resolved alert sent again (Prometheus and
// vmalert re-send them) gives the same key and stays handled.
func (a Alert) Key() string {
	return a.Fingerprint + "/" + string(a.Status) + "/" + a.StartsAt.UTC().Format(keyTime)
}

// KeyStartsAt returns the startsAt a Key was made with.
func KeyStartsAt(key string) (time.Time, error) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return time.Time{}, fmt.Errorf("alert key %q has no startsAt", key)
	}
	t, err := time.Parse(keyTime, key[i+1:])
	if err != nil {
		return time.Time{}, fmt.Errorf("alert key %q: %w", key, err)
	}
	return t, nil
}
