//! Plain value types shared across the layers: `wire/` parses them, `swarm/` stores them,
//! `service/` and `stats/` count by them. A leaf: this module imports nothing from the crate,
//! so every layer may depend on it.

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

/// Address family of a request or a peer: BEP 7 keeps IPv4 and IPv6 swarms apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: peers are 6 bytes in compact form.
    V4 = 0,
    /// IPv6: peers are 18 bytes in compact form.
    V6 = 1,
}

impl Family {
    /// The label used in metrics output (`"ipv4"`, `"ipv6"`).
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}
