//! A FLOOR server for the benchmarks (`make bench-floor`, see BENCHMARKS.md): the least
//! user-space work per request that still satisfies `udp_load` and `http_load`, on the same
//! design as opentracker-rs (one thread, nonblocking sockets, epoll).
//!
//! ```text
//! floor_server [--udp 127.0.0.1:0] [--http 127.0.0.1:0] [--udp-mode mmsg|single]
//! ```
//!
//! Prints `listening: udp ADDR` and `listening: http ADDR` on stdout (the real ports when 0
//! was asked), then serves until killed. No state and constant replies:
//!
//! - UDP (BEP 15), only the action and the transaction_id are read: connect -> a connect
//!   response with a fixed connection_id; announce -> interval 1800, 0 leechers, 0 seeders and
//!   no peers (20 bytes); scrape -> zeros for each info_hash. The connection_id of announces and
//!   scrapes is not checked. `mmsg` (default): `recvmmsg`/`sendmmsg`, 64 datagrams per call,
//!   as opentracker-rs; `single`: one `recvfrom` and one `sendto` per datagram, as opentracker.
//! - HTTP: every connection accepted (`accept4`, nonblocking) is read at once until the end of
//!   the request head (`\r\n\r\n`), answered with a fixed `200` whose bencoded body has
//!   interval, complete, incomplete and empty peers, and closed; only a connection whose
//!   request has not arrived yet is registered with epoll.
//!
//! It is less than any tracker does (no parsing beyond the action, no store, no peers in the
//! replies), so its responses per CPU-second bound what a tracker of this design can reach.

#[path = "common.rs"]
mod common;

use std::collections::HashMap;
use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use common::Opts;
use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per `recvmmsg`/`sendmmsg` (as opentracker-rs).
const BATCH: usize = 64;
/// Batches handled per readiness event before going back to `epoll_wait` (as opentracker-rs).
const MAX_BATCHES_PER_TURN: usize = 16;
/// Receive buffer per datagram (a scrape of 74 info_hashes is 1,496 bytes).
const DGRAM: usize = 2048;
/// The connection_id handed out (and never checked).
const CONNECTION_ID: u64 = 0x0123_4567_89ab_cdef;
/// The largest HTTP request head accepted.
const MAX_HEAD: usize = 4096;
/// `udp` and `listener` in epoll's data; connections use their fd.
const UDP_TOKEN: u64 = u64::MAX;
const LISTENER_TOKEN: u64 = u64::MAX - 1;

const BODY: &[u8] = b"d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e";

