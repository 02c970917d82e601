//! The server's framing of heads that arrive in pieces, driven in-process over loopback: a
//! front that counts what it is given shows that a head sent a byte at a time is handed over
//! once it is complete (linear work), and that a head split anywhere gets the same answer as
//! in one piece.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::*;
use crate::front::api::Waiter;
use crate::front::http::{HttpSite, Outcome, Scratch};
use crate::service::{Policy, Tracker};

/// The tracker's own front, counting its calls and the bytes it was given to parse.
struct Counting {
    site: HttpSite,
    calls: usize,
    bytes: usize,
}

impl Front for Counting {
    fn serve(
        &mut self,
        tracker: &mut Tracker,
        data: &[u8],
        limits: &HeadLimits,
        remote: IpAddr,
        waiter: Waiter,
        now: u32,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.calls += 1;
        self.bytes += data.len();
        let mut site = &self.site;
        site.serve(tracker, data, limits, remote, waiter, now, scratch, out)
    }
}

struct Rig {
    poll: Poll,
    events: Events,
    server: HttpServer,
    tracker: Tracker,
    front: Counting,
    addr: std::net::SocketAddr,
}

impl Rig {
    fn new() -> Rig {
        // Bound as the tracker binds (a backlog of 1,024, non-blocking).
        let listener = crate::net::bind_tcp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = HttpLimits {
            max_connections: 100,
            max_connections_configured: 100,
            max_request_size: 8192,
            max_header_lines: 64,
            idle_timeout: 30,
            header_timeout: 10,
            max_pipelined: 16,
            max_write_buffer: 1 << 20,
        };
        let poll = Poll::new().unwrap();
        let mut server = HttpServer::new(vec![listener], limits, 16).unwrap();
        server.register(poll.registry(), 0).unwrap();
        Rig {
            poll,
            events: Events::with_capacity(64),
            server,
            tracker: Tracker::new(Policy::default()),
            front: Counting {
                site: HttpSite::default(),
                calls: 0,
                bytes: 0,
            },
            addr,
        }
    }

    /// Runs the server's side (as the event loop does) until `done` holds (bounded).
    fn drive_until(&mut self, mut done: impl FnMut(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(self) {
            assert!(Instant::now() < deadline, "the server did not get there");
            self.turn();
        }
    }

    /// One loop turn: a poll (5 ms at most), its events, then the pending work.
    fn turn(&mut self) {
        self.poll
            .poll(&mut self.events, Some(Duration::from_millis(5)))
            .unwrap();
        let ready: Vec<_> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token(),
                    e.is_readable() || e.is_read_closed(),
                    e.is_writable(),
                    e.is_read_closed() || e.is_error(),
                )
            })
            .collect();
        for (token, readable, writable, closed) in ready {
            if token.0 < self.server.listener_count() {
                self.server.accept(
                    token.0,
                    self.poll.registry(),
                    &mut self.tracker,
                    &mut self.front,
                    0,
                );
            } else {
                if closed {
                    self.server.note_read_closed(token);
                }
                self.server.ready(
                    token,
                    readable,
                    writable,
                    self.poll.registry(),
                    &mut self.tracker,
                    &mut self.front,
                    0,
                );
            }
        }
        self.server
            .serve_pending(self.poll.registry(), &mut self.tracker, &mut self.front, 0);
    }

    /// Sends `head` in the pieces `cuts` makes, each read by the server before the next is
    /// sent, and returns the whole response (the server closes after it).
    fn send_in_pieces(&mut self, head: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut client = TcpStream::connect(self.addr).unwrap();
        client.set_nodelay(true).unwrap();
        let mut start = 0;
        for end in cuts.iter().copied().chain([head.len()]) {
            if end <= start {
                continue;
            }
            client.write_all(&head[start..end]).unwrap();
            let want = self.tracker.stats.bytes_in + (end - start) as u64;
            self.drive_until(|r| r.tracker.stats.bytes_in >= want);
            start = end;
        }
        client.set_nonblocking(true).unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no end of response");
                    self.drive_until(|_| true);
                    self.poll
                        .poll(&mut self.events, Some(Duration::from_millis(5)))
                        .unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
        response
    }
}

