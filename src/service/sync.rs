//! Live sync, the service's side: what an announce served tells the other nodes of a cluster,
//! and what a record received from a node does to the store (opentracker's `ot_livesync`).
//!
//! Every change of a peer goes through `Tracker::change_peer`. When live sync is on
//! ([`Tracker::enable_sync`]), a change a client asked for ([`Origin::Client`]: an HTTP or UDP
//! announce that the access list and the capacity bounds let through) is queued in the
//! [`Outbox`] as a [`PeerChange`]. With several workers (`tracker.workers`) every worker has
//! its own outbox over one shared queue: at the end of each loop turn a worker moves its
//! turn's changes there ([`Tracker::publish_sync`], one lock per turn that queued any), and
//! worker 0, which owns the sync sockets, drains it into sync packets (`net::livesync`,
//! [`Outbox::take_all`]). A record received from a node is applied with
//! [`Tracker::apply_synced`]: as an announce from that peer, without a reply (no peer
//! selection, no random peers, no request counters), through the same
//! `Tracker::change_peer` but marked [`Origin::Sync`], so it is never queued again: no echo
//! storm between nodes, whatever the topology.
//!
//! What is sent: every announce served, `stopped` included (whether or not the peer was
//! known), with the peer's seeder state and a completed flag when the announce counted a
//! download here (`event=completed`, or a stored leecher's `left=0` without it: rtorrent never
//! sends `completed`), so a node that missed the peer's earlier records counts it too. A
//! `stopped` with `left=0` is counted by the nodes that hold the peer as a leecher (a record
//! carries one event, and `stopped` wins).
//! opentracker skips re-announces of peers it saw less than 10 minutes before
//! (`OT_CLIENT_SYNC_RENEW_BOUNDARY`); this store keeps no per-peer time that fine, so every
//! re-announce is sent (clients announce every 30 minutes: the same records in practice; a
//! client announcing more often costs one 28-byte record per announce).
//!
//! Pure: no socket, no wire format (`net::livesync` converts to and from
//! `wire::livesync::Record`), no clock.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::{Announce, Tracker, capacity};
use crate::stats::{LIVESYNC_RECORD_REFUSALS, Livesync};
use crate::types::{Event, InfoHash};

/// Most changes waiting to be sent, whatever the number of workers: in the queue every
/// worker's [`Outbox`] moves its changes into, and in one worker's own queue between two moves
/// (one loop turn). A turn serves at most a few thousand announces and the sender drains the
/// shared queue every turn of worker 0 (at least every 100 ms), so this bound is only reached
/// if the sender stops draining; changes past it are dropped and counted
/// ([`Livesync::queue_dropped`], by the worker that served them).
pub const MAX_QUEUED: usize = 1 << 16;

/// Where a change of a peer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An announce of a client, over HTTP or UDP: sent to the other nodes.
    Client,
    /// A record received from another node: applied, never sent again.
    Sync,
}

/// One change of one peer, as the cluster exchanges it: opentracker's sync record without its
/// wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerChange {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer's address (IPv4-mapped IPv6 addresses are IPv4) and port.
    pub peer: SocketAddr,
    /// The peer announced `left=0` (opentracker's `PEER_FLAG_SEEDING`).
    pub seeder: bool,
    /// [`Event::Stopped`] removes the peer (`PEER_FLAG_STOPPED`); [`Event::Completed`] with
    /// `seeder` is `PEER_FLAG_COMPLETED`; anything else is a plain announce ([`Event::None`]:
    /// received records never say `started`). Applied as a client's announce, a record counts
    /// a download by the same rule (`Store::announce`): a stored leecher's `seeder`, whatever
    /// the event, or a `completed` seeder new to the swarm.
    pub event: Event,
}

/// The changes of announces served by one worker, waiting to be moved to the queue every
/// worker shares ([`Outbox::publish`]) and sent from there by `net::livesync`, and this
/// process's tracker_id (one per process: the workers are one node of the cluster). Lives in
/// [`Tracker::sync`] while live sync is on.
#[derive(Debug)]
pub struct Outbox {
    tracker_id: [u8; 4],
    /// This worker's changes of the current loop turn: no lock on the announce path.
    queue: Vec<PeerChange>,
    /// Every worker's published changes, drained by the sender ([`Outbox::take_all`]).
    shared: Arc<Mutex<Vec<PeerChange>>>,
}

impl Outbox {
    /// An empty queue, over a new shared queue, for the process whose live sync tracker_id
    /// is `tracker_id`.
    pub fn new(tracker_id: [u8; 4]) -> Outbox {
        Outbox {
            tracker_id,
            queue: Vec::new(),
            shared: Arc::default(),
        }
    }

