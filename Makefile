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
	CGO_ENABLED=0 $(GO) build -trimpath -tags urfave_cli_no_docs -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pghook

deps:
	bash scripts/deps.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration,e2e ./...

# The README's test command: everything, from a fresh Debian 12 machine, as root.
test: deps build vet unit rules-test integration deb-test e2e

unit:
	$(GO) test -count=1 ./...

# The shipped Prometheus alerting rules: syntax, and a unit test for every alert.
.PHONY: rules-test
rules-test:
	promtool check rules internal/metrics/rules/pghook.rules.yml
	cd internal/metrics/rules && promtool test rules pghook.rules_test.yml

# Root-only tests against the real kernel, PostgreSQL and etcd (no Patroni).
integration: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -tags integration ./...

# The three-node Patroni lab in network namespaces, driven by Patroni itself, once
# with Patroni's etcd3: section and once with etcd: (v2 API): Patroni 3.0.2 behaves
# differently on each (docs/ARCHITECTURE.md), and pghook reads the leader from both.
# The etcd3 run uses pghook the way a user gets it: installed from the .deb
# (/usr/bin/pghook, /usr/lib/pghook/pghook-vip with its file capabilities); the lab
# purges the package again on down.
# The etcd3 run also runs the labs of e2e/dns (LAB_VIP=dns: BIND 9 in its own namespace,
# pghook's dns backend), e2e/exec (LAB_VIP=exec: a fake cloud API, pghook's exec
# backend) and e2e/subnets (LAB_TOPOLOGY=two-subnet: a router, nodes in two subnets, one
# VIP per subnet named in DNS), each its own lab, up and down around it; the etcd (v2)
# run is the VIP lab's alone. First, e2e/lab/down-test.sh: every lab test starts by taking
# down whatever lab a previous run left, also one a restarted machine kept half of; and
# e2e/lab/test_sampling.py: the VIP holders the chaos and bench samplers read.
e2e: build deb
	bash e2e/lab/down-test.sh
	cd e2e/lab && python3 -m unittest -v test_sampling
	LAB_DEB=$(CURDIR)/$(DEB) LAB_DCS=etcd3 PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 30m -tags e2e -v ./e2e/...
	LAB_DCS=etcd PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 30m -tags e2e -v ./e2e

# The dns lab alone (e2e/dns): switchover, kill -9 and link cut of the primary with a
# client following primary.pglab.test. through BIND; as root.
.PHONY: e2e-dns
e2e-dns: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 20m -tags e2e -v ./e2e/dns

# The exec lab alone (e2e/exec): switchover, kill -9 and link cut of the primary and a
# spell of API errors, with the fake cloud API's holder sampled every 50 ms; as root.
.PHONY: e2e-exec
e2e-exec: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 20m -tags e2e -v ./e2e/exec

# The two-subnet lab alone (e2e/subnets): switchovers across the subnets, kill -9 and
# link cut of the primary, with a client in a third subnet following primary.pglab.test.
# to the primary's subnet VIP; as root.
.PHONY: e2e-subnets
e2e-subnets: build
	LAB_DCS=etcd3 PGHOOK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 20m -tags e2e -v ./e2e/subnets

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

# ---- Debian package ------------------------------------------------------
# `make deb` builds dist/pghook_<version>_<arch>.deb with nfpm (nfpm.yaml). The man
# page and bash completion are generated from the CLI definitions (internal/app)
# by cmd/pghook-gendocs, built without urfave_cli_no_docs; the shipped binary
# stays the lean `make build` one.
DEB_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+/; s/-/./g'); \
                 echo $${v:-0.0.0~git$$(date -u +%Y%m%d).$(COMMIT)})
DEB_ARCH    ?= $(shell $(GO) env GOARCH)
DEB         := dist/pghook_$(DEB_VERSION)_$(DEB_ARCH).deb
NFPM        := bin/tools/nfpm

.PHONY: deb lint-deb deb-test

$(NFPM):
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

deb: build $(NFPM)
	$(GO) build -trimpath -o bin/pghook-gendocs ./cmd/pghook-gendocs
	rm -rf dist/docs && bin/pghook-gendocs gen-docs dist/docs
	gzip -9nf dist/docs/pghook.1
	printf 'pghook (%s) unstable; urgency=medium\n\n  * Built from commit %s; see docs/CHANGELOG.md.\n\n -- pghook maintainers <pghook@example.org>  %s\n' \
	  '$(DEB_VERSION)' '$(COMMIT)' "$$(date -u -R -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s))" | gzip -9n > dist/docs/changelog.gz
	rm -f dist/pghook_*.deb
	DEB_VERSION='$(DEB_VERSION)' DEB_ARCH='$(DEB_ARCH)' $(NFPM) pkg --config nfpm.yaml --packager deb --target $(DEB)
	@echo built $(DEB)

