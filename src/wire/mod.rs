//! Codecs: pure functions over byte slices. No sockets, no store, no allocation on parse paths.

pub mod bencode;
pub mod http;
pub mod livesync;
pub mod query;
pub mod stream;
pub mod udp;
