//! What a request means, for every protocol. A typed request and the peer's address go in, a
//! typed reply comes out ([`AnnounceReply`] and the peers in compact form, [`AnnounceError`],
//! the [`SwarmCounts`] of a scrape entry, a [`scan::Scan`]'s entries, a stats report).
//!
//! Pure: no sockets, no clock (`now` is passed in, seconds since start), no wire format. The
//! fronts (`front::http`, `front::udp`; the API and livesync to come) parse their requests,
//! call into [`Tracker`] and write its replies in their own format, so the announce interval,
//! the numwant limits and the other caps, the peer selection, the access check, the error
//! texts and the counters are decided in one place.

pub mod access;
pub mod capacity;
pub mod caps;
pub mod deniability;
pub mod private;
pub mod quota;
pub mod scan;
pub mod stats;
pub mod sync;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::stats::{RequestCounts, Stats};
use crate::swarm::peer::{peer_v4, peer_v6};
use crate::swarm::shards::Shards;
use crate::swarm::store::{AnnounceInput, StoreConfig, SwarmCounts};
use crate::types::{Event, Family, InfoHash};
use crate::wire::query::QueryError;

pub use caps::{UDP_V4_MAX_PEERS, UDP_V6_MAX_PEERS};

/// The tracker's policy values, from the config file.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Base announce interval in seconds (`tracker.announce_interval`, default 1800). Each reply
    /// carries this value with a random jitter of +-10% so that clients spread out (as opentracker,
    /// which sends 1620..1979 s); `min interval` is half of the value sent.
    pub announce_interval: u32,
    /// Peers returned when the client does not ask (`tracker.numwant.default`, default 50).
    pub numwant_default: u32,
    /// Most peers returned (`tracker.numwant.max`, default 200).
    pub numwant_max: u32,
    /// Most info_hashes answered in one HTTP scrape (`tracker.scrape.max_info_hashes`).
    pub max_scrape_hashes: usize,
    /// Seconds after its last announce that a peer is dropped (`tracker.peer_timeout`, default 2700).
    pub peer_timeout: u32,
    /// Seconds a torrent without peers but with `downloaded > 0` is kept (`tracker.torrent_timeout`).
    pub torrent_timeout: u32,
    /// Made-up peers mixed into each announce reply that carries peers (`tracker.random_peers`,
    /// 0..=200, default 0 = off); see [`deniability`] for the addresses and the size limits.
    pub random_peers: u32,
    /// Most torrents held over both families, 0 = no bound (`tracker.max_torrents`); see
    /// [`capacity`].
    pub max_torrents: u64,
    /// Most peers held over both families, 0 = no bound (`tracker.max_peers`).
    pub max_peers: u64,
    /// Largest share of the access list a reload may drop, in percent (`access.reload_max_drop`,
    /// default 50; 100 = no check); see [`Tracker::reload_access_list`].
    pub reload_max_drop: u32,
    /// Torrents one network (IPv4 /24, IPv6 /48) may create per minute, 0 = no quota
    /// (`tracker.max_new_torrents_per_net`); see [`quota`].
    pub max_new_torrents_per_net: u32,
    /// Peers one source (IPv4 address, IPv6 /64) may have in one swarm, 0 = no quota
    /// (`tracker.max_peers_per_source`).
    pub max_peers_per_source: u32,
    /// UDP requests per second one source may send, 0 = no limit (`udp.rate_limit`).
    pub udp_rate_limit: u32,
    /// UDP requests one source may send at once (`udp.rate_burst`).
    pub udp_rate_burst: u32,
}

impl Default for Policy {
    /// The defaults of the config table ([`crate::config::Config::default`]).
    fn default() -> Self {
        let c = crate::config::Config::default();
        Policy {
            announce_interval: c.announce_interval,
            numwant_default: c.numwant_default,
            numwant_max: c.numwant_max,
            max_scrape_hashes: c.max_scrape_hashes as usize,
            peer_timeout: c.peer_timeout,
            torrent_timeout: c.torrent_timeout,
            random_peers: c.random_peers,
            max_torrents: c.max_torrents,
            max_peers: c.max_peers,
            reload_max_drop: c.reload_max_drop,
            max_new_torrents_per_net: c.max_new_torrents_per_net,
            max_peers_per_source: c.max_peers_per_source,
            udp_rate_limit: c.udp.rate_limit,
            udp_rate_burst: c.udp.rate_burst,
        }
    }
}

