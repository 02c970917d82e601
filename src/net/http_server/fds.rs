//! File descriptors: the open-files limit at start, the spare descriptor that lets the server
//! refuse a newcomer cleanly when it has no other, and accept failures logged at most once per
//! interval.
//!
//! Every HTTP connection is a descriptor. Started under the common default of 1,024 open files
//! (an init script, a shell) with `http.max_connections 10000`, `accept` would fail with EMFILE
//! after about a thousand connections: the newcomer would wait in the kernel's backlog until
//! its own timeout, and a warning would be logged per attempt. So:
//! - at start, [`fit_connections`] raises the soft `RLIMIT_NOFILE` toward the hard limit, as far
//!   as `http.max_connections` plus a reserve needs, and when that is not enough lowers the
//!   connection cap to what fits (the over-limit path then refuses newcomers cleanly);
//! - if descriptors still run out (the API's connections, files opened by helper threads,
//!   ENFILE system-wide), a [`Spare`] descriptor is given up to accept the newcomer and close it
//!   at once, then taken back;
//! - failures are logged through a [`Throttle`]: one line per [`LOG_INTERVAL`] at most, with the
//!   count since the last line.

use std::io;

use mio::net::TcpListener;
use socket2::{Domain, Socket, Type};

/// Seconds between two log lines about accept failures.
pub const LOG_INTERVAL: u32 = 10;

/// Descriptors kept for what is not an HTTP connection, besides one per listening socket:
/// standard streams, the poll, its waker and the signal pipe, the spare descriptors, the
/// database (SQLite: file, WAL, shared memory), the state, log and pid files, list and
/// certificate reloads, and a margin.
pub const RESERVE: usize = 32;

/// True for the errors of `accept` that mean "no descriptor left": EMFILE (this process's
/// limit) and ENFILE (the system's).
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// What [`fit_connections`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft open-files limit at start.
    pub soft_before: u64,
    /// The soft limit now (raised, or unchanged).
    pub soft: u64,
    /// The hard limit (`u64::MAX`: unlimited).
    pub hard: u64,
    /// Descriptors needed besides the HTTP connections: one per listening socket plus
    /// [`RESERVE`].
    pub reserve: usize,
    /// `http.max_connections` as configured.
    pub configured: usize,
    /// The connection cap to use: `configured`, or what fits under `soft` after `reserve`
    /// (at least 1).
    pub max_connections: usize,
}

impl FdBudget {
    /// The cap that `max_connections` descriptors beside a `reserve` leave under a soft limit
    /// of `soft`: `configured` when it fits, else what fits (at least 1).
    pub fn cap(configured: usize, reserve: usize, soft: u64) -> usize {
        let needed = configured.saturating_add(reserve) as u64;
        if soft >= needed {
            configured
        } else {
            usize::try_from(soft)
                .unwrap_or(usize::MAX)
                .saturating_sub(reserve)
                .max(1)
        }
    }

    /// By how many connections the cap was lowered (0 when it was not).
    pub fn lowered_by(&self) -> usize {
        self.configured - self.max_connections
    }

    /// Logs what was done, once: the raise at info, a lowered cap at warn (how far, and what
    /// to change).
    pub fn log(&self) {
        if self.soft > self.soft_before {
            log::info!(
                "open-files limit (RLIMIT_NOFILE) raised from {} to {} (hard limit {})",
                self.soft_before,
                self.soft,
                show_limit(self.hard)
            );
        }
        if self.lowered_by() > 0 {
            log::warn!(
                "open-files limit (RLIMIT_NOFILE) is {} (hard limit {}), {} needed: \
                 http.max_connections lowered from {} to {} (by {}); raise the limit \
                 (ulimit -n, systemd LimitNOFILE=) to serve more",
                self.soft,
                show_limit(self.hard),
                self.configured.saturating_add(self.reserve),
                self.configured,
                self.max_connections,
                self.lowered_by()
            );
        }
    }
}

fn show_limit(n: u64) -> String {
    if n == u64::MAX {
        "unlimited".to_string()
    } else {
        n.to_string()
    }
}

/// The process's open-files limit: `(soft, hard)`, `u64::MAX` for unlimited; `None` if it
/// cannot be read.
pub fn nofile_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed `r`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    Some((to_u64(r.rlim_cur), to_u64(r.rlim_max)))
}

// `rlim_t` is `u64` on 64-bit Linux, narrower on some other targets.
#[allow(clippy::useless_conversion)]
fn to_u64(limit: libc::rlim_t) -> u64 {
    if limit == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        u64::from(limit)
    }
}

/// Sets the soft open-files limit to `soft`, keeping the hard limit `hard`.
fn set_soft_limit(soft: u64, hard: u64) -> io::Result<()> {
    let back = |n: u64| {
        if n == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            libc::rlim_t::try_from(n).unwrap_or(libc::RLIM_INFINITY)
        }
    };
    let r = libc::rlimit {
        rlim_cur: back(soft),
        rlim_max: back(hard),
    };
    // SAFETY: setrlimit reads one rlimit from the valid `r`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes room for `configured` HTTP connections (`http.max_connections`) beside `listeners`
