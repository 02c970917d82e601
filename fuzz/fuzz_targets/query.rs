#![no_main]
//! Fuzz target: see `fuzz/checks.rs`, function `query`.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| checks::query(data));
