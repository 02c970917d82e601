//! Stateless UDP connection ids (BEP 15, "connect").
//!
//! A BEP 15 client first sends a connect request and gets a 64-bit connection_id, which it
//! must then send in every announce and scrape. We keep no table of issued ids: an id is
//! recomputed from the request itself,
//!
//! ```text
//! window = now / WINDOW_SECS                                  (2-minute windows)
//! id     = SipHash-2-4(key, window as u32 big-endian (4 bytes)
//!                           || client IP as 16 bytes)         (IPv4 as v4-mapped IPv6)
//! ```
//!
//! where `key` is 128 random bits drawn from the OS at start-up. An id is accepted if it
//! equals the id of the current window or of the previous one, so an id obtained at the
//! start of a window is good for 4 minutes and one obtained at its very end for just over
//! 2 minutes (BEP 15 only promises clients one minute). Unlike opentracker, whose ids depend
//! on the IP alone and never expire, ours expire; the accepted range is still wide enough
//! for clients that reuse an id a little past BEP 15's minute.
//!
//! # Why this is safe
//!
//! * **An off-path attacker cannot forge an id.** SipHash-2-4 is a keyed pseudo-random
//!   function: without the 128-bit key, the id for an (IP, window) pair it has never seen is
//!   indistinguishable from 64 random bits, and seeing ids for its own addresses tells it
//!   nothing about others. To use an address it does not receive packets at (a spoofed
//!   source), it must guess: each guess succeeds with probability 2 in 2^64 (two windows are
//!   accepted), far out of reach at any packet rate.
//! * **A leaked id dies quickly.** Ids rotate with the window, so an id seen on the path (or
//!   logged) stops working at most 4 minutes after it was issued. Restarting the tracker
//!   draws a new key and invalidates every id.
//! * **The id is bound to the IP address, not the port.** The id proves that the client can
//!   receive packets sent to that IP address, which is what matters against spoofing. The
//!   port is not part of that proof: the reply always goes to the source address and port
//!   of the packet being answered. Binding to the port would only break honest clients:
//!   NATs remap source ports between packets, and clients (libtorrent, uTorrent) reuse one
//!   id across sockets, and trackers that reject them draw complaints from operators. An
//!   IPv4 client gets the same id whether it reaches an IPv4 socket or a dual-stack IPv6
//!   socket (as `::ffff:a.b.c.d`).
//! * **No state, nothing to exhaust.** Nothing is stored per client: a flood of connect
//!   requests costs one SipHash and one 16-byte reply each and cannot fill any table or
//!   evict a real client's id.
//! * **No amplification.** A connect reply (16 bytes) is no larger than the connect request
//!   (16 bytes). Announce and scrape replies, which can be much larger than their requests,
//!   are only sent after the request's connection_id proves that its source address can
//!   receive our packets, so they cannot be reflected at a victim. (That check is the
//!   UDP front's job: [`super::udp::UdpHandler`] calls [`ConnectionIds::check`] before
//!   answering.)
//!
//! The comparison XOR-folds the candidate ids and tests the result against zero without
//! branching on the bytes, so its timing does not reveal how many bits of a guess were right.

use std::fmt;
use std::hash::Hasher;
use std::io;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

/// Length in seconds of one connection_id window: ids change every `WINDOW_SECS` and are
/// accepted in their window and the next one (so for 2 to 4 minutes).
pub const WINDOW_SECS: u32 = 120;

/// The connection_id maker and checker: a 128-bit SipHash key. Holds no per-client state.
///
/// `Debug` does not print the key.
#[derive(Clone)]
pub struct ConnectionIds {
    key: [u8; 16],
}

