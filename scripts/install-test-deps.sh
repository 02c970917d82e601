#!/usr/bin/env bash
# Install what the tests need beyond the Rust toolchain: the python3 libtorrent
# bindings used by tests/e2e/libtorrent_swarm.py (Debian/Ubuntu: python3-libtorrent).
# Idempotent and quiet when everything is present. As root it installs with
# apt-get (running `apt-get update` only when the package is unknown to apt);
# otherwise it says what to install and exits 1.
# (opentracker, wanted later by the benchmarks, is deliberately not installed here.)
set -euo pipefail

PKG=python3-libtorrent

have_libtorrent() {
    # The e2e script falls back to /usr/bin/python3 when the python3 in PATH
    # (e.g. pyenv's) cannot see the distribution's packages; accept either.
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import libtorrent' >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

have_libtorrent && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: the python3 module 'libtorrent' is missing." >&2
    echo "install-test-deps: as root run: apt-get install -y --no-install-recommends $PKG" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: no apt-get here; install the python3 libtorrent bindings ($PKG on Debian) by hand." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show "$PKG" >/dev/null 2>&1; then
    echo "install-test-deps: apt-get update" >&2
    apt-get update -qq
fi
echo "install-test-deps: apt-get install $PKG" >&2
apt-get install -y -qq --no-install-recommends "$PKG" </dev/null >/dev/null

if ! have_libtorrent; then
    echo "install-test-deps: $PKG installed but 'import libtorrent' still fails" >&2
    exit 1
fi
