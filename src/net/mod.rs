//! The single-threaded mio event loop: every socket, connection and timer lives here. What the
//! bytes mean is the fronts' business ([`crate::front`]); this layer reads, buffers, writes
//! and schedules.
//!
//! [`bind`] opens every listener first (so a bad address fails before anything is served, and
//! privileges can be dropped after binding); [`event_loop::run`] then serves them until SIGTERM or
//! SIGINT.

pub mod background;
pub mod event_loop;
pub mod http_server;
pub mod livesync;
pub mod persist;
pub mod tls;
pub mod udp_server;
pub mod udp_steer;

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// The sockets the loop serves, bound and non-blocking.
pub struct Listeners {
    /// HTTP listeners with their bound address (the real port when 0 was asked).
    pub tcp: Vec<(std::net::TcpListener, SocketAddr)>,
    /// UDP sockets with their bound address.
    pub udp: Vec<(std::net::UdpSocket, SocketAddr)>,
    /// REST API listeners (`api.listen`) with their bound address.
    pub api: Vec<(std::net::TcpListener, SocketAddr)>,
    /// Live sync sockets with their bound address ([`livesync::bind`]; empty when off).
    pub livesync: Vec<(std::net::UdpSocket, SocketAddr)>,
    /// HTTPS tracker listeners (`listen.tls`; [`bind_tls`]) with their bound address and the
    /// index of their certificate/key pair in `identities`.
    pub tls: Vec<(std::net::TcpListener, SocketAddr, usize)>,
    /// HTTPS REST API listeners (`api.listen_tls`), as `tls`.
    pub api_tls: Vec<(std::net::TcpListener, SocketAddr, usize)>,
    /// The certificate/key pairs of `tls` and `api_tls`, loaded; `None` when there are none.
    pub identities: Option<tls::Identities>,
    /// With `tracker.workers N` above 1: the sockets of workers 1..N, each a copy of every
    /// `tcp`, `udp` and `tls` listener on the same (bound) address, all bound with
    /// `SO_REUSEPORT` ([`bind_for_workers`], [`bind_tls`]). Empty with one worker.
    pub workers: Vec<WorkerListeners>,
}

/// One extra worker's copies of the tracker's listeners, in the order of [`Listeners::tcp`],
/// [`Listeners::udp`] and [`Listeners::tls`].
#[derive(Debug)]
pub struct WorkerListeners {
    /// HTTP listeners.
    pub tcp: Vec<std::net::TcpListener>,
    /// UDP sockets.
    pub udp: Vec<std::net::UdpSocket>,
    /// HTTPS tracker listeners (`listen.tls`), each with the index of its certificate/key pair
    /// in [`Listeners::identities`]; bound by [`bind_tls`].
    pub tls: Vec<(std::net::TcpListener, usize)>,
}

/// Socket options for UDP listeners, in bytes (`udp.recv_buffer`, `udp.send_buffer`).
#[derive(Clone, Copy, Debug)]
pub struct UdpBuffers {
    /// SO_RCVBUF asked for; the kernel caps it at `net.core.rmem_max`.
    pub recv: usize,
    /// SO_SNDBUF asked for; the kernel caps it at `net.core.wmem_max`.
    pub send: usize,
}

/// Binds every TCP, UDP and API listener. IPv6 sockets are IPv6-only, so `0.0.0.0:6969` and
/// `[::]:6969` can both be bound. Errors name the address that failed.
pub fn bind(
    tcp: &[SocketAddr],
    udp: &[SocketAddr],
    api: &[SocketAddr],
    buffers: UdpBuffers,
) -> io::Result<Listeners> {
    bind_for_workers(tcp, udp, api, buffers, 1)
}

