#!/usr/bin/env python3
"""End-to-end test of a BitTorrent tracker with a real client (libtorrent 2.0).

Two libtorrent sessions on loopback form a swarm of one seeder and one
leecher whose ONLY way to meet is the tracker under test:

  * DHT, LSD, UPnP and NAT-PMP are off;
  * the sessions are created without libtorrent's default plugins
    (`lt.session(settings, flags=0)`), so the ut_pex (peer exchange) and
    ut_metadata extensions are not loaded. This is what turns PEX off: the
    per-torrent `disable_pex` flag (also set) does not stop libtorrent 2.0.8
    from advertising ut_pex. The script proves it: it reads the extension
    handshakes the peers send each other (peer_log alerts) and fails if one
    advertises ut_pex, or if none was seen;
  * the leecher is started only after the seeder's announce got a reply, and
    it must learn the seeder from its own announce.

Usage:
  python3 tests/e2e/libtorrent_swarm.py --announce URL --family 4|6 --workdir DIR
                                        [--size-mib 4] [--timeout 60] [--verbose]
                                        [--leecher-announce URL] [--listen-ip IP]

URL is the tracker's announce URL: http://127.0.0.1:PORT/announce,
http://[::1]:PORT/announce, udp://127.0.0.1:PORT or udp://[::1]:PORT, or a
private tracker's http://HOST:PORT/announce/KEY or udp://HOST:PORT/announce/KEY
(libtorrent sends the UDP URL's path as BEP 41 URL data), or https://HOST:PORT/announce
(libtorrent verifies the tracker's certificate: point SSL_CERT_FILE at the CA's PEM file). libtorrent's SSRF
mitigation refuses HTTP trackers on loopback whose path is not /announce; the
sessions turn it off so that /announce/KEY works on loopback.

--expect-refusal TEXT: only the seeder runs; the run succeeds when its tracker
answers with an error that contains TEXT (and fails if the tracker accepts the
announce), and the error is printed as a `REFUSED <message>` line.

Steps: write --size-mib MiB of random bytes to DIR/seed/payload.bin; build a
v1-only single-file torrent (64 KiB pieces) announcing to URL, save it as
DIR/e2e.torrent and print `INFO_HASH <40 hex digits>` (a whitelist-only tracker
can whitelist it now: announces that fail are retried every second); start the
seeder (seed mode), wait for its tracker reply, start the leecher in DIR/leech,
wait until it is a seed, compare the two files by SHA-256.

Output: tracker errors, warnings and progress go to stderr; stdout carries the
INFO_HASH line and a last line `RESULT {json}` with "ok": true (exit 0) or
"ok": false and an "error" (exit 1). The script ends by itself within
--timeout plus a few seconds whatever happens.

Clusters (tests/cluster.rs): --leecher-announce URL gives the leecher a torrent
that announces to URL only (same info_hash: the announce list is outside the
info dictionary), so seeder and leecher can only meet if the tracker at
--announce told the one at URL about the seeder (live sync). The leecher then
announces again every second while its replies carry no peer (the sync may
still be on its way). --listen-ip IP makes both sessions listen on IP (an
address of a network namespace) instead of loopback.

Diagnostics (not used by CI): --leecher-after S starts the leecher after S
seconds without waiting for the seeder's tracker reply (with the URL on a
closed port this shows the peers cannot meet without the tracker); --direct
also connects the leecher to the seeder by hand (handle.connect_peer),
bypassing the tracker, to check the sessions themselves.

Only the standard library and the `libtorrent` module (Debian:
python3-libtorrent) are used. If this interpreter cannot import libtorrent
(e.g. a pyenv python3 first in PATH) the script re-runs itself with
/usr/bin/python3.
"""

import argparse
import hashlib
import ipaddress
import json
import os
import select
import shutil
import signal
import sys
import threading
import time
import urllib.parse

try:
    import libtorrent as lt
except ImportError:
    _SYSTEM_PYTHON = "/usr/bin/python3"
    if (
        os.environ.get("E2E_REEXEC") is None
        and os.path.exists(_SYSTEM_PYTHON)
        and os.path.realpath(sys.executable) != os.path.realpath(_SYSTEM_PYTHON)
    ):
        os.environ["E2E_REEXEC"] = "1"
        os.execv(_SYSTEM_PYTHON, [_SYSTEM_PYTHON] + sys.argv)
    print(
        'RESULT {"ok": false, "error": "python module libtorrent not found; '
        'run scripts/install-test-deps.sh (Debian: python3-libtorrent)"}',
        flush=True,
    )
    sys.exit(1)

