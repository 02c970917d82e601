//! Configuration from the environment, through the real binary: `OPENTRACKER_RS_<DIRECTIVE>`
//! and `OPENTRACKER_RS_CONFIG`, their precedence between config files and flags, what
//! `--check-config` shows of them, and errors that name the variable before anything is bound.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use opentracker_rs::config::{DIRECTIVE_TABLE, env_name};

/// Runs the binary with `args` and the variables `env` (on top of the test's environment,
/// which holds no `OPENTRACKER_RS_` variable); returns exit code, stdout, stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
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
fn check_config_shows_file_environment_and_flags_in_precedence_order() {
    let dir = temp_dir("env-check");
    let conf = dir.join("base.conf");
    std::fs::write(
        &conf,
        "listen.tcp_udp 127.0.0.1:7001\ntracker.announce_interval 600\ntracker.user from-file\n\
         tracker.numwant.max 100\ntracker.peer_timeout 4000\naccess.stats 10.0.0.0/8\n",
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let env = [
        // A whole config text (as a container's secret or config map would hold it).
        (
            "OPENTRACKER_RS_CONFIG",
            "tracker.announce_interval 700\ntracker.numwant.default 20\n",
        ),
        ("OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL", "900"),
        ("OPENTRACKER_RS_TRACKER__USER", "from-env"),
        // Repeatable: one value per line, added to the file's.
        ("OPENTRACKER_RS_ACCESS__STATS", "127.0.0.1\n::1\n"),
        ("OPENTRACKER_RS_HTTP__KEEPALIVE", "off"),
    ];
    let (code, out, err) = run(&["-u", "from-flag", "-f", conf, "--check-config"], &env);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "listen.tcp 127.0.0.1:7001",
        // file 600 < OPENTRACKER_RS_CONFIG 700 < variable 900
        "tracker.announce_interval 900",
        "tracker.numwant.default 20",
        "tracker.numwant.max 100",
        // variable < flag, though -f comes after -u
        "tracker.user from-flag",
        "access.stats 10.0.0.0/8",
        "access.stats 127.0.0.1",
        "access.stats ::1",
        "http.keepalive off",
    ] {
        assert!(lines.contains(&want), "{want} in\n{out}");
    }
    let sources = format!(
        "# sources: defaults, file {conf}, OPENTRACKER_RS_CONFIG, environment \
         (OPENTRACKER_RS_ACCESS__STATS, OPENTRACKER_RS_TRACKER__USER, \
         OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL, OPENTRACKER_RS_HTTP__KEEPALIVE), command line"
    );
    assert!(lines.contains(&sources.as_str()), "{sources} in\n{out}");

    // Without the flag the variable wins over the file.
    let (code, out, err) = run(&["-f", conf, "--check-config"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "tracker.user from-env"), "{out}");
    // The output is a config file: it parses back, alone, to the same configuration.
    let again = dir.join("again.conf");
    std::fs::write(&again, &out).unwrap();
    let (code, out2, err) = run(&["-f", again.to_str().unwrap(), "--check-config"], &[]);
    assert_eq!(code, 0, "{err}");
    let body = |text: &str| text.lines().skip(2).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(body(&out), body(&out2));
}

#[test]
fn every_directive_has_its_variable() {
    // Each directive's default value, given through its variable, is accepted and shown.
    let mut env = Vec::new();
    let defaults = opentracker_rs::config::Config::default();
    for d in DIRECTIVE_TABLE {
        let values = d.values(&defaults, false);
        if !values.is_empty() {
            env.push((env_name(d.name), values.join("\n")));
        }
    }
    assert!(env.len() >= 20, "{env:?}");
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (code, out, err) = run(&["--check-config"], &env);
    assert_eq!(code, 0, "{err}");
    for (name, _) in &env {
        assert!(
            out.contains(name),
            "{name} not named in the sources:\n{out}"
        );
    }
    assert!(out.contains("tracker.announce_interval 1800\n"), "{out}");
}

#[test]
fn environment_errors_name_the_variable_and_bind_nothing() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("OPENTRACKER_RS_TRACKER__NUMWANT__MAX", "0")],
            "opentracker-rs: OPENTRACKER_RS_TRACKER__NUMWANT__MAX: tracker.numwant.max: value 0 \
             is out of range 1..=256",
        ),
        (
            &[("OPENTRACKER_RS_LISTEN__TCP", "127.0.0.1:0\n1.2.3.4:99999")],
            "opentracker-rs: OPENTRACKER_RS_LISTEN__TCP:2: listen.tcp: invalid address \
             \"1.2.3.4:99999\": port out of range",
        ),
        (
            &[(
                "OPENTRACKER_RS_CONFIG",
                "listen.tcp 127.0.0.1:0\nno.such.directive 1\n",
            )],
            "opentracker-rs: OPENTRACKER_RS_CONFIG:2: no.such.directive: unknown directive",
        ),
        (
            &[("OPENTRACKER_RS_TRACKER__USER", "a\nb")],
            "opentracker-rs: OPENTRACKER_RS_TRACKER__USER: tracker.user: several values (lines) \
             given, but tracker.user is not repeatable; give one value",
        ),
    ];
    for (env, want) in cases {
        let (code, out, err) = run(&["-i", "127.0.0.1", "-p", "0"], env);
        assert_eq!(code, 1, "{env:?}: {out}{err}");
        assert_eq!(err.trim_end(), *want, "{env:?}");
        assert!(!err.contains("listening"), "bound something: {err}");
    }
    // A typo is not silently ignored.
    let (code, _, err) = run(&["--check-config"], &[("OPENTRACKER_RS_TRACKER_USER", "x")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("OPENTRACKER_RS_TRACKER_USER: unknown variable"),
        "{err}"
    );
    // -h and -v need no valid configuration.
    let (code, out, _) = run(&["-h"], &[("OPENTRACKER_RS_TRACKER_USER", "x")]);
    assert_eq!(code, 0);
    assert!(out.contains("OPENTRACKER_RS_CONFIG"), "{out}");
}

#[test]
fn tracker_configured_from_the_environment_alone_serves() {
    // No -f and no flag but --allow-root as root: a container's way.
    let mut child = Command::new(binary())
        .args(allow_root_arg())
        .env(
            "OPENTRACKER_RS_CONFIG",
            "listen.tcp 127.0.0.1:0\ntracker.announce_interval 1000\n",
        )
        .env("OPENTRACKER_RS_ACCESS__STATS", "127.0.0.1")
        .env("OPENTRACKER_RS_TRACKER__NUMWANT__DEFAULT", "7")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: SocketAddr = loop {
        assert!(Instant::now() < deadline, "tracker did not start");
        let line = lines.next().expect("log line").unwrap();
        if let Some(a) = line.split("listening: http ").nth(1) {
            break a.trim().parse().unwrap();
        }
    };
    // Only what the environment asked for: one HTTP listener, no UDP.
    let r = get(addr, &announce(&hash(1), 7001, 5, ""));
    assert_eq!(r.status, 200);
    let interval = r
        .bencode()
        .get(b"interval")
        .and_then(|v| v.as_int())
        .unwrap();
    assert!((900..=1100).contains(&interval), "{interval}");
    assert_eq!(get(addr, "/stats?mode=torr").status, 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        !rest.iter().any(|l| l.contains("listening: udp")),
        "{rest:?}"
    );
}