fn main() {
    if let Err(e) = run() {
        eprintln!("floor_server: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let o = Opts::from_env(&[])?;
    let udp_addr: SocketAddr = o
        .get_str("udp")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .map_err(|e| format!("--udp: {e}"))?;
    let http_addr: SocketAddr = o
        .get_str("http")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .map_err(|e| format!("--http: {e}"))?;
    let mmsg = match o.get_str("udp-mode").as_deref() {
        None | Some("mmsg") => true,
        Some("single") => false,
        Some(other) => return Err(format!("--udp-mode: {other:?} is not mmsg or single")),
    };
    o.finish()?;
    // bench_run stops servers with SIGINT; a parent started in the background may hand down
    // SIGINT ignored, so take the default (terminate) back, as the trackers' handlers do.
    // SAFETY: restoring default dispositions has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }

    let udp = Socket::new(
        Domain::for_address(udp_addr),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(|e| e.to_string())?;
    udp.set_nonblocking(true).map_err(|e| e.to_string())?;
    // opentracker-rs asks for 8 MiB (the kernel caps it at rmem_max/wmem_max).
    let _ = udp.set_recv_buffer_size(8 << 20);
    let _ = udp.set_send_buffer_size(8 << 20);
    udp.bind(&udp_addr.into())
        .map_err(|e| format!("bind udp {udp_addr}: {e}"))?;
    let tcp = Socket::new(
        Domain::for_address(http_addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(|e| e.to_string())?;
    tcp.set_reuse_address(true).map_err(|e| e.to_string())?;
    // Inherited by accepted sockets, as in opentracker-rs.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
    tcp.bind(&http_addr.into())
        .map_err(|e| format!("bind tcp {http_addr}: {e}"))?;
    tcp.listen(1024).map_err(|e| e.to_string())?;
    let local = |s: &Socket| {
        s.local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or("no local address")
    };
    println!("listening: udp {}", local(&udp)?);
    println!("listening: http {}", local(&tcp)?);
    use std::io::Write as _;
    let _ = io::stdout().flush();

    // SAFETY: epoll_create1 has no preconditions.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(format!("epoll_create1: {}", io::Error::last_os_error()));
    }
    epoll_add(ep, udp.as_raw_fd(), UDP_TOKEN).map_err(|e| format!("epoll: {e}"))?;
    epoll_add(ep, tcp.as_raw_fd(), LISTENER_TOKEN).map_err(|e| format!("epoll: {e}"))?;

    let mut batch = Batch::new();
    let mut dgram = [0u8; DGRAM];
    let mut reply = [0u8; DGRAM];
    // Connections whose request head is not complete yet: the bytes read so far.
    let mut waiting: HashMap<RawFd, Vec<u8>> = HashMap::new();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        BODY.len()
    )
    .into_bytes();
    response.extend_from_slice(BODY);
    // SAFETY: epoll_event is plain data.
    let mut events = vec![unsafe { std::mem::zeroed::<libc::epoll_event>() }; 256];
    loop {
        // SAFETY: `events` holds `len` writable epoll_event structs.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("epoll_wait: {e}"));
        }
        for ev in &events[..n as usize] {
            match ev.u64 {
                UDP_TOKEN if mmsg => batch.serve(udp.as_raw_fd()),
                UDP_TOKEN => serve_single(udp.as_raw_fd(), &mut dgram, &mut reply),
                LISTENER_TOKEN => accept_all(ep, tcp.as_raw_fd(), &response, &mut waiting),
                fd => {
                    // Only connections still waiting for their request are registered (an
                    // event for an fd already closed in this turn is stale: skip it).
                    let fd = fd as RawFd;
                    if let Some(mut buf) = waiting.remove(&fd) {
                        if let Some(buf) = serve_conn(fd, &mut buf, &response) {
                            waiting.insert(fd, buf);
                        }
                    }
                }
            }
        }
    }
}

fn epoll_add(ep: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ev` is a valid epoll_event for the call.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The reply to one BEP 15 request in `out`; its length (0: no reply).
fn answer(req: &[u8], out: &mut [u8]) -> usize {
    if req.len() < 16 {
        return 0;
    }
    let action = u32::from_be_bytes([req[8], req[9], req[10], req[11]]);
    out[4..8].copy_from_slice(&req[12..16]);
    match action {
        0 => {
            out[..4].copy_from_slice(&0u32.to_be_bytes());
            out[8..16].copy_from_slice(&CONNECTION_ID.to_be_bytes());
            16
        }
        1 if req.len() >= 98 => {
            out[..4].copy_from_slice(&1u32.to_be_bytes());
            out[8..12].copy_from_slice(&1800u32.to_be_bytes());
            out[12..20].fill(0);
            20
        }
        2 if req.len() >= 36 => {
            let hashes = ((req.len() - 16) / 20).min((out.len() - 8) / 12);
            out[..4].copy_from_slice(&2u32.to_be_bytes());
            out[8..8 + 12 * hashes].fill(0);
            8 + 12 * hashes
        }
        _ => 0,
    }
}

/// `recvmmsg`/`sendmmsg` buffers for [`BATCH`] datagrams.
struct Batch {
    recv: Box<[[u8; DGRAM]]>,
    send: Box<[[u8; DGRAM]]>,
    names: Box<[libc::sockaddr_storage]>,
    recv_iov: Box<[libc::iovec]>,
    send_iov: Box<[libc::iovec]>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    send_hdrs: Box<[libc::mmsghdr]>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: all-zero sockaddr_storage, iovec and mmsghdr are valid (null pointers).
        let (name, iov, hdr) = unsafe {
            (
                std::mem::zeroed::<libc::sockaddr_storage>(),
                std::mem::zeroed::<libc::iovec>(),
                std::mem::zeroed::<libc::mmsghdr>(),
            )
        };
        let mut b = Batch {
            recv: vec![[0u8; DGRAM]; BATCH].into_boxed_slice(),
            send: vec![[0u8; DGRAM]; BATCH].into_boxed_slice(),
            names: vec![name; BATCH].into_boxed_slice(),
            recv_iov: vec![iov; BATCH].into_boxed_slice(),
            send_iov: vec![iov; BATCH].into_boxed_slice(),
            recv_hdrs: vec![hdr; BATCH].into_boxed_slice(),
            send_hdrs: vec![hdr; BATCH].into_boxed_slice(),
        };
        // The boxes never move their contents: the pointers set here stay valid.
        for i in 0..BATCH {
            b.recv_iov[i] = libc::iovec {
                iov_base: b.recv[i].as_mut_ptr().cast(),
                iov_len: DGRAM,
            };
            b.recv_hdrs[i].msg_hdr.msg_iov = &mut b.recv_iov[i];
            b.recv_hdrs[i].msg_hdr.msg_iovlen = 1;
            b.recv_hdrs[i].msg_hdr.msg_name =
                (&mut b.names[i] as *mut libc::sockaddr_storage).cast();
            b.send_iov[i].iov_base = b.send[i].as_mut_ptr().cast();
            b.send_hdrs[i].msg_hdr.msg_iov = &mut b.send_iov[i];
            b.send_hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        b
    }

    /// Receives and answers up to [`MAX_BATCHES_PER_TURN`] batches (epoll is level-triggered:
    /// what is left is reported again).
    fn serve(&mut self, fd: RawFd) {
        for _ in 0..MAX_BATCHES_PER_TURN {
            for h in self.recv_hdrs.iter_mut() {
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            }
            // SAFETY: every header points at a buffer of DGRAM bytes and a sockaddr_storage
            // owned by `self`.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.recv_hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                return;
            }
            let n = n as usize;
            let mut replies = 0;
            for i in 0..n {
                let len = (self.recv_hdrs[i].msg_len as usize).min(DGRAM);
                let out_len = answer(&self.recv[i][..len], &mut self.send[replies]);
                if out_len > 0 {
                    self.send_iov[replies].iov_len = out_len;
                    let h = &mut self.send_hdrs[replies].msg_hdr;
                    h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                    h.msg_namelen = self.recv_hdrs[i].msg_hdr.msg_namelen;
                    replies += 1;
                }
            }
            let mut sent = 0;
            while sent < replies {
                // SAFETY: headers [sent, replies) point at buffers and names owned by `self`.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.send_hdrs[sent..].as_mut_ptr(),
                        (replies - sent) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                // A datagram that cannot go out is dropped (as opentracker-rs does).
                sent += if r > 0 { r as usize } else { 1 };
            }
            if n < BATCH {
                return;
            }
        }
    }
}

/// One `recvfrom` and one `sendto` per datagram until the socket is empty.
fn serve_single(fd: RawFd, dgram: &mut [u8; DGRAM], reply: &mut [u8; DGRAM]) {
    loop {
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `dgram` has DGRAM writable bytes; `name` and `namelen` are valid.
        let n = unsafe {
            libc::recvfrom(
                fd,
                dgram.as_mut_ptr().cast(),
                DGRAM,
                libc::MSG_DONTWAIT,
                (&mut name as *mut libc::sockaddr_storage).cast(),
                &mut namelen,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let len = answer(&dgram[..n as usize], reply);
        if len > 0 {
            // SAFETY: `reply` holds `len` bytes; `name` is the sender's address from recvfrom.
            unsafe {
                libc::sendto(
                    fd,
                    reply.as_ptr().cast(),
                    len,
                    libc::MSG_DONTWAIT,
                    (&name as *const libc::sockaddr_storage).cast(),
                    namelen,
                )
            };
        }
    }
}

/// Accepts every pending connection and serves each at once; a connection whose request has
/// not arrived yet is registered with epoll.
fn accept_all(ep: RawFd, listener: RawFd, response: &[u8], waiting: &mut HashMap<RawFd, Vec<u8>>) {
    loop {
        // SAFETY: accept4 with null address pointers.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                _ => return,
            }
        }
        if let Some(buf) = serve_conn(fd, &mut Vec::new(), response) {
            if epoll_add(ep, fd, fd as u64).is_ok() {
                waiting.insert(fd, buf);
            } else {
                // SAFETY: `fd` is ours (accepted above) and not used after.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Reads connection `fd` until the end of the request head (`buf` holds what earlier reads
/// got), then writes `response` and closes it. Returns the bytes read so far when the head is
/// still incomplete and the socket has nothing more to read now; `None` once `fd` is closed.
fn serve_conn(fd: RawFd, buf: &mut Vec<u8>, response: &[u8]) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 1024];
    loop {
        // SAFETY: `chunk` has its length of writable bytes.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n > 0 {
            let n = n as usize;
            // The end of the head, looking back 3 bytes into what was read before.
            let from = buf.len().saturating_sub(3);
            buf.extend_from_slice(&chunk[..n]);
            if memchr::memmem::find(&buf[from..], b"\r\n\r\n").is_some() {
                // SAFETY: `response` holds its length of readable bytes. A fresh socket's send
                // buffer takes it whole; a short write just ends the connection.
                unsafe { libc::write(fd, response.as_ptr().cast(), response.len()) };
                break;
            }
            if buf.len() > MAX_HEAD {
                break;
            }
            continue;
        }
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock => return Some(std::mem::take(buf)),
                io::ErrorKind::Interrupted => continue,
                _ => {}
            }
        }
        break;
    }
    // SAFETY: `fd` is an accepted socket owned by this server; closing it also removes it
    // from epoll.
    unsafe { libc::close(fd) };
    None
}
