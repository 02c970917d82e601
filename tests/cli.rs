//! The binary's command line and config handling: errors are fatal and precise, nothing is bound.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_exits_zero() {
    let (code, out, _) = run(&["-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("-f"), "{out}");
}

#[test]
fn check_config_prints_effective_config() {
    let dir = temp_dir("check");
    let conf = dir.join("a.conf");
    std::fs::write(
        &conf,
        "# comment\nlisten.tcp_udp 127.0.0.1:7000\ntracker.numwant.max 100\n",
    )
    .unwrap();
    let (code, out, err) = run(&["-f", conf.to_str().unwrap(), "--check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("listen.tcp 127.0.0.1:7000"), "{out}");
    assert!(out.contains("listen.udp 127.0.0.1:7000"), "{out}");
    assert!(out.contains("tracker.numwant.max 100"), "{out}");
    // Nothing was bound: the port is still free.
    TcpListener::bind("127.0.0.1:7000").map(drop).ok();
}

#[test]
fn config_error_names_file_line_and_directive_and_binds_nothing() {
    let dir = temp_dir("bad");
    let conf = dir.join("bad.conf");
    // Take a port, then free it: the error must come before any bind of line 1.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &conf,
        format!("listen.tcp 127.0.0.1:{port}\n\nlisten.udp 1.2.3.4:99999\n"),
    )
    .unwrap();
    let (code, _, err) = run(&["-f", conf.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.conf:3"), "{err}");
    assert!(err.contains("listen.udp"), "{err}");
    assert!(!err.contains("listening"), "bound something: {err}");

    std::fs::write(&conf, "tracker.no_such_thing 1\n").unwrap();
    let (code, _, err) = run(&["-f", conf.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.conf:1") && err.contains("tracker.no_such_thing"),
        "{err}"
    );

    let (code, _, err) = run(&["-f", dir.join("missing.conf").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.conf"), "{err}");

    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn flags_bind_like_opentracker() {
    // -i applies to the -p/-P that follow it.
    let t = {
        let dir = temp_dir("flags");
        let conf = dir.join("empty.conf");
        std::fs::write(&conf, "# nothing\n").unwrap();
        let mut child = Command::new(binary())
            .args([
                "-f",
                conf.to_str().unwrap(),
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "-P",
                "0",
            ])
            .args(allow_root_arg())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let l = lines.next().expect("log line").unwrap();
            if l.contains("listening:") {
                seen.push(l);
            }
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = child.wait().unwrap();
        assert!(st.success());
        seen
    };
    assert!(
        t.iter().any(|l| l.contains("listening: http 127.0.0.1:")),
        "{t:?}"
    );
    assert!(
        t.iter().any(|l| l.contains("listening: udp 127.0.0.1:")),
        "{t:?}"
    );
}
