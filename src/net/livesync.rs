//! Live sync sockets: a cluster of trackers that share their peers (opentracker's
//! `ot_livesync.c`), over multicast as opentracker, or over unicast for networks without it.
//!
//! The packets are [`crate::wire::livesync`]'s; what a record does to the store, and which
//! announces make records, is [`crate::service::sync`]'s. This module moves the bytes:
//!
//! - **Multicast** (no `livesync.cluster.peer` line, as opentracker): one UDP socket bound to
//!   `0.0.0.0:PORT` joins [`MULTICAST_GROUP`] on the interface of `livesync.cluster.listen`
//!   and sends to `224.0.23.5:PORT` from that interface address, TTL 1 (the packets never pass
//!   a router), multicast loop off (a node does not hear itself). opentracker always sends to
//!   port 9696, whatever port it listens on; here the configured port is used both ways.
//! - **Unicast** (`livesync.cluster.peer ADDRESS[:PORT]` lines): no group is joined; the same
//!   packets go to each peer. One socket per address family the peers need: the family of
//!   `livesync.cluster.listen` is bound to that address (default `0.0.0.0:9696`), the other
//!   to the unspecified address and the same port. A peer equal to our own bound address is
//!   skipped, so every node may share one list.
//!
//! **Sender**: worker 0 owns the sockets (with `tracker.workers N`, the process is one node
//! with one tracker_id). At the end of each of its loop turns the changes queued by the
//! announces of the turn ([`crate::service::sync::Outbox`]), and those the other workers moved
//! to the shared queue at the end of their turns, go into one packet per packet type (IPv4 and
//! IPv6 peers, authenticated or not: [`Settings::packet_type_for`]). A packet is sent as soon
//! as the next record would not fit, and any packet not empty is sent once
//! `livesync.cluster.max_delay` seconds (15, opentracker's `LIVESYNC_MAXDELAY`) have passed
//! since the previous packet; after a quiet spell the first record therefore goes out at once.
//! Worker 0 turns at least every 100 ms (its cleaning timer), so a record another worker
//! served waits at most that much more. Packets are at most 1472 bytes (1452 with an IPv6
//! peer), so they are never fragmented on a 1500-byte MTU: 52 records of 28 bytes, as
//! opentracker's, or 36 of 40. Records still queued at exit are sent, the other workers'
//! included (they stop, and move their last changes to the shared queue, before worker 0
//! sends).
//!
//! **Receiver**: a datagram is refused whole, and counted by reason, when its source address
//! is not named by a `livesync.cluster.node_ip` line, when it carries our own tracker_id
//! (our own packets, or forged ones), or when [`livesync::parse`] refuses it (short, unknown
//! type, partial record, missing or bad MAC). Each record of an accepted datagram is applied
//! with [`Tracker::apply_synced`]: an announce of that peer without a reply, never sent again.
//! At most [`MAX_DATAGRAMS_PER_TURN`] datagrams are read per socket per loop turn (a socket
//! left with more is served again on the next turn), so a flood costs bounded work per turn
//! like any other input.
//!
//! The counters are in [`crate::stats::Livesync`] (`/stats?mode=syncs`, `everything`,
//! `/metrics`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, ConfigError};
use crate::service::Tracker;
use crate::service::sync::PeerChange;
use crate::types::Event;
use crate::wire::livesync::{
    self, Builder, Fill, Flags, MULTICAST_GROUP, PacketType, Record, Secret, Settings, TrackerId,
};

/// Datagrams read per socket per loop turn before the other work gets its turn.
/// 16 full packets are 832 records (28-byte records), against up to 1024 datagrams a UDP
/// listener serves per turn: a flood from a node cannot take most of the loop.
pub const MAX_DATAGRAMS_PER_TURN: usize = 16;

/// The receive buffer, in bytes: the largest UDP payload fits whole, so a datagram is never
/// cut (a long one is refused by its content, not by its length).
pub const RECV_SIZE: usize = 65_536;

