//! Plain value types shared by `wire/` (which parses them) and `swarm/` (which stores them).
//! This module imports nothing from the crate, so both layers may depend on it.

/// A torrent's info_hash: the SHA-1 of its bencoded `info` dictionary, 20 raw bytes (BEP 3).
pub type InfoHash = [u8; 20];

/// A peer_id as sent by the client, 20 raw bytes (BEP 3). Never stored by the tracker.
pub type PeerId = [u8; 20];

/// The `event` of an announce (BEP 3; `paused` from BEP 21 is read as [`Event::None`]).
///
/// The discriminants are BEP 15's numbers for the UDP `event` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Event {
    /// A regular re-announce (absent, empty or `paused`).
    #[default]
    None = 0,
    /// The download finished; counted in `downloaded` once per peer (with `left=0`).
    Completed = 1,
    /// The first announce of a session.
    Started = 2,
    /// The peer leaves the swarm; it is removed at once.
    Stopped = 3,
}
