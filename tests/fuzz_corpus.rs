//! The fuzz targets' checks (`fuzz/checks.rs`) on stable, in every `cargo test`: each seed of
//! `fuzz/seeds/<target>/` (real client requests, BEP 15 packets, bencoded replies, hostile
//! inputs), every prefix of it (truncated requests), and a fixed number of random mutations of it
//! (bit flips, byte insertions and deletions, splices with another seed; fixed RNG seed, so a
//! failure reproduces). Any crash file cargo-fuzz finds goes into the seed directory and stays a
//! regression test here.

use std::path::Path;

mod checks {
    include!("../fuzz/checks.rs");
}

/// Mutations per seed (the whole test stays well under a few seconds in debug builds).
const MUTATIONS: usize = 300;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(seeds.len() >= 5, "too few seeds in {}", dir.display());
    seeds
}

fn mutate(rng: &mut fastrand::Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.usize(1..4) {
        match rng.u8(0..5) {
            0 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] ^= 1 << rng.u8(0..8);
            }
            1 => {
                let i = rng.usize(..=v.len());
                v.insert(i, rng.u8(..));
            }
            2 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v.remove(i);
            }
            3 if !other.is_empty() => {
                let cut = rng.usize(..=v.len());
                let from = rng.usize(..other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ if !v.is_empty() => {
                // Interesting bytes of the formats under test.
                let i = rng.usize(..v.len());
                v[i] = *rng
                    .choice(b"\r\n%&=?: \x00\xffie:ld0123456789")
                    .unwrap_or(&b'x');
            }
            _ => {}
        }
    }
    v
}

fn replay(target: &str, check: fn(&[u8])) {
    let seeds = seeds(target);
    let mut rng = fastrand::Rng::with_seed(0x005e_ed0f_f022);
    for (i, seed) in seeds.iter().enumerate() {
        check(seed);
        for cut in 0..seed.len() {
            check(&seed[..cut]);
        }
        let other = &seeds[(i + 1) % seeds.len()];
        for _ in 0..MUTATIONS {
            check(&mutate(&mut rng, seed, other));
        }
    }
}

#[test]
fn http_request_seeds() {
    replay("http_request", checks::http_request);
}

#[test]
fn http_handle_seeds() {
    replay("http_handle", checks::http_handle);
}

#[test]
fn query_seeds() {
    replay("query", checks::query);
}

#[test]
fn bencode_seeds() {
    replay("bencode", checks::bencode);
}

#[test]
fn udp_packet_seeds() {
    replay("udp_packet", checks::udp_packet);
}

#[test]
fn udp_handler_seeds() {
    replay("udp_handler", checks::udp_handler);
}
