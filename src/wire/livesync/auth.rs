//! The MAC of the authenticated packet types: HMAC-SHA256 (RFC 2104) keyed with
//! `livesync.cluster.secret`, truncated to its first [`MAC_LEN`] bytes.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::MAC_LEN;

/// The cluster's shared secret (`livesync.cluster.secret`), ready to sign and check packets.
///
/// Holds the HMAC-SHA256 state keyed with the secret, so the key is hashed once, not per
/// packet. Its `Debug` output never shows the secret. Every node of the cluster needs the same
/// bytes; 16 random bytes or more make guessing it hopeless.
#[derive(Clone)]
pub struct Secret {
    keyed: Hmac<Sha256>,
}

impl Secret {
    /// A secret from its bytes (any length; HMAC hashes keys over 64 bytes).
    ///
    /// Returns `None` for an empty secret, which would authenticate nothing.
    pub fn new(secret: &[u8]) -> Option<Secret> {
        if secret.is_empty() {
            return None;
        }
        let keyed = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        Some(Secret { keyed })
    }

    /// The [`MAC_LEN`]-byte tag of `data`: the first 16 bytes of HMAC-SHA256(secret, data).
    pub fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }

    /// Whether `tag` is the tag of `data`, compared in constant time. A tag of any length
    /// other than [`MAC_LEN`] is refused.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        if tag.len() != MAC_LEN {
            return false;
        }
        let mut mac = self.keyed.clone();
        mac.update(data);
        mac.verify_truncated_left(tag).is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}
