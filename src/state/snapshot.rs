//! Collecting the `downloaded` counts of every torrent in slices, so the event loop can build a
//! state file of a million torrents between other events.
//!
//! The walk visits the IPv4 store, then the IPv6 store, each in info_hash order with
//! [`TorrentWalk::for_each_from`] (a cursor that survives changes to the store between slices), and
//! keeps the torrents with `downloaded > 0`. Torrents created behind the cursor during the walk
//! appear in the next snapshot; counts are those seen when the slice ran. That is what a state
//! file needs: it is a periodic checkpoint, and the final one at exit is taken in one go.

use super::{Entry, merge_sum};
use crate::swarm::shards::TorrentWalk;
use crate::types::InfoHash;

/// A snapshot being collected.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// 0: walking the IPv4 store; 1: the IPv6 store; 2: done.
    phase: u8,
    cursor: Option<InfoHash>,
    v4: Vec<Entry>,
    v6: Vec<Entry>,
}

impl Snapshot {
    /// A snapshot at its start.
    pub fn new() -> Self {
        Self::default()
    }

    /// Visits up to `max` more torrents (0 is read as 1). Returns true when every torrent of
    /// both stores was visited.
    pub fn step(
        &mut self,
        v4: &impl TorrentWalk<6>,
        v6: &impl TorrentWalk<18>,
        max: usize,
    ) -> bool {
        let max = max.max(1);
        match self.phase {
            0 => {
                if self.cursor.is_none() {
                    // One allocation up front: growing a Vec of a million entries in a slice
                    // would copy it there (pages are touched lazily, slice by slice).
                    self.v4.reserve(v4.torrents() as usize);
                }
                let out = &mut self.v4;
                self.cursor = v4.for_each_from(self.cursor.as_ref(), max, |h, c| {
                    if c.downloaded > 0 {
                        out.push((*h, c.downloaded));
                    }
                });
            }
            1 => {
                if self.cursor.is_none() {
                    self.v6.reserve(v6.torrents() as usize);
                }
                let out = &mut self.v6;
                self.cursor = v6.for_each_from(self.cursor.as_ref(), max, |h, c| {
                    if c.downloaded > 0 {
                        out.push((*h, c.downloaded));
                    }
                });
            }
            _ => return true,
        }
        if self.cursor.is_none() {
            self.phase += 1;
        }
        self.phase >= 2
    }

    /// The entries, sorted by info_hash, counts summed over both families (a merge that copies
    /// every entry: do it off the loop, see [`Snapshot::into_parts`]).
    pub fn finish(self) -> Vec<Entry> {
        merge_sum(self.v4, self.v6)
    }

    /// The IPv4 and IPv6 entries, each sorted by info_hash, for [`super::Writer::submit`] to
    /// merge on its thread.
    pub fn into_parts(self) -> (Vec<Entry>, Vec<Entry>) {
        (self.v4, self.v6)
    }

    /// A whole snapshot at once (for the write at exit).
    pub fn full(v4: &impl TorrentWalk<6>, v6: &impl TorrentWalk<18>) -> Self {
        let mut s = Snapshot::new();
        while !s.step(v4, v6, usize::MAX) {}
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::store::{Store, StoreConfig};

    fn h(a: u8, b: u8) -> InfoHash {
        let mut x = [0u8; 20];
        x[0] = a;
        x[1] = b;
        x
    }

    #[test]
    fn slices_visit_everything_once_and_sum_families() {
        let mut v4 = Store::<6>::new(StoreConfig::default());
        let mut v6 = Store::<18>::new(StoreConfig::default());
        let mut want = Vec::new();
        for i in 0..300u16 {
            let hash = h((i % 256) as u8, (i / 256) as u8 * 16 + 1);
            v4.set_downloaded(&hash, u32::from(i) + 1, 0);
            want.push((hash, u32::from(i) + 1));
        }
        // Shared with IPv6, and one IPv6-only torrent.
        v6.set_downloaded(&h(5, 1), 100, 0);
        v6.set_downloaded(&h(0xff, 0xff), 7, 0);
        for w in want.iter_mut() {
            if w.0 == h(5, 1) {
                w.1 += 100;
            }
        }
        want.push((h(0xff, 0xff), 7));
        want.sort();

        let mut s = Snapshot::new();
        let mut steps = 0;
        while !s.step(&v4, &v6, 7) {
            steps += 1;
            assert!(steps < 1000);
        }
        assert!(steps >= 300 / 7);
        assert_eq!(s.finish(), want);
        assert_eq!(Snapshot::full(&v4, &v6).finish(), want);
        let empty = Snapshot::full(
            &Store::new(StoreConfig::default()),
            &Store::new(StoreConfig::default()),
        )
        .finish();
        assert!(empty.is_empty());
    }
}
