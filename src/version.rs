//! The program's name and version, in one place for the command line (`-v`), `--check-config`
//! and the stats (`/stats?mode=version`, the Prometheus `opentracker_info` line).
//!
//! A leaf: it imports nothing from the crate, so every layer may use it.

/// `opentracker-rs VERSION`, the crate version from `Cargo.toml` (`opentracker-rs 0.1.0`).
pub const VERSION: &str = concat!("opentracker-rs ", env!("CARGO_PKG_VERSION"));
