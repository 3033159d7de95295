GO        ?= go
BIN       := bin
PKG       := github.com/prometheus/common/version
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Revision=$(REVISION) -X $(PKG).Branch=$(BRANCH)
FUZZTIME  ?= 30s
# The fuzzing budget of each fuzzer in make test (see fuzz-short).
FUZZ_BUDGET ?= 4s
# Arguments for `make run`, e.g. make run ARGS='--collector.services.name=nginx'.
ARGS      ?=

.PHONY: all build run run-exporter test deps lint unit bench-exporter bench-intake bench-run bench-forecast eval-brain fuzz fuzz-short nab nab-check clean

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
## fuzz every fuzzer briefly, and score the anomaly rules on the NAB
## development split.
test: deps lint unit fuzz-short nab-check

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

## bench-forecast: internal/forecast on every NAB development series,
## rolling-origin at 1 h and 24 h: MASE and 80% interval coverage of the
## shipped forecast beside the naive, seasonal naive and predict_linear.
bench-forecast:
	$(GO) run ./test/bench/forecast -data testdata/nab/data

## eval-brain: the brain's labelled scenarios (internal/assess/eval) through
## the local analyzer: each answer, the ordinary pass rate and the hostile
## scenarios kept safe. With BRAIN_BASE_URL and BRAIN_MODEL (and
## BRAIN_API_KEY_FILE) set, also through that model, behind the fallback
## and alone, with latency and tokens, e.g.
## BRAIN_BASE_URL=http://127.0.0.1:11434/v1 BRAIN_MODEL=llama3.1 make eval-brain
eval-brain:
	$(GO) run ./test/bench/brain

## nab: run the shipped anomaly alert over a folder of NAB-format series,
## e.g. make nab DATA=testdata/nab/data OUT=alerts.csv
DATA ?= testdata/nab/data
OUT  ?= out/nab-alerts.csv
nab:
	@mkdir -p $(dir $(OUT))
	$(GO) run ./test/nab -data $(DATA) -out $(OUT) -rules rules/anomaly.rules.yml

## nab-check: score the shipped anomaly alert on the NAB development split
## (testdata/nab, scored by test/nab/nab_score.py) and fail below NAB_FLOOR,
## a regression guard a few points under what docs/anomaly.md reports.
NAB       ?= testdata/nab
NAB_FLOOR ?= 60
nab-check:
	@test -d $(NAB)/data || { echo "nab-check: $(NAB)/data not found"; exit 1; }
	$(MAKE) --no-print-directory nab DATA=$(NAB)/data OUT=out/nab-dev-alerts.csv
	python3 test/nab/nab_score.py --windows $(NAB)/labels/windows_dev.json \
		--data-dir $(NAB)/data --detections out/nab-dev-alerts.csv --json out/nab-dev-score.json
	python3 -c 'import json,sys; t=json.load(open("out/nab-dev-score.json"))["total"]; s=t["nab_score"]; \
		print("NAB standard score %.1f (floor $(NAB_FLOOR)), window P/R/F1 %.2f/%.2f/%.2f" % (s, t["precision"], t["recall"], t["f1"])); \
		sys.exit(0 if s >= $(NAB_FLOOR) else 1)'

## fuzz: run every fuzzer of every package for FUZZTIME, e.g.
## make fuzz FUZZTIME=10m. A failing input is saved under the package's
## testdata/fuzz/<Fuzzer>/, to be committed as a seed with the fix.
fuzz:
	GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME)

## fuzz-short: every fuzzer for FUZZ_BUDGET (4s, about a minute in all), so
## that make test looks past the seeds too.
fuzz-short:
	GO=$(GO) ./scripts/fuzz.sh $(FUZZ_BUDGET)

clean:
	rm -rf $(BIN)
