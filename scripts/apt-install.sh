#!/usr/bin/env bash
# Usage: scripts/apt-install.sh WHO PACKAGE...
# Installs Debian packages the way the project's install scripts need: as root with apt-get
# (running `apt-get update` only when a package is unknown to apt); otherwise it says what to
# install and exits 1. WHO prefixes the messages (the calling script's name).
set -euo pipefail
who=$1
shift
if [ "$(id -u)" -ne 0 ]; then
    echo "$who: missing packages: $*" >&2
    echo "$who: as root run: apt-get install -y --no-install-recommends $*" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: no apt-get here; install $* (Debian names) by hand." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
for pkg in "$@"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
        echo "$who: apt-get update" >&2
        apt-get update -qq
        break
    fi
done
echo "$who: apt-get install $*" >&2
# Maintainer scripts that try to start a service are no-ops without systemd.
apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