/// Which server a request came through; replies over UDP are bounded by the datagram size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP (BEP 3).
    Http,
    /// UDP (BEP 15).
    Udp,
}

/// An announce, as both wire formats describe it.
#[derive(Clone, Copy, Debug)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The port the peer listens on (host order), 1..=65535; 0 is refused by
    /// [`Tracker::serve_announce`] ([`AnnounceError::InvalidPort`]).
    pub port: u16,
    /// Bytes the peer still has to download; `Some(0)` makes it a seeder, `None` (HTTP without
    /// `left`) a leecher, as opentracker.
    pub left: Option<u64>,
    /// The announce event.
    pub event: Event,
    /// Peers asked for; `None` or negative means the default (BEP 15's -1).
    pub numwant: Option<i32>,
}

/// What an announce produced: the counts and interval to send; the peers were appended to the
/// caller's buffer in compact form (6 bytes each for IPv4, 18 for IPv6, network order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Interval in seconds, jittered.
    pub interval: u32,
    /// Minimum interval in seconds (HTTP only): half the interval.
    pub min_interval: u32,
    /// Swarm counts over the requester's family, including the requester (as opentracker).
    pub counts: SwarmCounts,
    /// The family of the peers written, which is the requester's.
    pub family: Family,
}

/// Why an announce got no reply but a failure reason: [`AnnounceError::reason`] is the text
/// every front sends (HTTP: bencoded `failure reason`, BEP 3; UDP: an action 3 error packet,
/// BEP 15). The store is not changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceError {
    /// The tracker's mode refuses it: no, an unknown or an expired key, or an info_hash not
    /// listed ([`Tracker::authorize`]).
    Auth(private::AuthError),
    /// `tracker.max_torrents` / `tracker.max_peers` reached ([`capacity`]).
    Capacity(capacity::Refusal),
    /// A quota of the source reached: new torrents of its network, peers of its address in
    /// the swarm ([`quota`]).
    Quota(quota::Refusal),
    /// Port 0 (BEP 3 and BEP 15 name the port the peer listens on; nobody listens on 0). The
    /// HTTP query parser refuses it first, with the same text ([`QueryError::InvalidPort`]);
    /// this is the same rule for UDP, whose packet has no invalid port value otherwise.
    InvalidPort,
}

impl AnnounceError {
    /// The text sent to the client: [`private::AuthError::reason`] (for an info_hash not
    /// listed, opentracker's [`access::NOT_AUTHORIZED`]), [`capacity::Refusal::reason`],
    /// [`quota::Refusal::reason`], or for
    /// port 0 the HTTP parser's text (`invalid port (must be 1-65535)`).
    pub fn reason(self) -> &'static str {
        match self {
            AnnounceError::Auth(e) => e.reason(),
            AnnounceError::Capacity(r) => r.reason(),
            AnnounceError::Quota(r) => r.reason(),
            AnnounceError::InvalidPort => QueryError::InvalidPort.reason(),
        }
    }
}

