# opentracker-rs
#
#   make            build the release binary (target/release/opentracker-rs)
#   make run        build and start the tracker in the foreground with opentracker.conf.sample
#   make test       install the test dependencies (python3-libtorrent) and run every test,
#                   then the integration tests again with tracker.workers 2 (OTRS_TEST_WORKERS)
#   make install    install the binary and the sample config (PREFIX=/usr/local)
#   make deb        a Debian package (target/debian/*.deb) with cargo-deb, installed with cargo
#                   if missing: binary, config as a conffile, systemd unit, man page, system user
#   make check-deb  make deb, then install it with dpkg, check it, purge it (root; CI)
#   make check-status-page  the status page (/stats/html) in headless Chromium against a
#                   tracker with traffic, and dist/grafana's dashboard against its /metrics (CI)
#   make status-page    the same with 4 minutes of traffic, saved as docs/status-page.png
#   make soak       the hostile-traffic soak test (SOAK_SECS=60 by default)
#   make fuzz       a bounded cargo-fuzz run of every fuzz target (FUZZ_SECS=30 each)
#   make bench      release build; opentracker-rs on CPU 0, load generators on CPU 1:
#                   UDP announce/scrape mix, HTTP one request per connection, HTTP keep-alive
#   make bench-compare  the same scenarios against Debian's opentracker too (installed with
#                   apt if missing), alternating, with the ratio ours/opentracker
#   make bench-memory   bytes per peer at 2,000x100, 20,000x10, 200,000x1 (ours and opentracker)
#   make bench-micro    criterion micro-benchmarks (cargo bench --bench micro)
#   make bench-fullscrape  full scrapes of 1M torrents while UDP announces run (loop stall bound),
#                   and 300 parallel gzip full scrapes of 1M torrents (one shared snapshot)
#   make bench-floor    UDP mix and HTTP close against a floor server too (constant replies, no
#                   state: the least user-space work per request), opentracker-rs and opentracker
#   make bench-adversarial  the store under attacker-shaped keys (300,000 info_hashes sharing a
#                   prefix among 5M torrents, a 1M-peer swarm from one IPv6 /64) next to a
#                   random workload: worst and typical announce cost (examples/bench_adversarial.rs)
#   make bench-contention  K threads announcing into one shared store, no sockets: a lock per
#                   shard (S = 1, 16, 256), shard owners with channels, batched locking; K = 1, 2,
#                   8 (examples/bench_contention.rs; CONTENTION_ARGS, e.g. "--secs 2")
#   make bench-scale    UDP mix and HTTP keep-alive against opentracker-rs with 1 and 2 workers
#                   (tracker.workers), unpinned, per tracker-CPU-second and the ratio
#   make bench-smoke    each load generator for 2 s against a debug build, and 1 s against
#                       floor_server, and 1 s of bench-scale with 1 worker (CI)
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

.PHONY: all run test test-deps install clean soak fuzz deb check-deb check-status-page status-page
.PHONY: bench bench-compare bench-memory bench-micro bench-smoke bench-fullscrape bench-floor bench-build bench-deps
.PHONY: bench-adversarial bench-contention bench-scale

all:
	$(CARGO) build --release --locked

# As root the tracker refuses to serve without tracker.user; `make run` is for trying it out.
RUN_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

run: all
	./$(BIN) -f $(CONFIG) $(RUN_FLAGS)

# Every test, then the integration tests again with two workers (tracker.workers 2, added by
# tests/common to every tracker they start): the same tests over several event loops.
test: test-deps
	$(CARGO) test --locked
	OTRS_TEST_WORKERS=2 $(CARGO) test --locked --test '*'

# Hostile traffic for SOAK_SECS seconds, then the five checks of tests/soak.rs (needs test-deps).
SOAK_SECS ?= 60
soak: test-deps
	SOAK_SECS=$(SOAK_SECS) $(CARGO) test --locked --release --test soak -- --ignored --nocapture

