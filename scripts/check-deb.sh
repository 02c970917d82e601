#!/usr/bin/env bash
# Usage: scripts/check-deb.sh [PACKAGE.deb]   (as root; default: the newest target/debian/*.deb)
#
# Installs the Debian package of `make deb` with dpkg, checks what it installed, runs the
# installed binary as the package's system user with the installed config (moved to free
# loopback ports), and purges the package again, whatever happened. Checks:
# - `opentracker-rs -v` prints the package's version; the man page is installed;
# - `--check-config` accepts /etc/opentracker-rs/opentracker.conf, which dpkg lists as a
#   conffile, and which opens the stats to 127.0.0.1 and ::1;
# - the system user opentracker-rs exists (a system account without a login shell) and owns
#   /var/lib/opentracker-rs; the systemd unit names the installed binary and that user;
# - as that user, the tracker serves an announce, /stats and /stats/html from 127.0.0.1;
# - `dpkg --purge` removes the binary, the config and the state directory.
# A system user this script's install created is removed at the end (dpkg leaves it, as Debian's
# practice is), so the machine is left as it was found.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "check-deb: $*"; }
die() { echo "check-deb: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (dpkg -i)"
deb=${1:-$(ls -t target/debian/opentracker-rs_*.deb 2>/dev/null | head -n 1)}
[ -n "$deb" ] && [ -f "$deb" ] || die "no package; run make deb first"
version=$(dpkg-deb -f "$deb" Version)
if dpkg-query -W -f='${Status}' opentracker-rs 2>/dev/null | grep -q "ok installed"; then
    die "opentracker-rs is already installed here; not touching it"
fi
user_existed=no
getent passwd opentracker-rs >/dev/null && user_existed=yes

tracker_pid=
workdir=$(mktemp -d)
cleanup() {
    [ -n "$tracker_pid" ] && kill "$tracker_pid" 2>/dev/null || true
    if dpkg-query -W opentracker-rs >/dev/null 2>&1; then
        dpkg --purge opentracker-rs >/dev/null || true
    fi
    if [ "$user_existed" = no ] && getent passwd opentracker-rs >/dev/null; then
        userdel opentracker-rs 2>/dev/null || true
        getent group opentracker-rs >/dev/null && groupdel opentracker-rs 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

say "dpkg -i $deb ($version)"
dpkg -i "$deb" >"$workdir/dpkg.log" 2>&1 || { cat "$workdir/dpkg.log" >&2; die "dpkg -i failed"; }

# The binary and its version.
[ "$(command -v opentracker-rs)" = /usr/bin/opentracker-rs ] || die "opentracker-rs is not /usr/bin/opentracker-rs"
got=$(opentracker-rs -v)
[ "$got" = "opentracker-rs ${version%-*}" ] || die "opentracker-rs -v says '$got', the package is $version"
say "opentracker-rs -v: $got"

# The config: a conffile that --check-config accepts, with the stats open to loopback.
conf=/etc/opentracker-rs/opentracker.conf
dpkg-query -W -f='${Conffiles}\n' opentracker-rs | grep -q " $conf " || die "$conf is not a conffile"
opentracker-rs -f "$conf" --check-config >"$workdir/check.txt" || die "--check-config refused $conf"
for line in "# sources: defaults, file $conf" "access.stats 127.0.0.1" "access.stats ::1" \
    "listen.tcp 0.0.0.0:6969" "listen.udp [::]:6969"; do
    grep -qxF "$line" "$workdir/check.txt" || die "--check-config of $conf lacks '$line'"
done
say "--check-config of the installed $conf: ok"

# The man page.
[ -f /usr/share/man/man1/opentracker-rs.1.gz ] || die "no man page"
if command -v man >/dev/null; then
    MANPAGER=cat MANWIDTH=100 man -l /usr/share/man/man1/opentracker-rs.1.gz 2>/dev/null \
        | grep -q "OPENTRACKER_RS_CONFIG" || die "the man page does not render"
fi

# The system user and the unit.
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd opentracker-rs) || die "no user opentracker-rs"
[ "$uid" -lt 1000 ] || die "opentracker-rs has uid $uid, not a system account"
case "$shell" in */nologin|*/false) ;; *) die "opentracker-rs has the login shell $shell" ;; esac
[ "$(stat -c %U /var/lib/opentracker-rs)" = opentracker-rs ] || die "/var/lib/opentracker-rs not owned by opentracker-rs"
unit=/usr/lib/systemd/system/opentracker-rs.service
[ -f "$unit" ] || unit=/lib/systemd/system/opentracker-rs.service
[ -f "$unit" ] || die "no systemd unit"
grep -qx "ExecStart=/usr/bin/opentracker-rs -f $conf" "$unit" || die "the unit does not start /usr/bin/opentracker-rs -f $conf"
grep -qx "User=opentracker-rs" "$unit" || die "the unit does not run as opentracker-rs"
say "system user opentracker-rs (uid $uid, home $home, shell $shell), unit $unit: ok"

# Serve for real as the system user, with the installed config on free loopback ports.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s/^listen.tcp_udp 0.0.0.0:6969$/listen.tcp_udp 127.0.0.1:$port/" \
    -e "s/^listen.tcp_udp \[::\]:6969$/listen.tcp_udp [::1]:$port/" "$conf" >"$workdir/loopback.conf"
chmod 644 "$workdir/loopback.conf"
chmod 755 "$workdir"
# setpriv execs the tracker (no process in between to take the signal and its exit status).
setpriv --reuid=opentracker-rs --regid=opentracker-rs --init-groups \
    /usr/bin/opentracker-rs -f "$workdir/loopback.conf" 2>"$workdir/tracker.log" &
tracker_pid=$!
for _ in $(seq 100); do
    grep -q "listening: udp \[::1\]:$port" "$workdir/tracker.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening: http 127.0.0.1:$port" "$workdir/tracker.log" || { cat "$workdir/tracker.log" >&2; die "the installed tracker did not start"; }
python3 - "$port" <<'EOF' || die "the installed tracker did not serve"
import sys, urllib.request
port = sys.argv[1]
base = f"http://127.0.0.1:{port}"
ih = "%AA" * 20
announce = urllib.request.urlopen(f"{base}/announce?info_hash={ih}&port=6881&left=0", timeout=5).read()
assert b"8:intervali" in announce, announce
stats = urllib.request.urlopen(f"{base}/stats?mode=peer", timeout=5).read().decode()
assert stats.startswith("1\n1\n"), stats
page = urllib.request.urlopen(f"{base}/stats/html", timeout=5).read().decode()
assert '<td id="peers-ipv4">1</td>' in page, page[:2000]
EOF
kill -TERM "$tracker_pid"
wait "$tracker_pid" || die "the installed tracker did not stop cleanly"
tracker_pid=
grep -q "running as uid $uid" "$workdir/tracker.log" || die "the tracker did not run as opentracker-rs"
say "served an announce, /stats and /stats/html as opentracker-rs from the installed config: ok"

# Purge.
dpkg --purge opentracker-rs >"$workdir/dpkg.log" 2>&1 || { cat "$workdir/dpkg.log" >&2; die "dpkg --purge failed"; }
for path in /usr/bin/opentracker-rs "$conf" /etc/opentracker-rs /var/lib/opentracker-rs "$unit"; do
    [ ! -e "$path" ] || die "$path is left after dpkg --purge"
done
say "dpkg --purge removed the binary, the config, the unit and /var/lib/opentracker-rs: ok"
