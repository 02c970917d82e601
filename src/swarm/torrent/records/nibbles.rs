//! The packed META nibbles (seeder bit + 3-bit age stamp, two per byte) and the address order
//! of the records: safe helpers over byte slices, used by [`super::PeerVec`] and the selection.

use super::SEEDER;

/// An integer with the order of the address bytes (memcmp order): the bytes big-endian in a
/// u128, for addresses of up to 16 bytes, else the first 16 bytes with the rest after them. One
/// integer comparison instead of a `memcmp` call per step of a binary search.
#[inline]
pub(super) fn sort_key<const N: usize>(a: &[u8; N]) -> (u128, u32) {
    const { assert!(N <= 20, "addresses of up to 20 bytes") };
    let mut hi = [0u8; 16];
    let mut lo = [0u8; 4];
    let n = N.min(16);
    hi[..n].copy_from_slice(&a[..n]);
    if N > 16 {
        let m = (N - 16).min(4);
        lo[..m].copy_from_slice(&a[16..16 + m]);
    }
    (u128::from_be_bytes(hi), u32::from_be_bytes(lo))
}

/// The nibble of record `i` in packed META bytes (0 when out of range).
#[inline]
pub fn nibble(metas: &[u8], i: usize) -> u8 {
    metas.get(i / 2).map_or(0, |b| (b >> ((i & 1) * 4)) & 0xf)
}

/// True when the nibble of record `i` has any of the META `bits` (e.g. [`SEEDER`]) set; false
/// when out of range. Tests the bits in place, without extracting the nibble (the selection
/// calls this for every pick).
#[inline]
pub fn nibble_has(metas: &[u8], i: usize, bits: u8) -> bool {
    metas
        .get(i >> 1)
        .is_some_and(|b| b & ((bits & 0xf) << ((i & 1) << 2)) != 0)
}

/// The first record in `from..end` whose SEEDER bit is `seeder` (a seeder when true, a leecher
/// when false), `None` if there is none. 16 records per step (one `u64` of nibbles) where
/// aligned, so a scan of a whole chunk of a big swarm costs about a hundred steps.
pub(crate) fn next_with_seeder_bit(
    metas: &[u8],
    from: usize,
    end: usize,
    seeder: bool,
) -> Option<usize> {
    let end = end.min(metas.len() * 2);
    let hit = |i: usize| nibble_has(metas, i, SEEDER) == seeder;
    let mut i = from;
    while i < end && i % 16 != 0 {
        if hit(i) {
            return Some(i);
        }
        i += 1;
    }
    // The SEEDER bit of every nibble: bit 3 of each half byte.
    const MASK: u64 = 0x8888_8888_8888_8888;
    while i + 16 <= end {
        let Some(bytes) = metas
            .get(i / 2..i / 2 + 8)
            .and_then(|b| b.first_chunk::<8>())
        else {
            break;
        };
        let w = u64::from_le_bytes(*bytes);
        let hits = if seeder { w & MASK } else { !w & MASK };
        if hits != 0 {
            // Byte k of the word holds records 2k (low half) and 2k + 1 (high half).
            return Some(i + (hits.trailing_zeros() / 4) as usize);
        }
        i += 16;
    }
    while i < end {
        if hit(i) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The number of records in `0..n` with the SEEDER bit.
pub(crate) fn count_seeders(metas: &[u8], n: usize) -> usize {
    let n = n.min(metas.len() * 2);
    let whole = metas[..n / 2]
        .iter()
        .map(|b| (b & 0x88).count_ones() as usize)
        .sum::<usize>();
    whole + usize::from(n % 2 == 1 && nibble_has(metas, n - 1, SEEDER))
}

/// Copies nibbles `from..from + n` of `src` to `to..to + n` of `dst` (whole bytes when both
/// start on a byte).
pub(super) fn copy_nibbles(src: &[u8], from: usize, dst: &mut [u8], to: usize, n: usize) {
    if from % 2 == 0 && to % 2 == 0 {
        let whole = n / 2;
        if let (Some(s), Some(d)) = (
            src.get(from / 2..from / 2 + whole),
            dst.get_mut(to / 2..to / 2 + whole),
        ) {
            d.copy_from_slice(s);
        }
        if n % 2 == 1 {
            set_nibble(dst, to + n - 1, nibble(src, from + n - 1));
        }
        return;
    }
    for k in 0..n {
        set_nibble(dst, to + k, nibble(src, from + k));
    }
}

/// Sets the nibble of record `i` (nothing when out of range).
#[inline]
pub(super) fn set_nibble(metas: &mut [u8], i: usize, v: u8) {
    if let Some(b) = metas.get_mut(i / 2) {
        let sh = (i & 1) * 4;
        *b = (*b & !(0xf << sh)) | ((v & 0xf) << sh);
    }
}

/// Shifts nibbles `i..n` up by one (to `i + 1..=n`) and writes `v` at `i`. Needs
/// `metas.len() * 2 > n`.
pub(super) fn nibble_insert(metas: &mut [u8], i: usize, n: usize, v: u8) {
    let k0 = i / 2;
    let Some(&first) = metas.get(k0) else {
        return;
    };
    // The byte holding nibble i: its high nibble always moves on to the next byte.
    let mut carry = first >> 4;
    metas[k0] = if i & 1 == 0 {
        (first << 4) | (v & 0xf)
    } else {
        (first & 0xf) | ((v & 0xf) << 4)
    };
    for b in metas.iter_mut().take(n / 2 + 1).skip(k0 + 1) {
        let o = *b;
        *b = (o << 4) | carry;
        carry = o >> 4;
    }
}

/// Shifts nibbles `i + 1..n` down by one (to `i..n - 1`), dropping nibble `i`.
pub(super) fn nibble_remove(metas: &mut [u8], i: usize, n: usize) {
    let k0 = i / 2;
    let last = n.saturating_sub(1) / 2;
    if k0 >= metas.len() {
        return;
    }
    let next = |m: &[u8], k: usize| {
        if k < last {
            m.get(k + 1).copied().unwrap_or(0)
        } else {
            0
        }
    };
    let o = metas[k0];
    let nx = next(metas, k0);
    metas[k0] = if i & 1 == 0 {
        (o >> 4) | (nx << 4)
    } else {
        (o & 0xf) | (nx << 4)
    };
    for k in k0 + 1..=last.min(metas.len() - 1) {
        let nx = next(metas, k);
        metas[k] = (metas[k] >> 4) | (nx << 4);
    }
}

/// The records of one flat run (addresses, META bytes) in order: (compact address, nibble).
pub(super) fn segment<'a, const N: usize>(
    (addrs, metas): (&'a [u8], &'a [u8]),
) -> impl Iterator<Item = (&'a [u8; N], u8)> + 'a {
    addrs.chunks_exact(N).enumerate().map(move |(i, rec)| {
        (
            rec.first_chunk::<N>().unwrap_or(&[0u8; N]),
            nibble(metas, i),
        )
    })
}
