#!/usr/bin/env python3
"""Writes the fuzz seed corpus, fuzz/seeds/<target>/<name>: real requests of the clients the
tracker meets (qBittorrent/libtorrent, Transmission, aria2, uTorrent, curl), real BEP 15 packets,
real bencoded replies, and a few hostile ones. Re-run after changing it; the files are committed.

Usage: python3 scripts/make-fuzz-seeds.py
"""

import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "seeds")
H1 = bytes.fromhex("71021a166df5f9f9d74907c6be9aa41b9e1044e9")
H2 = bytes.fromhex("11cb1c59d061f1d50de15bfcf01009c4d6eb02e5")


def pct(b, upper=True):
    f = "%{:02X}" if upper else "%{:02x}"
    return "".join(chr(c) if chr(c).isalnum() or chr(c) in "-._~" else f.format(c) for c in b)


QUERIES = {
    "qbittorrent": f"info_hash={pct(H1, False)}&peer_id=-qB4520-k8Rj3xkFmS!v&port=51413&uploaded=0&downloaded=0&left=1073741824&corrupt=0&key=5A3F1C2B&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0",
    "transmission": f"info_hash={pct(H1)}&peer_id=-TR4050-9z1nqdh6ka0w&port=51413&uploaded=0&downloaded=0&left=0&numwant=80&key=1b6e7c9a&compact=1&supportcrypto=1&requirecrypto=0&corrupt=0&event=completed",
    "aria2": f"info_hash={''.join('%{:02X}'.format(c) for c in H2)}&peer_id=A2-1-36-0-%E1%8F%02%7Bc%C4%A9%00%DD%10&uploaded=0&downloaded=0&left=1048576&compact=1&key=A2c9Rq0Hb1nPx7Wz&numwant=50&no_peer_id=1&port=6881&event=started&supportcrypto=1",
    "utorrent_stopped": f"info_hash={pct(H1, False)}&peer_id=-UT355W-%8a%1b%c0%ff%13%7eA%02%d4%a5%b6Z&port=19432&uploaded=0&downloaded=0&left=734003200&corrupt=0&key=8C1E2F4D&event=stopped&numwant=200&compact=1&no_peer_id=1",
    "noncompact": f"info_hash={pct(H2)}&port=6881&left=5&compact=0&numwant=-1",
    "scrape_multi": f"info_hash={pct(H1)}&info_hash={pct(H2)}&info_hash={pct(H1)}",
    "bad_port": f"info_hash={pct(H1)}&port=0&left=1",
    "short_hash": "info_hash=%71%02&port=1",
    "bad_escape": f"info_hash={pct(H1)}%&port=65536",
}

HEADS = {
    "qbittorrent": ("GET /announce?" + QUERIES["qbittorrent"] + " HTTP/1.1\r\nHost: tracker.example.org:6969\r\n"
                    "User-Agent: qBittorrent/4.5.2\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"),
    "transmission": ("GET /announce?" + QUERIES["transmission"] + " HTTP/1.1\r\nHost: tracker.example.org\r\n"
                     "User-Agent: Transmission/4.0.5\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n\r\n"),
    "aria2": ("GET /announce?" + QUERIES["aria2"] + " HTTP/1.1\r\nUser-Agent: aria2/1.36.0\r\nAccept: */*\r\n"
              "Host: tracker.example.org:6969\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n"),
    "utorrent": "GET /announce.php?" + QUERIES["utorrent_stopped"] + " HTTP/1.1\r\nHost: t\r\nUser-Agent: uTorrent/3550\r\nAccept-Encoding: gzip\r\n\r\n",
    "curl_scrape_http10": "GET /scrape?" + QUERIES["scrape_multi"] + " HTTP/1.0\r\nHost: 127.0.0.1:6969\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    "noncompact_proxy": "GET /a?" + QUERIES["noncompact"] + " HTTP/1.1\r\nX-Forwarded-For: 10.1.2.3, 192.0.2.7\r\nX-Real-IP: ::1\r\n\r\n",
    "root_redirect": "GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    "bare_lf_no_version": "GET /announce?" + QUERIES["bad_port"] + "\n\n",
    "post_with_body": "POST /announce HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd",
    "chunked": "GET /scrape HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "pipelined": "GET /scrape?" + QUERIES["scrape_multi"] + " HTTP/1.1\r\n\r\nGET /announce?" + QUERIES["aria2"] + " HTTP/1.1\r\nConnection: close\r\n\r\n",
    "stats": "GET /stats?mode=everything HTTP/1.1\r\n\r\n",
    "space_quirk": "GET /announce ?info_hash=x HTTP/1.1\r\n\r\n",
    "garbage": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "obs_fold": "GET /announce HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
}

