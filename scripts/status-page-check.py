#!/usr/bin/env python3
"""The status page (GET /stats/html) in a real browser.

Starts the tracker BINARY on loopback (HTTP and UDP, IPv4 and IPv6, a blacklist of one
info_hash), sends it known traffic for --seconds (announces over HTTP and UDP from both
families, scrapes, refused and malformed requests), then loads /stats/html in headless
Chromium twice: `--dump-dom` for the rendered DOM, whose figures must equal the traffic sent,
and `--screenshot` for a PNG, which must be a picture with content. Optionally saves the
screenshot (--screenshot PATH, as docs/status-page.png) and the tracker's /metrics text
(--metrics-out PATH, for scripts/check-grafana-dashboard.py). Stops the tracker (SIGTERM,
exit status 0) in every case.

Python standard library only; Chromium from Debian's `chromium` package
(scripts/install-test-deps.sh). Exit status 0 when every check passed; otherwise the failed
check is printed and the status is 1. Traffic goes to 127.0.0.1 and ::1 only.

    python3 scripts/status-page-check.py target/debug/opentracker-rs --seconds 22
"""

import argparse
import html.parser
import http.client
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def fail(message):
    print(f"status-page-check: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    fail("no chromium in PATH (Debian: apt-get install chromium; make test-deps does it)")


class Tracker:
    """The tracker process; its listeners are read from its start-up log."""

    def __init__(self, binary, workdir):
        self.blacklisted = bytes.fromhex("66" * 20)
        blacklist = os.path.join(workdir, "blacklist.txt")
        with open(blacklist, "w") as f:
            f.write(self.blacklisted.hex() + "\n")
        conf = os.path.join(workdir, "opentracker.conf")
        with open(conf, "w") as f:
            f.write(
                "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\n"
                "listen.udp 127.0.0.1:0\nlisten.udp [::1]:0\n"
                "access.stats 127.0.0.1\naccess.stats ::1\n"
                # The traffic comes from one address: per-source quotas off.
                "udp.rate_limit 0\ntracker.max_new_torrents_per_net 0\n"
                "tracker.max_peers_per_source 0\n"
                f"access.blacklist {blacklist}\n"
            )
        args = [binary, "-f", conf]
        if os.geteuid() == 0:
            args.append("--allow-root")
        env = dict(os.environ, RUST_LOG="info")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env=env)
        self.log = []
        self.http = {}
        self.udp = {}
        deadline = time.time() + 20
        while len(self.http) < 2 or len(self.udp) < 2:
            if time.time() > deadline:
                self.stop()
                fail(f"the tracker did not start: {self.log}")
            line = self.proc.stderr.readline()
            if not line:
                self.stop()
                fail(f"the tracker exited: {self.log}")
            self.log.append(line.rstrip())
            m = re.search(r"listening: (http|udp) (\S+)$", line.strip())
            if m:
                host, port = m.group(2).rsplit(":", 1)
                host = host.strip("[]")
                family = 6 if ":" in host else 4
                (self.http if m.group(1) == "http" else self.udp)[family] = (host, int(port))
        # Keep draining the log so the tracker never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def url(self, path):
        host, port = self.http[4]
        return f"http://{host}:{port}{path}"

    def get(self, path, family=4):
        host, port = self.http[family]
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return None
        return self.proc.returncode


def bdecode_failure(body):
    """The `failure reason` of a bencoded reply, or None (enough of bencode for that)."""
    key = b"14:failure reason"
    if key not in body:
        return None
    rest = body.split(key, 1)[1]
    n, text = rest.split(b":", 1)
    return text[: int(n)].decode(errors="replace")


