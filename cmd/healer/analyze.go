package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/healer"
)

func (c *cli) analyzeCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("analyze", "Read the alert history (Prometheus' ALERTS and the healer's own) for alerts that recur and when, flap, fire together, and runbooks that do not heal, and say what to look at first.")
	since := cmd.Flag("since", "How far back.").Default("30d").String()
	step := cmd.Flag("step", "The resolution at which Prometheus' ALERTS are read.").Default("1m").String()
	output := cmd.Flag("output", "text or json.").Default("text").Enum("text", "json")
	return cmd, func(context.Context) int {
		q := url.Values{"since": {*since}, "step": {*step}}
		return c.view("/api/v1/analysis?"+q.Encode(), *output, printAnalysis)
	}
}

// printAnalysis writes an analysis as a person reads it: what to look at
// first, then the tables behind it.
func printAnalysis(stdout, stderr io.Writer, b []byte) int {
	var a healer.Analysis
	if err := json.Unmarshal(b, &a); err != nil {
		fmt.Fprintf(stderr, "healer: analyze: %v\n", err)
		return 1
	}
	onsets := 0
	for _, s := range a.Alerts {
		onsets += s.Onsets
	}
	fmt.Fprintf(stdout, "Alert history from %s to %s: %d alerts, %d onsets (episodes read: %s).\n",
		a.Since.UTC().Format("2006-01-02 15:04"), a.Until.UTC().Format("2006-01-02 15:04 UTC"), len(a.Alerts), onsets, sourcesText(a.Sources))
	for _, n := range a.Notes {
		fmt.Fprintf(stdout, "Note: %s\n", n)
	}
	if len(a.LookFirst) == 0 {
		fmt.Fprintln(stdout, "\nNothing recurs, flaps, fires together or goes unhealed.")
	} else {
		fmt.Fprintln(stdout, "\nLook at first:")
		for i, f := range a.LookFirst {
			fmt.Fprintf(stdout, "%3d. %s: %s\n      try: %s\n", i+1, f.Subject, f.What, f.Try)
		}
	}
	table(stdout, "Recurring", len(a.Recurring), "ALERT\tINSTANCE\tPERIOD\tWHEN\tONSETS\tCONFIDENCE", func(row func(...any)) {
		for _, r := range a.Recurring {
			row(r.Alertname, r.Instance, r.Period, r.When, r.Onsets, fmt.Sprintf("%.2f", r.Confidence))
		}
	})
	table(stdout, "Flapping", len(a.Flapping), "ALERT\tINSTANCE\tBURSTS\tONSETS IN BURSTS\tMOST IN A WINDOW\tMEDIAN EPISODE", func(row func(...any)) {
		for _, f := range a.Flapping {
			row(f.Alertname, f.Instance, f.Bursts, f.FlapOnsets, fmt.Sprintf("%d in %s", f.MaxInWindow, seconds(f.WindowSecs)), seconds(f.MedianSeconds))
		}
	})
	table(stdout, "Runbooks", len(a.Runbooks), "RUNBOOK\tRUNS\tSUCCEEDED\tHEALED\tRETURNED WITHIN A DAY\tMEDIAN TIME TO HEAL", func(row func(...any)) {
		for _, r := range a.Runbooks {
			row(r.Runbook, r.Runs, percent(r.Succeeded, r.SuccessRate), percent(r.Healed, r.HealRate), percent(r.Returned, r.ReturnRate), seconds(r.MedianHealSeconds))
		}
	})
	table(stdout, "Fire together", len(a.Together), "ALERT\tWITH\tTOGETHER\tBY CHANCE\tLIFT", func(row func(...any)) {
		for _, p := range a.Together {
			row(p.A, p.B, p.Together, fmt.Sprintf("%.2f", p.Expected), fmt.Sprintf("%.1f", p.Lift))
		}
	})
	return 0
}

// table writes a titled table when it has rows.
func table(w io.Writer, title string, rows int, header string, fill func(row func(...any))) {
	if rows == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\n", header)
	fill(func(cells ...any) {
		line := " "
		for i, c := range cells {
			if i > 0 {
				line += "\t"
			} else {
				line += " "
			}
			line += fmt.Sprint(c)
		}
		fmt.Fprintln(tw, line)
	})
	tw.Flush()
}

func sourcesText(s map[string]int) string {
	if len(s) == 0 {
		return "none"
	}
	out := ""
	for _, name := range []string{"prometheus", "healer"} {
		if n, ok := s[name]; ok {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%d from %s", n, name)
		}
	}
	return out
}

func percent(n int, rate float64) string { return fmt.Sprintf("%d (%.0f%%)", n, 100*rate) }

func seconds(s float64) string {
	if s == 0 {
		return "-"
	}
	return model.Duration(time.Duration(s) * time.Second).String()
}
