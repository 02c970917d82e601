//! What ships beside the binary: the sample config as a new user starts it, the man page, the
//! Debian package's files, the Grafana dashboard. (Building and installing the package is
//! `make check-deb`, in .ci/run; rendering the status page in a browser is
//! `make check-status-page`.)

mod common;

use std::path::Path;

use common::*;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// `make run` and then `curl localhost:6969/stats`: the sample config opens the stats, the
/// status page and the metrics to 127.0.0.1 and ::1 (on loopback ports here).
#[test]
fn sample_config_opens_the_stats_to_this_machine() {
    let sample = read("opentracker.conf.sample");
    let listen: Vec<&str> = sample
        .lines()
        .filter(|l| l.starts_with("listen."))
        .collect();
    assert_eq!(
        listen,
        ["listen.tcp_udp 0.0.0.0:6969", "listen.tcp_udp [::]:6969"]
    );
    let config = sample
        .replace("listen.tcp_udp 0.0.0.0:6969", "listen.tcp_udp 127.0.0.1:0")
        .replace("listen.tcp_udp [::]:6969", "listen.tcp_udp [::1]:0");
    let t = Tracker::start("sample-config", &config);
    for v6 in [false, true] {
        for path in ["/stats", "/stats/html", "/metrics"] {
            let addr = t.http_addr(v6);
            let status = if path == "/stats/html" {
                // Streamed (chunked): read the head only.
                let mut s = connect(addr);
                std::io::Write::write_all(
                    &mut s,
                    format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
                )
                .unwrap();
                let mut head = [0u8; 12];
                std::io::Read::read_exact(&mut s, &mut head).unwrap();
                String::from_utf8_lossy(&head[9..12])
                    .parse::<u16>()
                    .unwrap()
            } else {
                get(addr, path).status
            };
            assert_eq!(status, 200, "{path} from {addr}");
        }
    }
}

#[test]
fn man_page_lists_every_flag_of_the_help() {
    let man = read("dist/opentracker-rs.1");
    let help = opentracker_rs::config::usage();
    let mut flags = Vec::new();
    for line in help.lines() {
        for word in line.split([' ', ',']) {
            if word.len() > 1 && word.starts_with('-') && !word.starts_with("--- ") {
                flags.push(word.to_owned());
            }
        }
    }
    assert!(flags.len() >= 20, "{flags:?}");
    for flag in &flags {
        // roff writes '-' as '\-'.
        let roff = flag.replace('-', "\\-");
        assert!(
            man.contains(&roff),
            "dist/opentracker-rs.1 does not mention {flag}"
        );
    }
    for word in [
        "OPENTRACKER_RS_CONFIG",
        "/stats/html",
        "SIGHUP",
        "EXIT STATUS",
    ] {
        assert!(man.contains(word), "{word}");
    }
    let th = man.lines().find(|l| l.starts_with(".TH ")).unwrap();
    assert!(
        th.contains(&format!("\"opentracker-rs {}\"", env!("CARGO_PKG_VERSION"))),
        "{th}"
    );
}

#[test]
fn debian_package_files_exist_and_agree() {
    let cargo = read("Cargo.toml");
    let deb = cargo
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("[package.metadata.deb] in Cargo.toml");
    // Every asset source is in the repository (but the binary, which the build makes).
    let mut sources = 0;
    for line in deb.lines().filter(|l| l.trim_start().starts_with("[\"")) {
        let source = line.trim_start().trim_start_matches("[\"");
        let source = &source[..source.find('"').unwrap()];
        sources += 1;
        if source.starts_with("target/") {
            continue;
        }
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(source).is_file(),
            "asset {source} is missing"
        );
    }
    assert!(sources >= 4, "{deb}");
    assert!(deb.contains("[\"opentracker.conf.sample\", \"etc/opentracker-rs/opentracker.conf\""));
    assert!(deb.contains("conf-files = [\"/etc/opentracker-rs/opentracker.conf\"]"));
    // The unit starts the installed binary with the installed config, as the user postinst
    // creates.
    let unit = read("dist/debian/opentracker-rs.service");
    assert!(
        unit.lines()
            .any(|l| l
                == "ExecStart=/usr/bin/opentracker-rs -f /etc/opentracker-rs/opentracker.conf"),
        "{unit}"
    );
    assert!(unit.lines().any(|l| l == "User=opentracker-rs"));
    assert!(!unit.lines().any(|l| l.starts_with("DynamicUser")));
    let postinst = read("dist/debian/postinst");
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    for script in ["postinst", "postrm"] {
        let text = read(&format!("dist/debian/{script}"));
        assert!(text.starts_with("#!/bin/sh\n"), "{script}");
        assert!(
            text.contains("\n#DEBHELPER#\n"),
            "{script}: cargo-deb's systemd snippets"
        );
        let status = std::process::Command::new("sh")
            .args([
                "-n",
                &format!("{}/dist/debian/{script}", env!("CARGO_MANIFEST_DIR")),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "{script}: sh -n");
    }
}

#[test]
fn grafana_dashboard_is_json_with_panels() {
    // The queries are checked against a running tracker's /metrics by
    // scripts/check-grafana-dashboard.py (make check-status-page); here only that the file is
    // what Grafana imports.
    let text = read("dist/grafana/opentracker-rs.json");
    let trimmed = text.trim();
    assert!(trimmed.starts_with('{') && trimmed.ends_with('}'));
    for key in [
        "\"uid\": \"opentracker-rs\"",
        "\"panels\": [",
        "\"expr\": ",
        "opentracker_requests_total",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(key), "{key}");
    }
    let python = python_with("json");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['panels']))",
            &format!(
                "{}/dist/grafana/opentracker-rs.json",
                env!("CARGO_MANIFEST_DIR")
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let panels: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(panels >= 10, "{panels}");
}