    /// Another worker's outbox: the same tracker_id and shared queue, its own empty queue.
    pub fn for_worker(&self) -> Outbox {
        Outbox {
            tracker_id: self.tracker_id,
            queue: Vec::new(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// This process's tracker_id (4 opaque bytes, random per process).
    pub fn tracker_id(&self) -> [u8; 4] {
        self.tracker_id
    }

    /// Changes queued by this worker and not yet published.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether this worker queued nothing since its last [`Outbox::publish`].
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Moves this worker's queued changes to `out` (which should be empty: it is swapped with
    /// the queue, so neither allocates in the steady state), leaving the shared queue alone.
    pub fn take(&mut self, out: &mut Vec<PeerChange>) {
        out.clear();
        std::mem::swap(&mut self.queue, out);
    }

    /// Moves this worker's queued changes to the shared queue (one lock; none when nothing is
    /// queued). Changes that would take the shared queue past [`MAX_QUEUED`] are dropped and
    /// counted in `stats`.
    pub fn publish(&mut self, stats: &mut Livesync) {
        if self.queue.is_empty() {
            return;
        }
        let mut shared = super::lock(&self.shared);
        let room = MAX_QUEUED.saturating_sub(shared.len());
        if self.queue.len() > room {
            stats.queue_dropped += (self.queue.len() - room) as u64;
            self.queue.truncate(room);
        }
        if shared.is_empty() {
            // Swap buffers rather than copy: the common case with one worker.
            std::mem::swap(&mut *shared, &mut self.queue);
        } else {
            shared.append(&mut self.queue);
        }
    }

    /// The sender's drain: publishes this worker's changes ([`Outbox::publish`]), then moves
    /// every worker's published changes to `out` (cleared first, then swapped with the shared
    /// queue: no allocation in the steady state).
    pub fn take_all(&mut self, out: &mut Vec<PeerChange>, stats: &mut Livesync) {
        self.publish(stats);
        out.clear();
        let mut shared = super::lock(&self.shared);
        std::mem::swap(&mut *shared, out);
    }

    /// Queues the change an announce made (`counted`: it raised the torrent's `downloaded`
    /// here, which the record says as `completed`); over [`MAX_QUEUED`] it is dropped and
    /// counted.
    pub(super) fn push(
        &mut self,
        a: &Announce,
        ip: IpAddr,
        seeder: bool,
        counted: bool,
        stats: &mut Livesync,
    ) {
        if self.queue.len() >= MAX_QUEUED {
            stats.queue_dropped += 1;
            return;
        }
        let event = match a.event {
            Event::Stopped => Event::Stopped,
            _ if counted && seeder => Event::Completed,
            _ => Event::None,
        };
        self.queue.push(PeerChange {
            info_hash: a.info_hash,
            peer: SocketAddr::new(ip.to_canonical(), a.port),
            seeder,
            event,
        });
    }
}

/// Why a record received from a node was not applied. The store is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncRefusal {
    /// The access list refuses the info_hash (a node with another whitelist, or a forged
    /// record): it is not stored here, as a client's announce would not be.
    NotAuthorized,
    /// `tracker.max_torrents` / `tracker.max_peers` are reached (also counted in
    /// `refused_torrent_limit` / `refused_peer_limit`, as for clients).
    Capacity(capacity::Refusal),
    /// Port 0: no client can be reached there.
    BadPeer,
}

impl SyncRefusal {
    /// The metric label: one of [`LIVESYNC_RECORD_REFUSALS`] (`not_authorized`, `capacity`,
    /// `bad_peer`).
    pub fn reason(self) -> &'static str {
        LIVESYNC_RECORD_REFUSALS[self.index()]
    }

    fn index(self) -> usize {
        match self {
            SyncRefusal::NotAuthorized => 0,
            SyncRefusal::Capacity(_) => 1,
            SyncRefusal::BadPeer => 2,
        }
    }
}

impl Tracker {
    /// Turns live sync on: announces served from now on are queued in an [`Outbox`] for the
    /// process whose tracker_id is `tracker_id`. Called once by `net::livesync` at start, on
    /// worker 0, before the other workers' trackers are made ([`Tracker::worker`] gives each
    /// an outbox over the same shared queue).
    pub fn enable_sync(&mut self, tracker_id: [u8; 4]) {
        self.sync = Some(Box::new(Outbox::new(tracker_id)));
    }

