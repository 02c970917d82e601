//! Settings from the environment, for containers and service managers: every directive as
//! `OPENTRACKER_RS_<DIRECTIVE>`, and a whole config file's text in `OPENTRACKER_RS_CONFIG`.
//!
//! The variable of a directive is derived from its name in [`DIRECTIVE_TABLE`] alone
//! ([`env_name`]): `OPENTRACKER_RS_` + the name in upper case with each `.` written `__`
//! (`tracker.announce_interval` -> `OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL`). Directive names
//! never hold `__`, so the mapping is one-to-one; a directive added to the table has its
//! variable at once.
//!
//! Values are read as a config line's value: the text without surrounding blanks, through the
//! same parser ([`super::file::apply`]), so every check and error is the file's. A repeatable
//! directive (`access.stats`, `listen.tcp_udp`, ...) takes several values separated by newlines
//! (`OPENTRACKER_RS_ACCESS__STATS=$'127.0.0.1\n::1'`); blank lines are skipped. Its values are
//! added to those of the files, as repeated lines and flags are. A newline in the value of any
//! other directive is an error, as is an empty value.
//!
//! Precedence (lowest first): config files (`-f`, in command-line order), then
//! `OPENTRACKER_RS_CONFIG`, then the `OPENTRACKER_RS_<DIRECTIVE>` variables (in the table's
//! order), then the flags. So a container can ship a config file and override single settings
//! from its environment, and a flag still wins over both.
//!
//! Every problem is fatal, as in files: a variable with the prefix that names no directive
//! (a typo must not be silently ignored), a value that is not UTF-8, and each directive's own
//! value errors. Errors name the variable as the origin: `OPENTRACKER_RS_TRACKER__NUMWANT__MAX:
//! tracker.numwant.max: value 0 is out of range 1..=256`, with the line for a repeatable
//! directive's values (`OPENTRACKER_RS_ACCESS__STATS:2: access.stats: ...`) and for
//! `OPENTRACKER_RS_CONFIG`'s text.

use std::ffi::OsString;

use super::file::{apply, parse_str};
use super::{Config, ConfigError, DIRECTIVE_TABLE};

/// Prefix of every variable the tracker reads.
pub const ENV_PREFIX: &str = "OPENTRACKER_RS_";

/// The variable that holds a whole config file's text (read as a file named
/// `OPENTRACKER_RS_CONFIG` would be).
pub const ENV_CONFIG: &str = "OPENTRACKER_RS_CONFIG";

/// The variable of directive `name`: [`ENV_PREFIX`] + `name` in upper case, `.` as `__`
/// (`tracker.mode` -> `OPENTRACKER_RS_TRACKER__MODE`).
pub fn env_name(name: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        name.replace('.', "__").to_ascii_uppercase()
    )
}

/// Applies the environment `vars` (name, value pairs, as `std::env::vars_os`) to `cfg`:
/// `OPENTRACKER_RS_CONFIG` first, then each `OPENTRACKER_RS_<DIRECTIVE>` that is set, in the
/// order of [`DIRECTIVE_TABLE`]. Variables without the prefix are ignored. Records the
/// sources in [`Config::sources`] (`OPENTRACKER_RS_CONFIG`, then `environment (NAME, ...)`)
/// and warnings in [`Config::warnings`] (`VARIABLE: DIRECTIVE: TEXT`).
///
/// Errors (the first one stops; `cfg` may be partly updated):
/// - `NAME: unknown variable (...)` for a variable with the prefix that names no directive;
/// - `NAME: value is not valid UTF-8`, or a name that is not;
/// - `NAME[:LINE]: DIRECTIVE: MESSAGE` for a value the directive refuses, `missing value` for
///   an empty one, `several values (lines) given, but DIRECTIVE is not repeatable`;
/// - `OPENTRACKER_RS_CONFIG:LINE: DIRECTIVE: MESSAGE`, the errors of [`parse_str`].
pub fn apply_env<I>(vars: I, cfg: &mut Config) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut config_text = None;
    let mut values: Vec<Option<String>> = vec![None; DIRECTIVE_TABLE.len()];
    for (name, value) in vars {
        let Some(name) = name.to_str() else {
            if name.as_encoded_bytes().starts_with(ENV_PREFIX.as_bytes()) {
                return Err(env_error(
                    &name.to_string_lossy(),
                    None,
                    "",
                    "variable name is not valid UTF-8",
                ));
            }
            continue;
        };
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        let Some(value) = value.into_string().ok() else {
            return Err(env_error(name, None, "", "value is not valid UTF-8"));
        };
        if name == ENV_CONFIG {
            config_text = Some(value);
            continue;
        }
        let Some(index) = DIRECTIVE_TABLE
            .iter()
            .position(|d| env_name(d.name) == name)
        else {
            return Err(env_error(name, None, "", &unknown_variable()));
        };
        values[index] = Some(value);
    }

    if let Some(text) = config_text {
        parse_str(&text, ENV_CONFIG, cfg)?;
        // `parse_str` records it as a file; it is the variable.
        let as_file = format!("file {ENV_CONFIG}");
        for source in cfg.sources.iter_mut().filter(|s| **s == as_file) {
            ENV_CONFIG.clone_into(source);
        }
    }

    let mut used = Vec::new();
    for (directive, value) in DIRECTIVE_TABLE.iter().zip(values) {
        let Some(value) = value else { continue };
        let var = env_name(directive.name);
        apply_variable(cfg, &var, directive.name, directive.repeatable, &value)?;
        used.push(var);
    }
    if !used.is_empty() {
        cfg.sources
            .push(format!("environment ({})", used.join(", ")));
    }
    Ok(())
}

