#!/usr/bin/env bash
# Usage: scripts/mariadb.sh start|stop|url
#
# A throw-away MariaDB server for the MySQL tests (db.url), from Debian's mariadb-server
# package (installed with apt when missing; root).
#
#   start  installs mariadb-server if needed, initialises a data directory under
#          $MARIADB_DIR (default target/mariadb), starts mariadbd on 127.0.0.1:$MARIADB_PORT
#          (default 3307, so a system server on 3306 is left alone) and its own socket, creates
#          the database opentracker_test and the user opentracker_test, who may create and
#          drop the databases opentracker_test* (one per test), and prints the URL to export:
#            export OTRS_TEST_MYSQL_URL=mysql://opentracker_test:...@127.0.0.1:3307/opentracker_test
#   url    prints that URL again
#   stop   stops the server started by `start` (its pid file) and removes the data directory
#
# The tests read OTRS_TEST_MYSQL_URL; without it the MySQL variants print SKIPPED
# (or fail under CI=true). .ci/run calls start before `make test` and stop after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${MARIADB_DIR:-$PWD/target/mariadb}
port=${MARIADB_PORT:-3307}
user=opentracker_test
pass=opentracker_test_pw
db=opentracker_test
sock=$dir/mysqld.sock
pidfile=$dir/mysqld.pid
url="mysql://$user:$pass@127.0.0.1:$port/$db"

find_server() {
    for bin in mariadbd mysqld /usr/sbin/mariadbd /usr/sbin/mysqld; do
        if command -v "$bin" >/dev/null 2>&1; then
            command -v "$bin"
            return 0
        fi
    done
    return 1
}

client() {
    local c
    c=$(command -v mariadb || command -v mysql)
    "$c" --no-defaults --protocol=socket -S "$sock" -uroot "$@"
}

start() {
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "mariadb.sh: already running (pid $(cat "$pidfile"))" >&2
        echo "export OTRS_TEST_MYSQL_URL=$url"
        return 0
    fi
    if ! find_server >/dev/null || ! command -v mariadb-install-db >/dev/null 2>&1; then
        scripts/apt-install.sh mariadb.sh mariadb-server mariadb-client >&2
    fi
    local server
    server=$(find_server)
    rm -rf "$dir"
    mkdir -p "$dir/data"
    # mariadbd refuses to run as root unless told which user; the data directory is theirs.
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        chown -R mysql:mysql "$dir"
        as=(--user=mysql)
    fi
    echo "mariadb.sh: initialising $dir/data" >&2
    mariadb-install-db --no-defaults "${as[@]}" --datadir="$dir/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 || {
        cat "$dir/install.log" >&2
        exit 1
    }
    echo "mariadb.sh: starting $server on 127.0.0.1:$port" >&2
    "$server" --no-defaults "${as[@]}" --datadir="$dir/data" --socket="$sock" \
        --pid-file="$pidfile" --port="$port" --bind-address=127.0.0.1 \
        --skip-name-resolve --innodb-buffer-pool-size=32M --log-error="$dir/error.log" \
        </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 120); do
        if client -e 'SELECT 1' >/dev/null 2>&1; then
            break
        fi
        sleep 0.25
    done
    if ! client -e 'SELECT 1' >/dev/null 2>&1; then
        echo "mariadb.sh: the server did not start; its log:" >&2
        cat "$dir/error.log" >&2 || true
        exit 1
    fi
    client <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\`;
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON \`${db//_/\\_}%\`.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${db//_/\\_}%\`.* TO '$user'@'localhost';
GRANT CONNECTION ADMIN ON *.* TO '$user'@'127.0.0.1';
GRANT CONNECTION ADMIN ON *.* TO '$user'@'localhost';
SQL
    echo "mariadb.sh: ready (pid $(cat "$pidfile"))" >&2
    echo "export OTRS_TEST_MYSQL_URL=$url"
}

stop() {
    if [ -f "$pidfile" ]; then
        local pid
        pid=$(cat "$pidfile")
        echo "mariadb.sh: stopping pid $pid" >&2
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 120); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
url) echo "export OTRS_TEST_MYSQL_URL=$url" ;;
*)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac
