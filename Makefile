# Themis Maintenance — `make run` runs the system, `make test` runs the tests.

TEMPORAL_CLI_VERSION ?= v1.5.1
TEMPORAL_CLI_CACHE   ?= $(HOME)/.cache/themis/temporal-cli-$(TEMPORAL_CLI_VERSION)
WORKFLOWCHECK        ?= go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
GO_TEST_FLAGS        ?= -race -count=1 -timeout 40m
VERSION              ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
export PATH := $(PATH):/usr/local/go/bin

.PHONY: run test fuzz test-cluster unit lint build temporal-cli bench bench-go bench-pg bench-restore bench-impact clean record-histories

## run: start the dev server, worker and API on embedded defaults (SQLite demo target)
run: build
	@if [ -n "$$TEMPORAL_ADDRESS" ]; then \
	  echo "Using the Temporal server at $$TEMPORAL_ADDRESS"; \
	  exec bin/themisctl dev --no-dev-server $(RUN_ARGS); \
	elif command -v temporal >/dev/null 2>&1; then \
	  echo "Using temporal from PATH: $$(command -v temporal)"; \
	  THEMIS_TEMPORAL_BIN=$$(command -v temporal) exec bin/themisctl dev $(RUN_ARGS); \
	else \
	  $(MAKE) --no-print-directory temporal-cli && THEMIS_TEMPORAL_BIN=$(CURDIR)/bin/temporal exec bin/themisctl dev $(RUN_ARGS); \
	fi

## test: lint, then every test (unit, driver, integration on a real dev server and PostgreSQL) with the race detector
test: lint temporal-cli
	GORACE="atexit_sleep_ms=0 $$GORACE" THEMIS_TEMPORAL_BIN=$(CURDIR)/bin/temporal go test $(GO_TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory fuzz

## fuzz: run each fuzz target briefly (FUZZTIME each, default 5s; the seed corpora also run in every go test):
## the request body decoder, the schedule decoder, the page token, the audit sanitiser, schedule normalisation
FUZZTIME ?= 5s
FUZZ_TARGETS = ./api:FuzzParseObject ./api:FuzzScheduleDecode ./starter:FuzzDecodePageToken \
	./internal/audit:FuzzSanitize ./domain:FuzzNormalize
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t#*:}; \
	  echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## test-cluster: the multi-process tests alone (dev server, 2 `themisctl worker`, 2 `themisctl api`, PostgreSQL)
test-cluster: temporal-cli
	THEMIS_TEMPORAL_BIN=$(CURDIR)/bin/temporal go test -count=1 -timeout 20m -v ./testsuite/cluster/

## unit: the fast tests only: no dev server, no PostgreSQL, no bin/temporal (tests that need
## them skip under -short), without the race detector (make test runs every test with it):
## about 55 s on 2 cores with a warm build cache, most of it linking the test binaries.
unit:
	go test -count=1 -short ./...

## lint: gofmt, go vet and the SDK's workflowcheck determinism analyzer
lint:
	@fmt_out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt_out" ]; then echo "gofmt needed:"; echo "$$fmt_out"; exit 1; fi
	go vet ./...
	go run $(WORKFLOWCHECK) ./workflows/...

build:
	@mkdir -p bin
	go build -ldflags "-X github.com/themis-maintenance/themis/cmd/themisctl/root.Version=$(VERSION)" -o bin/themisctl ./cmd/themisctl

## temporal-cli: the pinned Temporal CLI in ./bin, built once into a cache outside the repo
temporal-cli:
	@mkdir -p bin
	@if [ ! -x "$(TEMPORAL_CLI_CACHE)/temporal" ]; then \
	  echo ">>> Building the Temporal CLI $(TEMPORAL_CLI_VERSION) from the Go module proxy into $(TEMPORAL_CLI_CACHE)"; \
	  echo ">>> This takes about 8 minutes on a cold cache; later runs reuse it."; \
	  mkdir -p "$(TEMPORAL_CLI_CACHE).tmp" && \
	  GOBIN="$(TEMPORAL_CLI_CACHE).tmp" GOFLAGS=-buildvcs=false go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION) && \
	  rm -rf "$(TEMPORAL_CLI_CACHE)" && mv "$(TEMPORAL_CLI_CACHE).tmp" "$(TEMPORAL_CLI_CACHE)" || exit 1; \
	fi; \
	if ! cmp -s "$(TEMPORAL_CLI_CACHE)/temporal" bin/temporal; then \
	  cp "$(TEMPORAL_CLI_CACHE)/temporal" bin/temporal && echo ">>> bin/temporal: Temporal CLI $(TEMPORAL_CLI_VERSION) ($$(bin/temporal --version))"; \
	fi