# lintian must report no errors; tags suppressed with their reasons in
# packaging/deb/lintian-suppress.
lint-deb: deb
	lintian --fail-on error --suppress-tags-from-file packaging/deb/lintian-suppress $(DEB)

# Install the .deb here, check capabilities, entry points and unit, remove and purge.
deb-test: lint-deb
	bash packaging/test-deb.sh $(DEB)

# Side-by-side VIP move ("event -> the VIP answers at the new holder"): pghook callback,
# shell callback (ip addr add + arping), vip-manager 1.0.2 at 1000 and 100 ms; as root.
# Writes bench/results/vip.md and .json.
.PHONY: bench-vip
bench-vip: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) TRIALS=$${TRIALS:-30} bash bench/vip.sh

# Fuzz every go test -fuzz target of FUZZPKGS (default: all), each for FUZZTIME
# (go test -fuzz takes one target per run); plain go test runs only their seeds
# (testdata/fuzz/<Name>/ and f.Add). Stops at the first crasher, which lands in
# <pkg>/testdata/fuzz/<Name>/ and becomes a regression seed once fixed. Ends
# with each target's last "execs" line. FUZZ=regexp picks targets by name.
FUZZTIME ?= 20s
FUZZPKGS ?= ./...
FUZZ     ?= .
.PHONY: fuzz
fuzz:
	@set -e; sum=""; \
	for pkg in $$($(GO) list $(FUZZPKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' | grep -E -- '$(FUZZ)' || true); do \
	    echo "== $$pkg $$f for $(FUZZTIME)"; \
	    if ! out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); then echo "$$out"; exit 1; fi; \
	    last=$$(echo "$$out" | grep 'fuzz: elapsed' | tail -n1); echo "$$last"; \
	    sum="$$sum$$pkg $$f: $$last\n"; \
	  done; \
	done; printf "\nfuzz summary (FUZZTIME=$(FUZZTIME)):\n$$sum"

# Restore benchmark: pghook create-replica vs GNU tar vs pg_basebackup vs dd on
# the same backups of a SIZE_GB (default 2) PostgreSQL 15 database, RUNS (default 3)
# rounds, medians; as root. Writes bench/results/restore.md and .json; BACKUP_ON=tmpfs
# keeps the backups in RAM (shared storage on another device) -> restore-tmpfs.*.
.PHONY: bench-restore
bench-restore: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) SIZE_GB=$${SIZE_GB:-2} bash bench/restore.sh

# Randomized fault cycles in the lab; not part of `make test` (100 cycles take ~70 min
# per setting). N, SEED, LAB_DCS (etcd3|etcd), SYNC (1|0), FAULTS.
.PHONY: chaos
chaos: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) N=$${N:-100} bash e2e/chaos/chaos.sh

# VIP benchmark in the three-node Patroni lab: pghook vs a shell ip+arping callback vs
# vip-manager 1.0.2 (1000 and 100 ms); switchover, kill -9 and link cut of the leader,
# N (default 5) times each; as root. Leaves the lab down.
# Writes bench/results/vip-lab.md and .json (raw samples in bench/results/vip-lab-raw/).
.PHONY: bench-vip-lab
bench-vip-lab: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) N=$${N:-5} bash bench/vip-lab.sh

# dns VIP backend: record flip from the callback's start to the authoritative server
# (BIND 9 in namespace pghdns-srv) answering the new primary's address — pghook callback
# with backend dns vs a shell callback running nsupdate (what dnscp does); TRIALS (50)
# each; as root, under flock /tmp/pghook-root.lock. Writes bench/results/dns.md and .json.
.PHONY: bench-dns
bench-dns: build
	$(GO) run ./bench/dnsflip -pghook $(BIN) -trials $${TRIALS:-50} -out bench/results/dns

# Backup verification: pghook backup verify vs tar + pg_verifybackup, and create-replica
# (with PGHOOK_BASE_BIN: against another build) on one zstd backup of a SIZE_GB (2)
# database, RUNS (3) rounds; as root. Writes bench/results/verify.md and .json.
.PHONY: bench-verify
bench-verify: build
	PGHOOK_BIN=$(CURDIR)/$(BIN) SIZE_GB=$${SIZE_GB:-2} RUNS=$${RUNS:-3} bash bench/verify.sh
