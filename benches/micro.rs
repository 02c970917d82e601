//! Criterion micro-benchmarks of the hot paths (`cargo bench --bench micro`, `make bench-micro`).
//!
//! - `http/announce`: HTTP request head parse + announce (store update, peer selection) +
//!   response build (head and bencoded body), as one connection's read handler does it.
//! - `udp/announce`, `udp/scrape`: one BEP 15 datagram through the server's handler
//!   (connection_id check, parse, store, reply bytes).
//! - `quota/udp_admit_*`: the UDP rate limit's per-datagram check (`udp.rate_limit`), over
//!   65,536 sources each well within its rate (every datagram admitted), and one source far
//!   over it (every datagram refused).
//! - `store/*` at 1,000,000 torrents: refresh of a known peer (lookup + update), scrape
//!   lookup, and insert + remove of a new torrent (the bucket vector's memmove).
//! - `full_scrape/*` of 1,000,000 torrents: the whole body (plain and gzip), and one slice of
//!   [`SLICE`] torrents, the unit of work that the event loop does between other events (its
//!   time bounds how long a full scrape can block announces).
//!
//! Throughput is reported per element (requests or torrents). Timing numbers on a shared
//! machine are noisy; `valgrind --tool=callgrind` on the same code gives stable instruction
//! counts (see BENCHMARKS.md).

use std::hint::black_box;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentracker_rs::front::http::{HttpSite, Scratch, handle};
use opentracker_rs::front::udp::UdpHandler;
use opentracker_rs::service::{Policy, Tracker};
use opentracker_rs::swarm::store::{AnnounceInput, Store, StoreConfig, SwarmCounts};
use opentracker_rs::types::{Event, InfoHash};
use opentracker_rs::wire::bencode;
use opentracker_rs::wire::http::parse_request;
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, Response, ScrapeRequest,
    parse_response,
};

/// Torrents of the service-level benchmarks (HTTP, UDP).
const TORRENTS: u64 = 10_000;
/// Peers per torrent there.
const PEERS_PER_TORRENT: u64 = 20;
/// Torrents of the store and full-scrape benchmarks.
const BIG: u64 = 1_000_000;
/// Torrents per full-scrape slice.
const SLICE: usize = 4096;
const NOW: u32 = 1000;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash(i: u64) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&splitmix(i).to_be_bytes());
    h[8..16].copy_from_slice(&splitmix(i ^ 0xdead).to_be_bytes());
    h[16..].copy_from_slice(&(i as u32).to_be_bytes());
    h
}

fn peer(i: u64) -> [u8; 6] {
    let ip = Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff)).octets();
    let port = (1024 + (i % 60000) as u16).to_be_bytes();
    [ip[0], ip[1], ip[2], ip[3], port[0], port[1]]
}

/// A tracker whose IPv4 store holds TORRENTS x PEERS_PER_TORRENT peers.
fn filled_tracker() -> Tracker {
    // The per-source quotas off: the UDP benches send millions of requests from 1024 sources.
    let t = Tracker::new(Policy {
        udp_rate_limit: 0,
        max_new_torrents_per_net: 0,
        max_peers_per_source: 0,
        ..Policy::default()
    });
    let mut rng = fastrand::Rng::with_seed(1);
    let mut out = Vec::new();
    for j in 0..PEERS_PER_TORRENT {
        for i in 0..TORRENTS {
            out.clear();
            t.v4.announce(
                &AnnounceInput {
                    info_hash: &hash(i),
                    peer: &peer(j * TORRENTS + i),
                    seeder: j % 3 == 0,
                    event: Event::Started,
                    numwant: 0,
                },
                NOW,
                &mut rng,
                &mut out,
            );
        }
    }
    t
}

