// Package rules ships the Prometheus recording and alerting rules that deus
// watches hosts with. The rule files sit beside this file as
// <name>.rules.yml, each with a promtool unit test <name>_test.yml; Files
// embeds the rule files so that the healer can ship them in its binary.
//
// The tests of this package check every rule file with the rule parser of
// Prometheus 3, with promtool (Prometheus 2.x) and vmalert, run the promtool
// unit tests, and require a unit test and a runbook for every alert.
package rules

import "embed"

// Files holds every rule file of this directory (*.rules.yml), by base name.
//
//go:embed *.rules.yml
var Files embed.FS