PIECE_SIZE = 64 * 1024  # bytes
PAYLOAD_NAME = "payload.bin"
# Seconds the process may outlive --timeout: session shutdown (stopped
# announces are bounded by stop_tracker_timeout) and the RESULT line.
GRACE_SECONDS = 4

_result_lock = threading.Lock()
_result_printed = False
_verbose = False


def log(msg):
    """Progress and tracker messages: stderr, so stdout stays parseable."""
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def vlog(msg):
    if _verbose:
        log(msg)


def emit_result(fields):
    """Print the single RESULT line (only the first call prints)."""
    global _result_printed
    with _result_lock:
        if _result_printed:
            return
        _result_printed = True
        print("RESULT " + json.dumps(fields, sort_keys=False), flush=True)


def start_watchdogs(timeout):
    """Make sure the process ends even if libtorrent blocks.

    A Python timer prints a failing RESULT and exits at timeout + GRACE; if
    the GIL were held by a blocked libtorrent call, SIGALRM (default action:
    terminate) ends the process a few seconds later anyway.
    """

    def fire():
        emit_result({"ok": False, "error": f"watchdog: still running after {timeout + GRACE_SECONDS} s"})
        os._exit(1)

    t = threading.Timer(timeout + GRACE_SECONDS, fire)
    t.daemon = True
    t.start()
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(timeout) + GRACE_SECONDS + 4)


class Failure(Exception):
    pass


def check_url(url, family):
    """Return the tracker host of URL; fail if it is an IP literal of the other family."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "udp"):
        raise Failure(f"announce URL scheme must be http, https or udp: {url}")
    host = parts.hostname
    if host is None or parts.port is None:
        raise Failure(f"announce URL needs a host and a port: {url}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name: libtorrent resolves it
    if ip.version != family:
        raise Failure(f"announce URL host {host} is IPv{ip.version} but --family is {family}")
    return host


def session_settings(family, with_peer_log, listen_ip=None):
    """The libtorrent settings of both sessions (see the module docstring)."""
    loopback = listen_ip or ("127.0.0.1" if family == 4 else "::1")
    listen = endpoint(loopback, 0)
    return {
        # one listen socket (TCP + UDP) on loopback of the family, OS-chosen
        # port; libtorrent announces from its listen sockets only, so the
        # tracker sees this family only.
        "listen_interfaces": listen,
        "outgoing_interfaces": loopback,
        # every peer source but the tracker off
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # both peers share 127.0.0.1 / ::1
        "allow_multiple_connections_per_ip": True,
        # TCP only: one transport keeps the run predictable
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        # keep the seeder-leecher connection after the leecher completes, so
        # its peer_info (source: tracker) can still be read then; a 4 MiB
        # transfer on loopback can finish between two polls
        "close_redundant_connections": False,
        "announce_to_all_tiers": True,
        "announce_to_all_trackers": True,
        # fail fast, and do not wait long for `stopped` announces at the end
        "tracker_completion_timeout": 10,
        "tracker_receive_timeout": 5,
        "stop_tracker_timeout": 1,
        # a private tracker's /announce/KEY on loopback (see the module doc)
        "ssrf_mitigation": False,
        # https:// trackers: verify the certificate (libtorrent 2.0's default, made explicit);
        # the test hands the test CA over through OpenSSL's SSL_CERT_FILE.
        "validate_https_trackers": True,
        "alert_queue_size": 10000,
        "alert_mask": alert_mask(with_peer_log),
    }


def alert_mask(with_peer_log):
    c = lt.alert.category_t
    mask = (
        c.error_notification
        | c.tracker_notification
        | c.status_notification
        | c.peer_notification
        | c.connect_notification
        | c.storage_notification
    )
    if with_peer_log:
        mask |= c.peer_log_notification
    return int(mask)


def endpoint(ip, port):
    """"1.2.3.4:80" or "[::1]:80"."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def make_payload(seed_dir, size):
    """Write `size` random bytes to seed_dir/payload.bin; return their SHA-256 hex."""
    os.makedirs(seed_dir)
    h = hashlib.sha256()
    chunk = 1 << 20
    with open(os.path.join(seed_dir, PAYLOAD_NAME), "wb") as f:
        left = size
        while left > 0:
            b = os.urandom(min(chunk, left))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def make_torrent(seed_dir, size, url, torrent_path):
    """Build a v1-only single-file torrent announcing to url; return torrent_info."""
    fs = lt.file_storage()
    fs.add_file(PAYLOAD_NAME, size)
    # v1 only: a hybrid torrent would announce a second (truncated v2) info_hash
    ct = lt.create_torrent(fs, PIECE_SIZE, flags=lt.create_torrent.v1_only)
    ct.add_tracker(url, 0)
    ct.set_creator("opentracker-rs e2e test")
    lt.set_piece_hashes(ct, seed_dir)
    data = lt.bencode(ct.generate())
    with open(torrent_path, "wb") as f:
        f.write(data)
    return lt.torrent_info(torrent_path)