fn filled_store(torrents: u64) -> Store<6> {
    let mut s = Store::new(StoreConfig::default());
    let mut rng = fastrand::Rng::with_seed(2);
    let mut out = Vec::new();
    for i in 0..torrents {
        s.announce(
            &AnnounceInput {
                info_hash: &hash(i),
                peer: &peer(i),
                seeder: i % 3 == 0,
                event: Event::Started,
                numwant: 0,
            },
            NOW,
            &mut rng,
            &mut out,
        );
    }
    s
}

fn percent(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "%{b:02X}");
    }
}

fn bench_http(c: &mut Criterion) {
    let mut tracker = filled_tracker();
    let site = HttpSite {
        keepalive: true,
        ..HttpSite::default()
    };
    // 1024 different requests: known peers re-announcing to known torrents (numwant 50).
    let requests: Vec<Vec<u8>> = (0..1024u64)
        .map(|k| {
            let i = splitmix(k) % TORRENTS;
            let j = splitmix(k ^ 7) % PEERS_PER_TORRENT;
            let p = peer(j * TORRENTS + i);
            let mut r = b"GET /announce?info_hash=".to_vec();
            percent(&mut r, &hash(i));
            r.extend_from_slice(b"&peer_id=-LG0001-000000000001&port=");
            let port = u16::from_be_bytes([p[4], p[5]]);
            let _ = write!(
                r,
                "{port}&uploaded=0&downloaded=0&left=100&numwant=50&compact=1 HTTP/1.1\r\nHost: 127.0.0.1:6969\r\nUser-Agent: bench\r\nAccept-Encoding: gzip\r\n\r\n"
            );
            r
        })
        .collect();
    let remotes: Vec<IpAddr> = (0..1024u64)
        .map(|k| {
            let i = splitmix(k) % TORRENTS;
            let j = splitmix(k ^ 7) % PEERS_PER_TORRENT;
            let p = peer(j * TORRENTS + i);
            IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3]))
        })
        .collect();
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(4096);
    let mut k = 0usize;
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(1));
    g.bench_function("announce_parse_handle_respond", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            out.clear();
            let Ok(Some((req, _))) = parse_request(&requests[k]) else {
                panic!("request does not parse")
            };
            let keep = handle(
                &mut tracker,
                &site,
                &req,
                remotes[k],
                NOW,
                &mut scratch,
                &mut out,
            );
            black_box((keep, out.len()))
        })
    });
    g.finish();
}

fn bench_udp(c: &mut Criterion) {
    let mut tracker = filled_tracker();
    let mut handler = UdpHandler::new().expect("random key");
    // One connect per source address, as a client does.
    let sources: Vec<SocketAddr> = (0..1024u64)
        .map(|k| {
            let i = splitmix(k) % TORRENTS;
            let j = splitmix(k ^ 7) % PEERS_PER_TORRENT;
            let p = peer(j * TORRENTS + i);
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3])), 40000)
        })
        .collect();
    let mut out = Vec::with_capacity(4096);
    let ids: Vec<u64> = sources
        .iter()
        .map(|src| {
            let mut req = Vec::new();
            ConnectRequest { transaction_id: 1 }.emit(&mut req);
            out.clear();
            assert!(handler.handle(&mut tracker, &req, false, *src, NOW, &mut out));
            match parse_response(&out) {
                Ok(Response::Connect(r)) => r.connection_id,
                other => panic!("connect failed: {other:?}"),
            }
        })
        .collect();
    let announces: Vec<Vec<u8>> = (0..1024u64)
        .map(|k| {
            let i = splitmix(k) % TORRENTS;
            let j = splitmix(k ^ 7) % PEERS_PER_TORRENT;
            let p = peer(j * TORRENTS + i);
            let mut d = Vec::new();
            AnnounceRequest {
                connection_id: ids[k as usize],
                transaction_id: k as u32,
                info_hash: hash(i),
                peer_id: *b"-LG0001-000000000001",
                downloaded: 0,
                left: 100,
                uploaded: 0,
                event: Event::None,
                ip: Ipv4Addr::UNSPECIFIED,
                key: 0,
                num_want: 50,
                port: u16::from_be_bytes([p[4], p[5]]),
                options: AnnounceOptions::EMPTY,
            }
            .emit(&mut d);
            d
        })
        .collect();
    let scrapes: Vec<Vec<u8>> = (0..1024u64)
        .map(|k| {
            let hashes = [hash(splitmix(k) % TORRENTS)];
            let mut d = Vec::new();
            ScrapeRequest {
                connection_id: ids[k as usize],
                transaction_id: k as u32,
                info_hashes: InfoHashes::from_hashes(&hashes).expect("one hash"),
            }
            .emit(&mut d);
            d
        })
        .collect();
    let mut g = c.benchmark_group("udp");
    g.throughput(Throughput::Elements(1));
    let mut k = 0usize;
    g.bench_function("announce", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            out.clear();
            let sent = handler.handle(
                &mut tracker,
                &announces[k],
                false,
                sources[k],
                NOW,
                &mut out,
            );
            debug_assert!(out.len() > 20);
            black_box((sent, out.len()))
        })
    });
    g.bench_function("scrape_1_hash", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            out.clear();
            let sent = handler.handle(&mut tracker, &scrapes[k], false, sources[k], NOW, &mut out);
            black_box((sent, out.len()))
        })
    });
    g.finish();
}