/// The tracker state of one worker (one event loop, `tracker.workers`): the two swarm stores
/// shared by every worker ([`Shards`]: one lock per shard), the policy, this worker's counters
/// and random generator (peer selection, interval jitter), and handles on the state every
/// worker shares ([`Tracker::worker`]): keys and API whitelist ([`private::Private`]), the
/// access list in force (each worker keeps a copy, switched by [`Tracker::refresh`]), the
/// completed marks. Side work (access-list reload and purge, state file, database, live sync,
/// REST API, cleaning) runs on worker 0's `Tracker`; the others serve requests only.
pub struct Tracker {
    /// IPv4 swarms: peers as 6-byte records (shared by every worker).
    pub v4: Arc<Shards<6>>,
    /// IPv6 swarms: peers as 18-byte records (shared by every worker).
    pub v6: Arc<Shards<18>>,
    /// The policy values.
    pub policy: Policy,
    /// Counters.
    pub stats: Stats,
    rng: fastrand::Rng,
    /// The whitelist/blacklist in force (`None`: every info_hash is served); see [`access`].
    /// This worker's copy of `shared.access` (the list itself is shared, behind an `Arc`).
    access: Option<crate::access::Access>,
    /// The generation of `shared.access` that `access` is a copy of.
    access_generation: u64,
    /// What every worker shares besides the stores and `private`.
    shared: Arc<Shared>,
    /// Next bucket to purge of torrents the access list refuses, while a purge runs.
    purge_next: Option<usize>,
    /// Mode, keys and the API/database whitelist ([`private`]).
    pub private: private::Private,
    /// Torrents whose `downloaded` rose since the last [`Tracker::take_completed`], while a
    /// database keeps the counts (`None`: not tracked); shared by every worker, locked only
    /// when a count rises or worker 0 takes the marks.
    completed_marks: Arc<Mutex<Option<std::collections::HashSet<InfoHash>>>>,
    /// Live sync: the records of announces served, waiting for `net::livesync` to send them
    /// (`None`: live sync off, and the hook in `Tracker::change_peer` costs one branch). Every
    /// worker has its own, over one shared queue that worker 0's sender drains
    /// ([`Tracker::publish_sync`]).
    pub sync: Option<Box<sync::Outbox>>,
    /// The `downloaded` counts (IPv4, IPv6) of torrents an access-list reload refused, kept so
    /// they come back when the hash is listed again ([`Tracker::reload_access_list`]). RAM
    /// only: a restart forgets them. Worker 0's only (reloads run there).
    purged_downloads: std::collections::HashMap<InfoHash, [u32; 2]>,
    /// The made-up peers of `tracker.random_peers` ([`deniability`]).
    fakes: deniability::Fakes,
    /// The per-address rate limit of full scrapes (`tracker.fullscrape_interval`), shared by
    /// every worker so the interval holds whichever worker a connection reaches.
    fullscrape_limiter: Arc<Mutex<scan::FullScrapeLimiter>>,
    /// With several workers: this worker's number and the board where every worker publishes
    /// its counters, so `/stats` and `/metrics` read their sum ([`Tracker::stats_total`]).
    board: Option<(usize, Arc<crate::stats::workers::Board>)>,
    /// The per-source rate tables and the count of full scrapes being sent ([`quota`]), shared
    /// by every worker.
    quotas: quota::Quotas,
}

/// What the workers share besides the stores, `private` and the completed marks: the access
/// list in force, published by worker 0 with a generation number that the others compare once
/// per loop turn (one atomic load) before taking a copy ([`Tracker::refresh`]).
#[derive(Debug, Default)]
struct Shared {
    /// Bumped (after `access` is written) each time worker 0 installs an access list.
    access_generation: AtomicU64,
    /// The access list in force.
    access: Mutex<Option<crate::access::Access>>,
}

impl Tracker {
    /// A tracker with empty stores; the random generator is seeded from the OS.
    pub fn new(policy: Policy) -> Self {
        let store_cfg = StoreConfig {
            peer_timeout: policy.peer_timeout.max(1),
            torrent_timeout: policy.torrent_timeout,
        };
        let fakes = deniability::Fakes::new(policy.peer_timeout);
        let quotas = quota::Quotas::new(&policy);
        Tracker {
            v4: Arc::new(Shards::new(store_cfg)),
            v6: Arc::new(Shards::new(store_cfg)),
            policy,
            stats: Stats::default(),
            rng: fastrand::Rng::new(),
            access: None,
            access_generation: 0,
            shared: Arc::default(),
            purge_next: None,
            private: private::Private::default(),
            completed_marks: Arc::default(),
            sync: None,
            purged_downloads: Default::default(),
            fakes,
            fullscrape_limiter: Arc::default(),
            board: None,
            quotas,
        }
    }