# Bounded fuzzing: each target of fuzz/ for FUZZ_SECS seconds, starting from fuzz/seeds/ (new
# inputs go to fuzz/corpus/, crashes to fuzz/artifacts/). With a nightly toolchain the targets
# are built with AddressSanitizer; on stable cargo-fuzz builds them with `-s none` (coverage-guided
# libFuzzer, no sanitizer), which is enough for safe Rust.
FUZZ_SECS ?= 30
FUZZ_TARGETS := http_request http_handle query bencode udp_packet udp_handler
FUZZ_TOOLCHAIN := $(shell rustup run nightly rustc --version >/dev/null 2>&1 && echo +nightly || echo "+stable")
FUZZ_SANITIZER := $(if $(filter +nightly,$(FUZZ_TOOLCHAIN)),address,none)
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		$(CARGO) $(FUZZ_TOOLCHAIN) fuzz run -s $(FUZZ_SANITIZER) $$t corpus/$$t seeds/$$t -- \
			-max_total_time=$(FUZZ_SECS) || exit 1; \
	done

# python3-libtorrent for the end-to-end swarm test (tests/e2e/libtorrent_swarm.py), rtorrent for
# tests/e2e_rtorrent.rs, and the rest listed in scripts/install-test-deps.sh
test-deps:
	@bash scripts/install-test-deps.sh

install: all
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/opentracker-rs
	install -D -m 0644 opentracker.conf.sample $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker.conf.sample
	install -D -m 0644 dist/opentracker-rs.service $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker-rs.service

# Debian package with cargo-deb (a release build; Cargo.toml's [package.metadata.deb] says what
# goes in). cargo-deb is installed with cargo when missing.
deb:
	@command -v cargo-deb >/dev/null || $(CARGO) install cargo-deb --locked --version '^3'
	$(CARGO) deb --locked

# Installs the package with dpkg, checks it, serves with it, purges it (scripts/check-deb.sh).
check-deb: deb
	bash scripts/check-deb.sh

# The status page in a real browser (Debian's chromium, from test-deps) against a tracker with
# traffic, then the Grafana dashboard's queries against the same tracker's /metrics.
check-status-page: test-deps
	$(CARGO) build --locked --bin opentracker-rs
	python3 scripts/status-page-check.py $(TARGET_DIR)/debug/opentracker-rs \
		--metrics-out $(TARGET_DIR)/status-page-metrics.txt
	python3 scripts/check-grafana-dashboard.py dist/grafana/opentracker-rs.json \
		$(TARGET_DIR)/status-page-metrics.txt

# docs/status-page.png: the release tracker after 4 minutes of traffic.
status-page: all test-deps
	python3 scripts/status-page-check.py $(BIN) --seconds 240 --screenshot docs/status-page.png

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

# The kernel's share: benches/load/floor_server.rs (constant replies, no state) side by side
# with opentracker-rs and opentracker, with the ratios to opentracker per tracker-CPU-second.
bench-floor: bench-build bench-deps
	$(BENCH_RUN) floor $(BENCH_OPTS)

bench-micro:
	$(CARGO) bench --locked --bench micro

# Full scrapes of 1M torrents while UDP announces run (needs the full-scrape feature); then
# 300 parallel gzip full scrapes of 1M torrents from one shared snapshot against the bound of
# one full scrape's own walk (tests/fullscrape_flood.rs, release build; `make test` runs the
# 100,000-torrent version).
bench-fullscrape: bench-build
	$(BENCH_RUN) fullscrape $(BENCH_OPTS)
	$(CARGO) test --locked --release --test fullscrape_flood -- --ignored --nocapture

# In-process, no sockets: 3 identical runs of each store in child processes, the least time per
# operation kept (a few minutes; ADVERSARIAL_ARGS: --secs, --runs, --top, --only v4|v6, sizes).
ADVERSARIAL_ARGS ?=
bench-adversarial:
	$(CARGO) run --release --locked --example bench_adversarial -- $(ADVERSARIAL_ARGS)

# In-process, no sockets: K threads announcing into S shards of Store<6> (issue #11's measure).
CONTENTION_ARGS ?=
bench-contention:
	$(CARGO) run --release --locked --example bench_contention -- $(CONTENTION_ARGS)

# 1 and 2 workers (tracker.workers), unpinned: responses per tracker-CPU-second and the ratio.
bench-scale: bench-build
	$(BENCH_RUN) scale --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS) --ours-whitelist $(OURS_WHITELIST) $(BENCH_ARGS)

# CI: the load generators and the driver must keep working (debug build, no pinning, ~12 s).
bench-smoke:
	$(CARGO) build --locked --bins --examples
	$(TARGET_DIR)/debug/examples/bench_run smoke --no-pin
	$(TARGET_DIR)/debug/examples/bench_run scale --workers 1 --duration 1 --warmup 0.5 \
		--torrents 1000 --peers 5000 --connections 8

clean:
	$(CARGO) clean