class Traffic:
    """Known traffic, and what the tracker must have counted of it."""

    def __init__(self, tracker, seed=14):
        self.t = tracker
        self.rng = random.Random(seed)
        # Torrent i has about 60/(i+1) IPv4 peers and 20/(i+1) IPv6 peers; every fourth peer is
        # a seeder; even peers announce over HTTP, odd ones over UDP.
        self.peers = []  # (info_hash, family, port, left, proto)
        self.torrents = []
        for i in range(40):
            h = bytes([0x10 + i]) + bytes(self.rng.randrange(256) for _ in range(19))
            self.torrents.append(h)
            for family, count in ((4, max(1, 60 // (i + 1))), (6, 20 // (i + 1))):
                for j in range(count):
                    port = 10000 + len(self.peers)
                    left = 0 if j % 4 == 0 else 1000
                    proto = "http" if j % 2 == 0 else "udp"
                    self.peers.append((h, family, port, left, proto))
        self.rng.shuffle(self.peers)
        self.sent = {k: 0 for k in (
            "http4", "http6", "udp4", "udp6", "http_scrape4", "udp_scrape4",
            "refused", "bad_http", "udp_connect4", "udp_connect6")}
        self.http_conns = {}
        self.udp_socks = {}
        self.conn_ids = {}

    def expected(self):
        """Peers, seeders and torrents per family that the store must hold."""
        peers = {4: 0, 6: 0}
        seeders = {4: 0, 6: 0}
        torrents = {4: set(), 6: set()}
        per_torrent = {}
        for h, family, _, left, _ in self.peers:
            peers[family] += 1
            seeders[family] += left == 0
            torrents[family].add(h)
            s, l = per_torrent.get(h, (0, 0))
            per_torrent[h] = (s + (left == 0), l + (left != 0))
        top = max(per_torrent, key=lambda h: sum(per_torrent[h]))
        return peers, seeders, {f: len(v) for f, v in torrents.items()}, top, per_torrent[top]

    def _http(self, family, path):
        conn = self.http_conns.get(family)
        if conn is None:
            host, port = self.t.http[family]
            conn = http.client.HTTPConnection(host, port, timeout=10)
            self.http_conns[family] = conn
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.http_conns.pop(family, None)
            raise
        return r.status, body

    def _udp(self, family):
        sock = self.udp_socks.get(family)
        if sock is None:
            sock = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
            sock.settimeout(5)
            sock.connect(self.t.udp[family])
            self.udp_socks[family] = sock
        if family not in self.conn_ids or time.time() - self.conn_ids[family][1] > 60:
            tid = self.rng.getrandbits(32)
            sock.send(struct.pack(">QII", 0x41727101980, 0, tid))
            action, rtid, cid = struct.unpack(">IIQ", sock.recv(64)[:16])
            if (action, rtid) != (0, tid):
                fail("bad UDP connect reply")
            self.sent[f"udp_connect{family}"] += 1
            self.conn_ids[family] = (cid, time.time())
        return sock, self.conn_ids[family][0]

    def announce(self, h, family, port, left, proto):
        if proto == "http":
            q = urllib.parse.urlencode({
                "info_hash": h, "peer_id": b"-ST0001-%012d" % port, "port": port,
                "uploaded": 0, "downloaded": 0, "left": left, "compact": 1},
                quote_via=urllib.parse.quote)  # %20, never '+', for a 0x20 byte
            status, body = self._http(family, "/announce?" + q)
            if status != 200:
                fail(f"HTTP announce: status {status}")
            failure = bdecode_failure(body)
            if h == self.t.blacklisted:
                if failure is None:
                    fail("a blacklisted announce was not refused")
                self.sent["refused"] += 1
                return
            if failure is not None:
                fail(f"HTTP announce failed: {failure}")
            self.sent[f"http{family}"] += 1
        else:
            sock, cid = self._udp(family)
            tid = self.rng.getrandbits(32)
            sock.send(struct.pack(">QII20s20sQQQIIIiH", cid, 1, tid, h, b"-ST0001-%012d" % port,
                                  0, left, 0, 0, 0, 0, -1, port))
            reply = sock.recv(2048)
            action, rtid = struct.unpack(">II", reply[:8])
            if rtid != tid or action != 1:
                fail(f"UDP announce: action {action}: {reply[8:]!r}")
            self.sent[f"udp{family}"] += 1

    def scrape(self):
        h = self.rng.choice(self.torrents)
        if self.rng.random() < 0.5:
            status, _ = self._http(
                4, "/scrape?" + urllib.parse.urlencode({"info_hash": h}, quote_via=urllib.parse.quote))
            if status != 200:
                fail(f"HTTP scrape: status {status}")
            self.sent["http_scrape4"] += 1
        else:
            sock, cid = self._udp(4)
            tid = self.rng.getrandbits(32)
            sock.send(struct.pack(">QII20s", cid, 2, tid, h))
            action, rtid = struct.unpack(">II", sock.recv(256)[:8])
            if (action, rtid) != (2, tid):
                fail("bad UDP scrape reply")
            self.sent["udp_scrape4"] += 1

    def run(self, seconds):
        """Every peer announces at least once, then again and again, at a rate that swells
        and ebbs (so the chart has a shape), with a scrape, a refused and a bad request now
        and then, for `seconds`."""
        start = time.time()
        i = 0
        tick = 0
        while True:
            elapsed = time.time() - start
            if elapsed >= seconds and i >= len(self.peers):
                break
            swell = 1.0 + 0.6 * math.sin(elapsed / 12.0)
            for _ in range(max(1, int(12 * swell))):
                self.announce(*self.peers[i % len(self.peers)])
                i += 1
            if tick % 3 == 0:
                self.scrape()
            if tick % 40 == 5:
                # Refused by the blacklist (over HTTP IPv4: counted as a failure too).
                self.announce(self.t.blacklisted, 4, 9999, 10, "http")
            if tick % 60 == 7:
                status, body = self._http(4, "/announce?port=1")
                if bdecode_failure(body) is None:
                    fail("a bad announce got no failure reason")
                self.sent["bad_http"] += 1
            tick += 1
            time.sleep(0.1)
        for c in self.http_conns.values():
            c.close()


class Dom(html.parser.HTMLParser):
    """Text and attributes of every element with an id; tags seen."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.attrs = {}
        self.tags = []
        self.open = []  # ids of the open elements
        self.hashes = []
        self.in_hash = False
        self.polyline_points = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "polyline":
            self.polyline_points[a.get("class")] = a.get("points", "")
        self.in_hash = tag == "td" and a.get("class") == "hash"
        ident = a.get("id")
        if ident:
            self.by_id[ident] = ""
            self.attrs[ident] = a
            self.open.append((tag, ident))

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            self.open.pop()
        self.in_hash = False

    def handle_data(self, data):
        for _, ident in self.open:
            self.by_id[ident] += data
        if self.in_hash:
            self.hashes.append(data.strip())


def chromium(browser, profile, *args, timeout=90):
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
    return r.stdout


def check_png(path, width, height):
    """A PNG of the window's size whose pixels are not all alike."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    w, h = struct.unpack(">II", data[16:24])
    if (w, h) != (width, height):
        fail(f"{path} is {w}x{h}, not {width}x{height}")
    idat = b""
    pos = 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    distinct = len(set(raw))
    if distinct < 64:
        fail(f"{path} looks blank ({distinct} distinct byte values)")
    return len(data), distinct


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=float, default=22,
                    help="traffic duration (>= 21 for two rate samples); default 22")
    ap.add_argument("--screenshot", help="where to copy the screenshot (PNG)")
    ap.add_argument("--metrics-out", help="where to save the tracker's /metrics text")
    ap.add_argument("--window", default="1100,1600", help="browser window WIDTH,HEIGHT")
    args = ap.parse_args()
    browser = find_chromium()
    width, height = (int(x) for x in args.window.split(","))

    with tempfile.TemporaryDirectory(prefix="otrs-status-page-") as work:
        tracker = Tracker(os.path.abspath(args.binary), work)
        try:
            check(tracker, browser, work, args, width, height)
        finally:
            code = tracker.stop()
        if code != 0:
            fail(f"the tracker exited with {code}: {tracker.log[-20:]}")
    print("status-page-check: ok")


def check(tracker, browser, work, args, width, height):
    traffic = Traffic(tracker)
    traffic.run(args.seconds)
    peers, seeders, torrents, top, top_counts = traffic.expected()
    sent = traffic.sent
    print(f"status-page-check: sent {sent}; store: peers {peers}, seeders {seeders}, "
          f"torrents {torrents}")

    status, metrics = tracker.get("/metrics")
    if status != 200:
        fail(f"/metrics: {status}")
    if args.metrics_out:
        with open(args.metrics_out, "wb") as f:
            f.write(metrics)

    url = tracker.url("/stats/html")
    dom_text = chromium(browser, os.path.join(work, "profile-dom"), "--dump-dom", url).decode()
    dom = Dom()
    dom.feed(dom_text)

    def number(ident):
        if ident not in dom.by_id:
            fail(f"no element #{ident} in the rendered page:\n{dom_text[:3000]}")
        text = dom.by_id[ident].strip()
        try:
            return float(text)
        except ValueError:
            fail(f"#{ident} holds {text!r}, not a number")

    def expect(ident, want):
        got = number(ident)
        if got != want:
            fail(f"#{ident} shows {got:g}, the traffic makes it {want}")
        return got

    expect("card-torrents", torrents[4] + torrents[6])
    expect("torrents-ipv4", torrents[4])
    expect("torrents-ipv6", torrents[6])
    expect("card-peers", peers[4] + peers[6])
    expect("peers-ipv4", peers[4])
    expect("peers-ipv6", peers[6])
    expect("card-seeders", seeders[4] + seeders[6])
    expect("seeders-ipv6", seeders[6])
    expect("card-leechers", peers[4] + peers[6] - seeders[4] - seeders[6])
    expect("http-ipv4-announce", sent["http4"])
    expect("http-ipv6-announce", sent["http6"])
    expect("udp-ipv4-announce", sent["udp4"])
    expect("udp-ipv6-announce", sent["udp6"])
    expect("udp-ipv4-connect", sent["udp_connect4"])
    expect("http-ipv4-scrape", sent["http_scrape4"])
    expect("udp-ipv4-scrape", sent["udp_scrape4"])
    expect("http-ipv4-failed", sent["refused"] + sent["bad_http"])
    expect("refused-not-authorized", sent["refused"])
    expect("refused-bad-request", sent["bad_http"])
    if number("card-rate-http") <= 0 or number("card-rate-udp") <= 0:
        fail("the request rates are zero")
    memory = int(dom.attrs["card-memory"].get("data-value", "0"))
    if memory < 1 << 20:
        fail(f"memory {memory} bytes")
    uptime = int(dom.attrs["uptime"]["data-value"])
    if uptime < args.seconds - 1:
        fail(f"uptime {uptime} s after {args.seconds} s of traffic")
    for proto in ("http", "udp"):
        points = dom.polyline_points.get(proto, "").split()
        if len(points) < 2:
            fail(f"the {proto} line of the chart has {len(points)} points")
    if not dom.hashes or dom.hashes[0] != top.hex():
        fail(f"top torrent {dom.hashes[:1]}, expected {top.hex()}")
    if len(dom.hashes) != 10:
        fail(f"{len(dom.hashes)} top torrents listed")
    for tag, a in dom.tags:
        inline = tag == "link" and a.get("href", "").startswith("data:")
        if (tag in ("script", "link", "img", "iframe") and not inline) or "src" in a:
            fail(f"the page loads something: <{tag} {a}>")
    # The same figures as the Prometheus output.
    m = metrics.decode()
    for line in (f'opentracker_refused_total{{reason="not_authorized"}} {sent["refused"]}',
                 f'opentracker_torrents{{family="ipv6"}} {torrents[6]}'):
        if line not in m.splitlines():
            fail(f"/metrics lacks {line!r}")
    print(f"status-page-check: DOM dump shows the traffic ({len(dom.by_id)} figures checked "
          f"by id, top torrent {top.hex()[:8]}... with {sum(top_counts)} peers)")

    shot = os.path.join(work, "status-page.png")
    chromium(browser, os.path.join(work, "profile-shot"), f"--screenshot={shot}",
             f"--window-size={width},{height}", url)
    size, distinct = check_png(shot, width, height)
    # Two page loads asked for nothing else (no favicon, no asset): no 404 was counted.
    status, herr = tracker.get("/stats?mode=herr")
    if status != 200 or "\n404 INV 0\n" not in herr.decode():
        fail(f"the browser asked for something that is not there:\n{herr.decode()}")
    print(f"status-page-check: screenshot {width}x{height}, {size} bytes, "
          f"{distinct} distinct byte values")
    if args.screenshot:
        shutil.copyfile(shot, args.screenshot)
        print(f"status-page-check: screenshot saved as {args.screenshot}")


if __name__ == "__main__":
    main()
