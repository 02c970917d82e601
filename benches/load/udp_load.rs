//! UDP (BEP 15) load generator for a tracker on this machine.
//!
//! ```text
//! udp_load --target 127.0.0.1:6969 [--duration 10] [--torrents 10000] [--peers 100000]
//!          [--zipf 1.0] [--seeders 0.33] [--scrape-every 100] [--numwant 50]
//!          [--sources 4] [--sockets 16] [--window 8] [--timeout-ms 1000] [--warmup 0]
//!          [--seed 1] [--cpu N]
//! udp_load --target ADDR --fill --torrents T --peers-per-torrent N [--sources 4] ...
//! udp_load --print-whitelist --torrents T [--seed 1]
//! ```
//!
//! Mix mode (default): `--peers` simulated peers, each with its own peer_id, listening port and
//! torrent (drawn from a Zipf popularity law over `--torrents`, exponent `--zipf`), a seeder with
//! probability `--seeders`. Peer `p` sends from `127.0.0.(1 + p % sources)` through one of
//! `--sockets` UDP sockets (so many source ports and several source addresses). Every request
//! picks a random peer: a peer without a connection_id, or whose id is older than 60 seconds
//! (BEP 15: a client may use an id for one minute), connects first; otherwise it announces
//! (`started` the first time, then no event) or, one request in `--scrape-every + 1`, scrapes a
//! popular torrent. Each socket keeps `--window` requests in flight; a request unanswered after
//! `--timeout-ms` counts as a timeout. Runs for `--duration` seconds after `--warmup` seconds
//! (whose requests are not counted), then prints a summary and one `RESULT k=v ...` line.
//!
//! `--fill-order rounds|torrents|random`: `rounds` (default) announces peer j to every torrent
//! before peer j+1 (every swarm grows at the same pace), `torrents` fills one torrent after the
//! other, `random` shuffles all pairs.
//!
//! `--connect-only`: every request is a connect (changes nothing in the tracker; used to warm
//! a tracker's socket buffers before a memory measurement).
//!
//! Fill mode (`--fill`): announces each of `--peers-per-torrent` peers to each of `--torrents`
//! torrents exactly once (numwant 0, a third of them seeders; peer `j` of every torrent is the
//! same address and port, so the tracker holds T x N peers), retrying lost datagrams, then
//! scrapes every torrent to check the tracker holds them all (`peers_scraped`). One connect per
//! socket (ids are per source address in both trackers). Used by `make bench-memory`.
//!
//! Requests are built with the crate's own codecs (`wire::udp`), as aquatic's load tester
//! reuses its protocol crate; datagrams go out with `sendmmsg` and come back with `recvmmsg`,
//! 64 at a time, so the generator spends its CPU on the network stack, not on system calls.

#[path = "common.rs"]
mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use common::{Opts, Swarms, histogram, percentiles, record};
use hdrhistogram::Histogram;
use opentracker_rs::types::{Event, InfoHash};
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, Response, ScrapeRequest,
    parse_response,
};

/// Datagrams per `sendmmsg`/`recvmmsg`.
const BATCH: usize = 64;
/// Receive buffer per datagram (the largest reply: 20 + 512 x 6 bytes).
const RECV_SIZE: usize = 4096;
/// How long a client uses a connection_id (BEP 15: one minute).
const ID_LIFETIME: Duration = Duration::from_secs(60);
/// Info_hashes per scrape in the fill check (opentracker answers at most 75).
const SCRAPE_CHUNK: usize = 70;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Connect = 0,
    Announce = 1,
    Scrape = 2,
}

const KINDS: [&str; 3] = ["connect", "announce", "scrape"];

#[derive(Clone, Copy)]
struct Slot {
    busy: bool,
    tx: u32,
    kind: Kind,
    tag: u32,
    sent: Instant,
}

/// One UDP socket, connected to the tracker, with its in-flight window.
struct Lane {
    socket: UdpSocket,
    slots: Vec<Slot>,
    bufs: Vec<Vec<u8>>,
    free: Vec<u16>,
    generation: u16,
}

