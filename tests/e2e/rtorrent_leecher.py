#!/usr/bin/env python3
"""End-to-end test of a BitTorrent tracker with rtorrent as the leecher (issue #13).

rtorrent (libtorrent-rakshasa; Debian's `rtorrent` package, 0.9.7 or later) finishes a
download without ever sending `event=completed`: it announces `started` with left > 0 and,
when stopped, `stopped` with left = 0. This script makes it do exactly that through the
tracker under test, on IPv4 loopback:

  * a libtorrent seeder (python3-libtorrent, the settings of libtorrent_swarm.py: DHT, LSD,
    UPnP, NAT-PMP and PEX off) seeds a small random file;
  * rtorrent runs as a daemon (`system.daemon.set = true`: no terminal needed), with no
    ~/.rtorrent.rc (`-n`), a generated config (its own session and download directories, bound
    to 127.0.0.1, DHT off, PEX off, UDP trackers on) and an XML-RPC interface on a local SCGI
    socket, which this script drives (`load.start`, `d.complete`, `d.stop`,
    `system.shutdown.normal`) with the standard library only. rtorrent can only learn the
    seeder from the tracker.

Usage:
  python3 tests/e2e/rtorrent_leecher.py --announce URL --workdir DIR [--size-mib 1]
                                        [--timeout 60]

URL: http://127.0.0.1:PORT/announce or udp://127.0.0.1:PORT.

Steps and output (stdout; progress and rtorrent's log go to stderr):
  1. `INFO_HASH <40 hex digits>` once the torrent is made;
  2. the seeder announces; once it has a tracker reply rtorrent starts and downloads;
  3. `COMPLETE` when rtorrent says the download is complete and the file matches the seeder's
     (SHA-256); then the script waits for a line on stdin (the caller scrapes the tracker);
  4. rtorrent stops the download (`d.stop`: its `stopped` announce, left = 0), `STOPPED`;
     the script waits for a line on stdin again;
  5. rtorrent shuts down, the seeder stops, and a last line `RESULT {json}` with "ok": true
     (exit 0) or "ok": false and an "error" (exit 1). Its "events_sent" lists the events of
     the announces rtorrent's log says it sent, in order (["started", "stopped"] for 0.9.8:
     it logs "Queueing completed event" when the download completes, but never sends it).
The script ends by itself within --timeout plus a few seconds whatever happens, and kills
rtorrent if it does not shut down.
"""

import argparse
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Imports libtorrent, re-running this script with /usr/bin/python3 when needed.
import libtorrent_swarm as lts  # noqa: E402

log = lts.log
Failure = lts.Failure


def free_tcp_port():
    """A TCP port of 127.0.0.1 free a moment ago (rtorrent wants a range, not port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rtorrent_rc(rt_dir, leech_dir, sock_path, port, hash_on_completion):
    """rtorrent's config: everything in the work directory, loopback only, no DHT, no PEX."""
    return "\n".join(
        [
            f"pieces.hash.on_completion.set = {'yes' if hash_on_completion else 'no'}",
            f"directory.default.set = {leech_dir}",
            f"session.path.set = {rt_dir}/session",
            f"network.scgi.open_local = {sock_path}",
            "network.bind_address.set = 127.0.0.1",
            f"network.port_range.set = {port}-{port + 50}",
            "network.port_random.set = no",
            "dht.mode.set = disable",
            "protocol.pex.set = no",
            "trackers.use_udp.set = yes",
            "system.daemon.set = true",
            f'log.open_file = "rtorrent", "{rt_dir}/rtorrent.log"',
            'log.add_output = "info", "rtorrent"',
            'log.add_output = "tracker_info", "rtorrent"',
            "",
        ]
    )


class Scgi:
    """XML-RPC over rtorrent's local SCGI socket: one request per connection."""

    def __init__(self, path):
        self.path = path

    def call(self, method, *params):
        body = xmlrpc.client.dumps(params, method).encode()
        headers = b"".join(
            k + b"\0" + v + b"\0" for k, v in ((b"CONTENT_LENGTH", str(len(body)).encode()), (b"SCGI", b"1"))
        )
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.path)
            s.sendall(str(len(headers)).encode() + b":" + headers + b"," + body)
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        head, sep, xml = data.partition(b"\r\n\r\n")
        if not sep:
            raise Failure(f"rtorrent: no SCGI reply to {method}: {data[:200]!r}")
        return xmlrpc.client.loads(xml)[0][0]


def wait_line(what, deadline):
    """Waits for a line on stdin (the caller's go-ahead), until the deadline."""
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
    if not ready:
        raise Failure(f"nobody released the script after {what} before the deadline")
    sys.stdin.readline()