def add_torrent(ses, ti, save_path, seed):
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    flags = atp.flags | lt.torrent_flags.disable_pex
    flags &= ~lt.torrent_flags.paused
    flags &= ~lt.torrent_flags.auto_managed
    if seed:
        flags |= lt.torrent_flags.seed_mode
    atp.flags = flags
    return ses.add_torrent(atp)


class Peer:
    """One libtorrent session with one torrent, and what its alerts told us."""

    def __init__(self, role, family, with_peer_log, listen_ip=None, retry_empty=False):
        self.role = role
        self.ses = lt.session(session_settings(family, with_peer_log, listen_ip), flags=0)
        self.retry_empty = retry_empty  # announce again while replies carry no peer
        self.handle = None
        self.listen = []  # "ip:port" of TCP listen sockets
        self.replies = 0
        self.reply_peers = []  # num_peers of each tracker reply
        self.errors = 0
        self.error_messages = []  # the tracker's failure reasons
        self.retry_at = None  # monotonic time of the next forced announce
        self.ext_handshakes = 0  # extension handshakes received
        self.pex_seen = False  # a received handshake advertised ut_pex
        self.fatal = None

    def poll(self):
        for a in self.ses.pop_alerts():
            self.on_alert(a)

    def on_alert(self, a):
        r = self.role
        if isinstance(a, lt.listen_succeeded_alert):
            vlog(f"{r}: {a.message()}")
            if a.socket_type == lt.socket_type_t.tcp:
                self.listen.append(endpoint(str(a.address), a.port))
        elif isinstance(a, lt.listen_failed_alert):
            self.fatal = f"{r}: {a.message()}"
        elif isinstance(a, lt.tracker_reply_alert):
            self.replies += 1
            self.reply_peers.append(a.num_peers)
            log(f"{r}: tracker reply from {a.tracker_url()}: {a.num_peers} peers")
            if self.retry_empty and a.num_peers == 0:
                self.retry_at = time.monotonic() + 1.0
        elif isinstance(a, lt.tracker_error_alert):
            self.errors += 1
            reason = a.failure_reason() if hasattr(a, "failure_reason") else ""
            self.error_messages.append(reason or a.message())
            log(f"{r}: tracker error: {a.message()}")
            if self.replies == 0:
                # not registered yet (e.g. a whitelist that is being
                # reloaded): try again in a second, not at libtorrent's backoff
                self.retry_at = time.monotonic() + 1.0
        elif isinstance(a, lt.tracker_warning_alert):
            log(f"{r}: tracker warning: {a.message()}")
        elif isinstance(a, lt.tracker_announce_alert):
            vlog(f"{r}: {a.message()}")
        elif isinstance(a, lt.peer_log_alert):
            # incoming: "... <== EXTENDED_HANDSHAKE [ { 'm': { ... } ... } ]"
            if "<== EXTENDED_HANDSHAKE" in a.message():
                msg = a.log_message()
                self.ext_handshakes += 1
                vlog(f"{r}: received extension handshake {msg}")
                if "ut_pex" in msg:
                    self.pex_seen = True
        elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
            self.fatal = f"{r}: {a.message()}"
        elif isinstance(a, (lt.peer_connect_alert, lt.peer_disconnected_alert, lt.peer_error_alert)):
            vlog(f"{r}: {a.message()}")

    def retry_after_error(self, now):
        """Announce again when a failed first announce asked for it."""
        if self.handle is not None and self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)

    def shutdown(self):
        """Pause (sends `stopped`), then let the session go (bounded by stop_tracker_timeout)."""
        try:
            self.ses.pause()
        except Exception:
            pass
        self.ses = None
        self.handle = None


def report(out, seeder, leecher, sources):
    """Copy what the alerts and the leecher's peer list showed into the RESULT fields."""
    t = lt.peer_info
    out["leecher_peers_from_tracker"] = sum(1 for s in sources.values() if s & t.tracker)
    out["leecher_peers_from_pex"] = sum(1 for s in sources.values() if s & t.pex)
    out["leecher_peers_other"] = sum(1 for s in sources.values() if not s & t.tracker)
    out["leecher_peers_seen"] = sorted(sources)
    out["seeder_listen"] = seeder.listen
    out["leecher_listen"] = leecher.listen
    out["seeder_tracker_replies"] = seeder.replies
    out["leecher_tracker_replies"] = leecher.replies
    out["leecher_reply_num_peers"] = leecher.reply_peers
    out["tracker_errors"] = seeder.errors + leecher.errors
    out["ext_handshakes_received"] = seeder.ext_handshakes + leecher.ext_handshakes
    out["pex_advertised"] = seeder.pex_seen or leecher.pex_seen


