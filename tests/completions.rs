//! Downloads that never say `completed` (issue #13). rtorrent finishes a download and sends only
//! `started` (left > 0) and later `stopped` with left = 0. A stored leecher's next `left=0`
//! counts one download whatever the event, and never twice for one stay of a peer; a peer the
//! swarm does not hold still counts only with `completed` (as opentracker). Exact counts from
//! scrape over HTTP and UDP, the `/metrics` counter, two live sync nodes on loopback, and the
//! database's completed count. The same with rtorrent itself: tests/e2e_rtorrent.rs.

mod api_common;
mod common;
// Only `Node` and `eventually` of the cluster harness are used here.
#[allow(dead_code)]
#[path = "cluster/lab.rs"]
mod lab;

use common::udp::Client;
use common::*;
use lab::{Node, eventually};
use opentracker_rs::types::Event;

/// (complete, downloaded, incomplete) of one torrent by HTTP scrape.
fn scrape(t: &Tracker, h: &[u8; 20]) -> (i64, i64, i64) {
    let r = get(t.http_addr(false), &format!("/scrape?info_hash={}", pct(h)));
    let v = r.bencode();
    let e = v.get(b"files").unwrap().get(h).expect("torrent in scrape");
    let n = |k: &[u8]| e.get(k).unwrap().as_int().unwrap();
    (n(b"complete"), n(b"downloaded"), n(b"incomplete"))
}

/// The value of one `/metrics` sample, exactly as printed.
fn metric(t: &Tracker, sample: &str) -> u64 {
    let body = get(t.http_addr(false), "/metrics").body;
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics"))
}

fn start(name: &str) -> Tracker {
    Tracker::start(
        name,
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\naccess.stats 127.0.0.1\n",
    )
}

#[test]
fn http_left_zero_without_completed_counts_once() {
    let t = start("complete-http");
    let a = t.http_addr(false);
    let h = hash(1301);
    // rtorrent's download: started with left > 0, then stopped with left = 0.
    get(a, &announce(&h, 7001, 1 << 20, "&event=started"));
    assert_eq!(scrape(&t, &h), (0, 0, 1));
    get(a, &announce(&h, 7001, 0, "&event=stopped"));
    let r = get(a, &format!("/scrape?info_hash={}", pct(&h)));
    let want = [
        b"d5:filesd20:".as_slice(),
        &h,
        b"d8:completei0e10:downloadedi1e10:incompletei0eeee",
    ]
    .concat();
    assert_eq!(r.body, want, "kept, peerless, for its count");
    // The same stop again: the peer is gone, nothing counts.
    get(a, &announce(&h, 7001, 0, "&event=stopped"));
    assert_eq!(scrape(&t, &h), (0, 1, 0));

    // A leecher whose regular announce says left = 0: one, however often it says so after.
    get(a, &announce(&h, 7002, 1 << 20, "&event=started"));
    get(a, &announce(&h, 7002, 0, ""));
    assert_eq!(scrape(&t, &h), (1, 2, 0));
    get(a, &announce(&h, 7002, 0, ""));
    get(a, &announce(&h, 7002, 0, "&event=completed"));
    get(a, &announce(&h, 7002, 0, "&event=stopped"));
    assert_eq!(scrape(&t, &h), (0, 2, 0));

    // A seeder joining (left = 0, no completed) is no download; a stranger's `completed` with
    // left = 0 is (as opentracker); `completed` with left > 0 is not.
    get(a, &announce(&h, 7003, 0, "&event=started"));
    assert_eq!(scrape(&t, &h), (1, 2, 0));
    get(a, &announce(&h, 7004, 0, "&event=completed"));
    assert_eq!(scrape(&t, &h), (2, 3, 0));
    get(a, &announce(&h, 7005, 10, "&event=completed"));
    assert_eq!(scrape(&t, &h), (2, 3, 1));
    // A seeder that goes back to left > 0 is a leecher again: its next left = 0 is a download.
    get(a, &announce(&h, 7003, 10, ""));
    get(a, &announce(&h, 7003, 0, ""));
    assert_eq!(scrape(&t, &h), (2, 4, 1));
    assert_eq!(metric(&t, "opentracker_completed_total"), 4);
}

