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

## bench: the "Fast and flat" figures, each next to a baseline client measured in the same run, with
## its ratio and target (README, "Performance"); about two minutes on 2 cores, never run in CI. The
## 100,000-user listings run 3 times, interleaved, and report their median: the machine's other
## load moves them most
BENCHFLAGS = -run '^$$' -benchmem -timeout 30m
bench:
	$(GO) build -o bin/benchreport ./cmd/benchreport
	@set -o pipefail; { \
		$(GO) test $(BENCHFLAGS) -bench '^BenchmarkListUsers$$' -benchtime 3x -count 3 ./internal/graph/ && \
		$(GO) test $(BENCHFLAGS) -bench '^BenchmarkListUsersLatency$$' -benchtime 3x ./internal/graph/ && \
		$(GO) test $(BENCHFLAGS) -bench '^BenchmarkListUsersPeakHeap$$' -benchtime 1x ./internal/graph/ && \
		$(GO) test $(BENCHFLAGS) -bench '^BenchmarkStartup$$' -benchtime 30x ./cmd/handler/; \
	} 2>&1 | bin/benchreport

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
