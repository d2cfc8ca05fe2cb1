# lifeboat — the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/lifeboat
PKGS    := ./...

.PHONY: all build image test lint tools unit rig integration demo bench fuzz clean

all: build

## VERSION is what `lifeboat version` prints.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

## BUILDVCS stamps the commit (lifeboat version) even where GOFLAGS says
## -buildvcs=false, as on this project's CI machine — when git can read the
## checkout (otherwise asking for the stamp would fail the build).
BUILDVCS := $(shell git rev-parse HEAD >/dev/null 2>&1 && echo -buildvcs=auto)
build:
	$(GO) build $(BUILDVCS) -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/lifeboat

## image: the worker image as an OCI layout in bin/image (no Docker daemon
## needed); push it with `crane push bin/image REGISTRY/lifeboat:TAG`.
image:
	$(GO) run ./cmd/lifeboat-image --out bin/image --version $(VERSION)

## test: everything CI runs — formatting, vet, unit tests with the race
## detector, integration tests on the real Temporal dev server. After lint
## (which compiles lifeboat's packages once) the two-region end-to-end test
## starts in its own process — its TestMain builds whatever rig part is not
## cached — while the unit tests run (their race build shares no work with
## the rig), then all the other integration tests beside it (their TestMain
## waits for each part the other process is building: one build per part).
## Its output follows the others'.
test: lint tools
	@e2e=$$(mktemp); \
	( $(E2E_TEST) >$$e2e 2>&1; echo $$? >$$e2e.rc ) & \
	$(MAKE) --no-print-directory unit; unit=$$?; rest=1; \
	if [ $$unit -eq 0 ]; then $(REST_TESTS); rest=$$?; fi; \
	wait; echo "== the end-to-end test (run beside the unit and the other integration tests):"; cat $$e2e; \
	code=$$(cat $$e2e.rc); rm -f $$e2e $$e2e.rc; \
	[ $$unit -eq 0 ] && [ $$rest -eq 0 ] && [ $$code -eq 0 ]

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags integration $(PKGS)

## tools: what the rig and the tests need from Debian: ssh-keygen (an
## auditor's tool: the tests verify signed approvals with it), redis-server
## (Argo CD's cache), git (Argo CD's repository), bash-completion (what
## `lifeboat completion bash` builds on; the tests press <TAB> in bash) and
## postgresql-15 (the case database, its standby and pg_rewind; the
## package's own "main" cluster is not created: the rig makes its own).
tools:
	@missing=""; \
	command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v git >/dev/null || missing="$$missing git"; \
	[ -f /usr/share/bash-completion/bash_completion ] || missing="$$missing bash-completion"; \
	[ -x /usr/lib/postgresql/15/bin/pg_rewind ] || missing="$$missing postgresql-15"; \
	if [ -n "$$missing" ]; then echo "installing from Debian:$$missing (first run only)…"; \
	  mkdir -p /etc/postgresql-common; [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

unit: tools
	$(GO) test -race -count=1 $(PKGS)

## integration: first one `go test` that runs no test — its TestMain builds
## whatever rig part is not cached yet, and the test binary — then the
## two-region end-to-end test (~7.5 min, mostly waiting for Velero's
## once-a-minute sync) in its own process beside all the others, which run
## three at a time (-parallel 3: each has its own dev server and rig and
## spends much of its time waiting; the default is one per core). In one
## process Go would start the end-to-end test whenever a slot frees (it
## started fourth from last), the others' ~4 min before its 7.5.
E2E := ^TestRegionFailoverEndToEnd$$
## rig: builds every rig part not cached yet and the integration test binary.
rig: tools
	$(GO) test -tags integration -count=1 -timeout 80m -run '^$$' ./testsuite/

## The two integration processes; -timeout covers a cold rig build (the
## TestMain's, up to 70 min) and the tests.
E2E_TEST = $(GO) test -tags integration -count=1 -timeout 100m -run '$(E2E)' ./testsuite/
REST_TESTS = $(GO) test -tags integration -count=1 -parallel 3 -timeout 100m -skip '$(E2E)' ./testsuite/...

integration: rig
	@e2e=$$(mktemp); \
	$(E2E_TEST) >$$e2e 2>&1 & pid=$$!; \
	$(REST_TESTS); rest=$$?; \
	wait $$pid; code=$$?; echo "== the end-to-end test (run beside the others):"; cat $$e2e; rm -f $$e2e; \
	[ $$rest -eq 0 ] && [ $$code -eq 0 ]

## demo: runs the demo on the local dev server and leaves the Temporal UI
## up (Ctrl-C stops it). On a cold machine the temporal CLI starts building
## at once (demo/prebuild, in the background); the runs that need no cluster
## start once it and bin/lifeboat are built; the rest of the rig builds in the
## background meanwhile. DEMO_STARTED times the first evidence from here.
demo: export DEMO_STARTED := $(shell date +%s)
demo: tools
	@$(GO) run ./testsuite/demo/prebuild >/dev/null 2>&1 &
	$(GO) run ./testsuite/demo --lifeboat $(BIN) --build $(VERSION)

## bench: the speed and memory bars on the dev server, each printed as a ratio next to its bar (docs/benchmarks.md).
bench:
	$(GO) run ./testsuite/bench

fuzz:
	$(GO) test ./runbooks/ -run '^$$' -fuzz FuzzParse -fuzztime 60s

clean:
	rm -rf bin .lifeboat