    /// End of a loop turn of a worker other than 0: moves the changes its announces queued to
    /// the queue worker 0's sender drains ([`Outbox::publish`]). Nothing when live sync is off
    /// or the turn queued nothing.
    pub fn publish_sync(&mut self) {
        if let Some(outbox) = &mut self.sync {
            outbox.publish(&mut self.stats.livesync);
        }
    }

    /// Applies a record received from another node as an announce of that peer, without a
    /// reply and without queueing it again ([`Origin::Sync`]): `stopped` removes the peer,
    /// anything else inserts or refreshes it as seeder or leecher; a download counts once, by
    /// the rule of a client's announce (a stored leecher now a seeder, whatever the event, or a
    /// completed seeder new to the swarm). Counts the record as received or refused in
    /// [`Livesync`].
    ///
    /// Errors: [`SyncRefusal`]; the store is then unchanged.
    pub fn apply_synced(&mut self, change: &PeerChange, now: u32) -> Result<(), SyncRefusal> {
        let result = self.apply_synced_inner(change, now);
        match result {
            Ok(()) => self.stats.livesync.records_received += 1,
            Err(r) => self.stats.livesync.records_refused[r.index()] += 1,
        }
        result
    }

    fn apply_synced_inner(&mut self, change: &PeerChange, now: u32) -> Result<(), SyncRefusal> {
        if change.peer.port() == 0 {
            return Err(SyncRefusal::BadPeer);
        }
        if !self.allowed(&change.info_hash) {
            return Err(SyncRefusal::NotAuthorized);
        }
        let a = Announce {
            info_hash: change.info_hash,
            port: change.peer.port(),
            left: Some(if change.seeder { 0 } else { 1 }),
            event: change.event,
            numwant: Some(0),
        };
        let ip = change.peer.ip().to_canonical();
        self.check_capacity(&a, ip).map_err(SyncRefusal::Capacity)?;
        self.change_peer(&a, ip, 0, now, &mut Vec::new(), Origin::Sync);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Policy, Proto};

