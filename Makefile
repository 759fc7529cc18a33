# GraphUsersTimer: build, run locally against the fakes, test, benchmark, package.
SHELL := /bin/bash
GO    ?= go
USERS ?= 2500

.PHONY: all build run fake test lint bench fuzz package grant azurite azurite-install clean

all: lint test

## build: the handler at ./handler, where host.json's defaultExecutablePath finds it
build:
	$(GO) build -o handler ./cmd/handler
	$(GO) build -o bin/fakeazure ./cmd/fakeazure

## run: fakes + the real handler + one timer invocation exactly as the host sends it
run: build
	bin/fakeazure -users $(USERS) -identity-addr 127.0.0.1:0 -graph-addr 127.0.0.1:0 \
		-handler ./handler -app-root . -invocation testdata/invocations/timer.json

## fake: the fakes on the fixed ports local.settings.json.example names, until Ctrl-C
fake: build
	bin/fakeazure -users $(USERS)

## test: vet, then every test with the race detector; storage tests need Azurite, installed if missing
test: azurite-install
	$(GO) vet ./...
	$(GO) test -race ./...

## lint: formatting and a tidy go.mod
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...

## package: dist/GraphUsersTimer.zip, the zip a Function App deploys as is: host.json,
## GraphUsersTimer/function.json and the static linux/amd64 handler, executable bit recorded
package:
	$(GO) run ./cmd/appzip -go $(GO) -o dist/GraphUsersTimer.zip

## bench: every figure of the issues "Fast and flat", "A million users inside one timeout" and
## "Only what changed", each next to a baseline measured in the same run, with its ratio and target
## (README, "Performance"); about seven minutes on 2 cores, never run in CI. BENCH names the parts
## to run, of: fast (the listing in-process against a baseline client, peak heap, start-up and
## binary size; about two minutes), streams (the handler process over a million users at 200 ms a
## page: one cursor, 32 and 64 streams, a one-page tenant; about four minutes, the one cursor's
## 200 s most of it), delta (a delta round after 1 % churn; under a minute) and export (a
## million-user export, three times, beside the listing alone; about a minute). For example
## `make bench BENCH=streams`. The 100,000-user listings run 3 times, interleaved, and report their
## median: the machine's other load moves them most. BENCH_CPUPROFILE=<folder> has each handler
## process of streams, delta and export write its own CPU profile there.
BENCH      ?= fast streams delta export
BENCHFLAGS  = -run '^$$' -benchmem -timeout 30m
# The handler process's figures are its own: this process's allocations say nothing of them.
WHOLEFLAGS  = -run '^$$' -timeout 30m
BENCH_fast = \
	$(GO) test $(BENCHFLAGS) -bench '^BenchmarkListUsers$$' -benchtime 3x -count 3 ./internal/graph/ && \
	$(GO) test $(BENCHFLAGS) -bench '^BenchmarkListUsersLatency$$' -benchtime 3x ./internal/graph/ && \
	$(GO) test $(BENCHFLAGS) -bench '^BenchmarkListUsersPeakHeap$$' -benchtime 1x ./internal/graph/ && \
	$(GO) test $(BENCHFLAGS) -bench '^BenchmarkStartup$$' -benchtime 30x ./cmd/handler/
BENCH_streams = $(GO) test $(WHOLEFLAGS) -bench '^BenchmarkStreams$$' -benchtime 1x ./cmd/handler/
BENCH_delta   = $(GO) test $(WHOLEFLAGS) -bench '^BenchmarkDelta$$' -benchtime 1x ./cmd/handler/
BENCH_export  = $(GO) test $(WHOLEFLAGS) -bench '^BenchmarkExport$$' -benchtime 1x ./cmd/handler/
bench: $(if $(filter delta export,$(BENCH)),azurite-install)
	$(if $(filter-out fast streams delta export,$(BENCH)),$(error BENCH="$(BENCH)": the parts are fast, streams, delta and export))
	$(GO) build -o bin/benchreport ./cmd/benchreport
	@set -o pipefail; { true $(foreach part,$(BENCH),&& $(BENCH_$(part))); } 2>&1 | bin/benchreport -parts '$(BENCH)'

## grant: give the managed identity CLIENT_ID (default $AZURE_CLIENT_ID) User.Read.All, as the
## administrator signed in with az login; GRANT_FLAGS adds flags, such as -dry-run
grant:
	$(GO) run ./cmd/grant $(if $(CLIENT_ID),-client-id $(CLIENT_ID)) $(GRANT_FLAGS)

## azurite: the storage emulator a timer trigger needs under func start (AzureWebJobsStorage=
## UseDevelopmentStorage=true): installed from npm into .azurite/npm, data in .azurite, listening on
## 127.0.0.1:10000-10002 until Ctrl-C. Azurite 3.36 and later need Node 21 or newer.
AZURITE_VERSION ?= 3.35.0
AZURITE_STAMP   := .azurite/npm/installed-$(AZURITE_VERSION)
azurite: $(AZURITE_STAMP)
	.azurite/npm/node_modules/.bin/azurite --silent --location .azurite --skipApiVersionCheck --disableTelemetry

## azurite-install: install Azurite into .azurite/npm once, for the tests that start it (internal/azurite)
azurite-install: $(AZURITE_STAMP)

$(AZURITE_STAMP):
	npm install --prefix .azurite/npm --no-save --no-audit --no-fund azurite@$(AZURITE_VERSION)
	touch $@

clean:
	rm -rf handler bin dist

## fuzz: each fuzz target for FUZZTIME (its seeds, in testdata/fuzz, also run in make test)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeInvocation$$' -fuzztime $(FUZZTIME) ./internal/functions
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePage$$' -fuzztime $(FUZZTIME) ./internal/graph
