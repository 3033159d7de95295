// Package deploy holds the deployment files: the Prometheus, Alertmanager
// and healer configurations and the systemd units. Files embeds the ones
// `healer install` writes.
package deploy

import "embed"

// Files holds the healer's example configuration and the systemd units.
//
//go:embed healer/healer.yml systemd/*.service
var Files embed.FS
