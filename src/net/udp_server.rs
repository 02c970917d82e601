//! UDP sockets (BEP 15): drained with `recvmmsg` and answered with `sendmmsg`, [`BATCH`]
//! datagrams per system call, inside the event loop. What a datagram means and what goes back
//! is decided in [`crate::front::udp`]; this module only moves bytes.
//!
//! No allocation per datagram: the receive and reply buffers, iovecs and message headers are
//! allocated once per socket. A reply goes to the source address exactly as the kernel gave it
//! (the `sockaddr` bytes are reused, not converted).
//!
//! Fairness: one readiness event handles at most [`MAX_BATCHES_PER_TURN`] batches; a socket that
//! still has datagrams queued is marked pending and served again on the next loop turn (the poll
//! then does not sleep), so a UDP flood cannot starve HTTP connections or the timers.
//!
//! When the socket's receive queue overflows (the kernel's `SO_RCVBUF`, see `udp.recv_buffer`),
//! the kernel drops datagrams before we see them: clients retry (BEP 15 timeouts). If a reply
//! cannot be sent because the send buffer is full (`EAGAIN`), it is dropped and counted; the client
//! retries as for any lost datagram. Nothing blocks the loop.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use crate::front::udp::{REPLY_CAPACITY, UdpHandler};
use crate::service::Tracker;

/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub const BATCH: usize = 64;
/// Batches served per readiness event before other sockets get their turn.
pub const MAX_BATCHES_PER_TURN: usize = 16;
/// Receive buffer per datagram; a longer datagram is truncated and treated as malformed.
pub const RECV_SIZE: usize = 4096;

/// One UDP socket with its batch buffers.
pub struct UdpServer {
    socket: UdpSocket,
    /// More datagrams may be queued: serve again without waiting for readiness.
    pub pending: bool,
    recv_bufs: Box<[[u8; RECV_SIZE]]>,
    send_bufs: Box<[Vec<u8>]>,
    names: Box<[libc::sockaddr_storage]>,
    recv_iov: Box<[libc::iovec]>,
    send_iov: Box<[libc::iovec]>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    send_hdrs: Box<[libc::mmsghdr]>,
}

impl UdpServer {
    /// Wraps a bound, non-blocking socket.
    pub fn new(socket: std::net::UdpSocket) -> Self {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all-zero
        // bytes are a valid value.
        let zero_name: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        UdpServer {
            socket: UdpSocket::from_std(socket),
            pending: false,
            recv_bufs: vec![[0u8; RECV_SIZE]; BATCH].into_boxed_slice(),
            send_bufs: (0..BATCH)
                .map(|_| Vec::with_capacity(REPLY_CAPACITY))
                .collect(),
            names: vec![zero_name; BATCH].into_boxed_slice(),
            recv_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            send_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            recv_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            send_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
        }
    }

    /// Registers the socket for readability.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives and answers up to [`MAX_BATCHES_PER_TURN`] batches. Sets `pending` if the socket
    /// may hold more.
    pub fn serve(&mut self, handler: &mut UdpHandler, tracker: &mut Tracker, now: u32) {
        self.pending = false;
        for _ in 0..MAX_BATCHES_PER_TURN {
            let n = match self.recv_batch() {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("recvmmsg: {e}");
                    return;
                }
            };
            let mut replies = 0;
            for i in 0..n {
                let len = self.recv_hdrs[i].msg_len as usize;
                let truncated = self.recv_hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                tracker.stats.bytes_in += len as u64;
                let Some(src) =
                    sockaddr_to_std(&self.names[i], self.recv_hdrs[i].msg_hdr.msg_namelen)
                else {
                    continue;
                };
                let data = &self.recv_bufs[i][..len.min(RECV_SIZE)];
                let out = &mut self.send_bufs[replies];
                out.clear();
                if handler.handle(tracker, data, truncated, src, now, out) {
                    let reply_len = out.len();
                    self.send_iov[replies] = libc::iovec {
                        iov_base: out.as_mut_ptr().cast(),
                        iov_len: reply_len,
                    };
                    let hdr = &mut self.send_hdrs[replies].msg_hdr;
                    hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                    hdr.msg_namelen = self.recv_hdrs[i].msg_hdr.msg_namelen;
                    hdr.msg_iov = &mut self.send_iov[replies];
                    hdr.msg_iovlen = 1;
                    hdr.msg_control = std::ptr::null_mut();
                    hdr.msg_controllen = 0;
                    hdr.msg_flags = 0;
                    tracker.stats.bytes_out += reply_len as u64;
                    replies += 1;
                }
            }
            self.send_batch(replies, tracker);
            if n < BATCH {
                return;
            }
        }
        self.pending = true;
    }

    fn recv_batch(&mut self) -> io::Result<usize> {
        for i in 0..BATCH {
            self.recv_iov[i] = libc::iovec {
                iov_base: self.recv_bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_SIZE,
            };
            let hdr = &mut self.recv_hdrs[i].msg_hdr;
            hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut self.recv_iov[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.recv_hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by `self` that outlive the call, with
        // the lengths given; the kernel writes at most those lengths.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                self.recv_hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn send_batch(&mut self, count: usize, tracker: &mut Tracker) {
        let mut sent = 0;
        while sent < count {
            // SAFETY: headers [sent, count) were filled in `serve` and point into buffers owned by
            // `self` (replies and the receive-side names), unchanged since.
            let n = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    self.send_hdrs[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() != io::ErrorKind::WouldBlock {
                    log::debug!("sendmmsg: {e}");
                }
                // Drop the datagram that failed (an unreachable address, a full buffer) and go
                // on with the rest: one bad destination must not cost the others their reply.
                tracker.stats.udp_send_dropped += 1;
                sent += 1;
                continue;
            }
            sent += n as usize;
        }
    }
}

/// Converts a kernel `sockaddr` to a `SocketAddr` (IPv4 or IPv6), `None` for other families.
fn sockaddr_to_std(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let mut copy = MaybeUninit::<libc::sockaddr_storage>::uninit();
    // SAFETY: copying a plain C struct; SockAddr::new takes the storage and the length the
    // kernel reported.
    unsafe {
        copy.as_mut_ptr().write(*name);
        socket2::SockAddr::new(copy.assume_init(), len).as_socket()
    }
}