#[test]
fn udp_left_zero_without_completed_counts_once() {
    let t = start("complete-udp");
    let c = Client::new(t.udp_addr(false));
    let id = c.connect();
    let h = hash(1302);
    let (_, leechers, seeders, _) = c.announce(id, &h, 7001, 1 << 20, Event::Started, -1);
    assert_eq!((leechers, seeders), (1, 0));
    // stopped with left = 0: a 20-byte reply (no peers), then (seeders, completed, leechers).
    let reply = c
        .send(&c.announce_bytes(id, &h, 7001, 0, Event::Stopped, -1))
        .unwrap();
    assert_eq!(reply.len(), 20);
    assert_eq!(c.scrape(id, &[h]), vec![(0, 1, 0)]);
    c.send(&c.announce_bytes(id, &h, 7001, 0, Event::Stopped, -1))
        .unwrap();
    assert_eq!(c.scrape(id, &[h]), vec![(0, 1, 0)], "a second stop");

    // left = 0 in a plain announce, then repeats and a late `completed`: one.
    c.announce(id, &h, 7002, 5, Event::Started, -1);
    let (_, leechers, seeders, _) = c.announce(id, &h, 7002, 0, Event::None, -1);
    assert_eq!((leechers, seeders), (0, 1));
    c.announce(id, &h, 7002, 0, Event::None, -1);
    c.announce(id, &h, 7002, 0, Event::Completed, -1);
    assert_eq!(c.scrape(id, &[h]), vec![(1, 2, 0)]);
    // A seeder joining: none. A stranger's completed with left = 0: one.
    c.announce(id, &h, 7003, 0, Event::Started, -1);
    assert_eq!(c.scrape(id, &[h]), vec![(2, 2, 0)]);
    c.announce(id, &h, 7004, 0, Event::Completed, -1);
    assert_eq!(c.scrape(id, &[h]), vec![(3, 3, 0)]);
    // The HTTP scrape agrees, and the counter.
    assert_eq!(scrape(&t, &h), (3, 3, 0));
    assert_eq!(metric(&t, "opentracker_completed_total"), 3);
}

#[test]
fn live_sync_nodes_count_the_same_download() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let conf = |own: u16, other: u16| {
        format!(
            "listen.tcp 127.0.0.1:0\naccess.stats 0.0.0.0/0\nlivesync.cluster.max_delay 1\n\
             livesync.cluster.listen 127.0.0.1:{own}\nlivesync.cluster.peer 127.0.0.1:{other}\n\
             livesync.cluster.node_ip 127.0.0.1\n"
        )
    };
    let a = Node::start("complete-sync-a", None, None, &conf(pa, pb));
    let b = Node::start("complete-sync-b", None, None, &conf(pb, pa));
    let h = hash(1303);
    // A seeder on B; rtorrent's download on A.
    b.get(&announce(&h, 7000, 0, "&event=started"));
    a.get(&announce(&h, 7001, 1 << 20, "&event=started"));
    assert!(
        eventually(10, || a.scrape(&h) == (1, 0, 1)
            && b.scrape(&h) == (1, 0, 1)),
        "A {:?}, B {:?}\n{}",
        a.scrape(&h),
        b.scrape(&h),
        b.log_text()
    );
    a.get(&announce(&h, 7001, 0, "&event=stopped"));
    assert!(
        eventually(10, || b.scrape(&h) == (1, 1, 0)),
        "B {:?}",
        b.scrape(&h)
    );
    assert_eq!(a.scrape(&h), (1, 1, 0));
    assert_eq!(a.metric("opentracker_completed_total"), 1.0);
    assert_eq!(a.metric("opentracker_livesync_completed_total"), 0.0);
    assert_eq!(b.metric("opentracker_completed_total"), 0.0);
    assert_eq!(b.metric("opentracker_livesync_completed_total"), 1.0);
}

#[test]
fn the_database_keeps_a_download_without_completed() {
    let dir = api_common::Dir::new("complete-db");
    let db = dir.db();
    let config = format!(
        "listen.tcp 127.0.0.1:0\naccess.stats 127.0.0.1\ndb.path {}\n",
        db.display()
    );
    let mut t = Tracker::start("complete-db-1", &config);
    let a = t.http_addr(false);
    let h = hash(1304);
    get(a, &announce(&h, 7001, 1 << 20, "&event=started"));
    get(a, &announce(&h, 7001, 0, "&event=stopped"));
    get(a, &announce(&h, 7002, 1 << 20, "&event=started"));
    get(a, &announce(&h, 7002, 0, ""));
    assert_eq!(scrape(&t, &h), (1, 2, 0));
    assert!(t.stop().success());
    api_common::wait_log(&t, "counters:");
    assert_eq!(
        api_common::db_completed(&db, &h),
        Some(2),
        "written at SIGTERM"
    );
    // Loaded again at start.
    let t = Tracker::start("complete-db-2", &config);
    assert_eq!(scrape(&t, &h), (0, 2, 0));
}