    /// Worker `index`'s tracker over the same state: the same stores, keys, API whitelist,
    /// access list (as published, [`Tracker::refresh`]), completed marks, made-up peers' key
    /// and counters board ([`Tracker::join_board`], as worker `index`), live sync outbox's
    /// shared queue and tracker_id ([`sync::Outbox::for_worker`]); its own counters (zero),
    /// random generator (seeded from the OS) and no purge or kept counts (side work stays on
    /// worker 0).
    pub fn worker(&self, index: usize) -> Tracker {
        let mut t = Tracker {
            v4: Arc::clone(&self.v4),
            v6: Arc::clone(&self.v6),
            policy: self.policy.clone(),
            stats: Stats::default(),
            rng: fastrand::Rng::new(),
            access: None,
            access_generation: 0,
            shared: Arc::clone(&self.shared),
            purge_next: None,
            private: self.private.clone(),
            completed_marks: Arc::clone(&self.completed_marks),
            sync: self.sync.as_ref().map(|o| Box::new(o.for_worker())),
            purged_downloads: Default::default(),
            fakes: self.fakes.clone(),
            fullscrape_limiter: Arc::clone(&self.fullscrape_limiter),
            // The rate tables and the full-scrape stream count are shared.
            quotas: self.quotas.for_worker(),
            board: self
                .board
                .as_ref()
                .map(|(_, board)| (index, Arc::clone(board))),
        };
        t.access = self.access.clone();
        t.access_generation = self.access_generation;
        t.refresh();
        t
    }

    /// Whether `ip` may have a full scrape at `now` given `interval` (seconds, 0 = always):
    /// [`scan::FullScrapeLimiter::allow`] over the limiter every worker shares. Records the
    /// scrape when it is allowed.
    pub fn allow_full_scrape(&self, ip: IpAddr, now: u32, interval: u32) -> bool {
        interval == 0 || lock(&self.fullscrape_limiter).allow(ip, now, interval)
    }

    /// Makes this tracker worker `index` of those publishing on `board`: its reports then read
    /// every worker's counters summed ([`Tracker::stats_total`]).
    pub fn join_board(&mut self, index: usize, board: Arc<crate::stats::workers::Board>) {
        self.board = Some((index, board));
    }

    /// Publishes this worker's counters on its board, if any (the loop does it once a second).
    pub fn publish_stats(&self) {
        if let Some((index, board)) = &self.board {
            board.publish(*index, &self.stats);
        }
    }

    /// Publishes this worker's counters if a `/stats` reader asked for them since the last
    /// time ([`crate::stats::workers::Board::publish_if_wanted`]; the loop calls it every turn).
    #[inline]
    pub fn publish_stats_if_wanted(&self) {
        if let Some((index, board)) = &self.board {
            board.publish_if_wanted(*index, &self.stats);
        }
    }

    /// Registers how `/stats` readers on other workers wake this worker's loop to have its
    /// counters published ([`crate::stats::workers::Board`]); nothing with one worker.
    pub fn set_stats_wake(&self, wake: crate::stats::workers::Wake) {
        if let Some((index, board)) = &self.board {
            board.set_waker(*index, wake);
        }
    }

    /// Publishes this worker's last counters as it stops: readers no longer wait for it.
    pub fn retire_stats(&self) {
        if let Some((index, board)) = &self.board {
            board.retire(*index, &self.stats);
        }
    }