/// A scrape (its answer depends on nothing but the request) with `lines` header lines.
fn scrape_head(lines: usize) -> Vec<u8> {
    let mut head = b"GET /scrape?info_hash=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14 HTTP/1.1\r\n".to_vec();
    for i in 0..lines {
        head.extend_from_slice(format!("X-Filler-{i}: some value {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    head
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_parsed_once() {
    let mut rig = Rig::new();
    let head = scrape_head(40);
    let n = head.len();
    let every: Vec<usize> = (1..n).collect();
    let response = rig.send_in_pieces(&head, &every);
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"), "{response:?}");
    // The first byte is offered to the front at once (the common case: a whole request in one
    // read); after that the head is framed by its scan and handed over once, complete. A
    // parser started again on every read would be given n(n+1)/2 bytes (about 1.2 MB here).
    assert_eq!(rig.front.calls, 2, "{} bytes", rig.front.bytes);
    assert_eq!(rig.front.bytes, 1 + n);
    assert_eq!(rig.tracker.stats.bytes_in, n as u64);
}

#[test]
fn a_head_split_at_any_byte_gets_the_same_answer_as_in_one_piece() {
    let mut rig = Rig::new();
    let head = scrape_head(3);
    let whole = rig.send_in_pieces(&head, &[]);
    assert!(whole.starts_with(b"HTTP/1.1 200 OK\r\n"), "{whole:?}");
    assert!(whole.ends_with(b"ee"), "{whole:?}");
    for cut in 1..head.len() {
        let split = rig.send_in_pieces(&head, &[cut]);
        assert_eq!(
            String::from_utf8_lossy(&split),
            String::from_utf8_lossy(&whole),
            "split at {cut}"
        );
    }
    // Three pieces around the line ends.
    for cut in (2..head.len() - 2).step_by(7) {
        let split = rig.send_in_pieces(&head, &[cut - 1, cut + 1]);
        assert_eq!(split, whole, "split at {} and {}", cut - 1, cut + 1);
    }
}

#[test]
fn a_head_over_the_line_cap_gets_431_even_in_pieces() {
    let mut rig = Rig::new();
    let head = scrape_head(64); // 65 header lines with `Connection`
    for cuts in [vec![], (1..head.len()).step_by(13).collect::<Vec<_>>()] {
        let response = rig.send_in_pieces(&head, &cuts);
        assert!(
            response.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{}",
            String::from_utf8_lossy(&response)
        );
    }
    assert_eq!(rig.tracker.stats.http_status_count(431), 2);
    let fits = scrape_head(63);
    let response = rig.send_in_pieces(&fits, &[100]);
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

/// A backlog of more connections than one turn may take ([`MAX_ACCEPTS_PER_TURN`]): each turn
/// takes exactly the budget, the rest waits in the kernel's backlog for the next turns (with no
/// new readiness event: the listener is on the pending list), and every client is answered.
#[test]
fn a_turn_takes_at_most_max_accepts_per_turn_from_a_backlog() {
    let mut rig = Rig::new();
    let n = 2 * MAX_ACCEPTS_PER_TURN + 44;
    let head = scrape_head(0);
    // Every connection is in the backlog, its request sent, before the server's first turn.
    let mut clients: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(rig.addr).unwrap();
            c.write_all(&head).unwrap();
            c
        })
        .collect();
    let mut per_turn = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.tracker.stats.tcp_accepted < n as u64 {
        assert!(
            Instant::now() < deadline,
            "stuck at {} of {n} after {} turns",
            rig.tracker.stats.tcp_accepted,
            per_turn.len()
        );
        let before = rig.tracker.stats.tcp_accepted;
        rig.turn();
        per_turn.push(rig.tracker.stats.tcp_accepted - before);
    }
    assert_eq!(
        per_turn,
        [MAX_ACCEPTS_PER_TURN as u64, MAX_ACCEPTS_PER_TURN as u64, 44],
        "connections accepted per turn"
    );
    assert!(!rig.server.has_pending());
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut response = Vec::new();
        c.read_to_end(&mut response).unwrap();
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"), "{response:?}");
    }
}