impl Lane {
    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Counters of one run (reset when the warm-up ends).
struct Tally {
    ok: [u64; 3],
    errors: [u64; 3],
    timeouts: [u64; 3],
    send_fail: u64,
    stale: u64,
    peers_received: u64,
    latency: Histogram<u64>,
    announce_latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            ok: [0; 3],
            errors: [0; 3],
            timeouts: [0; 3],
            send_fail: 0,
            stale: 0,
            peers_received: 0,
            latency: histogram(),
            announce_latency: histogram(),
        }
    }
}

/// What to send next and what to do with the replies.
trait Workload {
    /// Appends the next request of `lane` to `out` with `tx` as its transaction_id; returns its
    /// kind and a tag given back with the reply, or `None` when the lane has nothing to send now.
    fn next(
        &mut self,
        lane: usize,
        tx: u32,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Option<(Kind, u32)>;
    /// A well-formed reply of the expected kind arrived; returns false to count it an error.
    fn reply(
        &mut self,
        lane: usize,
        kind: Kind,
        tag: u32,
        resp: &Response<'_>,
        now: Instant,
        t: &mut Tally,
    ) -> bool;
    /// The request got no usable reply (timeout, error packet, unsendable).
    fn lost(&mut self, lane: usize, kind: Kind, tag: u32);
    /// Nothing left to do (fill mode).
    fn done(&self) -> bool {
        false
    }
    /// Extra ` k=v` pairs for the RESULT line.
    fn summary(&self) -> String {
        String::new()
    }
}

/// The announce/scrape mix of simulated peers.
struct Mix {
    swarms: Swarms,
    /// Per peer: connection_id and when it was obtained (`None` = must connect).
    ids: Vec<Option<(u64, Instant)>>,
    announced: Vec<bool>,
    lane_peers: Vec<Vec<u32>>,
    scrape_every: u64,
    numwant: i32,
    counter: u64,
    rng: fastrand::Rng,
    /// Only connect requests (they change nothing in the tracker): `--connect-only`.
    connect_only: bool,
}

impl Workload for Mix {
    fn next(
        &mut self,
        lane: usize,
        tx: u32,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Option<(Kind, u32)> {
        let peers = &self.lane_peers[lane];
        if peers.is_empty() {
            return None;
        }
        let p = peers[self.rng.usize(..peers.len())] as usize;
        let id = match self.ids[p] {
            Some((id, at)) if now.duration_since(at) < ID_LIFETIME && !self.connect_only => id,
            _ => {
                ConnectRequest { transaction_id: tx }.emit(out);
                return Some((Kind::Connect, p as u32));
            }
        };
        self.counter += 1;
        if self.scrape_every > 0 && self.counter % (self.scrape_every + 1) == 0 {
            let t = self.swarms.popularity.sample(&mut self.rng);
            let hashes = [self.swarms.hashes[t]];
            ScrapeRequest {
                connection_id: id,
                transaction_id: tx,
                info_hashes: InfoHashes::from_hashes(&hashes)?,
            }
            .emit(out);
            return Some((Kind::Scrape, p as u32));
        }
        let torrent = self.swarms.torrent_of[p] as usize;
        AnnounceRequest {
            connection_id: id,
            transaction_id: tx,
            info_hash: self.swarms.hashes[torrent],
            peer_id: common::peer_id(p as u64),
            downloaded: 0,
            left: if self.swarms.seeder[p] { 0 } else { 1 << 20 },
            uploaded: 0,
            event: if self.announced[p] {
                Event::None
            } else {
                Event::Started
            },
            ip: Ipv4Addr::UNSPECIFIED,
            key: p as u32,
            num_want: self.numwant,
            port: self.swarms.port_of(p),
            options: AnnounceOptions::EMPTY,
        }
        .emit(out);
        Some((Kind::Announce, p as u32))
    }

    fn reply(
        &mut self,
        _lane: usize,
        kind: Kind,
        tag: u32,
        resp: &Response<'_>,
        now: Instant,
        t: &mut Tally,
    ) -> bool {
        let p = tag as usize;
        match resp {
            Response::Connect(c) => {
                self.ids[p] = Some((c.connection_id, now));
                true
            }
            Response::Announce(a) => {
                self.announced[p] = true;
                t.peers_received += (a.peers.len() / 6) as u64;
                a.peers.len() % 6 == 0 || a.peers.len() % 18 == 0
            }
            Response::Scrape(s) => s.entries.count() == 1,
            Response::Error(_) => {
                // An error packet to an announce or scrape means the id expired or was refused.
                if kind != Kind::Connect {
                    self.ids[p] = None;
                }
                false
            }
        }
    }

    fn lost(&mut self, _lane: usize, _kind: Kind, _tag: u32) {}
}

/// Fill mode: every (torrent, peer) pair announced once, then every torrent scraped.
struct Fill {
    hashes: Vec<InfoHash>,
    per_torrent: u64,
    sources: usize,
    numwant: i32,
    /// Per lane: items to announce (`torrent + T * peer`), then scrape chunks.
    queues: Vec<Vec<u64>>,
    scrape_queues: Vec<Vec<u32>>,
    lane_ids: Vec<Option<(u64, Instant)>>,
    connecting: Vec<bool>,
    in_flight: u64,
    announced: u64,
    scraped_peers: u64,
    scraped_seeders: u64,
    scraped_chunks: u64,
}

impl Fill {
    fn item(&self, item: u64) -> (usize, usize) {
        let t = self.hashes.len() as u64;
        ((item % t) as usize, (item / t) as usize)
    }
}

impl Workload for Fill {
    fn next(
        &mut self,
        lane: usize,
        tx: u32,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Option<(Kind, u32)> {
        let id = match self.lane_ids[lane] {
            Some((id, at)) if now.duration_since(at) < ID_LIFETIME => id,
            _ => {
                if self.connecting[lane] {
                    return None;
                }
                self.connecting[lane] = true;
                self.in_flight += 1;
                ConnectRequest { transaction_id: tx }.emit(out);
                return Some((Kind::Connect, 0));
            }
        };
        if let Some(item) = self.queues[lane].pop() {
            let (torrent, peer) = self.item(item);
            self.in_flight += 1;
            AnnounceRequest {
                connection_id: id,
                transaction_id: tx,
                info_hash: self.hashes[torrent],
                peer_id: common::peer_id(peer as u64),
                downloaded: 0,
                left: if (torrent + peer) % 3 == 0 {
                    0
                } else {
                    1 << 20
                },
                uploaded: 0,
                event: Event::Started,
                ip: Ipv4Addr::UNSPECIFIED,
                key: peer as u32,
                num_want: self.numwant,
                port: common::peer_port(peer, self.sources),
                options: AnnounceOptions::EMPTY,
            }
            .emit(out);
            // The item index fits the tag for up to 4 billion pairs.
            return Some((Kind::Announce, item as u32));
        }
        // Scrapes wait until every announce of every lane was answered.
        if self.announced < self.hashes.len() as u64 * self.per_torrent {
            return None;
        }
        let chunk = self.scrape_queues[lane].pop()? as usize;
        let start = chunk * SCRAPE_CHUNK;
        let end = (start + SCRAPE_CHUNK).min(self.hashes.len());
        self.in_flight += 1;
        ScrapeRequest {
            connection_id: id,
            transaction_id: tx,
            info_hashes: InfoHashes::from_hashes(&self.hashes[start..end])?,
        }
        .emit(out);
        Some((Kind::Scrape, chunk as u32))
    }

    fn reply(
        &mut self,
        lane: usize,
        kind: Kind,
        tag: u32,
        resp: &Response<'_>,
        now: Instant,
        _t: &mut Tally,
    ) -> bool {
        self.in_flight -= 1;
        match resp {
            Response::Connect(c) => {
                self.connecting[lane] = false;
                self.lane_ids[lane] = Some((c.connection_id, now));
                true
            }
            Response::Announce(_) => {
                self.announced += 1;
                true
            }
            Response::Scrape(s) => {
                let start = tag as usize * SCRAPE_CHUNK;
                let want = (start + SCRAPE_CHUNK).min(self.hashes.len()) - start;
                if s.entries.count() != want {
                    self.scrape_queues[lane].push(tag);
                    return false;
                }
                for e in s.entries.iter() {
                    self.scraped_peers += u64::from(e.seeders) + u64::from(e.leechers);
                    self.scraped_seeders += u64::from(e.seeders);
                }
                self.scraped_chunks += 1;
                true
            }
            Response::Error(_) => {
                self.in_flight += 1; // undone by lost()
                self.lost(lane, kind, tag);
                false
            }
        }
    }

    fn lost(&mut self, lane: usize, kind: Kind, tag: u32) {
        self.in_flight -= 1;
        match kind {
            Kind::Connect => self.connecting[lane] = false,
            Kind::Announce => {
                // A lost announce may also mean an expired id: connect again before retrying.
                self.queues[lane].push(u64::from(tag));
            }
            Kind::Scrape => self.scrape_queues[lane].push(tag),
        }
        if kind != Kind::Connect {
            self.lane_ids[lane] = None;
        }
    }

    fn summary(&self) -> String {
        format!(
            " torrents={} peers_expected={} peers_announced={} peers_scraped={} seeders_scraped={} scrape_chunks={}",
            self.hashes.len(),
            self.hashes.len() as u64 * self.per_torrent,
            self.announced,
            self.scraped_peers,
            self.scraped_seeders,
            self.scraped_chunks
        )
    }

    fn done(&self) -> bool {
        self.in_flight == 0
            && self.queues.iter().all(Vec::is_empty)
            && self.scrape_queues.iter().all(Vec::is_empty)
            && self.announced == self.hashes.len() as u64 * self.per_torrent
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("udp_load: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let o = Opts::from_env(&["fill", "print-whitelist", "connect-only"])?;
    let seed: u64 = o.get("seed", 1)?;
    let torrents: u64 = o.get("torrents", 10_000)?;
    if o.flag("print-whitelist") {
        o.finish()?;
        print!("{}", common::whitelist_text(seed, torrents));
        return Ok(());
    }
    let target: SocketAddr = o
        .get_str("target")
        .ok_or("--target ADDR is required")?
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    let v6 = target.is_ipv6();
    let fill = o.flag("fill");
    let duration = Duration::from_secs_f64(o.get("duration", if fill { 600.0 } else { 10.0 })?);
    let warmup = Duration::from_secs_f64(o.get("warmup", 0.0)?);
    let sources: usize = if v6 {
        1
    } else {
        o.get("sources", 4usize)?.clamp(1, 250)
    };
    let sockets: usize = o.get("sockets", 16usize)?.max(1).div_ceil(sources) * sources;
    let window: usize = o.get("window", 8usize)?.clamp(1, 65535);
    let timeout = Duration::from_millis(o.get("timeout-ms", 1000u64)?);
    let numwant: i32 = o.get("numwant", if fill { 0 } else { 50 })?;
    let cpu: Option<usize> = o
        .get_str("cpu")
        .map(|c| c.parse())
        .transpose()
        .map_err(|_| "--cpu: not a number")?;

    let lanes = open_lanes(target, sources, sockets, window)?;
    let mut workload: Box<dyn Workload> = if fill {
        let per_torrent: u64 = o.get("peers-per-torrent", 10)?;
        let order = o.get_str("fill-order").unwrap_or_else(|| "rounds".into());
        o.finish()?;
        if per_torrent > sources as u64 * 64000 {
            return Err(format!(
                "--peers-per-torrent: at most {} with {sources} sources",
                sources * 64000
            ));
        }
        Box::new(fill_workload(
            seed,
            torrents,
            per_torrent,
            sources,
            sockets,
            numwant,
            &order,
        )?)
    } else {
        let peers: u64 = o.get("peers", 100_000)?;
        let zipf: f64 = o.get("zipf", 1.0)?;
        let seeders: f64 = o.get("seeders", 0.33)?;
        let scrape_every: u64 = o.get("scrape-every", 100)?;
        let connect_only = o.flag("connect-only");
        o.finish()?;
        let swarms = Swarms::new(seed, torrents, peers, zipf, seeders, sources);
        let mut lane_peers = vec![Vec::new(); sockets];
        let per_source = sockets / sources;
        for p in 0..swarms.peers() {
            let src = swarms.source_of(p);
            let lane = src + sources * ((p / sources) % per_source);
            lane_peers[lane].push(p as u32);
        }
        Box::new(Mix {
            ids: vec![None; swarms.peers()],
            announced: vec![false; swarms.peers()],
            swarms,
            lane_peers,
            scrape_every,
            numwant,
            counter: 0,
            rng: fastrand::Rng::with_seed(seed ^ 0xBEEF),
            connect_only,
        })
    };
    if let Some(cpu) = cpu {
        common::pin_to_cpu(cpu).map_err(|e| format!("--cpu {cpu}: {e}"))?;
    }
    let (tally, measured) = drive(lanes, workload.as_mut(), warmup, duration, timeout);
    report(&tally, measured, fill, workload.as_ref(), target)
}

fn fill_workload(
    seed: u64,
    torrents: u64,
    per_torrent: u64,
    sources: usize,
    sockets: usize,
    numwant: i32,
    order: &str,
) -> Result<Fill, String> {
    let per_source = sockets / sources;
    let mut queues = vec![Vec::new(); sockets];
    let total = torrents * per_torrent;
    // Item `torrent + T * peer`. `rounds` (default): round j announces peer j to every
    // torrent, so every swarm grows at the same pace; `torrents`: torrent by torrent, each
    // filled with all its peers before the next; `random`: all pairs in a random order.
    let mut items: Vec<u64> = match order {
        "rounds" => (0..total).collect(),
        "torrents" => (0..torrents)
            .flat_map(|t| (0..per_torrent).map(move |j| t + torrents * j))
            .collect(),
        "random" => {
            let mut v: Vec<u64> = (0..total).collect();
            fastrand::Rng::with_seed(seed ^ 0xF111).shuffle(&mut v);
            v
        }
        other => {
            return Err(format!(
                "--fill-order: {other:?} is not rounds, torrents or random"
            ));
        }
    };
    // Queues are popped from the back, hence the reverse order.
    items.reverse();
    for item in items {
        let peer = (item / torrents) as usize;
        let lane = peer % sources + sources * ((item as usize) % per_source);
        queues[lane].push(item);
    }
    let chunks = torrents.div_ceil(SCRAPE_CHUNK as u64) as u32;
    let mut scrape_queues = vec![Vec::new(); sockets];
    for c in 0..chunks {
        scrape_queues[c as usize % sockets].push(c);
    }
    Ok(Fill {
        hashes: (0..torrents).map(|i| common::info_hash(seed, i)).collect(),
        per_torrent,
        sources,
        numwant,
        queues,
        scrape_queues,
        lane_ids: vec![None; sockets],
        connecting: vec![false; sockets],
        in_flight: 0,
        announced: 0,
        scraped_peers: 0,
        scraped_seeders: 0,
        scraped_chunks: 0,
    })
}

fn open_lanes(
    target: SocketAddr,
    sources: usize,
    sockets: usize,
    window: usize,
) -> Result<Vec<Lane>, String> {
    let mut lanes = Vec::with_capacity(sockets);
    for s in 0..sockets {
        let src = s % sources;
        let ip = common::source_ip(src, target.is_ipv6());
        let socket =
            UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
        socket
            .connect(target)
            .map_err(|e| format!("connect {target}: {e}"))?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        let s2 = socket2::SockRef::from(&socket);
        let _ = s2.set_recv_buffer_size(1 << 20);
        let _ = s2.set_send_buffer_size(1 << 20);
        lanes.push(Lane {
            socket,
            slots: vec![
                Slot {
                    busy: false,
                    tx: 0,
                    kind: Kind::Connect,
                    tag: 0,
                    sent: Instant::now(),
                };
                window
            ],
            bufs: (0..window).map(|_| Vec::with_capacity(1500)).collect(),
            free: (0..window as u16).rev().collect(),
            generation: 1,
        });
    }
    Ok(lanes)
}

/// Runs the workload until `warmup + duration` passed (or it is done); returns the tally of the
/// measured part and its length.
fn drive(
    mut lanes: Vec<Lane>,
    w: &mut dyn Workload,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
) -> (Tally, Duration) {
    let start = Instant::now();
    let mut measure_start = start;
    let mut measuring = warmup.is_zero();
    let end = start + warmup + duration;
    let mut t = Tally::new();
    let mut recv_bufs = vec![[0u8; RECV_SIZE]; BATCH];
    let mut pollfds: Vec<libc::pollfd> = lanes
        .iter()
        .map(|l| libc::pollfd {
            fd: l.fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut next_expiry = start + Duration::from_millis(20);
    let mut to_send: Vec<u16> = Vec::with_capacity(BATCH);
    loop {
        let now = Instant::now();
        if now >= end || w.done() {
            break;
        }
        if !measuring && now >= start + warmup {
            measuring = true;
            measure_start = now;
            t = Tally::new();
        }
        let mut progress = false;
        for (li, lane) in lanes.iter_mut().enumerate() {
            // Fill free slots and send them in one sendmmsg.
            to_send.clear();
            while to_send.len() < BATCH {
                let Some(&slot) = lane.free.last() else { break };
                let tx = (u32::from(lane.generation) << 16) | u32::from(slot);
                let buf = &mut lane.bufs[slot as usize];
                buf.clear();
                let Some((kind, tag)) = w.next(li, tx, now, buf) else {
                    break;
                };
                lane.free.pop();
                lane.generation = lane.generation.wrapping_add(1).max(1);
                lane.slots[slot as usize] = Slot {
                    busy: true,
                    tx,
                    kind,
                    tag,
                    sent: now,
                };
                to_send.push(slot);
            }
            if !to_send.is_empty() {
                let sent = send_many(lane.fd(), &lane.bufs, &to_send);
                for &slot in &to_send[sent..] {
                    let s = lane.slots[slot as usize];
                    lane.slots[slot as usize].busy = false;
                    lane.free.push(slot);
                    t.send_fail += 1;
                    w.lost(li, s.kind, s.tag);
                }
                progress |= sent > 0;
            }
            // Drain replies.
            loop {
                let lens = recv_many(lane.fd(), &mut recv_bufs);
                if lens.is_empty() {
                    break;
                }
                progress = true;
                let now = Instant::now();
                for (i, &len) in lens.iter().enumerate() {
                    let data = &recv_bufs[i][..len];
                    if data.len() < 8 {
                        t.stale += 1;
                        continue;
                    }
                    let tx = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                    let slot = (tx & 0xffff) as usize;
                    let Some(s) = lane
                        .slots
                        .get(slot)
                        .copied()
                        .filter(|s| s.busy && s.tx == tx)
                    else {
                        t.stale += 1;
                        continue;
                    };
                    lane.slots[slot].busy = false;
                    lane.free.push(slot as u16);
                    let ok = match parse_response(data) {
                        Ok(resp)
                            if matches!(
                                (&resp, s.kind),
                                (Response::Connect(_), Kind::Connect)
                                    | (Response::Announce(_), Kind::Announce)
                                    | (Response::Scrape(_), Kind::Scrape)
                                    | (Response::Error(_), _)
                            ) =>
                        {
                            w.reply(li, s.kind, s.tag, &resp, now, &mut t)
                        }
                        _ => {
                            // Unparsable (e.g. opentracker's 8-byte reply to a refused
                            // info_hash) or the wrong kind of reply.
                            w.lost(li, s.kind, s.tag);
                            false
                        }
                    };
                    let k = s.kind as usize;
                    if ok {
                        t.ok[k] += 1;
                        let d = now.duration_since(s.sent);
                        record(&mut t.latency, d);
                        if s.kind == Kind::Announce {
                            record(&mut t.announce_latency, d);
                        }
                    } else {
                        t.errors[k] += 1;
                    }
                }
                if lens.len() < BATCH {
                    break;
                }
            }
        }
        let now = Instant::now();
        if now >= next_expiry {
            next_expiry = now + Duration::from_millis(20);
            for (li, lane) in lanes.iter_mut().enumerate() {
                for slot in 0..lane.slots.len() {
                    let s = lane.slots[slot];
                    if s.busy && now.duration_since(s.sent) >= timeout {
                        lane.slots[slot].busy = false;
                        lane.free.push(slot as u16);
                        t.timeouts[s.kind as usize] += 1;
                        w.lost(li, s.kind, s.tag);
                    }
                }
            }
        }
        if !progress {
            // Nothing to send and nothing received: wait for a reply (or the next expiry).
            for p in pollfds.iter_mut() {
                p.revents = 0;
            }
            // SAFETY: `pollfds` is a valid array of `len` pollfd structs for the whole call.
            unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 1) };
        }
    }
    (t, Instant::now().duration_since(measure_start))
}

/// Sends `bufs[slots[..]]` on a connected socket with `sendmmsg`; returns how many were sent
/// (the rest failed: full send buffer or an error).
fn send_many(fd: RawFd, bufs: &[Vec<u8>], slots: &[u16]) -> usize {
    let mut iov: Vec<libc::iovec> = slots
        .iter()
        .map(|&s| libc::iovec {
            iov_base: bufs[s as usize].as_ptr() as *mut libc::c_void,
            iov_len: bufs[s as usize].len(),
        })
        .collect();
    // SAFETY: all-zero mmsghdr is valid (null name, no control data).
    let mut hdrs: Vec<libc::mmsghdr> = (0..slots.len())
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < hdrs.len() {
        // SAFETY: the headers point at iovecs and buffers that outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs[sent..].as_mut_ptr(),
                (hdrs.len() - sent) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            let e = io::Error::last_os_error();
            if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        sent += n as usize;
    }
    sent
}

/// Receives up to [`BATCH`] datagrams without waiting; returns their lengths (empty when none).
fn recv_many(fd: RawFd, bufs: &mut [[u8; RECV_SIZE]]) -> Vec<usize> {
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: RECV_SIZE,
        })
        .collect();
    // SAFETY: all-zero mmsghdr is valid (null name, no control data).
    let mut hdrs: Vec<libc::mmsghdr> = (0..bufs.len())
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every header points at a buffer of RECV_SIZE bytes owned by the caller.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n <= 0 {
        return Vec::new();
    }
    hdrs[..n as usize]
        .iter()
        .map(|h| h.msg_len as usize)
        .collect()
}

fn report(
    t: &Tally,
    measured: Duration,
    fill: bool,
    w: &dyn Workload,
    target: SocketAddr,
) -> Result<(), String> {
    let secs = measured.as_secs_f64().max(1e-9);
    let responses: u64 = t.ok.iter().sum();
    let errors: u64 = t.errors.iter().sum();
    let timeouts: u64 = t.timeouts.iter().sum();
    println!(
        "udp_load {target}: {responses} responses in {secs:.2} s = {:.0}/s ({} connect, {} announce, {} scrape), {errors} errors, {timeouts} timeouts, latency p50 {} us p99 {} us",
        responses as f64 / secs,
        t.ok[0],
        t.ok[1],
        t.ok[2],
        if t.latency.is_empty() {
            0
        } else {
            t.latency.value_at_quantile(0.5)
        },
        if t.latency.is_empty() {
            0
        } else {
            t.latency.value_at_quantile(0.99)
        },
    );
    let mut line = format!(
        "RESULT kind=udp mode={} duration_s={secs:.3} responses={responses} rps={:.1} errors={errors} timeouts={timeouts} send_fail={} stale={}",
        if fill { "fill" } else { "mix" },
        responses as f64 / secs,
        t.send_fail,
        t.stale
    );
    for (k, name) in KINDS.iter().enumerate() {
        line.push_str(&format!(
            " {name}={} {name}_errors={} {name}_timeouts={}",
            t.ok[k], t.errors[k], t.timeouts[k]
        ));
    }
    let announces = t.ok[1].max(1);
    line.push_str(&format!(
        " peers_per_announce={:.2} ",
        t.peers_received as f64 / announces as f64
    ));
    line.push_str(&percentiles(&t.latency, ""));
    line.push(' ');
    line.push_str(&percentiles(&t.announce_latency, "announce_"));
    line.push_str(&w.summary());
    println!("{line}");
    if fill && !w.done() {
        return Err("fill did not complete before --duration".into());
    }
    Ok(())
}