## bench: the orchestration against the Temporal floor (not part of `make test`, about 8 minutes): a dev
## server, one `themisctl worker` and one `themisctl api` as processes; forced Daily runs vs a bare SDK
## workflow, per-task overhead, light jobs per minute, GET /schedules /jobs /health at 16 connections,
## visibility calls per list request, RSS; one table. BENCH_DURATION=5s (each load window) for a quick
## run; BENCH_ARGS for more flags (go run ./internal/bench/orchestration/cmd/bench-orch -h).
bench: build temporal-cli
	go build -o bin/themisctl-bench-health ./internal/bench/orchestration/cmd/themisctl-bench-health
	THEMIS_TEMPORAL_BIN=$(CURDIR)/bin/temporal go run ./internal/bench/orchestration/cmd/bench-orch \
	  -themisctl $(CURDIR)/bin/themisctl -health-bin $(CURDIR)/bin/themisctl-bench-health $(BENCH_ARGS)

## bench-go: the Go benchmarks (API latency p50/p99 on the in-process fake, GET /schedules with 100
## schedules on a real dev server)
bench-go: temporal-cli
	THEMIS_TEMPORAL_BIN=$(CURDIR)/bin/temporal go test -run '^$$' -bench . -benchmem ./...

## bench-pg: this project's PostgreSQL tasks vs vacuumdb / pg_amcheck / reindexdb on a generated
## database (default 200 tables, 1 GB, -j 2); prints a table with each pair's time and ratio
bench-pg:
	go run ./internal/bench/pgbench/cmd/bench-pg $(BENCH_PG_ARGS)

## bench-restore: the DR drill's restore by each strategy (backup_restore, replica_clone) of a generated
## database (BENCH_RESTORE_SIZE, default 1GB) beside a plain cp -a of the same data directory (the floor);
## BENCH_RESTORE_SIZE=100MB for a quick run, BENCH_RESTORE_ARGS for more flags (-h)
bench-restore:
	go run ./internal/bench/restore/cmd/bench-restore -size $(or $(BENCH_RESTORE_SIZE),1GB) $(BENCH_RESTORE_ARGS)

## bench-impact: what maintenance costs a pgbench workload (-c 4 -j 2 -R 200) on a primary with a streaming
## standby: mvcc_cleanup + index_rebuild by this project with throttling on (max_lag_ms=500) vs vacuumdb -j 2 +
## reindexdb --concurrently -j 2 over a generated database (BENCH_IMPACT_SIZE, default 1GB), beside a quiet
## baseline; prints TPS, p99, the standby's max lag and the maintenance time, with the ratios to the targets
## (5–10 minutes on 2 cores). BENCH_IMPACT_SIZE=100MB for a quick run, BENCH_IMPACT_ARGS for more flags (-h)
bench-impact:
	go run ./internal/bench/impact/cmd/bench-impact -size $(or $(BENCH_IMPACT_SIZE),1GB) $(BENCH_IMPACT_ARGS)

clean:
	rm -rf bin .data

## record-histories: re-record the workflow histories the replay test checks
record-histories: temporal-cli
	THEMIS_RECORD_HISTORIES=$(CURDIR)/workflows/testdata THEMIS_TEMPORAL_BIN=$(CURDIR)/bin/temporal go test -count=1 -run 'TestForcedRunSucceeds|TestScheduleActionStartsJob|TestCancelLongTaskMidway|TestWorkerRestartResumesFromCheckpoint|TestDrill|TestTargetLockTwoWorkersNeverOverlap|TestTaskGraphOnDevServer|TestBlackoutSkipsScheduledRuns|TestJobCarriesPredictedDurations|TestDryRunThroughTheAPI|TestWindowBudgetLeavesTheRestForTheNextRun' ./testsuite/
