#!/usr/bin/env bash
# Installs what the tests run for real: Debian's Prometheus (promtool),
# Alertmanager, node_exporter, VictoriaMetrics, bubblewrap and Chromium (the
# status page's browser test), and
# golangci-lint from the Go module proxy. Does nothing for what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
need() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
need promtool prometheus
need prometheus prometheus
need prometheus-alertmanager prometheus-alertmanager
need amtool prometheus-alertmanager
need prometheus-node-exporter prometheus-node-exporter
need victoria-metrics victoria-metrics
need vmalert victoria-metrics
need bwrap bubblewrap
need dbus-daemon dbus-daemon
need chromium chromium

if ((${#packages[@]})); then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${packages[*]}" >&2; exit 1; }
		sudo=(sudo)
	fi
	mapfile -t unique < <(printf '%s\n' "${packages[@]}" | sort -u)
	echo "install-deps: installing ${unique[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${unique[@]}" >/dev/null
fi

go mod download

golangci_version=v2.15.0
if ! bin/golangci-lint version 2>/dev/null | grep -q "${golangci_version#v}"; then
	echo "install-deps: building golangci-lint ${golangci_version}"
	GOBIN="$PWD/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${golangci_version}"
fi
