#![no_main]
//! Fuzz target: see `fuzz/checks.rs`, function `udp_packet`.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| checks::udp_packet(data));