    fn ann(h: u8, port: u16, left: u64, event: Event) -> Announce {
        Announce {
            info_hash: [h; 20],
            port,
            left: Some(left),
            event,
            numwant: Some(50),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn served(t: &mut Tracker, a: &Announce, from: &str) {
        t.serve_announce(a, None, ip(from), Proto::Udp, 10, &mut Vec::new())
            .unwrap();
    }

    fn drained(t: &mut Tracker) -> Vec<PeerChange> {
        let mut out = Vec::new();
        t.sync.as_mut().unwrap().take(&mut out);
        out
    }

    #[test]
    fn off_by_default_and_nothing_is_queued() {
        let mut t = Tracker::new(Policy::default());
        served(&mut t, &ann(1, 6881, 5, Event::Started), "10.0.0.1");
        assert!(t.sync.is_none());
        assert_eq!(t.stats.livesync, Livesync::default());
    }

    #[test]
    fn announces_served_are_queued_with_their_flags() {
        let mut t = Tracker::new(Policy::default());
        t.enable_sync(*b"abcd");
        served(&mut t, &ann(1, 6881, 5, Event::Started), "10.0.0.1");
        served(
            &mut t,
            &ann(1, 6882, 0, Event::Completed),
            "::ffff:10.0.0.2",
        );
        served(&mut t, &ann(1, 6883, 0, Event::Stopped), "2001:db8::1");
        // A completed leecher is no completion (opentracker keeps COMPLETED only with SEEDING).
        served(&mut t, &ann(1, 6884, 3, Event::Completed), "10.0.0.4");
        let q = drained(&mut t);
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            q,
            vec![
                PeerChange {
                    info_hash: [1; 20],
                    peer: peer("10.0.0.1:6881"),
                    seeder: false,
                    event: Event::None
                },
                PeerChange {
                    info_hash: [1; 20],
                    peer: peer("10.0.0.2:6882"),
                    seeder: true,
                    event: Event::Completed
                },
                PeerChange {
                    info_hash: [1; 20],
                    peer: peer("[2001:db8::1]:6883"),
                    seeder: true,
                    event: Event::Stopped
                },
                PeerChange {
                    info_hash: [1; 20],
                    peer: peer("10.0.0.4:6884"),
                    seeder: false,
                    event: Event::None
                },
            ]
        );
        assert!(t.sync.as_ref().unwrap().is_empty());
    }

    #[test]
    fn refused_announces_are_not_queued() {
        let mut t = Tracker::new(Policy {
            max_torrents: 1,
            ..Policy::default()
        });
        t.enable_sync(*b"abcd");
        served(&mut t, &ann(1, 6881, 5, Event::None), "10.0.0.1");
        assert!(
            t.serve_announce(
                &ann(2, 6881, 5, Event::None),
                None,
                ip("10.0.0.1"),
                Proto::Http,
                10,
                &mut Vec::new()
            )
            .is_err()
        );
        assert_eq!(drained(&mut t).len(), 1);
    }

    #[test]
    fn synced_records_change_the_store_and_are_never_queued_again() {
        let mut t = Tracker::new(Policy::default());
        t.enable_sync(*b"abcd");
        let change = |port, seeder, event| PeerChange {
            info_hash: [7; 20],
            peer: SocketAddr::new(ip("10.1.1.1"), port),
            seeder,
            event,
        };
        t.apply_synced(&change(6881, false, Event::None), 5)
            .unwrap();
        t.apply_synced(&change(6882, true, Event::None), 5).unwrap();
        let c = t.scrape_one(&[7; 20], 5).unwrap();
        assert_eq!((c.seeders, c.leechers, c.downloaded), (1, 1, 0));
        // The leecher completes on another node: one download, counted as a sync completion.
        t.apply_synced(&change(6881, true, Event::Completed), 6)
            .unwrap();
        let c = t.scrape_one(&[7; 20], 6).unwrap();
        assert_eq!((c.seeders, c.leechers, c.downloaded), (2, 0, 1));
        assert_eq!((t.stats.completed, t.stats.livesync.completed), (0, 1));
        t.apply_synced(&change(6882, true, Event::Stopped), 7)
            .unwrap();
        let c = t.scrape_one(&[7; 20], 7).unwrap();
        assert_eq!((c.seeders, c.leechers), (1, 0));
        assert!(drained(&mut t).is_empty(), "sync records are never re-sent");
        assert_eq!(t.stats.livesync.records_received, 4);
        // No request was answered.
        assert_eq!(t.stats.udp[0].announce + t.stats.http[0].announce, 0);
    }

    /// rtorrent's download (issue #13): `started` with left>0, then a plain announce or a
    /// `stopped` with left=0, never `completed`. The node it announced to and the node that
    /// learns it by live sync count the same download once, and both mark the torrent for the
    /// database.
    #[test]
    fn a_download_without_completed_counts_once_on_every_node() {
        for last in [Event::Stopped, Event::None] {
            let mut a = Tracker::new(Policy::default());
            let mut b = Tracker::new(Policy::default());
            a.enable_sync(*b"aaaa");
            for t in [&mut a, &mut b] {
                t.track_completed();
                // A seeder on node B's side, so the torrent lives on whatever happens.
                t.apply_synced(
                    &PeerChange {
                        info_hash: [3; 20],
                        peer: "10.9.9.9:6881".parse().unwrap(),
                        seeder: true,
                        event: Event::None,
                    },
                    1,
                )
                .unwrap();
            }
            served(&mut a, &ann(3, 51413, 1 << 20, Event::Started), "10.0.0.7");
            served(&mut a, &ann(3, 51413, 0, last), "10.0.0.7");
            // A repeat (a seeder's re-announce, or a stop of a peer already gone): nothing.
            served(&mut a, &ann(3, 51413, 0, last), "10.0.0.7");
            for change in drained(&mut a) {
                b.apply_synced(&change, 2).unwrap();
            }
            let left = u32::from(last != Event::Stopped);
            for (node, t) in [("A", &mut a), ("B", &mut b)] {
                let c = t.scrape_one(&[3; 20], 3).unwrap();
                assert_eq!(
                    (c.seeders, c.leechers, c.downloaded),
                    (1 + left, 0, 1),
                    "{last:?} on {node}"
                );
                assert_eq!(t.take_completed(10), vec![[3; 20]], "{last:?} on {node}");
            }
            assert_eq!((a.stats.completed, a.stats.livesync.completed), (1, 0));
            assert_eq!((b.stats.completed, b.stats.livesync.completed), (0, 1));
        }
    }

    /// The record of an announce that counted a download says `completed`; a repeated
    /// `completed` of a seeder, which counts nothing, does not. So a node that missed the
    /// leecher's `started` counts the download of a plain left=0 announce too.
    #[test]
    fn records_say_completed_when_a_download_was_counted() {
        let mut a = Tracker::new(Policy::default());
        a.enable_sync(*b"aaaa");
        served(&mut a, &ann(4, 6881, 9, Event::Started), "10.0.0.1");
        served(&mut a, &ann(4, 6881, 0, Event::None), "10.0.0.1");
        served(&mut a, &ann(4, 6881, 0, Event::Completed), "10.0.0.1");
        let events: Vec<(bool, Event)> = drained(&mut a)
            .iter()
            .map(|c| (c.seeder, c.event))
            .collect();
        assert_eq!(
            events,
            [
                (false, Event::None),
                (true, Event::Completed),
                (true, Event::None)
            ]
        );
        // Node B only gets the second record: it counts the download as A did.
        let mut b = Tracker::new(Policy::default());
        b.apply_synced(
            &PeerChange {
                info_hash: [4; 20],
                peer: "10.0.0.1:6881".parse().unwrap(),
                seeder: true,
                event: Event::Completed,
            },
            11,
        )
        .unwrap();
        assert_eq!(b.scrape_one(&[4; 20], 11).unwrap().downloaded, 1);
        assert_eq!(a.scrape_one(&[4; 20], 11).unwrap().downloaded, 1);
    }

    #[test]
    fn refused_records_change_nothing() {
        let mut t = Tracker::new(Policy {
            max_torrents: 1,
            ..Policy::default()
        });
        let change = |h: u8, port| PeerChange {
            info_hash: [h; 20],
            peer: SocketAddr::new(ip("2001:db8::5"), port),
            seeder: false,
            event: Event::None,
        };
        assert_eq!(t.apply_synced(&change(1, 0), 1), Err(SyncRefusal::BadPeer));
        t.apply_synced(&change(1, 1), 1).unwrap();
        assert_eq!(
            t.apply_synced(&change(2, 1), 1),
            Err(SyncRefusal::Capacity(capacity::Refusal::TorrentLimit))
        );
        assert_eq!(t.torrents(), 1);
        assert_eq!(t.stats.livesync.records_refused, [0, 1, 1]);
        assert_eq!(SyncRefusal::BadPeer.reason(), "bad_peer");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let mut t = Tracker::new(Policy::default());
        t.enable_sync(*b"abcd");
        for i in 0..MAX_QUEUED + 3 {
            let a = ann(9, 1 + (i % 60_000) as u16, 1, Event::None);
            let from = format!("10.{}.{}.1", (i >> 8) & 255, i & 255);
            served(&mut t, &a, &from);
        }
        assert_eq!(t.sync.as_ref().unwrap().len(), MAX_QUEUED);
        assert_eq!(t.stats.livesync.queue_dropped, 3);
    }

    /// `tracker.workers 2`: worker 1's announces reach worker 0's drain once published, with
    /// the same tracker_id; nothing is sent twice.
    #[test]
    fn every_worker_publishes_to_the_queue_worker_0_drains() {
        let mut w0 = Tracker::new(Policy::default());
        w0.enable_sync(*b"abcd");
        let mut w1 = w0.worker(1);
        assert_eq!(w1.sync.as_ref().unwrap().tracker_id(), *b"abcd");
        served(&mut w1, &ann(1, 6881, 5, Event::None), "10.0.0.1");
        served(&mut w0, &ann(1, 6882, 5, Event::None), "10.0.0.2");
        let drain = |t: &mut Tracker| {
            let mut out = Vec::new();
            t.sync
                .as_mut()
                .unwrap()
                .take_all(&mut out, &mut t.stats.livesync);
            out.iter().map(|c| c.peer.port()).collect::<Vec<_>>()
        };
        // Not published yet: worker 0 sends only its own.
        assert_eq!(drain(&mut w0), [6882]);
        w1.publish_sync();
        assert!(w1.sync.as_ref().unwrap().is_empty());
        assert_eq!(drain(&mut w0), [6881]);
        assert!(drain(&mut w0).is_empty());
        // Both workers' announces went into the one store.
        assert_eq!(w0.scrape_one(&[1; 20], 10).unwrap().leechers, 2);
    }

    /// The bound holds over every worker: the shared queue never holds more than MAX_QUEUED;
    /// the worker whose records did not fit counts them.
    #[test]
    fn the_queue_bound_is_global_over_the_workers() {
        let mut w0 = Tracker::new(Policy::default());
        w0.enable_sync(*b"abcd");
        let mut w1 = w0.worker(1);
        for (t, n) in [(&mut w0, MAX_QUEUED - 10), (&mut w1, 25)] {
            for i in 0..n {
                let a = ann(9, 1 + (i % 60_000) as u16, 1, Event::None);
                let from = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                served(t, &a, &from);
            }
        }
        w0.publish_sync();
        w1.publish_sync();
        assert_eq!(
            (
                w0.stats.livesync.queue_dropped,
                w1.stats.livesync.queue_dropped
            ),
            (0, 15)
        );
        let mut out = Vec::new();
        w0.sync
            .as_mut()
            .unwrap()
            .take_all(&mut out, &mut w0.stats.livesync);
        assert_eq!(out.len(), MAX_QUEUED);
    }
}
