.PHONY: run test bench fmt lint

# Run the whole system locally (nats-server, PostgreSQL, moto demo fleet if no
# AWS credentials, then `inventory up`). Ctrl-C stops everything.
run:
	@bash scripts/run.sh

# Unit and integration tests against real nats-server, PostgreSQL and moto.
test:
	@bash scripts/test.sh

# Benchmarks (release build, not part of `make test`): writes docs/benchmarks.md.
# `make bench ARGS=--quick` runs about ten times smaller.
bench:
	@bash scripts/bench.sh $(ARGS)

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
