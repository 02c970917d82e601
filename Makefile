# opentracker-rs
#
#   make            build the release binary (target/release/opentracker-rs)
#   make run        build and start the tracker in the foreground with opentracker.conf.sample
#   make test       install the test dependencies (python3-libtorrent) and run every test
#   make install    install the binary and the sample config (PREFIX=/usr/local)
#
# CI runs `bash .ci/run`, which runs `make test`.

CARGO ?= cargo
PREFIX ?= /usr/local
CONFIG ?= opentracker.conf.sample
BIN := target/release/opentracker-rs

.PHONY: all run test test-deps install clean

all:
	$(CARGO) build --release --locked

# As root the tracker refuses to serve without tracker.user; `make run` is for trying it out.
RUN_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

run: all
	./$(BIN) -f $(CONFIG) $(RUN_FLAGS)

test: test-deps
	$(CARGO) test --locked

# python3-libtorrent for the end-to-end swarm test (tests/e2e/libtorrent_swarm.py)
test-deps:
	@bash scripts/install-test-deps.sh

install: all
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/opentracker-rs
	install -D -m 0644 opentracker.conf.sample $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker.conf.sample
	install -D -m 0644 dist/opentracker-rs.service $(DESTDIR)$(PREFIX)/share/doc/opentracker-rs/opentracker-rs.service

clean:
	$(CARGO) clean
