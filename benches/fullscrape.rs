//! How long one slice of a full scrape holds the event loop (`Walk::step` with
//! `SLICE_TORRENTS`), plain and gzip, over 1 million torrents filled directly into the store.
//!
//! Run: `cargo bench --bench fullscrape` (release build). Prints the longest and mean step time,
//! the whole walk's time and the body size per format. Not a test: it asserts nothing about
//! time.

use std::time::{Duration, Instant};

use opentracker_rs::front::http::walk::{SLICE_TORRENTS, Walk, WalkFormat};
use opentracker_rs::swarm::store::{AnnounceInput, Store, StoreConfig};
use opentracker_rs::types::Event;
use opentracker_rs::wire::stream::Framing;

fn fill(v4: &mut Store<6>, v6: &mut Store<18>, torrents: u32) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::new();
    for n in 0..torrents {
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(&(u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
        h[8..12].copy_from_slice(&n.to_be_bytes());
        let peers = 1 + n % 3;
        for p in 0..peers {
            let seeder = (n + p) % 4 == 0;
            let ip = (0x0a00_0000u32 + n * 4 + p).to_be_bytes();
            let peer = [ip[0], ip[1], ip[2], ip[3], 0x1a, 0xe1];
            out.clear();
            v4.announce(
                &AnnounceInput {
                    info_hash: &h,
                    peer: &peer,
                    seeder,
                    event: if seeder {
                        Event::Completed
                    } else {
                        Event::Started
                    },
                    numwant: 0,
                },
                0,
                &mut rng,
                &mut out,
            );
        }
        if n % 100 == 0 {
            let mut peer = [0u8; 18];
            peer[0] = 0x20;
            peer[12..16].copy_from_slice(&n.to_be_bytes());
            out.clear();
            v6.announce(
                &AnnounceInput {
                    info_hash: &h,
                    peer: &peer,
                    seeder: false,
                    event: Event::Started,
                    numwant: 0,
                },
                0,
                &mut rng,
                &mut out,
            );
        }
    }
}

fn measure(name: &str, v4: &Store<6>, v6: &Store<18>, format: WalkFormat, gzip: bool) {
    let mut walk = Walk::new(format, Framing::Chunked, gzip);
    let mut out = Vec::with_capacity(1 << 20);
    let mut times: Vec<Duration> = Vec::new();
    let mut bytes = 0usize;
    loop {
        out.clear();
        let t = Instant::now();
        let done = walk.step(v4, v6, |_| true, SLICE_TORRENTS, &mut out);
        times.push(t.elapsed());
        bytes += out.len();
        if done {
            break;
        }
    }
    let total: Duration = times.iter().sum();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<18} {:>8} torrents {:>4} steps  mean {:>6.3} ms  p99 {:>6.3} ms  longest {:>6.3} ms  total {:>6.1} ms  body {:>5.1} MB",
        walk.torrents(),
        times.len(),
        ms(total) / times.len() as f64,
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1]),
        ms(total),
        bytes as f64 / 1e6
    );
}

fn main() {
    let torrents: u32 = std::env::var("TORRENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut v4 = Store::new(StoreConfig::default());
    let mut v6 = Store::new(StoreConfig::default());
    let t = Instant::now();
    fill(&mut v4, &mut v6, torrents);
    println!(
        "filled {} IPv4 + {} IPv6 torrents, {} peers in {:.1} s; slice = {SLICE_TORRENTS} torrents per store",
        v4.torrents(),
        v6.torrents(),
        v4.peers() + v6.peers(),
        t.elapsed().as_secs_f64()
    );
    for _ in 0..2 {
        measure("full scrape plain", &v4, &v6, WalkFormat::Bencode, false);
        measure("full scrape gzip", &v4, &v6, WalkFormat::Bencode, true);
        measure("statedump", &v4, &v6, WalkFormat::StateDump, false);
        measure("tpbs txtp", &v4, &v6, WalkFormat::TpbsTxtp, false);
        measure("top100", &v4, &v6, WalkFormat::Top(100), false);
    }
}
