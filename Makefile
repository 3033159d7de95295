GO        ?= go
BIN       := bin
PKG       := github.com/prometheus/common/version
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Revision=$(REVISION) -X $(PKG).Branch=$(BRANCH)
FUZZTIME  ?= 30s
# Arguments for `make run`, e.g. make run ARGS='--collector.services.name=nginx'.
ARGS      ?=

.PHONY: all build run test deps lint unit bench-exporter fuzz nab clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/exporter ./cmd/exporter

## run: build and start the exporter on :9110 (/metrics).
run: build
	$(BIN)/exporter $(ARGS)

## test: install what is missing, then lint and run every test (unit,
## golden, fuzz seeds, integration against the real servers).
test: deps lint unit

deps:
	./scripts/install-deps.sh

lint:
	$(GO) vet ./...
	$(BIN)/golangci-lint run ./...

unit:
	$(GO) test -race -count=1 ./...

## bench-exporter: our exporter and node_exporter side by side, with ratios.
bench-exporter: build deps
	$(GO) run ./test/bench/exporter -ours $(BIN)/exporter

## nab: run the shipped anomaly alert over a folder of NAB-format series,
## e.g. make nab DATA=../shared/nab-dev/data OUT=alerts.csv
DATA ?= ../shared/nab-dev/data
OUT  ?= out/nab-alerts.csv
nab:
	@mkdir -p $(dir $(OUT))
	$(GO) run ./test/nab -data $(DATA) -out $(OUT) -rules rules/anomaly.rules.yml

## fuzz: run every fuzzer for FUZZTIME.
fuzz:
	@for f in $$($(GO) test -list '^Fuzz' ./internal/collector | grep ^Fuzz); do \
		echo "== $$f"; $(GO) test ./internal/collector -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

clean:
	rm -rf $(BIN)
