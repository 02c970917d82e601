# opentracker-rs
#
#   make            build the release binary (target/release/opentracker-rs)
#   make run        build and start the tracker in the foreground with opentracker.conf.sample
#   make test       install the test dependencies (python3-libtorrent) and run every test
#   make install    install the binary and the sample config (PREFIX=/usr/local)
#   make bench      release build; opentracker-rs on CPU 0, load generators on CPU 1:
#                   UDP announce/scrape mix, HTTP one request per connection, HTTP keep-alive
#   make bench-compare  the same scenarios against Debian's opentracker too (installed with
#                   apt if missing), alternating, with the ratio ours/opentracker
#   make bench-memory   bytes per peer at 2,000x100, 20,000x10, 200,000x1 (ours and opentracker)
#   make bench-micro    criterion micro-benchmarks (cargo bench --bench micro)
#   make bench-fullscrape  full scrapes of 1M torrents while UDP announces run (loop stall bound)
#   make bench-smoke    each load generator for 2 s against a debug build (CI)
#   Knobs: BENCH_DURATION (s, default 10), BENCH_ROUNDS (1), OURS_WHITELIST (auto|on|off),
#   BENCH_ARGS (more bench_run options, see benches/load/bench_run.rs). See BENCHMARKS.md.
#
# CI runs `bash .ci/run`, which runs `make test`.

CARGO ?= cargo
PREFIX ?= /usr/local
CONFIG ?= opentracker.conf.sample
BIN := target/release/opentracker-rs
# Where cargo puts its output (honours CARGO_TARGET_DIR).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
BENCH_DURATION ?= 10
BENCH_ROUNDS ?= 1
OURS_WHITELIST ?= auto
BENCH_ARGS ?=
BENCH_RUN = $(TARGET_DIR)/release/examples/bench_run
BENCH_OPTS = --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS) --ours-whitelist $(OURS_WHITELIST) $(BENCH_ARGS)

.PHONY: all run test test-deps install clean bench bench-compare bench-memory bench-micro bench-smoke bench-fullscrape bench-build bench-deps

all:
	$(CARGO) build --release --locked

run: all
	./$(BIN) -f $(CONFIG)

test: test-deps
	$(CARGO) test --locked

# python3-libtorrent for the end-to-end swarm test (tests/e2e/libtorrent_swarm.py)
test-deps:
	@bash scripts/install-test-deps.sh

install: all
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/opentracker-rs
	install -D -m 0644 opentracker.conf.sample $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker.conf.sample

# Release tracker + load generators + driver (benches/load/, built as examples).
bench-build:
	$(CARGO) build --release --locked --bins --examples

# Debian's opentracker (and taskset), installed with apt when missing.
bench-deps:
	@bash scripts/install-bench-deps.sh

bench: bench-build
	$(BENCH_RUN) bench $(BENCH_OPTS)

bench-compare: bench-build bench-deps
	$(BENCH_RUN) compare $(BENCH_OPTS)

bench-memory: bench-build bench-deps
	$(BENCH_RUN) memory $(BENCH_OPTS)

bench-micro:
	$(CARGO) bench --locked --bench micro

# Full scrapes of 1M torrents while UDP announces run (needs the full-scrape feature).
bench-fullscrape: bench-build
	$(BENCH_RUN) fullscrape $(BENCH_OPTS)

# CI: the load generators and the driver must keep working (debug build, no pinning, ~10 s).
bench-smoke:
	$(CARGO) build --locked --bins --examples
	$(TARGET_DIR)/debug/examples/bench_run smoke --no-pin

clean:
	$(CARGO) clean
