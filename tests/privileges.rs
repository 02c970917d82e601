//! Privilege drop, chroot, the root policy and daemon mode, against the real binary on loopback.
//!
//! Most of these need root (CI runs as root); run as another user they check what they can and
//! say what they skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use opentracker_rs::privileges::lookup_user;

fn skip(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("{test}: skipped (needs root)");
    true
}

/// A field of /proc/PID/status, e.g. `Uid` -> "65534\t65534\t65534\t65534".
fn status_field(pid: u32, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in status"))
        .trim()
        .to_owned()
}

fn ids(n: u32) -> String {
    format!("{n}\t{n}\t{n}\t{n}")
}

/// One announce over HTTP: the tracker still serves.
fn serves(t: &Tracker) {
    let r = get(t.http_addr(false), &announce(&hash(1), 6881, 0, ""));
    assert_eq!(r.status, 200);
    assert!(r.failure().is_none(), "{:?}", r.failure());
    assert!(r.bencode().get(b"interval").is_some());
}

fn run_binary(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn drops_to_nobody_after_binding() {
    if skip("drops_to_nobody_after_binding") {
        return;
    }
    let nobody = lookup_user("nobody").unwrap();
    let t = Tracker::start_as_is("priv-nobody", &config_loopback("tracker.user nobody"), &[]);
    let pid = t.child.id();
    assert_eq!(status_field(pid, "Uid"), ids(nobody.uid));
    assert_eq!(status_field(pid, "Gid"), ids(nobody.gid));
    assert_eq!(status_field(pid, "Groups"), "");
    serves(&t);
    assert!(
        t.log_text()
            .contains(&format!("running as uid {} gid {}", nobody.uid, nobody.gid))
    );
}

#[test]
fn chroots_into_rootdir() {
    if skip("chroots_into_rootdir") {
        return;
    }
    let root = temp_dir("priv-chroot-root");
    let conf = config_loopback(&format!(
        "listen.udp 127.0.0.1:0\ntracker.rootdir {}\ntracker.user nobody",
        root.display()
    ));
    let mut t = Tracker::start_as_is("priv-chroot", &conf, &[]);
    let pid = t.child.id();
    let seen_root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    let seen_cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    serves(&t);
    // UDP and the connection_id key work inside an empty chroot too.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    sock.send_to(&connect, t.udp_addr(false)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(n, 16);
    assert_eq!(&buf[..8], &[0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(t.stop().code(), Some(0));
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(seen_root, root);
    assert_eq!(seen_cwd, root);
}

#[test]
fn refuses_root_without_user() {
    if skip("refuses_root_without_user") {
        return;
    }
    let (code, err) = run_binary(&["-i", "127.0.0.1", "-p", "0"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("opentracker-rs: refusing to run as root: set tracker.user (-u USER)"),
        "{err}"
    );
    assert!(err.contains("--allow-root"), "{err}");
    assert!(!err.contains("listening"), "bound something: {err}");
    // A user with uid 0 is root too.
    let (code, err) = run_binary(&["-i", "127.0.0.1", "-p", "0", "-u", "root"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("\"root\" has uid 0"), "{err}");
    // An unknown user is named, before anything is bound.
    let (code, err) = run_binary(&["-i", "127.0.0.1", "-p", "0", "-u", "no-such-otrs-user"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown user \"no-such-otrs-user\""), "{err}");
}

#[test]
fn allow_root_flag_and_directive() {
    if skip("allow_root_flag_and_directive") {
        return;
    }
    let t = Tracker::start_as_is("priv-allow-flag", &config_loopback(""), &["--allow-root"]);
    assert_eq!(status_field(t.child.id(), "Uid"), ids(0));
    serves(&t);
    drop(t);
    let t = Tracker::start_as_is(
        "priv-allow-directive",
        &config_loopback("tracker.allow_root on"),
        &[],
    );
    assert_eq!(status_field(t.child.id(), "Uid"), ids(0));
    serves(&t);
}

#[test]
fn not_root_only_changes_directory() {
    // As a non-root user (setpriv from util-linux), tracker.rootdir is a chdir, as opentracker.
    if skip("not_root_only_changes_directory") {
        return;
    }
    if Command::new("setpriv").arg("--help").output().is_err() {
        eprintln!("not_root_only_changes_directory: skipped (no setpriv)");
        return;
    }
    let nobody = lookup_user("nobody").unwrap();
    let dir = temp_dir("priv-chdir");
    let conf = dir.join("ot.conf");
    std::fs::write(
        &conf,
        format!(
            "listen.tcp 127.0.0.1:0\ntracker.rootdir {}\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("setpriv")
        .arg(format!("--reuid={}", nobody.uid))
        .arg(format!("--regid={}", nobody.gid))
        .arg("--clear-groups")
        .arg(binary())
        .arg("-f")
        .arg(&conf)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut log = Vec::new();
    let started = loop {
        match lines.next() {
            Some(Ok(l)) => {
                let done = l.contains("listening: http");
                log.push(l);
                if done {
                    break true;
                }
            }
            _ => break false,
        }
    };
    let pid = child.id();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
    let root = std::fs::read_link(format!("/proc/{pid}/root"));
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(started, "{log:#?}");
    assert!(status.success());
    assert_eq!(cwd.unwrap(), dir);
    assert_eq!(root.unwrap(), Path::new("/"));
}

/// Kills a detached tracker that a failed test left behind.
struct Reap(Option<i32>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            if Path::new(&format!("/proc/{pid}")).exists() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Gone or a zombie (a detached process is reaped by init, which may take a moment).
fn process_ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(s) => s
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

fn detached_start(dir: &Path, extra: &[&str]) -> (std::process::Output, PathBuf, PathBuf) {
    let conf = dir.join("ot.conf");
    std::fs::write(&conf, "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\n").unwrap();
    let pid_file = dir.join("ot.pid");
    let log_file = dir.join("ot.log");
    let out = Command::new(binary())
        .arg("-f")
        .arg(&conf)
        .arg("-D")
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--log-file")
        .arg(&log_file)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output() // returns when the parent exits and the pipes close: the daemon holds neither
        .unwrap();
    (out, pid_file, log_file)
}

#[test]
fn daemon_detaches_writes_pid_file_and_stops_on_sigterm() {
    let dir = temp_dir("daemon");
    let started = Instant::now();
    let (out, pid_file, log_file) = detached_start(&dir, allow_root_arg());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "parent did not exit"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text =
        std::fs::read_to_string(&pid_file).expect("pid file written before the parent exits");
    assert!(text.ends_with('\n'), "{text:?}");
    let pid: i32 = text.trim().parse().unwrap();
    let mut reap = Reap(Some(pid));
    assert!(!process_ended(pid), "daemon not running");
    // A new session, no terminal; stdin is /dev/null.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[3],
        pid.to_string(),
        "session id is its own pid: {stat}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(),
        Path::new("/dev/null")
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    // The log goes to the log file: learn the port there and announce.
    let mut http = None;
    wait_until("listening line in the log file", || {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        http = log
            .lines()
            .find_map(|l| l.split("listening: http ").nth(1))
            .map(|a| a.trim().parse::<std::net::SocketAddr>().unwrap());
        http.is_some()
    });
    let r = get(http.unwrap(), &announce(&hash(2), 6881, 0, ""));
    assert_eq!(r.status, 200);
    assert!(r.failure().is_none());
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_until("pid file removal", || !pid_file.exists());
    wait_until("daemon exit", || process_ended(pid));
    reap.0 = None;
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.contains("signal 15 received"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn daemon_start_failure_reaches_the_terminal() {
    let dir = temp_dir("daemon-fail");
    let missing = dir.join("no-such-root");
    let mut extra = vec!["-d", missing.to_str().unwrap()];
    extra.extend_from_slice(allow_root_arg());
    let (out, pid_file, _) = detached_start(&dir, &extra);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("opentracker-rs: cannot "), "{err}");
    assert!(err.contains("no-such-root"), "{err}");
    assert!(!pid_file.exists(), "pid file left after a failed start");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pid_file_in_the_foreground() {
    let dir = temp_dir("pid-fg");
    let pid_file = dir.join("fg.pid");
    let mut t = Tracker::start_with_args(
        "pid-fg",
        &config_loopback(""),
        &["--pid-file", pid_file.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(text, format!("{}\n", t.child.id()));
    serves(&t);
    assert_eq!(t.stop().code(), Some(0));
    assert!(!pid_file.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