/// Applies one variable's value: one value, or for a repeatable directive one per non-blank
/// line (numbered from 1 in errors when there are several lines).
fn apply_variable(
    cfg: &mut Config,
    var: &str,
    directive: &str,
    repeatable: bool,
    value: &str,
) -> Result<(), ConfigError> {
    let lines: Vec<(usize, &str)> = value
        .split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    if lines.len() > 1 && !repeatable {
        return Err(env_error(
            var,
            None,
            directive,
            &format!(
                "several values (lines) given, but {directive} is not repeatable; give one value"
            ),
        ));
    }
    // No value at all: the parser's own `missing value` error.
    let single = [(0, "")];
    let several = lines.len() > 1;
    let lines = if lines.is_empty() {
        &single[..]
    } else {
        &lines[..]
    };
    for &(line_no, text) in lines {
        let line_no = several.then_some(line_no);
        match apply(cfg, directive, text) {
            Ok(None) => {}
            Ok(Some(warning)) => {
                let at = line_no.map(|n| format!(":{n}")).unwrap_or_default();
                cfg.warnings
                    .push(format!("{var}{at}: {directive}: {warning}"));
            }
            Err(message) => return Err(env_error(var, line_no, directive, &message)),
        }
    }
    Ok(())
}

/// The message for a variable with the prefix that names no directive.
fn unknown_variable() -> String {
    format!(
        "unknown variable: {ENV_PREFIX}<DIRECTIVE> takes a directive name in upper case with \
         each '.' written '__' (e.g. {}), or {ENV_CONFIG} a whole config file's text; see \
         opentracker-rs --check-config for the directives",
        env_name("tracker.announce_interval")
    )
}