fn bench_quota(c: &mut Criterion) {
    let mut tracker = Tracker::new(Policy {
        udp_rate_limit: 500,
        udp_rate_burst: 10_000,
        ..Policy::default()
    });
    let mut g = c.benchmark_group("quota");
    g.throughput(Throughput::Elements(1));
    // 65,536 sources in turn, the clock one second further each round: one datagram per
    // source per second, far within the rate, so every one is admitted (the spending path).
    let mut i = 0u32;
    g.bench_function("udp_admit_64k_sources", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0xffff)));
            black_box(tracker.udp_admit(ip, NOW + (i >> 16)))
        })
    });
    // One source at a standstill clock: past its burst, every datagram is refused.
    let one = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    g.bench_function("udp_admit_one_source_over_rate", |b| {
        b.iter(|| black_box(tracker.udp_admit(black_box(one), 1)))
    });
    g.finish();
}

fn bench_store(c: &mut Criterion) {
    let mut store = filled_store(BIG);
    let mut rng = fastrand::Rng::with_seed(3);
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("store_1M_torrents");
    g.throughput(Throughput::Elements(1));
    let mut k = 0u64;
    g.bench_function("announce_known_peer", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let i = splitmix(k) % BIG;
            out.clear();
            black_box(store.announce(
                &AnnounceInput {
                    info_hash: &hash(i),
                    peer: &peer(i),
                    seeder: i % 3 == 0,
                    event: Event::None,
                    numwant: 0,
                },
                NOW,
                &mut rng,
                &mut out,
            ))
        })
    });
    g.bench_function("scrape_lookup", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(store.scrape(&hash(splitmix(k) % BIG), NOW))
        })
    });
    g.bench_function("insert_and_remove_torrent", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let h = hash(BIG + splitmix(k) % BIG);
            let p = peer(k);
            out.clear();
            store.announce(
                &AnnounceInput {
                    info_hash: &h,
                    peer: &p,
                    seeder: false,
                    event: Event::Started,
                    numwant: 0,
                },
                NOW,
                &mut rng,
                &mut out,
            );
            black_box(store.stop(&h, &p, NOW))
        })
    });
    g.finish();
}