impl ConnectionIds {
    /// A maker with a fresh 128-bit key from the operating system's random source.
    ///
    /// Errors: the OS random source failed (`getrandom`), as an `io::Error`.
    pub fn new_random() -> io::Result<Self> {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(|e| match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::other(format!("getrandom: {e}")),
        })?;
        Ok(Self::with_key(key))
    }

    /// A maker with a given key (for tests, or several loops sharing one key so that an id
    /// issued by one is accepted by the others).
    pub fn with_key(key: [u8; 16]) -> Self {
        ConnectionIds { key }
    }

    /// The connection_id for `ip` in the window that contains `now`.
    ///
    /// `now` is in seconds from any fixed origin (e.g. since start-up); the window is
    /// `now / WINDOW_SECS`. IPv4 addresses and their v4-mapped IPv6 forms give the same id.
    pub fn make(&self, ip: IpAddr, now: u32) -> u64 {
        self.id_for_window(ip, now / WINDOW_SECS)
    }

    /// Whether `id` is the connection_id of `ip` for the window of `now` or the one before
    /// it (BEP 15 "connect"; see the module docs for the bounds). The port is deliberately not
    /// an input. Takes the same time whatever `id` is.
    ///
    /// In window 0 there is no previous window: the second candidate is window number
    /// `u32::MAX`, which [`make`](Self::make) never produces (its largest window is
    /// `u32::MAX / WINDOW_SECS`).
    pub fn check(&self, id: u64, ip: IpAddr, now: u32) -> bool {
        let window = now / WINDOW_SECS;
        let current = id ^ self.id_for_window(ip, window);
        let previous = id ^ self.id_for_window(ip, window.wrapping_sub(1));
        // Both candidates are always computed; fold each difference to a 0/1 flag and combine
        // without short-circuiting.
        (is_zero(current) | is_zero(previous)) == 1
    }

    fn id_for_window(&self, ip: IpAddr, window: u32) -> u64 {
        let ip16 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(&window.to_be_bytes());
        hasher.write(&ip16);
        hasher.finish()
    }
}

/// 1 if `x == 0`, else 0, without a data-dependent branch.
fn is_zero(x: u64) -> u8 {
    // `x | -x` has its top bit set exactly when x != 0.
    let nonzero = (x | x.wrapping_neg()) >> 63;
    (nonzero ^ 1) as u8
}

