//! The RAM store: info_hash -> swarm of packed peers. No I/O, no clocks: time is a parameter.

pub mod bucket;
pub mod clean;
pub mod peer;
pub mod select;
pub mod shards;
pub mod slab;
pub mod store;
pub mod torrent;