/// Appends the full-scrape entries of up to `max` torrents after `from`; returns the cursor
/// for the next slice (`None` at the end). The body format is opentracker's:
/// `20:<hash>d8:completei..e10:downloadedi..e10:incompletei..ee` per torrent.
fn scrape_slice(
    store: &Store<6>,
    from: Option<&InfoHash>,
    max: usize,
    body: &mut Vec<u8>,
) -> Option<InfoHash> {
    store.for_each_from(from, max, |h, c: SwarmCounts| {
        bencode::put_bytes(body, h);
        body.extend_from_slice(b"d8:complete");
        bencode::put_int(body, i64::from(c.seeders));
        body.extend_from_slice(b"10:downloaded");
        bencode::put_int(body, i64::from(c.downloaded));
        body.extend_from_slice(b"10:incomplete");
        bencode::put_int(body, i64::from(c.leechers));
        body.push(b'e');
    })
}

fn full_scrape_plain(store: &Store<6>, body: &mut Vec<u8>) {
    body.extend_from_slice(b"d5:filesd");
    let mut cursor = None;
    loop {
        cursor = scrape_slice(store, cursor.as_ref(), SLICE, body);
        if cursor.is_none() {
            break;
        }
    }
    body.extend_from_slice(b"ee");
}

fn full_scrape_gzip(store: &Store<6>, level: Compression, chunk: &mut Vec<u8>) -> usize {
    let mut gz = GzEncoder::new(Vec::with_capacity(32 << 20), level);
    let _ = gz.write_all(b"d5:filesd");
    let mut cursor = None;
    loop {
        chunk.clear();
        cursor = scrape_slice(store, cursor.as_ref(), SLICE, chunk);
        let _ = gz.write_all(chunk);
        if cursor.is_none() {
            break;
        }
    }
    let _ = gz.write_all(b"ee");
    gz.finish().map(|v| v.len()).unwrap_or(0)
}

fn bench_full_scrape(c: &mut Criterion) {
    let store = filled_store(BIG);
    let mut body = Vec::with_capacity(80 << 20);
    let mut chunk = Vec::with_capacity(SLICE * 80);
    // Sizes, printed once for the record.
    full_scrape_plain(&store, &mut body);
    let gz_len = full_scrape_gzip(&store, Compression::default(), &mut chunk);
    eprintln!(
        "full scrape of {BIG} torrents: {} bytes plain, {gz_len} bytes gzip (level 6)",
        body.len()
    );
    let mut g = c.benchmark_group("full_scrape_1M_torrents");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BIG));
    g.bench_function("plain", |b| {
        b.iter(|| {
            body.clear();
            full_scrape_plain(&store, &mut body);
            black_box(body.len())
        })
    });
    g.bench_function("gzip_level1", |b| {
        b.iter(|| black_box(full_scrape_gzip(&store, Compression::fast(), &mut chunk)))
    });
    g.bench_function("gzip_level6", |b| {
        b.iter(|| black_box(full_scrape_gzip(&store, Compression::default(), &mut chunk)))
    });
    g.finish();

    // One slice from a cursor in the middle: what the loop does between two other events.
    let mut middle = None;
    for _ in 0..(BIG as usize / SLICE / 2) {
        chunk.clear();
        middle = scrape_slice(&store, middle.as_ref(), SLICE, &mut chunk);
    }
    let mut g = c.benchmark_group("full_scrape_slice");
    g.throughput(Throughput::Elements(SLICE as u64));
    g.bench_function("plain_4096_torrents", |b| {
        b.iter(|| {
            chunk.clear();
            black_box(scrape_slice(&store, middle.as_ref(), SLICE, &mut chunk))
        })
    });
    g.bench_function("gzip6_4096_torrents", |b| {
        b.iter_batched_ref(
            || GzEncoder::new(Vec::with_capacity(1 << 20), Compression::default()),
            |gz| {
                chunk.clear();
                let next = scrape_slice(&store, middle.as_ref(), SLICE, &mut chunk);
                let _ = gz.write_all(&chunk);
                let _ = gz.flush();
                black_box(next)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_http,
    bench_udp,
    bench_quota,
    bench_store,
    bench_full_scrape
);
criterion_main!(benches);
