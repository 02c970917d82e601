#!/usr/bin/env bash
# Install what the comparison benchmarks need besides the Rust toolchain: Debian's
# `opentracker` package (the tracker we compare against; `make bench-compare` and
# `make bench-memory` run it from /usr/bin/opentracker) and `taskset` (util-linux) for
# CPU pinning. Idempotent and quiet when everything is present. As root it installs with
# apt-get (running `apt-get update` only when the package is unknown to apt); otherwise it
# says what to install and exits 1.
set -euo pipefail

missing=()
[ -x /usr/bin/opentracker ] || missing+=(opentracker)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-bench-deps: missing: ${missing[*]}" >&2
    echo "install-bench-deps: as root run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bench-deps: no apt-get here; install ${missing[*]} by hand (opentracker must be at /usr/bin/opentracker)." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
for pkg in "${missing[@]}"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
        echo "install-bench-deps: apt-get update" >&2
        apt-get update -qq
        break
    fi
done
echo "install-bench-deps: apt-get install ${missing[*]}" >&2
# The package's maintainer scripts try to start a service; without systemd that is a no-op.
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null

if [ ! -x /usr/bin/opentracker ]; then
    echo "install-bench-deps: opentracker installed but /usr/bin/opentracker is missing" >&2
    exit 1
fi
