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

## run: fakes + the real handler + one timer invocation exactly as the host sends it. USERS sets the
## tenant's size, REALISTIC=1 names users as a real directory does, LATENCY (such as 200ms) delays each
## Graph page, PARALLEL sets GRAPH_USERS_PARALLEL. MODE=delta runs twice, with CHANGES made to the tenant
## in between, keeping its place in a throwaway Azurite; EXPORT=true exports to it too
MODE      ?=
EXPORT    ?=
PARALLEL  ?=
LATENCY   ?= 0s
REALISTIC ?=
CHANGES   ?= {"add":5,"update":20,"rename":2,"softDelete":3,"hardDelete":2}
RUN_STORAGE = $(filter delta,$(MODE))$(filter true,$(EXPORT))
RUN_ENV = $(if $(MODE),GRAPH_USERS_MODE=$(MODE)) $(if $(EXPORT),GRAPH_USERS_EXPORT=$(EXPORT)) \
	$(if $(PARALLEL),GRAPH_USERS_PARALLEL=$(PARALLEL))
RUN_FAKES = bin/fakeazure -users $(USERS) $(if $(REALISTIC),-realistic) -latency $(LATENCY) \
	-identity-addr 127.0.0.1:0 -graph-addr 127.0.0.1:0 -handler ./handler -app-root . \
	-invocation testdata/invocations/timer.json $(if $(filter delta,$(MODE)),-changes '$(CHANGES)')
run: build $(if $(RUN_STORAGE),$(AZURITE_STAMP))
ifeq ($(RUN_STORAGE),)
	$(RUN_ENV) $(RUN_FAKES)
else
	@set -euo pipefail; dir=$$(mktemp -d); \
	.azurite/npm/node_modules/.bin/azurite-blob --skipApiVersionCheck --disableTelemetry --location "$$dir" \
		--blobHost 127.0.0.1 --blobPort 0 > "$$dir/azurite.log" 2>&1 & azurite=$$!; \
	trap 'kill $$azurite 2>/dev/null; wait $$azurite 2>/dev/null; rm -rf "$$dir"' EXIT; \
	for i in $$(seq 300); do port=$$(sed -n 's|.*listens on http://127.0.0.1:\([0-9]*\).*|\1|p' "$$dir/azurite.log"); \
		[ -n "$$port" ] && break; sleep 0.1; done; \
	[ -n "$$port" ] || { cat "$$dir/azurite.log"; echo "Azurite did not start"; exit 1; }; \
	echo "Azurite (blob) on 127.0.0.1:$$port, data in $$dir"; \
	export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$$port/devstoreaccount1;"; \
	$(RUN_ENV) $(RUN_FAKES)
endif

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

## fuzz: every fuzz target of the module (each func Fuzz… in a _test.go file) for FUZZTIME; their
## seeds, in testdata/fuzz, also run in make test. Fails when it finds no target, so that a target
## moved or renamed can never leave it fuzzing nothing; CI runs it for a few seconds
FUZZTIME ?= 30s
fuzz:
	@set -euo pipefail; found=0; \
	for dir in $$(git grep -l '^func Fuzz' -- '*_test.go' | xargs -n1 dirname | sort -u); do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6-); do \
			found=$$((found + 1)); echo "fuzz $$target in ./$$dir for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$dir; \
		done; \
	done; \
	[ $$found -gt 0 ] || { echo "make fuzz: no fuzz target found"; exit 1; }
