//! Access lists against the real binary: whitelist and blacklist refusals on HTTP and UDP (exact
//! bytes), scrape of refused info_hashes, SIGHUP reload while clients keep announcing, a reload
//! of a deleted file, bad lines reported with FILE:LINE, and a missing list at start.

mod common;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, Response, ScrapeRequest,
    parse_response,
};

const REFUSED_BODY: &[u8] =
    b"d14:failure reason63:Requested download is not authorized for use with this tracker.e";

fn hex(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a list file holding `hashes` (one per line) in a fresh directory.
fn list_file(name: &str, hashes: &[[u8; 20]]) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let path = dir.join("list.txt");
    write_list(&path, hashes);
    (dir, path)
}

fn write_list(path: &Path, hashes: &[[u8; 20]]) {
    let text: String = hashes.iter().map(|h| format!("{}\n", hex(h))).collect();
    // Write beside and rename, as an operator's tool would (a reader never sees half a file).
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn start(name: &str, directive: &str, path: &Path) -> Tracker {
    Tracker::start(
        name,
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.udp [::1]:0\n{directive} {}\n",
            path.display()
        ),
    )
}

/// Waits (bounded) until the log holds `text` `count` times or more.
fn wait_log(t: &Tracker, text: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.log_text().matches(text).count() < count {
        assert!(
            Instant::now() < deadline,
            "log never showed {text:?} x{count}:\n{}",
            t.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The info_hashes listed in an HTTP scrape's `files`, with their `downloaded` count.
fn scrape_files(addr: SocketAddr, hashes: &[[u8; 20]]) -> Vec<(Vec<u8>, i64, i64)> {
    let q: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", pct(h)))
        .collect();
    let r = get(addr, &format!("/scrape?{}", q.join("&")));
    assert_eq!(r.status, 200);
    let v = r.bencode();
    v.get(b"files")
        .and_then(|f| f.as_dict())
        .expect("files dict")
        .iter()
        .map(|(k, d)| {
            (
                k.to_vec(),
                d.get(b"incomplete").unwrap().as_int().unwrap(),
                d.get(b"downloaded").unwrap().as_int().unwrap(),
            )
        })
        .collect()
}

struct Udp {
    sock: UdpSocket,
    tracker: SocketAddr,
    id: u64,
}

impl Udp {
    fn new(tracker: SocketAddr) -> Udp {
        let bind = if tracker.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut u = Udp {
            sock,
            tracker,
            id: 0,
        };
        let mut out = Vec::new();
        ConnectRequest { transaction_id: 1 }.emit(&mut out);
        match parse_response(&u.send(&out)).unwrap() {
            Response::Connect(c) => u.id = c.connection_id,
            other => panic!("{other:?}"),
        }
        u
    }

    fn send(&self, bytes: &[u8]) -> Vec<u8> {
        self.sock.send_to(bytes, self.tracker).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = self.sock.recv_from(&mut buf).expect("a reply");
        buf[..n].to_vec()
    }

    fn announce_raw(&self, h: &[u8; 20], transaction_id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        AnnounceRequest {
            connection_id: self.id,
            transaction_id,
            info_hash: *h,
            peer_id: *b"-TE0001-abcdefghijkl",
            downloaded: 0,
            left: 10,
            uploaded: 0,
            event: Event::Started,
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            key: 1,
            num_want: -1,
            port: self.sock.local_addr().unwrap().port(),
            options: AnnounceOptions::EMPTY,
        }
        .emit(&mut out);
        self.send(&out)
    }

    /// (seeders, completed, leechers) per hash.
    fn scrape(&self, hashes: &[[u8; 20]]) -> Vec<(u32, u32, u32)> {
        let mut out = Vec::new();
        ScrapeRequest {
            connection_id: self.id,
            transaction_id: 5,
            info_hashes: InfoHashes::from_hashes(hashes).unwrap(),
        }
        .emit(&mut out);
        match parse_response(&self.send(&out)).unwrap() {
            Response::Scrape(s) => s
                .entries
                .iter()
                .map(|e| (e.seeders, e.completed, e.leechers))
                .collect(),
            other => panic!("{other:?}"),
        }
    }
}

/// The exact BEP 15 error packet for a refused announce.
fn refused_packet(transaction_id: u32) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 3];
    p.extend_from_slice(&transaction_id.to_be_bytes());
    p.extend_from_slice(b"Requested download is not authorized for use with this tracker.");
    p
}

#[test]
fn whitelist_refuses_on_http_with_opentracker_text_and_reports_bad_lines() {
    let (allowed, refused) = (hash(1), hash(2));
    let dir = temp_dir("wl-http-list");
    let path = dir.join("whitelist.txt");
    std::fs::write(
        &path,
        format!(
            "# allowed torrents\n{}  # linux iso\r\nnot-a-hash\n{}0\n",
            hex(&allowed).to_uppercase(),
            hex(&hash(3))
        ),
    )
    .unwrap();
    let t = start("wl-http", "access.whitelist", &path);
    let a = t.http_addr(false);
    let log = t.log_text();
    let name = path.display().to_string();
    assert!(
        log.contains(&format!(
            "access.whitelist: {name}:3: not a hex info_hash (40 digits 0-9, a-f): \
             \"not-a-hash\"; line skipped"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("{name}:4: 41 hex digits, an info_hash has 40")),
        "{log}"
    );
    assert!(log.contains("1 info_hashes loaded"), "{log}");

    let r = get(a, &announce(&refused, 7000, 10, "&event=started"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, REFUSED_BODY);
    let r = get(a, &announce(&allowed, 7001, 10, "&event=started"));
    assert_eq!(r.failure(), None, "{:?}", r.body);
    assert_eq!(r.bencode().get(b"incomplete").unwrap().as_int(), Some(1));

    // Scrape: the refused hash is left out of `files`, the allowed one is there.
    assert_eq!(
        scrape_files(a, &[refused, allowed]),
        [(allowed.to_vec(), 1, 0)]
    );
    assert_eq!(
        get(a, &format!("/scrape?info_hash={}", pct(&refused))).body,
        b"d5:filesdee"
    );
}

#[test]
fn whitelist_refuses_on_udp_with_an_error_packet() {
    let (allowed, refused) = (hash(1), hash(2));
    let (_dir, path) = list_file("wl-udp-list", &[allowed]);
    let t = start("wl-udp", "access.whitelist", &path);
    for v6 in [false, true] {
        let u = Udp::new(t.udp_addr(v6));
        assert_eq!(
            u.announce_raw(&refused, 0xdead_beef),
            refused_packet(0xdead_beef)
        );
        match parse_response(&u.announce_raw(&allowed, 9)).unwrap() {
            Response::Announce(r) => assert_eq!(r.transaction_id, 9),
            other => panic!("{other:?}"),
        }
        // Positional scrape: zeros for the refused hash.
        let leechers = if v6 { 2 } else { 1 };
        assert_eq!(
            u.scrape(&[refused, allowed, refused]),
            [(0, 0, 0), (0, 0, leechers), (0, 0, 0)]
        );
    }
}

#[test]
fn blacklist_refuses_listed_hashes_only() {
    let (listed, other) = (hash(5), hash(6));
    let (_dir, path) = list_file("bl-list", &[listed]);
    let t = start("bl", "access.blacklist", &path);
    let a = t.http_addr(false);
    assert_eq!(get(a, &announce(&listed, 7000, 10, "")).body, REFUSED_BODY);
    assert_eq!(get(a, &announce(&other, 7000, 10, "")).failure(), None);
    assert_eq!(scrape_files(a, &[listed, other]), [(other.to_vec(), 1, 0)]);
    let u = Udp::new(t.udp_addr(false));
    assert_eq!(u.announce_raw(&listed, 3), refused_packet(3));
    assert_eq!(u.scrape(&[listed, other]), [(0, 0, 0), (0, 0, 1)]);
}

#[test]
fn sighup_reload_swaps_the_list_purges_and_keeps_peers_and_connections() {
    let (kept, dropped, added) = (hash(1), hash(2), hash(3));
    let (_dir, path) = list_file("reload-list", &[kept, dropped]);
    let t = start("reload", "access.whitelist", &path);
    let a = t.http_addr(false);
    for port in [7001, 7002] {
        assert_eq!(get(a, &announce(&kept, port, 10, "")).failure(), None);
        assert_eq!(get(a, &announce(&dropped, port, 10, "")).failure(), None);
    }
    assert_eq!(get(a, &announce(&added, 7001, 10, "")).body, REFUSED_BODY);
    // A keep-alive connection used before the reload.
    let mut conn = connect(a);
    write!(
        conn,
        "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
        announce(&kept, 7004, 10, "")
    )
    .unwrap();
    let r = read_response(&mut conn).expect("response");
    assert_eq!(r.failure(), None);

    // A client keeps announcing the kept torrent (HTTP) and over UDP while the list changes.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, ok) = (stop.clone(), ok.clone());
        let udp = t.udp_addr(false);
        std::thread::spawn(move || {
            let u = Udp::new(udp);
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let r = get(a, &announce(&kept, 7003, 10, ""));
                assert_eq!(r.failure(), None, "kept torrent refused mid-reload");
                n += 1;
                match parse_response(&u.announce_raw(&kept, n)).unwrap() {
                    Response::Announce(_) => {}
                    other => panic!("UDP announce of kept torrent: {other:?}"),
                }
                ok.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while ok.load(Ordering::SeqCst) < 5 {
        std::thread::sleep(Duration::from_millis(5));
    }
    write_list(&path, &[kept, added]);
    t.signal(libc::SIGHUP);
    wait_log(&t, "access purge done: 1 torrents dropped", 1);
    let before = ok.load(Ordering::SeqCst);
    while ok.load(Ordering::SeqCst) < before + 5 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let log = t.log_text();
    assert!(
        log.contains(&format!(
            "access.whitelist {} reloaded: 2 info_hashes",
            path.display()
        )),
        "{log}"
    );

    // The dropped torrent is refused and gone (its 2 peers too); the new one is served; the
    // kept torrent kept its peers (7001 to 7004 over HTTP, one UDP peer).
    assert_eq!(get(a, &announce(&dropped, 7001, 10, "")).body, REFUSED_BODY);
    assert_eq!(scrape_files(a, &[dropped]), []);
    assert_eq!(get(a, &announce(&added, 7001, 10, "")).failure(), None);
    assert_eq!(
        scrape_files(a, &[kept, added, dropped]),
        [(kept.to_vec(), 5, 0), (added.to_vec(), 1, 0)]
    );
    let u = Udp::new(t.udp_addr(false));
    assert_eq!(u.announce_raw(&dropped, 4), refused_packet(4));

    // The connection opened before the reload still works.
    write!(
        conn,
        "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
        announce(&added, 7002, 10, "")
    )
    .unwrap();
    let r = read_response(&mut conn).expect("response on the old connection");
    assert_eq!(r.bencode().get(b"incomplete").unwrap().as_int(), Some(2));
}

#[test]
fn sighup_with_the_file_deleted_keeps_the_old_list() {
    let (allowed, other) = (hash(1), hash(2));
    let (_dir, path) = list_file("deleted-list", &[allowed]);
    let t = start("deleted", "access.whitelist", &path);
    let a = t.http_addr(false);
    assert_eq!(get(a, &announce(&allowed, 7001, 10, "")).failure(), None);
    std::fs::remove_file(&path).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "keeping the previous list (1 info_hashes)", 1);
    let log = t.log_text();
    assert!(
        log.contains(&format!(
            "access.whitelist: cannot read {}: No such file",
            path.display()
        )) && log.contains("WARN"),
        "{log}"
    );
    assert_eq!(get(a, &announce(&allowed, 7002, 10, "")).failure(), None);
    assert_eq!(get(a, &announce(&other, 7002, 10, "")).body, REFUSED_BODY);
    assert_eq!(scrape_files(a, &[allowed]), [(allowed.to_vec(), 2, 0)]);

    // The file comes back with a bad line: reloaded, and the bad line is reported.
    std::fs::write(&path, format!("{}\nxyz\n{}\n", hex(&allowed), hex(&other))).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "reloaded: 2 info_hashes", 1);
    assert!(
        t.log_text().contains(&format!(
            "access.whitelist: {}:2: not a hex info_hash (40 digits 0-9, a-f): \"xyz\"; \
             line skipped",
            path.display()
        )),
        "{}",
        t.log_text()
    );
    assert_eq!(get(a, &announce(&other, 7002, 10, "")).failure(), None);
}

/// A SIGHUP that reads a half-written whitelist (3 of 4 hashes gone) is refused and the old list
/// stays; the same file ending in `# end` is taken, and the `downloaded` count of a torrent it
/// purged comes back when the hash is listed again.
#[test]
fn sighup_refuses_a_big_drop_without_the_end_marker_and_keeps_counts() {
    let hashes = [hash(11), hash(12), hash(13), hash(14)];
    let (_dir, path) = list_file("reload-drop", &hashes);
    let t = start("reloaddrop", "access.whitelist", &path);
    let a = t.http_addr(false);
    assert_eq!(
        get(a, &announce(&hashes[1], 7001, 0, "&event=completed")).failure(),
        None
    );
    // Written in place and caught early: only the first hash.
    std::fs::write(&path, format!("{}\n", hex(&hashes[0]))).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "reload refused", 1);
    assert!(
        t.log_text()
            .contains("drops 3 of 4 info_hashes, more than access.reload_max_drop 50%"),
        "{}",
        t.log_text()
    );
    assert_eq!(get(a, &announce(&hashes[1], 7002, 10, "")).failure(), None);
    // The operator means it: the marker line.
    std::fs::write(&path, format!("{}\n# end\n", hex(&hashes[0]))).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "access purge done", 1);
    assert_eq!(
        get(a, &announce(&hashes[1], 7003, 10, "")).body,
        REFUSED_BODY
    );
    // Listed again: its count is back.
    write_list(&path, &hashes);
    t.signal(libc::SIGHUP);
    wait_log(&t, "1 restored", 1);
    assert_eq!(scrape_files(a, &[hashes[1]]), [(hashes[1].to_vec(), 0, 1)]);
}

#[test]
fn missing_list_at_start_is_fatal() {
    let dir = temp_dir("wl-missing");
    let conf = dir.join("o.conf");
    let missing = dir.join("nope.txt");
    std::fs::write(
        &conf,
        format!(
            "listen.tcp 127.0.0.1:0\naccess.whitelist {}\n",
            missing.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(binary())
        .args(allow_root_arg())
        .args(["-f", conf.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "opentracker-rs: access.whitelist: cannot read {}: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("listening:"),
        "served without its list: {err}"
    );

    // The same through -b, and a directory instead of a file.
    let out = std::process::Command::new(binary())
        .args(allow_root_arg())
        .args(["-i", "127.0.0.1", "-p", "0", "-b", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("access.blacklist: cannot read") && err.contains("not a regular file"),
        "{err}"
    );
}
