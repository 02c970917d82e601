//! Steering UDP datagrams to workers by info_hash (`udp.steer_by_info_hash`, with
//! `tracker.workers` above 1).
//!
//! The workers' copies of one UDP listener form one `SO_REUSEPORT` group, whose members are
//! numbered in the order they were bound: worker 0's copy first, then worker 1's, and so on
//! ([`super::bind_for_workers`]). By default the kernel picks the member by a hash of the
//! source address and port, so every worker announces into every swarm: the cache lines of a
//! popular swarm move between the cores on each announce, and two workers meet on its shard's
//! lock. A classic BPF program attached to the group (`SO_ATTACH_REUSEPORT_CBPF`, Linux 4.5)
//! picks the member from the datagram instead: an announce or a scrape (BEP 15 actions 1 and 2)
//! goes to the worker of its (first) info_hash's store shard, `shard % workers`, so a swarm is
//! served by one core and two workers never share a shard when `workers` divides the shard
//! count; a connect (or anything else) goes by the low byte of its transaction_id (a random
//! number of the client's). A datagram too short for the bytes the program reads goes to
//! worker 0, which answers it as any malformed request.
//!
//! The program sees the UDP payload at offset 0 (the kernel pulls the UDP header before running
//! it); multi-byte loads are in network order, so `ldh [16]` is `info_hash[0] << 8 |
//! info_hash[1]`, whose top bits are the shard ([`crate::swarm::shards`]: the top
//! `log2(shards)` bits of the info_hash).
//!
//! HTTP cannot be steered this way: a keep-alive connection carries announces for any torrent.

use std::io;
use std::os::fd::AsRawFd;

/// BEP 15 offsets in a request: action (4 bytes), transaction_id (4 bytes), the (first)
/// info_hash of an announce or a scrape.
const ACTION: u32 = 8;
const TRANSACTION_LOW_BYTE: u32 = 15;
const INFO_HASH: u32 = 16;

/// One instruction; `jt`/`jf` count instructions from the next one.
fn op(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The program for `workers` (at least 2) workers over `shards` store shards (a power of two
/// from 1 to 65,536): see the module docs. Returns the member index to deliver to.
pub fn program(workers: usize, shards: usize) -> Vec<libc::sock_filter> {
    let n = workers.max(1) as u32;
    let bits = shards.max(1).next_power_of_two().trailing_zeros().min(16);
    let ld_w = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ld_h = libc::BPF_LD | libc::BPF_H | libc::BPF_ABS;
    let ld_b = libc::BPF_LD | libc::BPF_B | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let modulo = libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K;
    let rsh = libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K;
    let ret_a = libc::BPF_RET | libc::BPF_A;
    vec![
        op(ld_w, 0, 0, ACTION),
        // announce (1) or scrape (2): to the info_hash's part (instruction 6).
        op(jeq, 4, 0, 1),
        op(jeq, 3, 0, 2),
        // connect and the rest: by the transaction_id's low byte.
        op(ld_b, 0, 0, TRANSACTION_LOW_BYTE),
        op(modulo, 0, 0, n),
        op(ret_a, 0, 0, 0),
        // The shard: the top `bits` bits of the info_hash's first 16, then the worker.
        op(ld_h, 0, 0, INFO_HASH),
        op(rsh, 0, 0, 16 - bits),
        op(modulo, 0, 0, n),
        op(ret_a, 0, 0, 0),
    ]
}

/// Attaches [`program`] to `socket`'s `SO_REUSEPORT` group (one member is enough: the program
/// belongs to the group).
///
/// Errors: the `setsockopt` error (e.g. `ENOPROTOOPT` on a kernel before 4.5); the caller logs
/// it and keeps the kernel's hash.
pub fn attach(socket: &std::net::UdpSocket, workers: usize, shards: usize) -> io::Result<()> {
    let mut filter = program(workers, shards);
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `filter`, alive for the call; the kernel copies the program.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(action: u32, transaction: u32, info_hash0: [u8; 2]) -> Vec<u8> {
        let mut d = 0x41727101980u64.to_be_bytes().to_vec();
        d.extend_from_slice(&action.to_be_bytes());
        d.extend_from_slice(&transaction.to_be_bytes());
        d.extend_from_slice(&info_hash0);
        d.extend_from_slice(&[0; 18]);
        d
    }

    /// Runs `prog` on a UDP payload as the kernel runs a reuseport program, for the
    /// instructions [`program`] uses: a load past the end of the datagram ends it with 0
    /// (member 0).
    fn run(prog: &[libc::sock_filter], payload: &[u8]) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            let k = i.k as usize;
            let load = |n: usize| payload.get(k..k + n);
            match u32::from(i.code) {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => match load(4) {
                    Some(b) => a = u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    None => return 0,
                },
                c if c == libc::BPF_LD | libc::BPF_H | libc::BPF_ABS => match load(2) {
                    Some(b) => a = u32::from(u16::from_be_bytes([b[0], b[1]])),
                    None => return 0,
                },
                c if c == libc::BPF_LD | libc::BPF_B | libc::BPF_ABS => match load(1) {
                    Some(b) => a = u32::from(b[0]),
                    None => return 0,
                },
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                }
                c if c == libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K => a %= i.k,
                c if c == libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K => a >>= i.k,
                c if c == libc::BPF_RET | libc::BPF_A => return a,
                c => panic!("instruction {c:#x} not interpreted"),
            }
        }
    }

    #[test]
    fn announces_and_scrapes_go_by_shard_connects_by_transaction() {
        // 64 shards: the shard is info_hash[0] >> 2.
        let (two, three) = (program(2, 64), program(3, 64));
        assert_eq!(run(&two, &request(1, 7, [0x00, 0xff])), 0);
        assert_eq!(run(&two, &request(1, 7, [0x04, 0x00])), 1);
        assert_eq!(run(&two, &request(2, 7, [0xfc, 0x00])), 1);
        assert_eq!(run(&three, &request(1, 7, [0x08, 0x00])), 2);
        assert_eq!(run(&two, &request(0, 0x0102_0304, [0x04, 0])), 0);
        assert_eq!(run(&two, &request(0, 0x0102_0305, [0x00, 0])), 1);
        // Too short for the action or the info_hash: member 0.
        assert_eq!(run(&two, &[0xff; 11]), 0);
        assert_eq!(run(&two, &request(1, 0, [0x04, 0])[..17]), 0);
        // 1,024 shards: the top 10 bits.
        assert_eq!(run(&program(2, 1024), &request(1, 7, [0x00, 0x40])), 1);
    }

    #[test]
    fn the_program_has_the_documented_shape() {
        let p = program(2, 64);
        assert_eq!(p.len(), 10);
        // ldh [16]; rsh #10 (64 shards: the top 6 of 16 bits); mod #2.
        assert_eq!((p[6].k, p[7].k, p[8].k), (16, 10, 2));
        // Both jumps land on the info_hash part (a jump is relative to the next instruction).
        assert_eq!(1 + 1 + usize::from(p[1].jt), 6);
        assert_eq!(2 + 1 + usize::from(p[2].jt), 6);
        assert_eq!((p[1].k, p[2].k), (1, 2));
    }
}