/// The largest datagram sent to IPv4 destinations only, in bytes: 1500-byte MTU - 20 IPv4 -
/// 8 UDP header, so packets are never fragmented.
pub const MAX_PACKET_V4: usize = 1472;

/// The largest datagram sent when an IPv6 peer is among the destinations: 1500 - 40 - 8.
pub const MAX_PACKET_V6: usize = 1452;

/// Where packets go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// To [`MULTICAST_GROUP`] at the listen port, joined on the listen address's interface.
    Multicast,
    /// To each of these addresses (`livesync.cluster.peer`), IPv4 or IPv6.
    Unicast(Vec<SocketAddr>),
}

/// The live sync settings, checked (from the `livesync.cluster.*` directives).
#[derive(Clone, Debug)]
pub struct LivesyncConfig {
    /// `livesync.cluster.listen`: the interface address (multicast) or the address bound
    /// (unicast), and the port packets are received on (and, multicast, sent to).
    pub listen: SocketAddr,
    /// Multicast or unicast, and the unicast peers.
    pub mode: Mode,
    /// `livesync.cluster.node_ip`: sources whose packets are applied.
    pub node_ips: Vec<IpNet>,
    /// Record size of type 0 and the secret (`livesync.cluster.v6_records`, `.secret`).
    pub settings: Settings,
    /// `livesync.cluster.max_delay`: longest time between two packets while records wait.
    pub max_delay: Duration,
    /// `SO_RCVBUF` to ask for (`udp.recv_buffer`); 0 keeps the OS default.
    pub recv_buffer: usize,
}

/// The error of a `livesync.cluster.*` value that cannot work, in the config's format.
fn error(directive: &str, message: String) -> ConfigError {
    ConfigError {
        origin: "configuration".to_owned(),
        line: None,
        directive: directive.to_owned(),
        message,
    }
}

impl LivesyncConfig {
    /// The live sync settings of `cfg`: `None` when live sync is off (no
    /// `livesync.cluster.listen` and no `livesync.cluster.peer`), plus warnings for `main` to
    /// log (no `node_ip` while on: nothing will be applied; sync directives while off; a short
    /// secret).
    ///
    /// Errors: a listen address that is a multicast address (opentracker's sample config
    /// shows one, but it must be this node's interface address), an IPv6 listen address
    /// without peers (IPv6 multicast is not supported), a peer that is unspecified, multicast
    /// or on port 0.
    pub fn from_config(cfg: &Config) -> Result<(Option<LivesyncConfig>, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let on = cfg.livesync_listen.is_some() || !cfg.livesync_peers.is_empty();
        if !on {
            let set = !cfg.livesync_node_ips.is_empty()
                || cfg.livesync_secret.is_some()
                || cfg.livesync_v6_records;
            if set {
                warnings.push(
                    "configuration: livesync.cluster.*: live sync is off (no \
                     livesync.cluster.listen or livesync.cluster.peer); its other settings \
                     are ignored"
                        .to_owned(),
                );
            }
            return Ok((None, warnings));
        }
        let listen = cfg.livesync_listen.unwrap_or(SocketAddr::new(
            Ipv4Addr::UNSPECIFIED.into(),
            crate::config::LIVESYNC_DEFAULT_PORT,
        ));
        if listen.ip().is_multicast() {
            return Err(error(
                "livesync.cluster.listen",
                format!(
                    "{} is a multicast address; give this node's interface address (the \
                     group is always {MULTICAST_GROUP})",
                    listen.ip()
                ),
            ));
        }
        let mode = if cfg.livesync_peers.is_empty() {
            if listen.is_ipv6() {
                return Err(error(
                    "livesync.cluster.listen",
                    format!(
                        "{} is an IPv6 address: live sync multicast is IPv4 only; add \
                         livesync.cluster.peer lines for unicast",
                        listen.ip()
                    ),
                ));
            }
            Mode::Multicast
        } else {
            let mut peers = Vec::new();
            for peer in &cfg.livesync_peers {
                let ip = peer.ip().to_canonical();
                if ip.is_unspecified() || ip.is_multicast() || peer.port() == 0 {
                    return Err(error(
                        "livesync.cluster.peer",
                        format!("{peer} cannot receive unicast live sync packets"),
                    ));
                }
                peers.push(SocketAddr::new(ip, peer.port()));
            }
            Mode::Unicast(peers)
        };
        let secret = match &cfg.livesync_secret {
            None => None,
            Some(text) => {
                if text.len() < 16 {
                    warnings.push(
                        "configuration: livesync.cluster.secret: shorter than 16 characters; \
                         a long random secret is much harder to guess"
                            .to_owned(),
                    );
                }
                let secret = Secret::new(text.as_bytes()).ok_or_else(|| {
                    error("livesync.cluster.secret", "the secret is empty".to_owned())
                })?;
                Some(secret)
            }
        };
        if cfg.livesync_node_ips.is_empty() {
            warnings.push(
                "configuration: livesync.cluster.node_ip: none given, so every live sync \
                 packet received is refused (this node only sends)"
                    .to_owned(),
            );
        }
        Ok((
            Some(LivesyncConfig {
                listen,
                mode,
                node_ips: cfg.livesync_node_ips.clone(),
                settings: Settings {
                    v6_records: cfg.livesync_v6_records,
                    secret,
                },
                max_delay: Duration::from_secs(u64::from(cfg.livesync_max_delay)),
                recv_buffer: cfg.udp.recv_buffer,
            }),
            warnings,
        ))
    }

