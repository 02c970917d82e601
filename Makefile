# opentracker-rs
#
#   make            build the release binary (target/release/opentracker-rs)
#   make run        build and start the tracker in the foreground with opentracker.conf.sample
#   make test       install the test dependencies (python3-libtorrent) and run every test
#   make install    install the binary and the sample config (PREFIX=/usr/local)
#   make soak       the hostile-traffic soak test (SOAK_SECS=60 by default)
#   make fuzz       a bounded cargo-fuzz run of every fuzz target (FUZZ_SECS=30 each)
#
# CI runs `bash .ci/run`, which runs `make test`.

CARGO ?= cargo
PREFIX ?= /usr/local
CONFIG ?= opentracker.conf.sample
BIN := target/release/opentracker-rs

.PHONY: all run test test-deps install clean soak fuzz

all:
	$(CARGO) build --release --locked

# As root the tracker refuses to serve without tracker.user; `make run` is for trying it out.
RUN_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

run: all
	./$(BIN) -f $(CONFIG) $(RUN_FLAGS)

test: test-deps
	$(CARGO) test --locked

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

# python3-libtorrent for the end-to-end swarm test (tests/e2e/libtorrent_swarm.py)
test-deps:
	@bash scripts/install-test-deps.sh

install: all
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/opentracker-rs
	install -D -m 0644 opentracker.conf.sample $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker.conf.sample
	install -D -m 0644 dist/opentracker-rs.service $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker-rs.service

clean:
	$(CARGO) clean
