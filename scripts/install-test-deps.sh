#!/usr/bin/env bash
# Install what the tests need beyond the Rust toolchain (Debian/Ubuntu packages):
# - python3-libtorrent: the libtorrent bindings used by tests/e2e/libtorrent_swarm.py;
# - python3-prometheus-client: the reference parser of the Prometheus text format, which
#   tests/stats.rs runs over our /metrics output;
# - chromium (with fonts-dejavu-core): the headless browser in which
#   scripts/status-page-check.py renders the status page (/stats/html), in .ci/run;
# - curl: the HTTPS client of tests/tls.rs (announces and the API over https://);
# - rtorrent (0.9.7 or later, for its daemon mode): the real client of tests/e2e_rtorrent.rs
#   (tests/e2e/rtorrent_leecher.py), which never sends `completed`.
# Idempotent and quiet when everything is present. As root it installs with
# apt-get (running `apt-get update` only when a package is unknown to apt);
# otherwise it says what to install and exits 1.
# (opentracker, wanted later by the benchmarks, is deliberately not installed here.)
set -euo pipefail

# "debian-package python-module" pairs.
NEEDED=(
    "python3-libtorrent libtorrent"
    "python3-prometheus-client prometheus_client.parser"
)

have_module() {
    # The tests fall back to /usr/bin/python3 when the python3 in PATH
    # (e.g. pyenv's) cannot see the distribution's packages; accept either.
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c "import $1" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

missing=()
for pair in "${NEEDED[@]}"; do
    read -r pkg module <<<"$pair"
    have_module "$module" || missing+=("$pkg")
done
if ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium fonts-dejavu-core)
fi
if ! command -v curl >/dev/null 2>&1; then
    missing+=(curl)
fi
if ! command -v rtorrent >/dev/null 2>&1; then
    missing+=(rtorrent)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

bash "$(dirname "$0")/apt-install.sh" install-test-deps "${missing[@]}"

for pair in "${NEEDED[@]}"; do
    read -r pkg module <<<"$pair"
    if ! have_module "$module"; then
        echo "install-test-deps: $pkg installed but 'import $module' still fails" >&2
        exit 1
    fi
done
if ! command -v chromium >/dev/null 2>&1; then
    echo "install-test-deps: chromium installed but not in PATH" >&2
    exit 1
fi
if ! command -v curl >/dev/null 2>&1; then
    echo "install-test-deps: curl installed but not in PATH" >&2
    exit 1
fi
if ! command -v rtorrent >/dev/null 2>&1; then
    echo "install-test-deps: rtorrent installed but not in PATH" >&2
    exit 1
fi