    /// Every worker's counters as last published, summed, without asking for fresh ones (for
    /// the log line at exit, once the other workers stopped).
    pub fn stats_as_published(&self) -> std::borrow::Cow<'_, Stats> {
        match &self.board {
            None => std::borrow::Cow::Borrowed(&self.stats),
            Some((index, board)) => std::borrow::Cow::Owned(board.sum(*index, &self.stats)),
        }
    }

    /// Takes the access list worker 0 installed since the last call, if any (one atomic load
    /// when nothing changed). The event loop calls it once per turn, so a reload reaches every
    /// worker within one turn.
    #[inline]
    pub fn refresh(&mut self) {
        let g = self.shared.access_generation.load(Ordering::Acquire);
        if g != self.access_generation {
            self.access = lock(&self.shared.access).clone();
            self.access_generation = g;
        }
    }

    /// Makes this tracker's access list the one every worker serves ([`Tracker::refresh`]).
    fn publish_access(&mut self) {
        let mut slot = lock(&self.shared.access);
        slot.clone_from(&self.access);
        let g = self.shared.access_generation.fetch_add(1, Ordering::AcqRel) + 1;
        drop(slot);
        self.access_generation = g;
    }

    /// How many peers to return: [`caps::numwant`] (`requested` if given and not negative, else
    /// the default; never more than `numwant.max` nor what one reply of `proto` to `family`
    /// carries).
    pub fn numwant(&self, requested: Option<i32>, proto: Proto, family: Family) -> usize {
        caps::numwant(&self.policy, requested, proto, family)
    }

    /// The interval to send: `announce_interval` +-10%, and `min interval` = half of it.
    fn interval(&mut self) -> (u32, u32) {
        let base = self.policy.announce_interval.max(1);
        let spread = base / 10;
        let interval = base - spread + self.rng.u32(0..=2 * spread);
        (interval, (interval / 2).max(1))
    }

    /// Handles an announce from `ip` (the peer's address: the packet's source, or the proxy's
    /// forwarded address): `stopped` removes the peer, anything else inserts or refreshes it and
    /// appends up to numwant peers of the same family to `peers` (compact form). The counts in the
    /// reply include the requester. With `tracker.random_peers N` the torrent's made-up peers of
    /// the requester's family are mixed in at random positions and counted in the reply's
    /// counts ([`deniability`]; the real peers may then be capped lower so the reply stays
    /// within its size limit).
    ///
    /// No access check (whitelist/blacklist, [`Tracker::allowed`]): fronts call
    /// [`Tracker::serve_announce`], which checks first.
    ///
    /// Errors: [`capacity::Refusal`] when `tracker.max_torrents` / `tracker.max_peers` are reached
    /// and the announce would add a torrent / a peer; the store is not changed.
    pub fn announce(
        &mut self,
        a: &Announce,
        ip: IpAddr,
        proto: Proto,
        now: u32,
        peers: &mut Vec<u8>,
    ) -> Result<AnnounceReply, capacity::Refusal> {
        self.check_capacity(a, ip)?;
        let family = family_of(ip);
        let numwant = self.numwant(a.numwant, proto, family);
        let n = self.policy.random_peers;
        let seeder = a.left == Some(0);
        // The made-up peers: their split follows the swarm before this announce.
        let fake = (n > 0).then(|| {
            let v4 = self.v4.scrape(&a.info_hash, now).unwrap_or_default();
            let v6 = self.v6.scrape(&a.info_hash, now).unwrap_or_default();
            let mix = deniability::Mix::of(v4, v6, family);
            let counts = self.fakes.counts(&a.info_hash, now, n, mix);
            let other = match family {
                Family::V4 => v6,
                Family::V6 => v4,
            };
            (mix, counts, other.seeders + other.leechers > 0)
        });
        let random = match (a.event, fake) {
            (Event::Stopped, _) | (_, None) => 0,
            (_, Some((_, counts, _))) => {
                let c = counts.of(family);
                let listed = if seeder {
                    c.leechers
                } else {
                    c.seeders + c.leechers
                };
                (listed as usize).min(caps::random_peers(n, numwant, proto, family))
            }
        };
        let numwant = numwant.min(caps::reply_peers(proto, family) - random);
        let start = peers.len();
        let mut counts = self.change_peer(a, ip, numwant, now, peers, sync::Origin::Client);
        if let Some((mix, fake_counts, other_family_real)) = fake {
            // A torrent without real peers has no made-up ones.
            if counts.seeders + counts.leechers > 0 || other_family_real {
                let c = fake_counts.of(family);
                counts.seeders += c.seeders;
                counts.leechers += c.leechers;
            }
            if random > 0 {
                self.fakes.write(
                    &a.info_hash,
                    now,
                    n,
                    mix,
                    family,
                    seeder,
                    random,
                    &mut self.rng,
                    peers,
                    start,
                );
            }
        }
        let (interval, min_interval) = self.interval();
        self.requests(proto, family).announce += 1;
        Ok(AnnounceReply {
            interval,
            min_interval,
            counts,
            family,
        })
    }

    /// The one function that changes a peer in the store (live sync's hook, DESIGN.md "More
    /// machines"): `stopped` removes the peer, anything else inserts or refreshes it and appends
    /// up to `numwant` peers of its family to `peers`. Returns the swarm's counts.
    ///
    /// A change from a client ([`sync::Origin::Client`]) is queued for the other nodes of the
    /// cluster when live sync is on; one received from a node ([`sync::Origin::Sync`]) is
    /// never queued again (no echo between nodes), and a download it completes counts in the
    /// live sync counters, not in `completed`. No access or capacity check here: the callers
    /// ([`Tracker::announce`], [`Tracker::apply_synced`]) check first.
    pub(crate) fn change_peer(
        &mut self,
        a: &Announce,
        ip: IpAddr,
        numwant: usize,
        now: u32,
        peers: &mut Vec<u8>,
        origin: sync::Origin,
    ) -> SwarmCounts {
        let seeder = a.left == Some(0);
        let completed_before = self.stats.completed + self.stats.livesync.completed;
        let completed = match origin {
            sync::Origin::Client => &mut self.stats.completed,
            sync::Origin::Sync => &mut self.stats.livesync.completed,
        };
        let counts = match ip.to_canonical() {
            IpAddr::V4(ip4) => announce_in(
                &self.v4,
                &AnnounceInput {
                    info_hash: &a.info_hash,
                    peer: &peer_v4(ip4, a.port),
                    seeder,
                    event: a.event,
                    numwant,
                },
                now,
                &mut self.rng,
                peers,
                completed,
            ),
            IpAddr::V6(ip6) => announce_in(
                &self.v6,
                &AnnounceInput {
                    info_hash: &a.info_hash,
                    peer: &peer_v6(ip6, a.port),
                    seeder,
                    event: a.event,
                    numwant,
                },
                now,
                &mut self.rng,
                peers,
                completed,
            ),
        };
        let counted = self.stats.completed + self.stats.livesync.completed != completed_before;
        // A database keeps the counts: mark the torrents whose `downloaded` rose (by a client or
        // by a node of the cluster).
        if counted {
            if let Some(marks) = lock(&self.completed_marks).as_mut() {
                marks.insert(a.info_hash);
            }
        }
        // Live sync (one branch when off): what a client announced goes to the other nodes.
        if let Some(outbox) = &mut self.sync {
            if origin == sync::Origin::Client {
                outbox.push(a, ip, seeder, counted, &mut self.stats.livesync);
            }
        }
        counts
    }

    /// Scrape counts of one torrent over both families (BEP 48): seeders, leechers and
    /// `downloaded` summed over the IPv4 and IPv6 swarms. `None` if neither knows the torrent.
    pub fn scrape_one(&mut self, info_hash: &InfoHash, now: u32) -> Option<SwarmCounts> {
        let a = self.v4.scrape(info_hash, now);
        let b = self.v6.scrape(info_hash, now);
        match (a, b) {
            (None, None) => None,
            (a, b) => {
                let a = a.unwrap_or_default();
                let b = b.unwrap_or_default();
                Some(SwarmCounts {
                    seeders: a.seeders + b.seeders,
                    leechers: a.leechers + b.leechers,
                    downloaded: a.downloaded.saturating_add(b.downloaded),
                })
            }
        }
    }

    /// Serves an announce for any front: the mode's check ([`Tracker::authorize`]: the whitelist
    /// or blacklist, and in a private mode `key`, the raw key from the announce URL's path),
    /// the source's quotas ([`quota`]), then [`Tracker::announce`]. A refused announce counts as failed for `proto` and the
    /// family of `ip`, and changes nothing in the store.
    ///
    /// Errors: [`AnnounceError`], whose text the front sends back.
    pub fn serve_announce(
        &mut self,
        a: &Announce,
        key: Option<&[u8]>,
        ip: IpAddr,
        proto: Proto,
        now: u32,
        peers: &mut Vec<u8>,
    ) -> Result<AnnounceReply, AnnounceError> {
        let result = match self.authorize(&a.info_hash, key, now) {
            Ok(()) if a.port == 0 => Err(AnnounceError::InvalidPort),
            Ok(()) => self.announce_within_quotas(a, ip, proto, now, peers),
            Err(e) => Err(AnnounceError::Auth(e)),
        };
        if result.is_err() {
            self.requests(proto, family_of(ip)).failed += 1;
        }
        result
    }

    /// One info_hash of a scrape, for any front: `None` when the access list refuses it (HTTP
    /// leaves it out, UDP, whose replies are positional, answers zeros); zeros when `keyed` is
    /// false (a private mode's scrape without a valid key, [`Tracker::scrape_key_ok`]; as
    /// torrust) or the tracker does not know the torrent, so a client can tell "no peers" from a
    /// failed request; else its counts over both families ([`Tracker::scrape_one`]), plus, with
    /// `tracker.random_peers`, the made-up peers of both families when it has real peers
    /// ([`deniability`]; the same ones announce replies list and count).
    pub fn scrape_entry(
        &mut self,
        info_hash: &InfoHash,
        keyed: bool,
        now: u32,
    ) -> Option<SwarmCounts> {
        if !self.allowed(info_hash) {
            return None;
        }
        if !keyed {
            return Some(SwarmCounts::default());
        }
        let c = self.scrape_one(info_hash, now).unwrap_or_default();
        Some(match self.fake_peers(now) {
            Some(f) => f.inflate(info_hash, c),
            None => c,
        })
    }

    /// The made-up peers scrapes count at `now` (`None` without `tracker.random_peers`); a full
    /// scrape takes them along ([`deniability::FakePeers`]).
    pub fn fake_peers(&self, now: u32) -> Option<deniability::FakePeers> {
        (self.policy.random_peers > 0).then(|| deniability::FakePeers {
            fakes: self.fakes.clone(),
            n: self.policy.random_peers,
            now,
        })
    }

    /// The request counters of `proto` for requests from `family`: fronts count a scrape
    /// answered, a BEP 15 connect, or a request that failed to parse.
    pub fn requests(&mut self, proto: Proto, family: Family) -> &mut RequestCounts {
        match proto {
            Proto::Http => &mut self.stats.http[family as usize],
            Proto::Udp => &mut self.stats.udp[family as usize],
        }
    }

    /// Starts marking the torrents whose `downloaded` rises (for a database that keeps the
    /// counts, written behind in batches).
    pub fn track_completed(&mut self) {
        lock(&self.completed_marks).get_or_insert_with(Default::default);
    }

    /// Marks `info_hash` as having a new `downloaded` count (a batch that could not be sent is
    /// marked again). Does nothing unless [`Tracker::track_completed`] was called.
    pub fn mark_completed(&mut self, info_hash: InfoHash) {
        if let Some(marks) = lock(&self.completed_marks).as_mut() {
            marks.insert(info_hash);
        }
    }

    /// Takes up to `max` of the marked torrents (see [`Tracker::track_completed`]); the others
    /// stay marked.
    pub fn take_completed(&mut self, max: usize) -> Vec<InfoHash> {
        let mut marks = lock(&self.completed_marks);
        let Some(marks) = marks.as_mut() else {
            return Vec::new();
        };
        if marks.len() <= max {
            return marks.drain().collect();
        }
        let taken: Vec<InfoHash> = marks.iter().take(max).copied().collect();
        for h in &taken {
            marks.remove(h);
        }
        taken
    }

    /// Background cleaning: visits the next `buckets` buckets of each store (one worker does
    /// it for all: the stores are shared).
    pub fn clean_step(&mut self, now: u32, buckets: usize) {
        self.v4.clean_step(now, buckets);
        self.v6.clean_step(now, buckets);
    }

    /// Peers held, over both families.
    pub fn peers(&self) -> u64 {
        self.v4.peers() + self.v6.peers()
    }
}

/// One announce in one family's store: `stopped` removes the peer, anything else inserts or
/// refreshes it and appends the selected peers to `peers`. Raises `completed` (the counter of
/// completions) when the announce raised the torrent's `downloaded`: a `completed`, or a stored
/// leecher's first `left=0` whatever the event ([`Store::announce`]).
fn announce_in<const N: usize>(
    store: &Shards<N>,
    input: &AnnounceInput<'_, N>,
    now: u32,
    rng: &mut fastrand::Rng,
    peers: &mut Vec<u8>,
    completed: &mut u64,
) -> SwarmCounts {
    // The store's count of completions before and after, under one lock of the shard, so
    // another worker's completion in the same shard cannot fall in between.
    let (counts, new) = store.with(input.info_hash, |s| {
        let before = s.completions();
        let counts = s.announce(input, now, rng, peers);
        (counts, s.completions() - before)
    });
    *completed += new;
    counts
}

/// Locks a mutex shared between workers. Poisoned: a worker panicked while holding it (a bug,
/// never input), and this panics too rather than serve from half-changed state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock()
        .expect("a worker panicked while holding the tracker's shared state")
}

/// The family of an address; IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4.
pub fn family_of(ip: IpAddr) -> Family {
    match ip.to_canonical() {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}
