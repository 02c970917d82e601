//! opentracker-rs: a RAM-only BitTorrent tracker in the style of opentracker.
//!
//! Layers (imports only point down; see DESIGN.md):
//! `net` (sockets, buffers, the mio loop) -> `front` (one per protocol: `front::http`,
//! `front::udp`; wire formats in and out, via the pure codecs of `wire`) -> `service` (what a
//! request means, protocol-neutral, typed replies; the shared caps and error texts) -> `swarm`
//! (the RAM store), `access` (whitelist/blacklist), `stats` (counters, reports), `state` (the
//! state file), `db` (persistence behind a writer thread). Leaves: `types` (plain shared values), `lines` (the line reader of list and
//! state files), `config`.
#![warn(missing_docs)]

pub mod access;
pub mod config;
pub mod daemon;
pub mod db;
pub mod front;
pub mod lines;
pub mod net;
pub mod privileges;
pub mod service;
pub mod state;
pub mod stats;
pub mod swarm;
pub mod types;
pub mod version;
pub mod wire;
