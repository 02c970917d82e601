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

bash "$(dirname "$0")/apt-install.sh" install-bench-deps "${missing[@]}"

if [ ! -x /usr/bin/opentracker ]; then
    echo "install-bench-deps: opentracker installed but /usr/bin/opentracker is missing" >&2
    exit 1
fi
