# opentracker-rs: `make test` runs the test suite (CI: bash .ci/run).
#
# Targets still to come (placeholders):
#   all      build the release binary (will become the first, default target)
#   run      run the tracker in the foreground with a local config
#   install  install the binary, man page and sample config
#   bench    load benchmarks against opentracker-rs and opentracker

CARGO ?= cargo

.PHONY: test test-deps

test: test-deps
	$(CARGO) test --locked

# python3-libtorrent for the end-to-end swarm test (tests/e2e/libtorrent_swarm.py)
test-deps:
	@bash scripts/install-test-deps.sh