fn env_error(var: &str, line: Option<usize>, directive: &str, message: &str) -> ConfigError {
    ConfigError {
        origin: var.to_owned(),
        line,
        directive: directive.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DIRECTIVES;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect()
    }

    fn applied(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let mut cfg = Config::default();
        apply_env(env(pairs), &mut cfg).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn names_come_from_the_table() {
        assert_eq!(
            env_name("tracker.announce_interval"),
            "OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL"
        );
        assert_eq!(env_name("tracker.mode"), "OPENTRACKER_RS_TRACKER__MODE");
        assert_eq!(
            env_name("http.max_connections"),
            "OPENTRACKER_RS_HTTP__MAX_CONNECTIONS"
        );
        // Every directive of the table can be set this way, and read back the same as from a
        // file: its default value, given through its variable, leaves the default in place.
        for directive in DIRECTIVE_TABLE {
            let default = Config::default();
            let values = directive.values(&default, false);
            if values.is_empty() {
                continue;
            }
            let cfg = applied(&[(&env_name(directive.name), &values.join("\n"))]).unwrap();
            assert_eq!(
                directive.values(&cfg, false),
                if directive.repeatable {
                    [values.clone(), values.clone()].concat()
                } else {
                    values
                },
                "{}",
                directive.name
            );
        }
        assert_eq!(DIRECTIVES.len(), DIRECTIVE_TABLE.len());
    }

    #[test]
    fn every_kind_of_value() {
        let cfg = applied(&[
            ("PATH", "/usr/bin"),
            ("OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL", " 900 "),
            ("OPENTRACKER_RS_HTTP__KEEPALIVE", "off"),
            ("OPENTRACKER_RS_TRACKER__USER", "_ot"),
            ("OPENTRACKER_RS_ACCESS__WHITELIST", "/etc/ot/white list.txt"),
            ("OPENTRACKER_RS_ACCESS__STATS", "127.0.0.1\n\n  ::1\n"),
            ("OPENTRACKER_RS_LISTEN__TCP_UDP", "127.0.0.1:0\n[::1]:7000"),
            ("OPENTRACKER_RS_UDP__RECV_BUFFER", "0"),
        ])
        .unwrap();
        assert_eq!(cfg.announce_interval, 900);
        assert!(!cfg.http.keepalive);
        assert_eq!(cfg.user.as_deref(), Some("_ot"));
        assert_eq!(cfg.whitelist, Some(PathBuf::from("/etc/ot/white list.txt")));
        assert_eq!(
            cfg.stats_allowed,
            ["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()]
        );
        assert_eq!(cfg.listen_tcp, [sa("127.0.0.1:0"), sa("[::1]:7000")]);
        assert_eq!(cfg.listen_udp, cfg.listen_tcp);
        assert_eq!(cfg.udp.recv_buffer, 0);
        // Table order, not the environment's.
        assert_eq!(
            cfg.sources,
            [
                "environment (OPENTRACKER_RS_LISTEN__TCP_UDP, OPENTRACKER_RS_ACCESS__WHITELIST, \
              OPENTRACKER_RS_ACCESS__STATS, OPENTRACKER_RS_TRACKER__USER, \
              OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL, OPENTRACKER_RS_HTTP__KEEPALIVE, \
              OPENTRACKER_RS_UDP__RECV_BUFFER)"
            ]
        );
        assert!(applied(&[("HOME", "/root")]).unwrap().sources.is_empty());
    }

    #[test]
    fn whole_config_text_then_single_variables() {
        let cfg = applied(&[
            ("OPENTRACKER_RS_TRACKER__USER", "from-variable"),
            (
                "OPENTRACKER_RS_CONFIG",
                "# container config\ntracker.user from-text\ntracker.numwant.max 100\n\
                 batchsync.cluster.admin_ip 10.0.0.1\n",
            ),
        ])
        .unwrap();
        assert_eq!(cfg.user.as_deref(), Some("from-variable"));
        assert_eq!(cfg.numwant_max, 100);
        assert_eq!(
            cfg.sources,
            [
                "OPENTRACKER_RS_CONFIG",
                "environment (OPENTRACKER_RS_TRACKER__USER)"
            ]
        );
        assert_eq!(
            cfg.warnings,
            [
                "OPENTRACKER_RS_CONFIG:4: batchsync.cluster.admin_ip: obsolete (opentracker never \
              parsed it); ignored"
            ]
        );
        let cfg = applied(&[("OPENTRACKER_RS_BATCHSYNC__CLUSTER__ADMIN_IP", "10.0.0.1")]);
        assert_eq!(
            cfg.unwrap().warnings,
            [
                "OPENTRACKER_RS_BATCHSYNC__CLUSTER__ADMIN_IP: batchsync.cluster.admin_ip: \
              obsolete (opentracker never parsed it); ignored"
            ]
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("OPENTRACKER_RS_TRACKER__NUMWANT__MAX", "0")],
                "OPENTRACKER_RS_TRACKER__NUMWANT__MAX: tracker.numwant.max: value 0 is out of \
                 range 1..=256",
            ),
            (
                &[("OPENTRACKER_RS_TRACKER__USER", "")],
                "OPENTRACKER_RS_TRACKER__USER: tracker.user: missing value",
            ),
            (
                &[("OPENTRACKER_RS_TRACKER__USER", "  \n ")],
                "OPENTRACKER_RS_TRACKER__USER: tracker.user: missing value",
            ),
            (
                &[("OPENTRACKER_RS_TRACKER__USER", "a\nb")],
                "OPENTRACKER_RS_TRACKER__USER: tracker.user: several values (lines) given, but \
                 tracker.user is not repeatable; give one value",
            ),
            (
                &[("OPENTRACKER_RS_ACCESS__STATS", "127.0.0.1\n10.0.0.0/99")],
                "OPENTRACKER_RS_ACCESS__STATS:2: access.stats: invalid address or network \
                 \"10.0.0.0/99\": prefix length must be 0..=32",
            ),
            (
                &[("OPENTRACKER_RS_TRACKER__REDIRECT_URL", "https://a/\x07")],
                "OPENTRACKER_RS_TRACKER__REDIRECT_URL: tracker.redirect_url: control character \
                 in value",
            ),
            (
                &[
                    ("OPENTRACKER_RS_ACCESS__WHITELIST", "/w"),
                    ("OPENTRACKER_RS_ACCESS__BLACKLIST", "/b"),
                ],
                "OPENTRACKER_RS_ACCESS__BLACKLIST: access.blacklist: access.whitelist and \
                 access.blacklist are exclusive",
            ),
            (
                &[(
                    "OPENTRACKER_RS_CONFIG",
                    "tracker.user a\nlisten.tcp 1.2.3.4:99999\n",
                )],
                "OPENTRACKER_RS_CONFIG:2: listen.tcp: invalid address \"1.2.3.4:99999\": port \
                 out of range",
            ),
        ];
        for (vars, want) in cases {
            assert_eq!(applied(vars).unwrap_err(), *want, "{vars:?}");
        }
        let typo = applied(&[("OPENTRACKER_RS_TRACKER_USER", "a")]).unwrap_err();
        assert!(
            typo.starts_with("OPENTRACKER_RS_TRACKER_USER: unknown variable: "),
            "{typo}"
        );
        assert!(
            typo.contains("OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL"),
            "{typo}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let mut cfg = Config::default();
        let vars = vec![(
            OsString::from("OPENTRACKER_RS_TRACKER__USER"),
            OsString::from_vec(vec![0x66, 0xff]),
        )];
        assert_eq!(
            apply_env(vars, &mut cfg).unwrap_err().to_string(),
            "OPENTRACKER_RS_TRACKER__USER: value is not valid UTF-8"
        );
        // Another program's variable that is not UTF-8 is none of our business.
        let vars = vec![(OsString::from_vec(vec![0xff]), OsString::from("x"))];
        assert!(apply_env(vars, &mut cfg).is_ok());
    }
}