/// [`bind`] for `workers` event loops (`tracker.workers`): with more than one, every TCP and UDP
/// tracker listener is bound with `SO_REUSEPORT`, and `workers - 1` more copies of each are
/// bound to its address (the real port when 0 was asked), so the kernel spreads connections
/// and datagrams over the workers ([`Listeners::workers`]). With one worker nothing is bound
/// with `SO_REUSEPORT`, so a second process on the same port still fails with "address in
/// use". The API listeners are bound once (worker 0 serves them). The HTTPS tracker listeners
/// get their copies in [`bind_tls`].
///
/// Errors: as [`bind`]; the text names the address.
pub fn bind_for_workers(
    tcp: &[SocketAddr],
    udp: &[SocketAddr],
    api: &[SocketAddr],
    buffers: UdpBuffers,
    workers: usize,
) -> io::Result<Listeners> {
    let reuse = workers > 1;
    let mut out = Listeners {
        tcp: Vec::new(),
        udp: Vec::new(),
        api: Vec::new(),
        livesync: Vec::new(),
        tls: Vec::new(),
        api_tls: Vec::new(),
        identities: None,
        workers: Vec::new(),
    };
    for addr in api {
        let l = bind_tcp(*addr, false).map_err(|e| annotate(e, "api", addr))?;
        let local = l.local_addr()?;
        out.api.push((l, local));
    }
    for addr in tcp {
        let l = bind_tcp(*addr, reuse).map_err(|e| annotate(e, "tcp", addr))?;
        let local = l.local_addr()?;
        out.tcp.push((l, local));
    }
    for addr in udp {
        let s = bind_udp(*addr, buffers, reuse).map_err(|e| annotate(e, "udp", addr))?;
        let local = s.local_addr()?;
        out.udp.push((s, local));
    }
    for _ in 1..workers {
        let mut w = WorkerListeners {
            tcp: Vec::new(),
            udp: Vec::new(),
            tls: Vec::new(),
        };
        for (_, addr) in &out.tcp {
            w.tcp
                .push(bind_tcp(*addr, true).map_err(|e| annotate(e, "tcp", addr))?);
        }
        for (_, addr) in &out.udp {
            w.udp
                .push(bind_udp(*addr, buffers, true).map_err(|e| annotate(e, "udp", addr))?);
        }
        out.workers.push(w);
    }
    Ok(out)
}

/// Loads the certificate/key pairs of the HTTPS listeners (`listen.tls` for the tracker,
/// `api.listen_tls` for the API) and binds them, as [`bind`] binds the plain ones. Call it
/// before the chroot and the privilege drop: the files are read with the starting user's rights.
/// Call it after [`bind_for_workers`]: with several workers ([`Listeners::workers`] not empty)
/// every `listen.tls` listener is bound with `SO_REUSEPORT` and each worker gets its own copy
/// ([`WorkerListeners::tls`]); the API's are bound once (worker 0 serves them).
///
/// Errors: a pair that cannot be loaded ([`tls::load_identity`]), an address that cannot be bound;
/// the text names the listener.
pub fn bind_tls(
    out: &mut Listeners,
    tracker: &[crate::config::TlsListen],
    api: &[crate::config::TlsListen],
) -> Result<(), String> {
    if tracker.is_empty() && api.is_empty() {
        return Ok(());
    }
    let (identities, index) = tls::Identities::load(tracker.iter().chain(api))?;
    for (i, l) in tracker.iter().chain(api).enumerate() {
        let kind = if i < tracker.len() { "tls" } else { "api tls" };
        let reuse = i < tracker.len() && !out.workers.is_empty();
        let socket = bind_tcp(l.addr, reuse).map_err(|e| annotate(e, kind, &l.addr).to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        if i < tracker.len() {
            // The workers' copies on the bound address (the real port when 0 was asked).
            for w in &mut out.workers {
                let copy =
                    bind_tcp(local, true).map_err(|e| annotate(e, kind, &local).to_string())?;
                w.tls.push((copy, index[i]));
            }
            out.tls.push((socket, local, index[i]));
        } else {
            out.api_tls.push((socket, local, index[i]));
        }
    }
    out.identities = Some(identities);
    Ok(())
}

fn annotate(e: io::Error, kind: &str, addr: &SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("cannot bind {kind} {addr}: {e}"))
}

/// `reuse_port`: `SO_REUSEPORT` (the listeners of several workers on one address).
fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY (Linux), so responses written in one call go out at
    // once without a setsockopt per connection.
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn bind_udp(
    addr: SocketAddr,
    buffers: UdpBuffers,
    reuse_port: bool,
) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    // Best effort: the kernel silently caps these at rmem_max/wmem_max.
    let _ = socket.set_recv_buffer_size(buffers.recv);
    let _ = socket.set_send_buffer_size(buffers.send);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