    /// The addresses to bind: multicast, `0.0.0.0:PORT`; unicast, one per family the peers
    /// need (the listen address for its family, the unspecified address of the other family
    /// with the same port).
    fn bind_addresses(&self) -> Vec<SocketAddr> {
        let port = self.listen.port();
        match &self.mode {
            Mode::Multicast => vec![SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)],
            Mode::Unicast(peers) => {
                let mut out = vec![self.listen];
                let other_v6 = !self.listen.is_ipv6();
                if peers.iter().any(|p| p.is_ipv6() == other_v6) {
                    let ip: IpAddr = if other_v6 {
                        Ipv6Addr::UNSPECIFIED.into()
                    } else {
                        Ipv4Addr::UNSPECIFIED.into()
                    };
                    out.push(SocketAddr::new(ip, port));
                }
                out
            }
        }
    }
}

/// Binds the live sync sockets of `cfg` (before privileges are dropped), non-blocking, and in
/// multicast mode joins the group (TTL 1, loop off, sent from the listen address's interface).
///
/// Errors name the address and the step that failed.
pub fn bind(cfg: &LivesyncConfig) -> io::Result<Vec<(std::net::UdpSocket, SocketAddr)>> {
    let mut out = Vec::new();
    for addr in cfg.bind_addresses() {
        let socket = bind_one(cfg, addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind livesync {addr}: {e}")))?;
        let local = socket.local_addr()?;
        out.push((socket, local));
    }
    Ok(out)
}

fn bind_one(cfg: &LivesyncConfig, addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    if cfg.recv_buffer > 0 {
        // Best effort: the kernel caps it at rmem_max.
        let _ = socket.set_recv_buffer_size(cfg.recv_buffer);
    }
    if cfg.mode == Mode::Multicast {
        // As opentracker: several processes of one host may share the group's port.
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        let IpAddr::V4(interface) = cfg.listen.ip() else {
            return Err(io::Error::other(
                "multicast needs an IPv4 interface address",
            ));
        };
        socket.join_multicast_v4(&MULTICAST_GROUP, &interface)?;
        socket.set_multicast_if_v4(&interface)?;
        socket.set_multicast_ttl_v4(1)?;
        socket.set_multicast_loop_v4(false)?;
    } else {
        socket.bind(&addr.into())?;
    }
    Ok(socket.into())
}

/// One packet being filled, of one packet type.
struct Pending {
    builder: Builder,
    /// When its first record was added (for the lag counters).
    since: Option<Instant>,
}

/// The live sync sockets, the packets being filled, and what the receiver checks.
pub struct Livesync {
    sockets: Vec<UdpSocket>,
    /// More datagrams may be queued on socket i: read again without waiting for readiness.
    pending_reads: Vec<bool>,
    /// Destinations: (socket index, address).
    targets: Vec<(usize, SocketAddr)>,
    node_ips: Vec<IpNet>,
    settings: Settings,
    tracker_id: TrackerId,
    packets: Vec<Pending>,
    limit: usize,
    max_delay: Duration,
    next_packet: Instant,
    first_token: usize,
    changes: Vec<PeerChange>,
    recv_buf: Box<[u8]>,
    datagram: Vec<u8>,
}

impl Livesync {
    /// Takes over the sockets [`bind`] made for `cfg`, draws a random tracker_id and turns
    /// live sync on in `tracker` ([`Tracker::enable_sync`]). Logs the tracker_id and the
    /// destinations.
    ///
    /// Errors: the OS random source failing.
    pub fn new(
        sockets: Vec<(std::net::UdpSocket, SocketAddr)>,
        cfg: &LivesyncConfig,
        tracker: &mut Tracker,
        now: Instant,
    ) -> io::Result<Livesync> {
        let mut tracker_id = [0u8; 4];
        getrandom::fill(&mut tracker_id).map_err(|e| io::Error::other(e.to_string()))?;
        let locals: Vec<SocketAddr> = sockets.iter().map(|(_, a)| *a).collect();
        let socket_for = |v6: bool| locals.iter().position(|a| a.is_ipv6() == v6);
        let mut targets = Vec::new();
        match &cfg.mode {
            Mode::Multicast => {
                targets.push((
                    0,
                    SocketAddr::new(MULTICAST_GROUP.into(), cfg.listen.port()),
                ));
            }
            Mode::Unicast(peers) => {
                for peer in peers {
                    if locals.contains(peer) {
                        log::info!("livesync: peer {peer} is this node: skipped");
                        continue;
                    }
                    if let Some(i) = socket_for(peer.is_ipv6()) {
                        targets.push((i, *peer));
                    }
                }
            }
        }
        let limit = if targets.iter().any(|(_, a)| a.is_ipv6()) {
            MAX_PACKET_V6
        } else {
            MAX_PACKET_V4
        };
        for addr in &locals {
            log::info!("livesync: bound udp {addr}");
        }
        let id: String = tracker_id.iter().map(|b| format!("{b:02x}")).collect();
        let dest: Vec<String> = targets.iter().map(|(_, a)| a.to_string()).collect();
        log::info!(
            "livesync: tracker id {id}, {} to {}, {} node_ip, {}",
            match cfg.mode {
                Mode::Multicast => format!("multicast on {}", cfg.listen.ip()),
                Mode::Unicast(_) => "unicast".to_owned(),
            },
            if dest.is_empty() {
                "nobody".to_owned()
            } else {
                dest.join(" ")
            },
            cfg.node_ips.len(),
            if cfg.settings.secret.is_some() {
                "authenticated"
            } else {
                "unauthenticated (opentracker's packets)"
            }
        );
        tracker.enable_sync(tracker_id);
        let n = sockets.len();
        Ok(Livesync {
            sockets: sockets
                .into_iter()
                .map(|(s, _)| UdpSocket::from_std(s))
                .collect(),
            pending_reads: vec![false; n],
            targets,
            node_ips: cfg.node_ips.clone(),
            settings: cfg.settings.clone(),
            tracker_id,
            packets: Vec::new(),
            limit,
            max_delay: cfg.max_delay,
            next_packet: now,
            first_token: 0,
            changes: Vec::new(),
            recv_buf: vec![0u8; RECV_SIZE].into_boxed_slice(),
            datagram: Vec::with_capacity(MAX_PACKET_V4),
        })
    }

    /// This process's tracker_id.
    pub fn tracker_id(&self) -> TrackerId {
        self.tracker_id
    }

    /// Registers the sockets for readability with tokens `first_token..first_token + n`.
    pub fn register(&mut self, registry: &Registry, first_token: usize) -> io::Result<()> {
        self.first_token = first_token;
        for (i, s) in self.sockets.iter_mut().enumerate() {
            registry.register(s, Token(first_token + i), Interest::READABLE)?;
        }
        Ok(())
    }

    /// Whether `token` is one of the live sync sockets.
    pub fn owns(&self, token: usize) -> bool {
        (self.first_token..self.first_token + self.sockets.len()).contains(&token)
    }

    /// Whether a socket still has datagrams to read: the loop should not sleep.
    pub fn runnable(&self) -> bool {
        self.pending_reads.iter().any(|&p| p)
    }

    /// When the loop must wake up to send a packet that is waiting; `None` when none is.
    pub fn next_timer(&self) -> Option<Instant> {
        self.packets
            .iter()
            .any(|p| !p.builder.is_empty())
            .then_some(self.next_packet)
    }

    /// A readiness event for `token`: reads up to [`MAX_DATAGRAMS_PER_TURN`] datagrams and
    /// applies them.
    pub fn readable(&mut self, token: usize, tracker: &mut Tracker, now: u32) {
        if self.owns(token) {
            self.receive(token - self.first_token, tracker, now);
        }
    }

    /// End of a loop turn: reads the sockets left with datagrams, moves the changes the turn's
    /// announces queued into packets, and sends the packets that are full or due.
    pub fn step(&mut self, tracker: &mut Tracker, now: u32, instant: Instant) {
        for i in 0..self.sockets.len() {
            if self.pending_reads[i] {
                self.receive(i, tracker, now);
            }
        }
        self.collect(tracker, instant);
        let waiting = self.packets.iter().any(|p| !p.builder.is_empty());
        if waiting && instant >= self.next_packet {
            self.send_all(tracker, instant);
        }
    }

    /// Sends whatever is waiting (at exit).
    pub fn flush(&mut self, tracker: &mut Tracker) {
        let now = Instant::now();
        self.collect(tracker, now);
        self.send_all(tracker, now);
    }

    /// Moves the queued changes (this worker's and those the other workers published) into
    /// packets; sends each packet that fills up.
    fn collect(&mut self, tracker: &mut Tracker, instant: Instant) {
        let Some(outbox) = tracker.sync.as_mut() else {
            return;
        };
        let mut changes = std::mem::take(&mut self.changes);
        outbox.take_all(&mut changes, &mut tracker.stats.livesync);
        for change in &changes {
            let record = Record {
                info_hash: change.info_hash,
                peer: change.peer,
                flags: flags_of(change),
            };
            let packet_type = self.settings.packet_type_for(change.peer.is_ipv6());
            let Some(i) = self.packet_index(packet_type) else {
                continue;
            };
            let p = &mut self.packets[i];
            if p.builder.is_empty() {
                p.since = Some(instant);
            }
            match p.builder.push(&record) {
                Ok(Fill::Room) => {}
                Ok(Fill::Full) => self.send_packet(i, tracker, instant),
                Err(e) => log::debug!("livesync: record not sent: {e}"),
            }
        }
        changes.clear();
        self.changes = changes;
    }

    /// The packet being filled for `packet_type`, made on first use.
    fn packet_index(&mut self, packet_type: PacketType) -> Option<usize> {
        if let Some(i) = self
            .packets
            .iter()
            .position(|p| p.builder.packet_type() == packet_type)
        {
            return Some(i);
        }
        let builder = Builder::new(self.tracker_id, packet_type, &self.settings)
            .and_then(|b| b.with_limit(self.limit));
        match builder {
            Ok(builder) => {
                self.packets.push(Pending {
                    builder,
                    since: None,
                });
                Some(self.packets.len() - 1)
            }
            Err(e) => {
                log::warn!("livesync: cannot build {packet_type:?} packets: {e}");
                None
            }
        }
    }

    /// Sends every packet that is not empty, and restarts the delay.
    fn send_all(&mut self, tracker: &mut Tracker, instant: Instant) {
        for i in 0..self.packets.len() {
            if !self.packets[i].builder.is_empty() {
                self.send_packet(i, tracker, instant);
            }
        }
    }

    /// Sends packet `i` to every destination, counts it and empties it.
    fn send_packet(&mut self, i: usize, tracker: &mut Tracker, instant: Instant) {
        let stats = &mut tracker.stats.livesync;
        let p = &mut self.packets[i];
        self.datagram.clear();
        p.builder.emit(&mut self.datagram);
        stats.records_sent += p.builder.len() as u64;
        if let Some(since) = p.since.take() {
            let lag = instant.saturating_duration_since(since).as_millis() as u64;
            stats.lag_last_ms = lag;
            stats.lag_max_ms = stats.lag_max_ms.max(lag);
        }
        p.builder.clear();
        for &(s, addr) in &self.targets {
            match self.sockets[s].send_to(&self.datagram, addr) {
                Ok(_) => stats.packets_sent += 1,
                Err(e) => {
                    stats.send_failed += 1;
                    log::debug!("livesync: send to {addr}: {e}");
                }
            }
        }
        self.next_packet = instant + self.max_delay;
    }

    /// Reads and applies up to [`MAX_DATAGRAMS_PER_TURN`] datagrams of socket `i`.
    fn receive(&mut self, i: usize, tracker: &mut Tracker, now: u32) {
        self.pending_reads[i] = false;
        for _ in 0..MAX_DATAGRAMS_PER_TURN {
            let (len, src) = match self.sockets[i].recv_from(&mut self.recv_buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("livesync: recv: {e}");
                    return;
                }
            };
            let data = &self.recv_buf[..len.min(RECV_SIZE)];
            handle_datagram(
                data,
                src,
                &self.node_ips,
                &self.settings,
                self.tracker_id,
                tracker,
                now,
            );
        }
        self.pending_reads[i] = true;
    }
}