impl fmt::Debug for ConnectionIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionIds")
            .field("key", &"<secret>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const KEY: [u8; 16] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ];

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn ids() -> ConnectionIds {
        ConnectionIds::with_key(KEY)
    }

    #[test]
    fn siphash_2_4_reference_vector() {
        // The SipHash paper's test vector: key 00..0f, message 00..0e (15 bytes).
        let message: Vec<u8> = (0u8..15).collect();
        let mut h = SipHasher24::new_with_key(&KEY);
        h.write(&message);
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn id_is_siphash_of_window_and_mapped_ip() {
        // window 3 (now = 360..479), 192.0.2.1 as ::ffff:192.0.2.1
        let mut input = vec![0, 0, 0, 3];
        input.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
        let mut h = SipHasher24::new_with_key(&KEY);
        h.write(&input);
        assert_eq!(ids().make(v4(192, 0, 2, 1), 400), h.finish());
    }

    #[test]
    fn same_ip_same_window_same_id() {
        let ids = ids();
        let ip = v4(127, 0, 0, 2);
        let a = ids.make(ip, 0);
        assert_eq!(ids.make(ip, 0), a);
        assert_eq!(ids.make(ip, 119), a);
        assert!(ids.check(a, ip, 0));
        assert!(ids.check(a, ip, 119));
    }

    #[test]
    fn different_ip_different_id() {
        let ids = ids();
        let a = ids.make(v4(127, 0, 0, 2), 1000);
        let b = ids.make(v4(127, 0, 0, 3), 1000);
        assert_ne!(a, b);
        assert!(!ids.check(a, v4(127, 0, 0, 3), 1000));
        let c = ids.make(IpAddr::V6(Ipv6Addr::LOCALHOST), 1000);
        assert_ne!(a, c);
    }

    #[test]
    fn ipv4_and_v4_mapped_ipv6_share_an_id() {
        // A dual-stack socket sees an IPv4 client as ::ffff:a.b.c.d: same client, same id.
        let ids = ids();
        let plain = v4(198, 51, 100, 7);
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        let id = ids.make(plain, 5000);
        assert_eq!(ids.make(mapped, 5000), id);
        assert!(ids.check(id, mapped, 5000));
        // The IPv4-compatible form (::a.b.c.d, deprecated) is a different address.
        let compat = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_compatible());
        assert_ne!(ids.make(compat, 5000), id);
    }

    #[test]
    fn window_boundaries_are_exact() {
        let ids = ids();
        let ip = v4(10, 1, 2, 3);
        let w0 = ids.make(ip, 0);
        assert_eq!(ids.make(ip, 119), w0);
        let w1 = ids.make(ip, 120);
        assert_ne!(w1, w0);
        assert_eq!(ids.make(ip, 239), w1);
        let w2 = ids.make(ip, 240);
        assert_ne!(w2, w1);
        assert_eq!(ids.make(ip, 359), w2);
        assert_ne!(ids.make(ip, 360), w2);

        // An id from window 0 is good through 239 s and dead from 240 s.
        assert!(ids.check(w0, ip, 0));
        assert!(ids.check(w0, ip, 119));
        assert!(ids.check(w0, ip, 120));
        assert!(ids.check(w0, ip, 239));
        assert!(!ids.check(w0, ip, 240));
        assert!(!ids.check(w0, ip, 359));
        // An id from window 1 is good from 120 s through 359 s.
        assert!(!ids.check(w1, ip, 119));
        assert!(ids.check(w1, ip, 120));
        assert!(ids.check(w1, ip, 359));
        assert!(!ids.check(w1, ip, 360));
    }

    #[test]
    fn previous_window_accepted_two_back_rejected() {
        let ids = ids();
        let ip = IpAddr::V6("2001:db8::42".parse().unwrap());
        let issued_at = 1_000_000;
        let id = ids.make(ip, issued_at);
        assert!(ids.check(id, ip, issued_at + WINDOW_SECS));
        assert!(!ids.check(id, ip, issued_at + 2 * WINDOW_SECS));
        // Ids from the future (a later window) are not accepted either.
        assert!(!ids.check(id, ip, issued_at - WINDOW_SECS));
    }

    #[test]
    fn forged_ids_rejected() {
        let ids = ids();
        let ip = v4(203, 0, 113, 9);
        let now = 77_777;
        let good = ids.make(ip, now);
        for forged in [
            0,
            u64::MAX,
            good ^ 1,
            good ^ (1 << 63),
            good.wrapping_add(1),
        ] {
            assert!(!ids.check(forged, ip, now), "{forged:#x}");
        }
        // Pseudo-random guesses (xorshift): none of 10 000 hits.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert!(!ids.check(x, ip, now));
        }
    }

    #[test]
    fn different_keys_different_ids() {
        let ip = v4(127, 0, 0, 1);
        let mut other = KEY;
        other[15] ^= 1;
        let a = ConnectionIds::with_key(KEY).make(ip, 0);
        let b = ConnectionIds::with_key(other).make(ip, 0);
        assert_ne!(a, b);
        assert!(!ConnectionIds::with_key(other).check(a, ip, 0));
    }

    #[test]
    fn random_keys_differ_and_work() {
        let a = ConnectionIds::new_random().unwrap();
        let b = ConnectionIds::new_random().unwrap();
        let ip = v4(127, 0, 0, 1);
        assert_ne!(a.make(ip, 0), b.make(ip, 0));
        assert!(a.check(a.make(ip, 42), ip, 42));
    }

    #[test]
    fn window_zero_previous_wraps_harmlessly() {
        let ids = ids();
        let ip = v4(127, 0, 0, 1);
        let last_window_id = ids.make(ip, u32::MAX);
        // u32::MAX / 120 = 35791394; wrapping_sub(1) of window 0 is u32::MAX, not that window.
        assert!(!ids.check(last_window_id, ip, 0));
        assert!(ids.check(ids.make(ip, 0), ip, 0));
    }

    #[test]
    fn is_zero_flags() {
        assert_eq!(is_zero(0), 1);
        assert_eq!(is_zero(1), 0);
        assert_eq!(is_zero(1 << 63), 0);
        assert_eq!(is_zero(u64::MAX), 0);
    }

    #[test]
    fn debug_hides_key() {
        let text = format!("{:?}", ids());
        assert!(text.contains("<secret>"));
        assert!(!text.contains("15"));
    }
}
