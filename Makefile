# Two commands matter: `make run` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
BUF := .tools/node_modules/.bin/buf
COMPOSE_SECRET := compose-config-check-secret-of-32-bytes

.DEFAULT_GOAL := help
.PHONY: help run test bench faults build lint fmt proto-lint deploy-check unit setup-run setup-test clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

run: setup-run ## Build and start every service against a local Postgres (crm up)
	$(CARGO) build -p crm-cli
	./target/debug/crm up

test: setup-test proto-lint deploy-check ## Lint everything, then run every test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "\nSummary: %d passed, %d failed\n", p, f}' target/test.log

bench: setup-run ## Customers at a million, dispatch, billing and the event path against protocol and database ceilings (docs/benchmarks.md)
	$(CARGO) run --release -p crm-customers --example bench_customers
	$(CARGO) run --release -p crm-dispatch --example bench
	$(CARGO) run --release -p crm-billing --example bench_billing_run
	$(CARGO) run --release -p crm-flows --example bench_events

faults: setup-run ## Fault and abuse suite on loopback: kill -9, Postgres restarts, stalls, fuzzing (docs/reliability.md)
	$(CARGO) build --release -p crm-cli
	$(CARGO) run --release -p crm-faults

build: ## Build every crate
	$(CARGO) build --workspace

proto-lint: setup-test ## buf lint (STANDARD rules) over proto/
	$(BUF) lint

deploy-check: setup-test ## Validate deploy/docker-compose.yml (no Docker engine needed)
	CRM_JWT_SECRET=$(COMPOSE_SECRET) docker-compose -f deploy/docker-compose.yml config --quiet

fmt: ## Format the code
	$(CARGO) fmt --all

setup-run:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

clean: ## Remove build output (keeps .crm/ data)
	$(CARGO) clean
