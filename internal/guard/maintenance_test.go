package guard

import (
	"strings"
	"testing"
	"time"
)

// history is two weeks of hourly load: busy by day, quiet at night, and
// quietest on Sunday at 04:00.
func history(t0 time.Time) []Sample {
	var h []Sample
	for i := range 14 * 24 {
		ts := t0.Add(time.Duration(i) * time.Hour)
		v := 10.0
		if ts.Hour() >= 1 && ts.Hour() <= 5 {
			v = 2 + float64(ts.Hour()%3)
		}
		if ts.Weekday() == time.Sunday && ts.Hour() == 4 {
			v = 0.5
		}
		h = append(h, Sample{T: ts, V: v}, Sample{T: ts.Add(30 * time.Minute), V: v})
	}
	return h
}

func TestQuietestSlotsAreTheLowestHoursOfTheWeek(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) // a Sunday
	slots := QuietestSlots(history(t0), 3, nil)
	if len(slots) != 3 || slots[0].String() != "Sun 04:00" || slots[0].Load != 0.5 || slots[0].Samples != 4 {
		t.Fatalf("got %v, want Sun 04:00 (load 0.5, 4 samples) first", slots)
	}
	for _, s := range slots[1:] {
		if s.Load != 2 || s.Hour != 3 {
			t.Errorf("got %v among the quietest, want hours at 03:00 with load 2", s)
		}
	}
	// A blackout over Sunday's early hours moves the quietest elsewhere.
	sunNight := Blackout{Days: []time.Weekday{time.Sunday}, From: 0, To: 6 * time.Hour}
	for _, s := range QuietestSlots(history(t0), 3, []Blackout{sunNight}) {
		if s.Day == time.Sunday && s.Hour < 6 {
			t.Errorf("got %v inside the blackout", s)
		}
	}
	if got := QuietestSlots(nil, 3, nil); len(got) != 0 {
		t.Errorf("no history: got %v, want no slots", got)
	}
}

func TestBlackoutsCoverTheirHoursAndCrossMidnight(t *testing.T) {
	t.Parallel()
	weekdays := Blackout{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, From: 9 * time.Hour, To: 17 * time.Hour}
	night := Blackout{Days: []time.Weekday{time.Friday}, From: 22 * time.Hour, To: 2 * time.Hour}
	for _, tc := range []struct {
		b    Blackout
		at   string
		want bool
	}{
		{weekdays, "2026-12-07T09:00:00Z", true}, // Monday
		{weekdays, "2026-12-07T16:59:00Z", true},
		{weekdays, "2026-12-07T17:00:00Z", false},
		{weekdays, "2026-12-06T12:00:00Z", false}, // Sunday
		{night, "2026-12-04T23:00:00Z", true},     // Friday night
		{night, "2026-12-05T01:30:00Z", true},     // the Saturday morning after
		{night, "2026-12-05T02:00:00Z", false},
		{night, "2026-12-06T01:00:00Z", false}, // Sunday morning: not after a Friday
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := tc.b.Contains(at); got != tc.want {
			t.Errorf("%+v.Contains(%s) = %v, want %v", tc.b, tc.at, got, tc.want)
		}
	}
}

func TestMaintenanceGuard(t *testing.T) {
	t.Parallel()
	slots := []Slot{{Day: time.Sunday, Hour: 4, Load: 0.5}, {Day: time.Wednesday, Hour: 3, Load: 1}}
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	p := Policy{MaxTier: 3, Maintenance: true}
	for name, tc := range map[string]struct {
		f        MaintenanceFacts
		now      string
		want     Verdict
		until    string
		inReason string
	}{
		"inside a window":            {MaintenanceFacts{Slots: slots}, "2026-12-06T04:20:00Z", Allow, "", ""},
		"outside: until the next":    {MaintenanceFacts{Slots: slots}, "2026-12-06T05:00:00Z", Defer, "2026-12-09T03:00:00Z", "Sun 04:00, Wed 03:00"},
		"before one the same day":    {MaintenanceFacts{Slots: slots}, "2026-12-06T01:10:00Z", Defer, "2026-12-06T04:00:00Z", "the next opens 2026-12-06T04:00:00Z"},
		"in a window, but blackout":  {MaintenanceFacts{Slots: slots, Blackouts: []Blackout{{From: 4 * time.Hour, To: 4*time.Hour + 30*time.Minute}}}, "2026-12-06T04:10:00Z", Defer, "2026-12-06T04:30:00Z", "blackout"},
		"in a window, but a silence": {MaintenanceFacts{Slots: slots, Silence: "freeze by ops"}, "2026-12-06T04:10:00Z", Defer, "2026-12-06T04:25:00Z", "freeze by ops"},
		"no history yet":             {MaintenanceFacts{Unknown: "the load signal has no samples"}, "2026-12-06T04:10:00Z", Defer, "2026-12-06T05:10:00Z", "no samples"},
	} {
		d := Check(p, Facts{Now: at(tc.now), Maintenance: tc.f})
		if d.Verdict != tc.want || (tc.until != "" && !d.Until.Equal(at(tc.until))) || !strings.Contains(d.Reason, tc.inReason) {
			t.Errorf("%s: got %v until %s (%q), want %v until %s containing %q", name, d.Verdict, d.Until.Format(time.RFC3339), d.Reason, tc.want, tc.until, tc.inReason)
		}
		if d.Verdict == Defer && d.Guard != "maintenance" {
			t.Errorf("%s: guard %q, want maintenance", name, d.Guard)
		}
	}
	// A runbook not marked maintenance ignores all of it.
	if d := Check(Policy{MaxTier: 3}, Facts{Now: at("2026-12-06T05:00:00Z"), Maintenance: MaintenanceFacts{Slots: slots}}); d.Verdict != Allow {
		t.Errorf("a runbook that is not maintenance: got %v", d.Verdict)
	}
}
