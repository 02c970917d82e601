//! Operations against the real binary: the pid file's lock, the log file reopened on SIGHUP
//! (logrotate without copytruncate), and a SIGTERM that arrives during the start-up of `-D`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
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

/// Kills a detached tracker that a failed test left behind.
struct Reap(Option<i32>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            if !process_ended(pid) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Starts `-D` with a pid file and a log file in `dir`; returns (pid, pid file, log file) once
/// the parent returned 0.
fn detached(dir: &Path, env: &[(&str, &str)]) -> (i32, PathBuf, PathBuf) {
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
        .args(allow_root_arg())
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (pid, pid_file, log_file)
}

/// A second instance with the same pid file refuses to start and leaves the file alone.
#[test]
fn second_instance_with_the_same_pid_file_refuses() {
    let dir = temp_dir("pid-lock");
    let pid_file = dir.join("ot.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let t = Tracker::start_with_args("pid-lock-1", &config_loopback(""), &["--pid-file", pid_arg]);
    let first = std::fs::read_to_string(&pid_file).unwrap();
    let conf = dir.join("second.conf");
    std::fs::write(&conf, config_loopback("")).unwrap();
    let mut second = Command::new(binary())
        .arg("-f")
        .arg(&conf)
        .args(["--pid-file", pid_arg])
        .args(allow_root_arg())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second instance started with a pid file in use");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "is locked by another running instance (pid {})",
            first.trim()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), first);
    assert_eq!(t.child.id().to_string(), first.trim());
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

/// logrotate without copytruncate: the log file is moved away, SIGHUP makes the tracker write
/// to a new file at the same path.
#[test]
fn sighup_reopens_the_log_file() {
    let dir = temp_dir("log-reopen");
    let (pid, pid_file, log_file) = detached(&dir, &[]);
    let mut reap = Reap(Some(pid));
    wait_until("listening line", || {
        std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("listening: http"))
    });
    let rotated = dir.join("ot.log.1");
    std::fs::rename(&log_file, &rotated).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    wait_until("the new log file", || {
        std::fs::read_to_string(&log_file)
            .is_ok_and(|l| l.contains("log file") && l.contains("reopened"))
    });
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_until("daemon exit", || process_ended(pid));
    reap.0 = None;
    let new = std::fs::read_to_string(&log_file).unwrap();
    assert!(new.contains("signal 15 received"), "{new}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(!old.contains("signal 15 received"), "{old}");
    assert!(!pid_file.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SIGTERM right after `-D` returned, before the loop's handlers are installed (the test
/// widens that window to 1.5 s), still stops the tracker cleanly: its pid file is removed.
#[test]
fn sigterm_during_start_up_stops_cleanly() {
    let dir = temp_dir("early-term");
    let (pid, pid_file, log_file) = detached(&dir, &[("OTRS_TEST_DELAY_BEFORE_LOOP_MS", "1500")]);
    let mut reap = Reap(Some(pid));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_until("daemon exit", || process_ended(pid));
    reap.0 = None;
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("stop signal received during start-up: stopping"),
        "{log}"
    );
    assert!(!pid_file.exists(), "pid file left: not a clean stop\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
