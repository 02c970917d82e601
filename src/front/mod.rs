//! The fronts: one per protocol, between the sockets of [`crate::net`] and the
//! protocol-neutral [`crate::service`].
//!
//! A front reads a request in its wire format ([`crate::wire`]), asks the service what it
//! means ([`crate::service::Tracker`]: announce, scrape entries, whole-store scans, stats
//! reports) and writes the typed reply back in its format: [`http`] (routing, status lines,
//! bencode, the streamed full scrape and `/stats` walks) and [`udp`] (BEP 15 packets, with its
//! stateless [`conn_id`]s). [`api`] (the REST API: JSON over the same HTTP parser) plugs in the same way, and livesync will. The
//! shared rules (numwant limits, the caps on peers per reply, access, the error texts) stay in
//! the service; a front decides only what its protocol alone has (paths, status codes,
//! datagram sizes, connection ids).
//!
//! Layers: `net` -> `front` -> `service` -> `swarm`/`access`/`stats`; a front never imports
//! `net`.

pub mod api;
pub mod conn_id;
pub mod http;
pub mod udp;
