//! opentracker-rs: a RAM-only BitTorrent tracker in the style of opentracker.
//!
//! Layers (imports only point down; see DESIGN.md):
//! `net` (sockets, the mio loop) -> `service` (what a request means) -> `swarm` (the RAM store),
//! `access`, `stats`, `state` (the state file); `wire` holds the pure codecs. `types` holds plain shared values.

pub mod access;
pub mod config;
pub mod daemon;
pub mod front;
pub mod lines;
pub mod net;
pub mod privileges;
pub mod service;
pub mod state;
pub mod stats;
pub mod swarm;
pub mod types;
pub mod wire;
