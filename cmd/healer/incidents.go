package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/deus-ex-machina/deus/internal/incident"
	"github.com/deus-ex-machina/deus/internal/store"
)

func (c *cli) incidentsCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("incidents", "List the incidents (alerts that are one problem, acted on once), or show one with its alerts and runs.")
	id := cmd.Arg("id", "An incident to show.").String()
	state := cmd.Flag("state", "Only open or resolved incidents.").Enum("open", "resolved")
	output := cmd.Flag("output", "text or json.").Default("text").Enum("text", "json")
	return cmd, func(context.Context) int {
		if *id != "" {
			return c.view("/api/v1/incidents/"+url.PathEscape(*id), *output, printIncident)
		}
		q := url.Values{}
		if *state != "" {
			q.Set("state", *state)
		}
		return c.view("/api/v1/incidents?"+q.Encode(), *output, printIncidents)
	}
}

func printIncidents(stdout, stderr io.Writer, b []byte) int {
	var ins []incident.Incident
	if err := json.Unmarshal(b, &ins); err != nil {
		fmt.Fprintf(stderr, "healer: incidents: %v\n", err)
		return 1
	}
	if len(ins) == 0 {
		fmt.Fprintln(stdout, "no incidents")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tSTATE\tGROUP\tPRIMARY\tALERTS\tOPENED\tACTING RUN")
	for _, in := range ins {
		primary, _ := in.Member(in.Primary)
		name := ""
		if primary != nil {
			name = primary.Alertname
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", in.ID, in.State, in.Group, name, len(in.Members),
			in.OpenedAt.UTC().Format(time.DateTime), dash(in.RunID))
	}
	tw.Flush()
	return 0
}

func printIncident(stdout, stderr io.Writer, b []byte) int {
	var in struct {
		incident.Incident
		Runs []store.Run `json:"runs"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		fmt.Fprintf(stderr, "healer: incidents: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Incident %s, %s, %s: opened %s", in.ID, in.State, in.Group, in.OpenedAt.UTC().Format(time.DateTime+" UTC"))
	if !in.ResolvedAt.IsZero() {
		fmt.Fprintf(stdout, ", resolved %s", in.ResolvedAt.UTC().Format(time.DateTime+" UTC"))
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ALERT\tLABELS\tSTARTED\tRUNBOOK\tROLE\tRESOLVED")
	for _, m := range in.Members {
		role := ""
		switch m.Key {
		case in.Primary:
			role = "primary"
		case in.Acting:
			role = "acting"
		}
		if m.Key == in.Primary && m.Key == in.Acting {
			role = "primary, acting"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%v\n", m.Alertname, m.Labels, m.StartsAt.UTC().Format(time.DateTime), dash(m.Runbook), dash(role), m.Resolved)
	}
	tw.Flush()
	if len(in.Runs) > 0 {
		fmt.Fprintln(stdout, "Runs:")
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, r := range in.Runs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.Runbook, r.Alertname, r.State, r.Reason)
		}
		tw.Flush()
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) assessCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("assess", "Show what the brain is given for a stored alert and what it answers; with --dry-run, the exact request a model would be sent (masked), sending nothing. Acts on nothing.")
	alert := cmd.Arg("alert", "The alert's key or fingerprint (see GET /api/v1/alerts).").Required().String()
	dry := cmd.Flag("dry-run", "Send nothing: show the request a model would be sent.").Bool()
	return cmd, func(context.Context) int {
		return c.api().do(c.stdout, c.stderr, http.MethodPost, "/api/v1/assess", map[string]any{"alert": *alert, "dry_run": *dry})
	}
}