def run(args, out):
    lts.check_url(args.announce, 4)
    if not shutil.which("rtorrent"):
        raise Failure("rtorrent not found: run scripts/install-test-deps.sh (Debian: rtorrent)")
    work = os.path.abspath(args.workdir)
    seed_dir, leech_dir, rt_dir = (os.path.join(work, d) for d in ("seed", "leech", "rt"))
    for d in (seed_dir, leech_dir, rt_dir):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(leech_dir)
    os.makedirs(os.path.join(rt_dir, "session"))
    size = int(args.size_mib * 1024 * 1024)
    deadline = time.monotonic() + args.timeout

    want_sha = lts.make_payload(seed_dir, size)
    torrent_path = os.path.join(work, "rtorrent-e2e.torrent")
    ti = lts.make_torrent(seed_dir, size, args.announce, torrent_path)
    info_hash = str(ti.info_hashes().v1)
    out["info_hash"] = info_hash
    print(f"INFO_HASH {info_hash}", flush=True)

    seeder = lts.Peer("seeder", 4, False)
    rtorrent = None
    try:
        seeder.handle = lts.add_torrent(seeder.ses, ti, seed_dir, seed=True)
        while seeder.replies == 0:
            seeder.poll()
            if seeder.fatal:
                raise Failure(seeder.fatal)
            seeder.retry_after_error(time.monotonic())
            if time.monotonic() > deadline:
                raise Failure("the seeder never got a tracker reply")
            time.sleep(0.05)

        sock_path = os.path.join(rt_dir, "scgi.sock")
        rc_path = os.path.join(rt_dir, "rtorrent.rc")
        with open(rc_path, "w") as f:
            f.write(rtorrent_rc(rt_dir, leech_dir, sock_path, free_tcp_port(), not args.no_hash_on_completion))
        env = dict(os.environ, HOME=rt_dir, TERM="dumb")
        rtorrent = subprocess.Popen(
            ["rtorrent", "-n", "-o", f"import={rc_path}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
            env=env,
            cwd=rt_dir,
        )
        rpc = Scgi(sock_path)
        while not os.path.exists(sock_path):
            if rtorrent.poll() is not None:
                raise Failure(f"rtorrent exited at start with status {rtorrent.returncode}")
            if time.monotonic() > deadline:
                raise Failure("rtorrent never opened its SCGI socket")
            time.sleep(0.05)
        out["rtorrent"] = rpc.call("system.client_version")
        out["rtorrent_libtorrent"] = rpc.call("system.library_version")
        log(f"rtorrent {out['rtorrent']} (libtorrent {out['rtorrent_libtorrent']}) started")
        rpc.call("load.start", "", torrent_path)
        h = info_hash.upper()
        started = time.monotonic()
        while True:
            seeder.poll()
            try:
                done = rpc.call("d.complete", h)
            except xmlrpc.client.Fault:
                done = 0  # not loaded yet
            if done:
                break
            if rtorrent.poll() is not None:
                raise Failure(f"rtorrent exited with status {rtorrent.returncode}")
            if time.monotonic() > deadline:
                raise Failure(f"rtorrent did not complete: {rpc.call('d.bytes_done', h)} of {size} bytes")
            time.sleep(0.1)
        out["seconds"] = round(time.monotonic() - started, 3)
        got_sha = lts.sha256_file(os.path.join(leech_dir, lts.PAYLOAD_NAME))
        if got_sha != want_sha:
            raise Failure(f"payload differs: rtorrent's sha256 {got_sha}, seeder's {want_sha}")
        print("COMPLETE", flush=True)
        wait_line("COMPLETE", deadline)

        rpc.call("d.stop", h)  # the `stopped` announce, left = 0
        print("STOPPED", flush=True)
        wait_line("STOPPED", deadline)
        try:
            rpc.call("system.shutdown.normal")
        except (OSError, Failure):
            pass  # it may close the socket before answering
        rtorrent.wait(timeout=max(1.0, deadline - time.monotonic()))
        out["rtorrent_exit"] = rtorrent.returncode
    finally:
        if rtorrent is not None and rtorrent.poll() is None:
            rtorrent.kill()
            rtorrent.wait()
        seeder.shutdown()
        out["events_sent"] = events_sent(os.path.join(rt_dir, "rtorrent.log"))


def events_sent(path):
    """Copies rtorrent's log to stderr; returns the events of the announces it logged as sent
    (`tracker_list: sending 'started (group:0 url:...)`), in order; a regular announce is
    `update`."""
    events = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                log(f"rtorrent.log: {line.rstrip()}")
                _, sep, rest = line.partition("tracker_list: sending '")
                if sep:
                    events.append(rest.split(" ", 1)[0])
    except OSError:
        pass
    return events


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--announce", required=True, help="the tracker's announce URL (http:// or udp://, IPv4)")
    ap.add_argument("--workdir", required=True, help="directory for the payload, the torrent, rtorrent's files")
    ap.add_argument("--size-mib", type=float, default=1, help="payload size in MiB (default 1)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds before giving up (default 60)")
    ap.add_argument("--no-hash-on-completion", action="store_true",
                    help="pieces.hash.on_completion.set = no (rtorrent's default is yes)")
    args = ap.parse_args()
    lts.start_watchdogs(args.timeout)
    out = {"ok": False, "announce": args.announce}
    try:
        run(args, out)
    except Failure as e:
        out["error"] = str(e)
    except Exception as e:  # anything unexpected is a failed RESULT
        out["error"] = f"{type(e).__name__}: {e}"
    else:
        out["ok"] = True
    lts.emit_result(out)
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