/// listening sockets (TCP, UDP, API, TLS, live sync): raises the soft `RLIMIT_NOFILE` toward
/// the hard limit, as far as `configured + listeners +` [`RESERVE`] needs (never lowers it),
/// and returns the connection cap that fits under the soft limit then. No privilege needed
/// (the hard limit is not touched). If the limit cannot be read, nothing changes.
pub fn fit_connections(configured: usize, listeners: usize) -> FdBudget {
    let reserve = listeners.saturating_add(RESERVE);
    let needed = configured.saturating_add(reserve) as u64;
    let Some((soft_before, hard)) = nofile_limit() else {
        return FdBudget {
            soft_before: u64::MAX,
            soft: u64::MAX,
            hard: u64::MAX,
            reserve,
            configured,
            max_connections: configured,
        };
    };
    let mut soft = soft_before;
    if soft < needed {
        let target = needed.min(hard);
        match set_soft_limit(target, hard) {
            Ok(()) => soft = target,
            Err(e) => log::warn!("cannot raise the open-files limit to {target}: {e}"),
        }
    }
    FdBudget {
        soft_before,
        soft,
        hard,
        reserve,
        configured,
        max_connections: FdBudget::cap(configured, reserve, soft),
    }
}

/// One descriptor held in reserve (an unbound Unix datagram socket: no path, so it can be
/// reopened inside a chroot), given up for an instant to accept a newcomer and close it when
/// the process has no other descriptor left.
#[derive(Debug)]
pub struct Spare {
    fd: Option<Socket>,
}

impl Spare {
    /// Opens the spare descriptor (none if that fails: it is retried by [`Spare::reopen`]).
    pub fn open() -> Spare {
        let mut spare = Spare { fd: None };
        spare.reopen();
        spare
    }

    /// Whether the spare descriptor is held.
    pub fn is_held(&self) -> bool {
        self.fd.is_some()
    }

    /// Takes the spare descriptor back if it is not held (after a [`Spare::refuse`] could not).
    pub fn reopen(&mut self) {
        if self.fd.is_none() {
            self.fd = Socket::new(Domain::UNIX, Type::DGRAM, None).ok();
        }
    }

    /// Closes the spare descriptor, accepts one connection from `listener` and closes it at once
    /// (the client sees an orderly close), then reopens the spare. See [`Refusal`].
    pub fn refuse(&mut self, listener: &TcpListener) -> Refusal {
        if self.fd.take().is_none() {
            return Refusal::Failed;
        }
        let refusal = loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    drop(stream);
                    break Refusal::Refused;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Refusal::NothingWaiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break Refusal::Failed,
            }
        };
        self.reopen();
        refusal
    }
}

/// What [`Spare::refuse`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A waiting connection was accepted and closed.
    Refused,
    /// No connection was waiting (`accept` fails with EMFILE before it looks at the backlog,
    /// so a full descriptor table says nothing of the backlog).
    NothingWaiting,
    /// No spare descriptor was held, or `accept` failed even with it given up: the newcomer
    /// stays in the backlog.
    Failed,
}

/// Counts events and says when to log them: the first at once, then at most one line per
/// [`LOG_INTERVAL`] seconds, each with the count since the last line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Seconds (loop clock) of the last line, `None` before the first.
    last: Option<u32>,
    /// Events since the last line.
    count: u64,
}

impl Throttle {
    /// Counts one event at `now` (seconds): `Some(count)` when a line is due (the count since
    /// the last line, this event included, which the caller logs), `None` when it waits.
    pub fn note(&mut self, now: u32) -> Option<u64> {
        self.count += 1;
        self.flush(now)
    }

    /// `Some(count)` of the events not logged yet, if there are some and [`LOG_INTERVAL`]
    /// passed since the last line (or none was logged yet); the count starts again from 0.
    pub fn flush(&mut self, now: u32) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        if self
            .last
            .is_some_and(|t| now.saturating_sub(t) < LOG_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_logs_once_per_interval_with_the_count() {
        let mut t = Throttle::default();
        assert_eq!(t.note(100), Some(1));
        for _ in 0..44 {
            assert_eq!(t.note(101), None);
        }
        assert_eq!(t.flush(109), None);
        assert_eq!(t.flush(110), Some(44));
        assert_eq!(t.flush(130), None, "nothing new");
        assert_eq!(t.note(131), Some(1), "a quiet interval passed: at once");
        assert_eq!(t.note(132), None);
        assert_eq!(t.note(141), Some(2));
    }

    #[test]
    fn cap_fits_under_the_soft_limit() {
        assert_eq!(FdBudget::cap(10_000, 36, 1_000_000), 10_000);
        assert_eq!(FdBudget::cap(10_000, 36, 10_036), 10_000);
        assert_eq!(FdBudget::cap(10_000, 36, 10_035), 9_999);
        assert_eq!(FdBudget::cap(10_000, 36, 1024), 988);
        assert_eq!(FdBudget::cap(10_000, 36, 20), 1);
        assert_eq!(FdBudget::cap(10_000, 36, u64::MAX), 10_000);
    }

    #[test]
    fn exhaustion_errors() {
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }

    #[test]
    fn spare_refuses_a_waiting_connection_cleanly() {
        use std::io::Read;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener);
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let mut spare = Spare::open();
        assert!(spare.is_held());
        // The handshake completes in the kernel; wait for the connection to be acceptable.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match spare.refuse(&listener) {
                Refusal::Refused => break,
                Refusal::NothingWaiting => {}
                Refusal::Failed => panic!("accept failed"),
            }
            assert!(std::time::Instant::now() < deadline, "never acceptable");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(spare.is_held(), "taken back");
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).unwrap(), 0, "an orderly close");
        assert_eq!(spare.refuse(&listener), Refusal::NothingWaiting);
    }
}
