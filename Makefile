# pghook — build, test and demo targets.
# `make demo` and `make test` are the two commands from the README; both install
# what they need (Debian packages, Go modules) through scripts/deps.sh.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/pghook/pghook/internal/version.Version=$(VERSION) \
           -X github.com/pghook/pghook/internal/version.Commit=$(COMMIT)
BIN     := bin/pghook
GO      ?= go

.PHONY: all build deps test unit integration e2e demo lab-up lab-down bench vet clean

all: build

build:
	$(GO) build -trimpath -tags urfave_cli_no_docs -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pghook

deps:
	bash scripts/deps.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration,e2e ./...

# The README's test command: everything, from a fresh Debian 12 machine, as root.
test: deps build vet unit integration e2e

unit:
	$(GO) test -count=1 ./...

# Root-only tests against the real kernel, PostgreSQL and etcd (no Patroni).
integration: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -tags integration ./...

# The three-node Patroni lab in network namespaces, driven by Patroni itself, once
# with Patroni's etcd3: section and once with etcd: (v2 API): Patroni 3.0.2 behaves
# differently on each (lab-notes.md), and pghook reads the leader from both.
e2e: build
	LAB_DCS=etcd3 PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 30m -tags e2e -v ./e2e/...
	LAB_DCS=etcd PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 30m -tags e2e -v ./e2e/...

demo: deps build
	PGHOOK_BIN=$(CURDIR)/$(BIN) bash e2e/lab/demo.sh

lab-up: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) bash e2e/lab/lab.sh up

lab-down:
	bash e2e/lab/lab.sh down

bench: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) bash bench/run.sh

clean:
	rm -rf bin dist
