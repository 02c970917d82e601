#!/usr/bin/env bash
# HTTPS next to plain HTTP: keep-alive announces per second and per second of tracker CPU
# (BENCHMARKS.md, "HTTPS"). One tracker with a plain and a TLS listener on loopback, pinned to
# CPU 0; http_load pinned to CPU 1, first plain, then with --tls, ROUNDS times alternating.
# The certificate is an ECDSA P-256 leaf from a throw-away CA made with openssl.
#
#   benches/load/https_bench.sh [TRACKER_BIN]     (default target/release/opentracker-rs)
#   env: DURATION (s, 10), ROUNDS (3), CONNECTIONS (64), LOAD (target/release/examples/http_load)
set -euo pipefail
BIN=${1:-target/release/opentracker-rs}
LOAD=${LOAD:-target/release/examples/http_load}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
ec -x509 -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj /CN=bench-ca
ec -keyout "$dir/key.pem" -out "$dir/req.csr" -subj /CN=localhost
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$dir/ext"
openssl x509 -req -in "$dir/req.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/cert.pem" -days 2 -extfile "$dir/ext" 2>/dev/null
cat > "$dir/ot.conf" <<EOF
listen.tcp 127.0.0.1:0
listen.tls 127.0.0.1:0 $dir/cert.pem $dir/key.pem
tracker.allow_root on
EOF
RUST_LOG=info taskset -c 0 "$BIN" -f "$dir/ot.conf" 2> "$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening: https' "$dir/log" && break; sleep 0.1; done
http=$(sed -n 's/.*listening: http \(.*\)$/\1/p' "$dir/log")
https=$(sed -n 's/.*listening: https \(.*\)$/\1/p' "$dir/log")
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
run() {
    local name=$1; shift
    local c0 c1 out
    c0=$(cpu)
    out=$(taskset -c 1 "$LOAD" --duration "$DURATION" --connections "$CONNECTIONS" --keepalive "$@")
    c1=$(cpu)
    echo "$out" | awk -v name="$name" -v cpu="$(( c1 - c0 ))" -v hz="$hz" '/^RESULT/ {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        s = cpu / hz
        printf "%-22s %9.1fk/s %9.1fk/CPU-s  tracker CPU %3.0f%%  errors %s  p50 %s us  p99 %s us\n",
            name, v["rps"] / 1000, (s > 0 ? v["responses"] / s / 1000 : 0),
            100 * s / v["duration_s"], v["errors"], v["p50_us"], v["p99_us"]
    }'
}
for _ in $(seq "$ROUNDS"); do
    run "http keep-alive" --target "$http"
    run "https keep-alive" --target "$https" --tls "$dir/ca.pem"
done