def expect_refusal(args, seeder, leecher, ti, seed_dir, deadline):
    """Seeder only: succeed when the tracker refuses with a reason containing the text."""
    try:
        seeder.handle = add_torrent(seeder.ses, ti, seed_dir, seed=True)
        while time.monotonic() < deadline:
            seeder.poll()
            if seeder.fatal:
                raise Failure(seeder.fatal)
            if seeder.replies:
                raise Failure("the tracker accepted the announce")
            for m in seeder.error_messages:
                if args.expect_refusal in m:
                    print(f"REFUSED {m}", flush=True)
                    return
            time.sleep(0.05)
        raise Failure(f"no refusal containing {args.expect_refusal!r}; errors: {seeder.error_messages}")
    finally:
        for p in (seeder, leecher):
            p.shutdown()


def run(args, out):
    host = check_url(args.announce, args.family)
    if args.leecher_announce:
        check_url(args.leecher_announce, args.family)
    workdir = os.path.abspath(args.workdir)
    seed_dir = os.path.join(workdir, "seed")
    leech_dir = os.path.join(workdir, "leech")
    torrent_path = os.path.join(workdir, "e2e.torrent")
    os.makedirs(workdir, exist_ok=True)
    for d in (seed_dir, leech_dir):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(leech_dir)
    size = int(args.size_mib * 1024 * 1024)
    if size <= 0:
        raise Failure("--size-mib must be positive")

    t_start = time.monotonic()
    deadline = t_start + args.timeout
    want_sha = make_payload(seed_dir, size)
    ti = make_torrent(seed_dir, size, args.announce, torrent_path)
    leecher_ti = ti
    if args.leecher_announce:
        leecher_ti = make_torrent(
            seed_dir, size, args.leecher_announce, os.path.join(workdir, "e2e-leecher.torrent")
        )
        if str(leecher_ti.info_hashes().v1) != str(ti.info_hashes().v1):
            raise Failure("the leecher's torrent has another info_hash")
    info_hash = str(ti.info_hashes().v1)
    out["info_hash"] = info_hash
    print(f"INFO_HASH {info_hash}", flush=True)
    log(f"torrent {torrent_path}: {size} bytes, {ti.num_pieces()} pieces, tracker {args.announce} (host {host})")

    tracker_sources = {}  # leecher's peers: "ip:port" -> union of peer_info.source flags
    seeder = Peer("seeder", args.family, True, args.listen_ip)
    leecher = Peer("leecher", args.family, True, args.listen_ip, bool(args.leecher_announce))
    peers = (seeder, leecher)
    if args.expect_refusal is not None:
        return expect_refusal(args, seeder, leecher, ti, seed_dir, deadline)
    try:
        seeder.handle = add_torrent(seeder.ses, ti, seed_dir, seed=True)
        leecher_started_at = None
        peer_log_on = True
        while True:
            now = time.monotonic()
            for p in peers:
                p.poll()
                if p.fatal:
                    raise Failure(p.fatal)
            seeder.retry_after_error(now)
            leecher.retry_after_error(now)

            if leecher.handle is None:
                go = seeder.replies > 0
                if args.leecher_after is not None or args.direct:
                    go = now - t_start >= (args.leecher_after or 0)
                if go:
                    log("starting the leecher")
                    leecher.handle = add_torrent(leecher.ses, leecher_ti, leech_dir, seed=False)
                    leecher_started_at = now
                    if args.direct:
                        port = seeder.ses.listen_port()
                        addr = args.listen_ip or ("127.0.0.1" if args.family == 4 else "::1")
                        log(f"--direct: leecher connects to seeder {addr} port {port} by hand")
                        leecher.handle.connect_peer((addr, port))
            else:
                for pi in leecher.handle.get_peer_info():
                    key = endpoint(pi.ip[0], pi.ip[1])
                    tracker_sources[key] = tracker_sources.get(key, 0) | int(pi.source)
                st = leecher.handle.status()
                if st.is_seeding:
                    out["seconds"] = round(now - leecher_started_at, 3)
                    out["leecher_payload_download_bytes"] = st.total_payload_download
                    break

            # enough handshakes seen: stop the chatty peer log
            if peer_log_on and seeder.ext_handshakes and leecher.ext_handshakes:
                for p in peers:
                    p.ses.apply_settings({"alert_mask": alert_mask(False)})
                peer_log_on = False

            if now >= deadline:
                st = leecher.handle.status() if leecher.handle is not None else None
                if leecher.handle is None:
                    why = "the seeder never got a tracker reply"
                else:
                    why = (
                        f"leecher not complete: progress {st.progress:.3f}, "
                        f"{st.num_peers} peers, {leecher.replies} tracker replies {leecher.reply_peers}"
                    )
                raise Failure(f"timeout after {args.timeout} s: {why}")
            time.sleep(0.05)

        for p in peers:  # the last alerts (late handshakes)
            p.poll()
        report(out, seeder, leecher, tracker_sources)

        got_sha = sha256_file(os.path.join(leech_dir, PAYLOAD_NAME))
        out["sha256"] = got_sha
        if got_sha != want_sha:
            raise Failure(f"payload differs: leecher sha256 {got_sha}, seeder {want_sha}")
        if out["leecher_payload_download_bytes"] < size:
            raise Failure(f"leecher downloaded only {out['leecher_payload_download_bytes']} of {size} bytes")
        if out["pex_advertised"]:
            raise Failure("a peer advertised ut_pex in its extension handshake: PEX is on")
        if out["ext_handshakes_received"] == 0:
            raise Failure("no extension handshake seen: cannot show PEX is off")
        if not args.direct and out["leecher_peers_from_tracker"] == 0:
            raise Failure("the leecher completed without a peer from the tracker")
        if args.hold:
            hold(args, deadline)
    finally:
        if "tracker_errors" not in out:  # failed early: still say what happened
            report(out, seeder, leecher, tracker_sources)
        for p in peers:
            p.shutdown()
        out["total_seconds"] = round(time.monotonic() - t_start, 3)