BENCODE = {
    "announce_compact": b"d8:completei1e10:downloadedi0e10:incompletei1e8:intervali1800e12:min intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
    "announce_v6": b"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali1800e12:min intervali900e5:peers0:6:peers618:" + bytes(16) + b"\x1a\xe1e",
    "noncompact": b"d8:intervali1800e5:peersld2:ip9:127.0.0.14:porti6881eeee",
    "scrape": b"d5:filesd20:" + H1 + b"d8:completei5e10:downloadedi50e10:incompletei10eeee",
    "failure": b"d14:failure reason21:invalid info_hash sizee",
    "nested": b"lli-1eli0eel3:abcdee",
    "noncanonical": b"i-0e",
}


def udp_connect(tid=0x1234):
    return struct.pack(">QII", 0x41727101980, 0, tid)


def udp_announce(event=2, options=b""):
    return struct.pack(">QII20s20sQQQIIIiH", 0x0123456789ABCDEF, 1, 0xBEEF, H1,
                       b"-qB4520-k8Rj3xkFmS!v", 0, 1 << 20, 0, event, 0, 0x5A3F, -1, 51413) + options


def udp_scrape(n=2):
    return struct.pack(">QII", 0x0123456789ABCDEF, 2, 0xCAFE) + (H1 + H2) * (n // 2) + (H1 if n % 2 else b"")


UDP = {
    "connect": udp_connect(),
    "connect_trailing": udp_connect() + b"\x00" * 8,
    "connect_bad_magic": struct.pack(">QII", 0x41727101981, 0, 1),
    "announce": udp_announce(),
    "announce_stopped": udp_announce(event=3),
    "announce_bep41_url": udp_announce(options=b"\x02\x0c/announce?ab\x02\x03key\x01\x00"),
    "announce_bad_event": udp_announce(event=9),
    "announce_truncated": udp_announce()[:60],
    "scrape_one": udp_scrape(1),
    "scrape_two": udp_scrape(2),
    "unknown_action": struct.pack(">QII", 1, 7, 1),
    "short": b"\x00\x00\x04\x17",
    "resp_connect": struct.pack(">IIQ", 0, 0x1234, 0x0123456789ABCDEF),
    "resp_announce": struct.pack(">IIIII", 1, 0xBEEF, 1800, 1, 2) + b"\x7f\x00\x00\x01\x1a\xe1",
    "resp_scrape": struct.pack(">II", 2, 0xCAFE) + struct.pack(">III", 5, 50, 10),
    "resp_error": struct.pack(">II", 3, 1) + b"connection_id expired or invalid",
}


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("latin-1"))


def main():
    for name, q in QUERIES.items():
        write("query", name, q)
    for name, h in HEADS.items():
        write("http_request", name, h)
        write("http_handle", name, h)
    for name, b in BENCODE.items():
        write("bencode", name, b)
    for name, p in UDP.items():
        write("udp_packet", name, p)
        # udp_handler: first byte picks the source family (even: IPv4, odd: IPv6).
        write("udp_handler", name + "_v4", b"\x00" + p)
        write("udp_handler", name + "_v6", b"\x01" + p)


if __name__ == "__main__":
    main()
