package guard

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Maintenance windows. A runbook marked maintenance (a clean-up that can
// wait) runs only inside one: the quietest hours of the week by a load
// signal's history, never inside a blackout, never while a maintenance
// silence is active. A run outside a window is deferred until the next.

// Sample is one point of a load signal's history.
type Sample struct {
	T time.Time
	V float64
}

// Slot is one hour of the week (in UTC) and the signal's mean load in it.
type Slot struct {
	Day     time.Weekday
	Hour    int
	Load    float64
	Samples int
}

// String is the slot as "Tue 03:00".
func (s Slot) String() string { return fmt.Sprintf("%s %02d:00", s.Day.String()[:3], s.Hour) }

// index is the slot's hour of the week, 0 (Sunday 00:00) to 167.
func (s Slot) index() int { return int(s.Day)*24 + s.Hour }

// Blackout is a recurring time no maintenance runs in: on Days, from From
// to To after midnight UTC (To before From crosses midnight).
type Blackout struct {
	Days     []time.Weekday
	From, To time.Duration
}

// Contains reports whether t falls inside the blackout.
func (b Blackout) Contains(t time.Time) bool {
	t = t.UTC()
	day := t.Weekday()
	since := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	on := func(d time.Weekday) bool {
		if len(b.Days) == 0 {
			return true
		}
		for _, x := range b.Days {
			if x == d {
				return true
			}
		}
		return false
	}
	if b.From <= b.To {
		return on(day) && since >= b.From && since < b.To
	}
	// Across midnight: the evening of a listed day, or the morning after.
	return (on(day) && since >= b.From) || (on((day+6)%7) && since < b.To)
}

// overlaps reports whether any of the hour starting at t is in a blackout.
func overlaps(bs []Blackout, t time.Time) bool {
	for _, b := range bs {
		for m := time.Duration(0); m < time.Hour; m += 5 * time.Minute {
			if b.Contains(t.Add(m)) {
				return true
			}
		}
	}
	return false
}

// QuietestSlots returns the n hours of the week with the lowest mean load in
// history, leaving out hours that touch a blackout and hours with no
// samples, quietest first (earlier in the week first on a tie).
func QuietestSlots(history []Sample, n int, blackouts []Blackout) []Slot {
	var sum [168]float64
	var count [168]int
	for _, s := range history {
		if math.IsNaN(s.V) || math.IsInf(s.V, 0) {
			continue
		}
		t := s.T.UTC()
		i := int(t.Weekday())*24 + t.Hour()
		sum[i] += s.V
		count[i]++
	}
	// A reference week, to ask the blackouts about each hour of it.
	week := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC) // a Sunday
	var slots []Slot
	for i := range 168 {
		if count[i] == 0 || overlaps(blackouts, week.Add(time.Duration(i)*time.Hour)) {
			continue
		}
		slots = append(slots, Slot{Day: time.Weekday(i / 24), Hour: i % 24, Load: sum[i] / float64(count[i]), Samples: count[i]})
	}
	sort.SliceStable(slots, func(a, b int) bool { return slots[a].Load < slots[b].Load })
	if len(slots) > n {
		slots = slots[:n]
	}
	return slots
}

// NextWindow returns when the next window of slots opens at or after now
// (now itself when now is inside one) and when it closes; ok is false when
// there are no slots.
func NextWindow(slots []Slot, now time.Time) (start, end time.Time, ok bool) {
	if len(slots) == 0 {
		return time.Time{}, time.Time{}, false
	}
	now = now.UTC()
	hour := now.Truncate(time.Hour)
	nowIdx := int(now.Weekday())*24 + now.Hour()
	best := -1
	for _, s := range slots {
		d := (s.index() - nowIdx + 168) % 168
		if best < 0 || d < best {
			best = d
		}
	}
	start = hour.Add(time.Duration(best) * time.Hour)
	if best == 0 {
		start = now
	}
	return start, hour.Add(time.Duration(best+1) * time.Hour), true
}

// MaintenanceFacts are what the maintenance guard knows of now.
type MaintenanceFacts struct {
	// Slots are the week's maintenance windows (QuietestSlots).
	Slots []Slot
	// Blackouts are the configured blackouts.
	Blackouts []Blackout
	// Silence names an active maintenance silence ("" for none).
	Silence string
	// Unknown says why there are no slots (no history yet), if so.
	Unknown string
}

// Maintenance decides for a maintenance runbook's run at now: allowed
// inside a window, deferred (with until when) outside one, inside a
// blackout or while a maintenance silence is active.
func Maintenance(m MaintenanceFacts, now time.Time) Decision {
	for _, b := range m.Blackouts {
		if b.Contains(now) {
			return Decision{Verdict: Defer, Guard: "maintenance", Reason: "inside a maintenance blackout", Until: blackoutEnd(m.Blackouts, now)}
		}
	}
	if m.Silence != "" {
		return Decision{Verdict: Defer, Guard: "maintenance", Reason: "a maintenance silence is active (" + m.Silence + ")", Until: now.Add(15 * time.Minute)}
	}
	start, end, ok := NextWindow(m.Slots, now)
	if !ok {
		why := "no maintenance window is known"
		if m.Unknown != "" {
			why += ": " + m.Unknown
		}
		return Decision{Verdict: Defer, Guard: "maintenance", Reason: why, Until: now.Add(time.Hour)}
	}
	if !start.After(now) && now.Before(end) {
		return Decision{Verdict: Allow}
	}
	names := make([]string, len(m.Slots))
	for i, s := range m.Slots {
		names[i] = s.String()
	}
	return Decision{
		Verdict: Defer, Guard: "maintenance", Until: start,
		Reason: fmt.Sprintf("outside the maintenance windows (%s UTC, the quietest hours of the week); the next opens %s", strings.Join(names, ", "), start.Format(time.RFC3339)),
	}
}

// blackoutEnd is the first time after now that no blackout holds, looked
// for in steps of 5 minutes up to a week.
func blackoutEnd(bs []Blackout, now time.Time) time.Time {
	t := now.Truncate(5 * time.Minute)
	for range 7 * 24 * 12 {
		t = t.Add(5 * time.Minute)
		in := false
		for _, b := range bs {
			in = in || b.Contains(t)
		}
		if !in {
			return t
		}
	}
	return t
}