def hold(args, deadline):
    """--hold: print HOLDING and keep both sessions running until a line arrives on stdin (or the
    deadline), so the caller can scrape the tracker while the swarm is alive."""
    print("HOLDING", flush=True)
    left = max(0.0, deadline - time.monotonic())
    ready, _, _ = select.select([sys.stdin], [], [], left)
    if not ready:
        raise Failure("--hold: nobody released the swarm before the deadline")
    sys.stdin.readline()


def main():
    global _verbose
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--announce", required=True,
                    help="tracker announce URL (http://, https:// or udp://; for https the CA comes from SSL_CERT_FILE)")
    ap.add_argument("--family", type=int, choices=(4, 6), required=True, help="IP family of loopback to use")
    ap.add_argument("--workdir", required=True, help="directory for the payload, the torrent and the download")
    ap.add_argument("--size-mib", type=float, default=4, help="payload size in MiB (default 4)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds before giving up (default 60)")
    ap.add_argument("--leecher-announce", default=None, metavar="URL",
                    help="the leecher announces to URL only (another node of a cluster)")
    ap.add_argument("--listen-ip", default=None, metavar="IP",
                    help="both sessions listen on IP instead of loopback")
    ap.add_argument("--leecher-after", type=float, default=None, metavar="S",
                    help="diagnostic: start the leecher after S seconds without waiting for the seeder's reply")
    ap.add_argument("--direct", action="store_true",
                    help="diagnostic: connect the leecher to the seeder by hand, bypassing the tracker")
    ap.add_argument("--verbose", action="store_true", help="log connections and handshakes to stderr")
    ap.add_argument("--expect-refusal", metavar="TEXT", default=None,
                    help="seeder only: succeed when the tracker refuses with a reason containing TEXT")
    ap.add_argument("--hold", action="store_true",
                    help="after success, print HOLDING and keep the swarm alive until a line on stdin")
    args = ap.parse_args()
    _verbose = args.verbose
    if args.timeout <= 0:
        ap.error("--timeout must be positive")
    start_watchdogs(args.timeout)

    out = {"ok": False, "announce": args.announce, "family": args.family, "libtorrent": lt.__version__}
    try:
        run(args, out)
    except Failure as e:
        out["error"] = str(e)
    except Exception as e:  # report anything unexpected as a failed RESULT
        out["error"] = f"{type(e).__name__}: {e}"
    else:
        out["ok"] = True
    if out["ok"]:
        result = {"ok": True, "info_hash": out.get("info_hash")}
    else:
        result = {"ok": False, "error": out.get("error")}
    result.update({k: v for k, v in out.items() if k not in result})
    emit_result(result)
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
