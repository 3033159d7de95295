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

.PHONY: all build run run-exporter test deps lint unit bench-exporter bench-intake bench-run fuzz nab nab-check clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/exporter ./cmd/exporter
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/healer ./cmd/healer

## run: build and start the healer standalone, in dry-run mode: this host's
## vitals, the shipped rules and what the healer would do, on
## http://localhost:9111 (state in ./data).
run: build
	$(BIN)/healer $(ARGS)

## run-exporter: build and start the exporter on 127.0.0.1:9110 (/metrics).
run-exporter: build
	$(BIN)/exporter $(ARGS)

## test: install what is missing, then lint and run every test (unit,
## golden, fuzz seeds, integration against the real servers, rule tests),
## and score the anomaly rules on the NAB development split.
test: deps lint unit nab-check

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

## bench-intake: the healer's webhook intake (its store, audit log and
## planner, in-process) beside a decode-only handler, with ratios.
bench-intake:
	$(GO) run ./test/bench/intake

## bench-run: what one run costs the planner and executor (no-op action,
## real store and audit log): runs/s, allocations, and store reads, writes
## and audit records per run.
BENCHTIME  ?= 2000x
BENCHCOUNT ?= 5
bench-run:
	$(GO) test -run '^$$' -bench BenchmarkRun -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) ./internal/healer

## nab: run the shipped anomaly alert over a folder of NAB-format series,
## e.g. make nab DATA=../shared/nab-dev/data OUT=alerts.csv
DATA ?= ../shared/nab-dev/data
OUT  ?= out/nab-alerts.csv
nab:
	@mkdir -p $(dir $(OUT))
	$(GO) run ./test/nab -data $(DATA) -out $(OUT) -rules rules/anomaly.rules.yml

## nab-check: score the shipped anomaly alert on the NAB development split
## (../shared/nab-dev) and fail below NAB_FLOOR, a regression guard a few
## points under what docs/anomaly.md reports.
SHARED    ?= ../shared
NAB_FLOOR ?= 45
nab-check:
	@test -d $(SHARED)/nab-dev || { echo "nab-check: $(SHARED)/nab-dev not found"; exit 1; }
	$(MAKE) --no-print-directory nab DATA=$(SHARED)/nab-dev/data OUT=out/nab-dev-alerts.csv
	python3 $(SHARED)/nab-dev/nab_score.py --windows $(SHARED)/nab-dev/labels/windows_dev.json \
		--data-dir $(SHARED)/nab-dev/data --detections out/nab-dev-alerts.csv --json out/nab-dev-score.json
	python3 -c 'import json,sys; t=json.load(open("out/nab-dev-score.json"))["total"]; s=t["nab_score"]; \
		print("NAB standard score %.1f (floor $(NAB_FLOOR)), window P/R/F1 %.2f/%.2f/%.2f" % (s, t["precision"], t["recall"], t["f1"])); \
		sys.exit(0 if s >= $(NAB_FLOOR) else 1)'

## fuzz: run every fuzzer for FUZZTIME.
fuzz:
	@for p in ./internal/collector ./internal/alertmanager ./internal/config ./internal/store; do \
		for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "== $$p $$f"; $(GO) test $$p -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
		done; \
	done

clean:
	rm -rf $(BIN)