/// The flags byte of a change: seeding, completed (seeders only), stopped.
fn flags_of(change: &PeerChange) -> Flags {
    let mut flags = Flags::LEECHING;
    if change.seeder {
        flags = flags | Flags::SEEDING;
    }
    match change.event {
        Event::Stopped => flags = flags | Flags::STOPPED,
        Event::Completed if change.seeder => flags = flags | Flags::COMPLETED,
        _ => {}
    }
    flags
}

/// The change a received record asks for: stopped removes; completed counts only with seeding
/// (as opentracker); the age byte and FROM_SYNC are ignored.
pub fn change_of(record: &Record) -> PeerChange {
    let flags = record.flags;
    let event = if flags.stopped() {
        Event::Stopped
    } else if flags.completed() && flags.seeding() {
        Event::Completed
    } else {
        Event::None
    };
    PeerChange {
        info_hash: record.info_hash,
        peer: record.peer,
        seeder: flags.seeding(),
        event,
    }
}

/// Whether `ip` (IPv4-mapped read as IPv4) is named by a `livesync.cluster.node_ip` network.
fn is_node(node_ips: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    node_ips.iter().any(|net| net.contains(&ip))
}

/// One datagram received from `src`: refused whole (and counted by reason) or applied record
/// by record. Returns the records applied.
pub fn handle_datagram(
    data: &[u8],
    src: SocketAddr,
    node_ips: &[IpNet],
    settings: &Settings,
    own_id: TrackerId,
    tracker: &mut Tracker,
    now: u32,
) -> usize {
    let stats = &mut tracker.stats.livesync;
    if !is_node(node_ips, src.ip()) {
        stats.refuse_packet("not_node");
        return 0;
    }
    if livesync::peek_tracker_id(data) == Some(own_id) {
        stats.refuse_packet("own_id");
        return 0;
    }
    let packet = match livesync::parse(data, settings) {
        Ok(p) => p,
        Err(e) => {
            stats.refuse_packet(e.reason());
            return 0;
        }
    };
    stats.packets_received += 1;
    let mut applied = 0;
    for record in packet.records.iter() {
        if tracker.apply_synced(&change_of(&record), now).is_ok() {
            applied += 1;
        }
    }
    applied
}

#[cfg(test)]
mod tests;
