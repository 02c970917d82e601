//! The command line: opentracker's getopt letters, processed left to right.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use super::file::{apply, parse_file};
use super::special::add_listener;
use super::table::Applied;
use super::value;
use super::{Command, Config, ConfigError};

const ORIGIN: &str = "command line";

/// Usage text for `-h` / `--help`, ending with a newline.
pub fn usage() -> &'static str {
    "\
Usage: opentracker-rs [OPTIONS]

Options are processed left to right, as opentracker's:
  -f FILE        read the config file FILE now (a missing file is an error)
  -i IP          address for the following -p, -P and -s (default 0.0.0.0; IPv6 allowed)
  -p PORT        listen for HTTP (TCP) on the last -i address and PORT (repeatable)
  -P PORT        listen for UDP on the last -i address and PORT (repeatable)
  -s PORT        live sync cluster listen port on the last -i address
  -A IP[/LEN]    allow IP or network to read /stats (repeatable)
  -w FILE        whitelist of info_hashes (access.whitelist)
  -b FILE        blacklist of info_hashes (access.blacklist)
  -d DIR         chroot (as root) or chdir to DIR after binding (tracker.rootdir)
  -u USER        user to switch to after binding (tracker.user)
  -r URL         redirect GET / to URL (tracker.redirect_url)
  -D, --daemon   detach from the terminal after binding (default: foreground)
  --pid-file FILE   write the process id to FILE (tracker.pid_file)
  --log-file FILE   append the log (stderr) to FILE once serving (tracker.log_file)
  --allow-root   serve as root when no -u USER is given (tracker.allow_root)
  -l FILE        state file of downloaded counts, loaded and saved (tracker.state_file)
  --check-config parse everything, print the effective config and exit
  -h, --help     print this help and exit
  -v, --version  print the version and exit

Without any -p, -P or listen directive the tracker listens on 0.0.0.0:6969 and
[::]:6969, TCP and UDP.

Environment: every directive can be set as OPENTRACKER_RS_<DIRECTIVE>, upper case with
each '.' written '__' (OPENTRACKER_RS_TRACKER__ANNOUNCE_INTERVAL=900); a repeatable one
takes one value per line. OPENTRACKER_RS_CONFIG may hold a whole config file's text.
Precedence: config files < OPENTRACKER_RS_CONFIG < OPENTRACKER_RS_<DIRECTIVE> < flags.
"
}

/// `opentracker-rs VERSION`, for `-v` / `--version`.
pub fn version() -> &'static str {
    crate::version::VERSION
}

/// Parses the command line (`args` is argv without `argv[0]`) into a [`Command`], without
/// reading the environment: [`parse_args_with_env`] with no variables.
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, ConfigError> {
    parse_args_with_env(args, std::iter::empty())
}

/// Parses the command line (`args` is argv without `argv[0]`) and the environment (`env`, as
/// `std::env::vars_os()`) into a [`Command`].
///
/// Flags are opentracker's (`-f -i -p -P -s -A -w -b -d -u -r -l -h -v`) plus
/// `--help`, `--version`, `--check-config`, `-D`/`--daemon`, `--allow-root`, `--pid-file PATH`
/// and `--log-file PATH` (opentracker-rs's own). They are read left to right: `-i` only affects
/// later `-p/-P/-s`, a later flag overwrites an earlier one, `-h`/`-v` return at once when
/// reached, and a bad value is reported when reached.
///
/// Precedence, lowest first: [`Config::default`], the `-f` files (in the order given),
/// `OPENTRACKER_RS_CONFIG`, the `OPENTRACKER_RS_<DIRECTIVE>` variables (see
/// [`super::apply_env`]), then the other flags. So a flag wins over the environment, and both
/// over any config file, wherever `-f` stands on the command line. For `Run` and `CheckConfig`,
/// [`Config::finish`] has already been applied (default listeners, cross checks), and
/// [`Config::sources`] lists the sources used in that order.
///
/// Errors: `command line: FLAG: MESSAGE` for a bad flag value, an unknown flag
/// (`unknown option "-x"; try -h`), a stray argument, or a flag that contradicts a file or the
/// environment (`-w` when a blacklist is set); errors from `-f`'s file carry that file's name
/// and line (a missing file is an error, unlike opentracker); the environment's errors name
/// the variable; `configuration: DIRECTIVE: MESSAGE` from [`Config::finish`].
pub fn parse_args_with_env<I, E>(args: I, env: E) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = OsString>,
    E: IntoIterator<Item = (OsString, OsString)>,
{
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_args(args);
    let mut cfg = Config::default();
    // The flags are checked as they are reached, on a configuration of flags alone (so errors
    // come left to right, as before the environment existed), and applied to `cfg` after the
    // files and the environment.
    let mut flags_only = Config::default();
    let mut flags: Vec<(String, Flag)> = Vec::new();
    let mut bind_ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let mut check_only = false;
    let mut flags_used = false;
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return Err(lexopt_error(e)),
        };
        let (name, flag) = match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('v') | Long("version") => return Ok(Command::Version),
            Long("check-config") => {
                check_only = true;
                continue;
            }
            Short('D') | Long("daemon") => ("-D".to_owned(), Flag::Daemon),
            Long("allow-root") => ("--allow-root".to_owned(), Flag::AllowRoot),
            Long(long @ ("pid-file" | "log-file")) => {
                let (name, directive) = if long == "pid-file" {
                    ("--pid-file", "tracker.pid_file")
                } else {
                    ("--log-file", "tracker.log_file")
                };
                let text = flag_text(&mut parser, name)?;
                (name.to_owned(), Flag::Directive(directive, text))
            }
            Short(c @ ('f' | 'i' | 'p' | 'P' | 's' | 'A' | 'w' | 'b' | 'd' | 'u' | 'r' | 'l')) => {
                let name = format!("-{c}");
                let text = flag_text(&mut parser, &name)?;
                let flag = match c {
                    'f' => {
                        parse_file(Path::new(&text), &mut cfg)?;
                        continue;
                    }
                    'i' => {
                        bind_ip = value::ip_addr(&text).map_err(|m| flag_error(&name, &m))?;
                        flags_used = true;
                        continue;
                    }
                    'p' | 'P' | 's' => {
                        let addr = port_for(bind_ip, &text).map_err(|m| flag_error(&name, &m))?;
                        match c {
                            'p' => Flag::Tcp(addr),
                            'P' => Flag::Udp(addr),
                            _ => Flag::Livesync(addr),
                        }
                    }
                    'A' => Flag::Directive("access.stats", text),
                    'w' => Flag::Directive("access.whitelist", text),
                    'b' => Flag::Directive("access.blacklist", text),
                    'd' => Flag::Directive("tracker.rootdir", text),
                    'u' => Flag::Directive("tracker.user", text),
                    'r' => Flag::Directive("tracker.redirect_url", text),
                    _ => Flag::Directive("tracker.state_file", text),
                };
                (name, flag)
            }
            Short(c) => return Err(flag_error(&format!("-{c}"), "unknown option; try -h")),
            Long(name) => return Err(flag_error(&format!("--{name}"), "unknown option; try -h")),
            Value(v) => {
                return Err(flag_error(
                    &v.to_string_lossy(),
                    "unexpected argument (options take the form -p PORT); try -h",
                ));
            }
        };
        flag.apply(&mut flags_only)
            .map_err(|message| flag_error(&name, &message))?;
        flags.push((name, flag));
        flags_used = true;
    }
    super::apply_env(env, &mut cfg)?;
    for (name, flag) in &flags {
        match flag.apply(&mut cfg) {
            Ok(None) => {}
            Ok(Some(w)) => cfg.warnings.push(format!("{ORIGIN}: {name}: {w}")),
            Err(message) => return Err(flag_error(name, &message)),
        }
    }
    if flags_used {
        cfg.sources.push(ORIGIN.to_owned());
    }
    cfg.finish()?;
    Ok(if check_only {
        Command::CheckConfig(cfg)
    } else {
        Command::Run(cfg)
    })
}

/// One flag other than `-f`, `-i`, `-h`, `-v` and `--check-config`, with its value parsed as
/// far as it can be alone (a port with the `-i` address before it).
#[derive(Debug)]
enum Flag {
    /// `-D`.
    Daemon,
    /// `--allow-root`.
    AllowRoot,
    /// `-p`: an HTTP listener.
    Tcp(SocketAddr),
    /// `-P`: a UDP listener.
    Udp(SocketAddr),
    /// `-s`: the live sync address.
    Livesync(SocketAddr),
    /// A flag that sets a directive from its text (`-u` sets `tracker.user`).
    Directive(&'static str, String),
}

impl Flag {
    /// Applies the flag to `cfg`; `Ok(Some(text))` is a warning.
    fn apply(&self, cfg: &mut Config) -> Applied {
        match self {
            Flag::Daemon => cfg.daemon = true,
            Flag::AllowRoot => cfg.allow_root = true,
            Flag::Tcp(addr) => add_listener(&mut cfg.listen_tcp, *addr, "TCP")?,
            Flag::Udp(addr) => add_listener(&mut cfg.listen_udp, *addr, "UDP")?,
            Flag::Livesync(addr) => cfg.livesync_listen = Some(*addr),
            Flag::Directive(directive, text) => return apply(cfg, directive, text),
        }
        Ok(None)
    }
}

/// The value of a flag, as UTF-8 without surrounding blanks.
fn flag_text(parser: &mut lexopt::Parser, name: &str) -> Result<String, ConfigError> {
    let raw = parser.value().map_err(lexopt_error)?;
    raw.to_str()
        .map(|t| t.trim_ascii().to_owned())
        .ok_or_else(|| flag_error(name, "value is not valid UTF-8"))
}

fn port_for(ip: IpAddr, text: &str) -> Result<SocketAddr, String> {
    value::port(text)
        .map(|port| SocketAddr::new(ip, port))
        .map_err(|why| format!("invalid port \"{text}\": {why}"))
}

fn flag_error(flag: &str, message: &str) -> ConfigError {
    ConfigError {
        origin: ORIGIN.to_owned(),
        line: None,
        directive: flag.to_owned(),
        message: message.to_owned(),
    }
}

fn lexopt_error(e: lexopt::Error) -> ConfigError {
    match e {
        lexopt::Error::MissingValue { option: Some(o) } => flag_error(&o, "missing value"),
        lexopt::Error::UnexpectedValue { option, .. } => {
            flag_error(&option, "takes no value; try -h")
        }
        other => ConfigError {
            origin: ORIGIN.to_owned(),
            line: None,
            directive: String::new(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse_args(args.iter().map(OsString::from)) {
            Ok(Command::Run(cfg)) => Ok(cfg),
            Ok(other) => panic!("not Run: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn order_matters_for_i() {
        let cfg = run(&["-p", "80", "-i", "1.2.3.4", "-p", "81"]).unwrap();
        assert_eq!(cfg.listen_tcp, [sa("0.0.0.0:80"), sa("1.2.3.4:81")]);
        // -p only: no UDP, and no default listeners either.
        assert!(cfg.listen_udp.is_empty());
    }

    #[test]
    fn opentracker_flags() {
        let cfg = run(&[
            "-i",
            "127.0.0.1",
            "-p",
            "16969",
            "-P",
            "16969",
            "-w",
            "/tmp/otr/whitelist.txt",
            "-A",
            "127.0.0.1",
            "-A",
            "10.0.0.0/8",
            "-u",
            "nobody",
            "-d",
            "/var/ot",
            "-r",
            "https://example.org/",
            "-l",
            "/var/ot/state",
            "-i",
            "::1",
            "-P",
            "0",
            "-s",
            "9696",
        ])
        .unwrap();
        assert_eq!(cfg.listen_tcp, [sa("127.0.0.1:16969")]);
        assert_eq!(cfg.listen_udp, [sa("127.0.0.1:16969"), sa("[::1]:0")]);
        assert_eq!(cfg.whitelist, Some(PathBuf::from("/tmp/otr/whitelist.txt")));
        assert_eq!(
            cfg.stats_allowed,
            [
                "127.0.0.1/32".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap()
            ]
        );
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
        assert_eq!(cfg.rootdir, Some(PathBuf::from("/var/ot")));
        assert_eq!(cfg.redirect_url.as_deref(), Some("https://example.org/"));
        assert_eq!(cfg.state_file, Some(PathBuf::from("/var/ot/state")));
        assert_eq!(cfg.livesync_listen, Some(sa("[::1]:9696")));
        assert_eq!(cfg.sources, ["command line"]);
    }

    #[test]
    fn daemon_and_privilege_flags() {
        let cfg = run(&[
            "-D",
            "--allow-root",
            "--pid-file",
            "/run/ot.pid",
            "--log-file=/var/log/ot.log",
        ])
        .unwrap();
        assert!(cfg.daemon && cfg.allow_root);
        assert_eq!(cfg.pid_file, Some(PathBuf::from("/run/ot.pid")));
        assert_eq!(cfg.log_file, Some(PathBuf::from("/var/log/ot.log")));
        assert_eq!(cfg.sources, ["command line"]);
        let cfg = run(&["--daemon"]).unwrap();
        assert!(cfg.daemon && !cfg.allow_root && cfg.pid_file.is_none());
        let d = Config::default();
        assert!(!d.daemon && !d.allow_root && d.pid_file.is_none() && d.log_file.is_none());
        assert_eq!(
            run(&["--pid-file"]).unwrap_err(),
            "command line: --pid-file: missing value"
        );
        assert_eq!(
            run(&["--allow-root=yes"]).unwrap_err(),
            "command line: --allow-root: takes no value; try -h"
        );
        assert_eq!(
            run(&["--log-file", " "]).unwrap_err(),
            "command line: --log-file: missing value"
        );
    }

    #[test]
    fn attached_values_and_bracketed_ip() {
        let cfg = run(&["-i[::1]", "-p6970"]).unwrap();
        assert_eq!(cfg.listen_tcp, [sa("[::1]:6970")]);
    }

    #[test]
    fn no_flags_gives_default_listeners() {
        let cfg = run(&[]).unwrap();
        let both = [sa("0.0.0.0:6969"), sa("[::]:6969")];
        assert_eq!(cfg.listen_tcp, both);
        assert_eq!(cfg.listen_udp, both);
        assert!(cfg.sources.is_empty());
    }

    #[test]
    fn help_version_check() {
        let parse = |a: &[&str]| parse_args(a.iter().map(OsString::from));
        assert!(matches!(parse(&["-h"]), Ok(Command::Help)));
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(parse(&["-v"]), Ok(Command::Version)));
        assert!(matches!(parse(&["--version"]), Ok(Command::Version)));
        // Left to right: -h is reached before the bad port.
        assert!(matches!(parse(&["-h", "-p", "x"]), Ok(Command::Help)));
        assert!(parse(&["-p", "x", "-h"]).is_err());
        match parse(&["--check-config", "-p", "1"]) {
            Ok(Command::CheckConfig(cfg)) => assert_eq!(cfg.listen_tcp, [sa("0.0.0.0:1")]),
            other => panic!("{other:?}"),
        }
        assert!(usage().contains("-f FILE"));
        assert!(version().starts_with("opentracker-rs "));
    }

    #[test]
    fn flag_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["-p", "99999"],
                "command line: -p: invalid port \"99999\": port out of range",
            ),
            (
                &["-P", "udp"],
                "command line: -P: invalid port \"udp\": port is not a decimal number",
            ),
            (&["-p"], "command line: -p: missing value"),
            (&["-x"], "command line: -x: unknown option; try -h"),
            (
                &["--listen", "1"],
                "command line: --listen: unknown option; try -h",
            ),
            (
                &["--check-config=yes"],
                "command line: --check-config: takes no value; try -h",
            ),
            (
                &["opentracker.conf"],
                "command line: opentracker.conf: unexpected argument (options take the form -p PORT); try -h",
            ),
            (
                &["-i", "localhost"],
                "command line: -i: invalid IP address \"localhost\" (host names are not resolved)",
            ),
            (
                &["-A", "1.2.3.4/99"],
                "command line: -A: invalid address or network \"1.2.3.4/99\": prefix length must be 0..=32",
            ),
            (
                &["-w", "/a", "-b", "/b"],
                "command line: -b: access.whitelist and access.blacklist are exclusive",
            ),
            (
                &["-p", "80", "-p", "80"],
                "command line: -p: TCP listener 0.0.0.0:80 is already configured",
            ),
            (
                &["-f", "/nonexistent/opentracker-rs.conf"],
                "/nonexistent/opentracker-rs.conf: cannot read config file: No such file or directory (os error 2)",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(run(args).unwrap_err(), *want, "{args:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_value() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("-u"), OsString::from_vec(vec![0x66, 0xff])];
        let e = parse_args(args).unwrap_err();
        assert_eq!(e.to_string(), "command line: -u: value is not valid UTF-8");
    }

    #[test]
    fn config_file_and_flags_in_order() {
        let path =
            std::env::temp_dir().join(format!("otrs-config-test-{}-args.conf", std::process::id()));
        std::fs::write(
            &path,
            "listen.tcp_udp 127.0.0.1:0\naccess.blacklist /etc/bl\ntracker.user a\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let first = run(&["-u", "b", "-f", p]);
        let second = run(&["-f", p, "-u", "b", "-p", "0"]);
        let conflict = run(&["-f", p, "-w", "/etc/wl"]);
        let conflict_in_file = run(&["-w", "/etc/wl", "-f", p]);
        std::fs::remove_file(&path).unwrap();

        let first = first.unwrap();
        // A flag wins over a file wherever -f stands.
        assert_eq!(first.user.as_deref(), Some("b"));
        assert_eq!(first.listen_tcp, [sa("127.0.0.1:0")]);
        assert_eq!(first.listen_udp, [sa("127.0.0.1:0")]);
        assert_eq!(
            first.sources,
            [format!("file {p}"), "command line".to_owned()]
        );
        let second = second.unwrap();
        assert_eq!(second.user.as_deref(), Some("b"));
        assert_eq!(second.listen_tcp, [sa("127.0.0.1:0"), sa("0.0.0.0:0")]);
        assert_eq!(
            conflict.unwrap_err(),
            "command line: -w: access.whitelist and access.blacklist are exclusive"
        );
        // The file is applied first, then the flag that contradicts it.
        assert_eq!(
            conflict_in_file.unwrap_err(),
            "command line: -w: access.whitelist and access.blacklist are exclusive"
        );
    }

    #[test]
    fn precedence_file_environment_flags() {
        use ipnet::IpNet;
        let path = std::env::temp_dir().join(format!(
            "otrs-config-test-{}-precedence.conf",
            std::process::id()
        ));
        std::fs::write(
            &path,
            "tracker.user from-file
tracker.numwant.max 100
tracker.announce_interval 600
\
             access.stats 10.0.0.0/8
listen.tcp 127.0.0.1:0
",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let env = |pairs: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            pairs
                .iter()
                .map(|(n, v)| (OsString::from(n), OsString::from(v)))
                .collect()
        };
        let vars = env(&[
            ("OPENTRACKER_RS_TRACKER__USER", "from-env"),
            ("OPENTRACKER_RS_TRACKER__NUMWANT__MAX", "150"),
            ("OPENTRACKER_RS_ACCESS__STATS", "127.0.0.1\n::1"),
            (
                "OPENTRACKER_RS_CONFIG",
                "tracker.announce_interval 900\ntracker.user from-text\n",
            ),
            ("LANG", "C.UTF-8"),
        ]);
        let parse = |args: &[&str], vars: Vec<(OsString, OsString)>| {
            parse_args_with_env(args.iter().map(OsString::from), vars)
        };
        let with_flag = parse(
            &["-u", "from-flag", "-f", p, "--check-config"],
            vars.clone(),
        );
        let without_flag = parse(&["-f", p], vars.clone());
        let bad_env = parse(
            &["-f", p],
            env(&[("OPENTRACKER_RS_TRACKER__NUMWANT__MAX", "x")]),
        );
        let help_first = parse(&["-h"], env(&[("OPENTRACKER_RS_NO_SUCH", "1")]));
        std::fs::remove_file(&path).unwrap();

        let Ok(Command::CheckConfig(cfg)) = with_flag else {
            panic!("{with_flag:?}")
        };
        assert_eq!(cfg.user.as_deref(), Some("from-flag"));
        assert_eq!(cfg.numwant_max, 150);
        assert_eq!(cfg.announce_interval, 900);
        let nets: Vec<IpNet> = ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(cfg.stats_allowed, nets);
        assert_eq!(
            cfg.sources,
            [
                format!("file {p}"),
                "OPENTRACKER_RS_CONFIG".to_owned(),
                "environment (OPENTRACKER_RS_ACCESS__STATS, OPENTRACKER_RS_TRACKER__USER, \
                 OPENTRACKER_RS_TRACKER__NUMWANT__MAX)"
                    .to_owned(),
                "command line".to_owned(),
            ]
        );
        let text = cfg.to_config_text();
        assert!(
            text.contains(&format!(
                "\n# sources: defaults, file {p}, OPENTRACKER_RS_CONFIG, environment ("
            )),
            "{text}"
        );
        let Ok(Command::Run(cfg)) = without_flag else {
            panic!("{without_flag:?}")
        };
        assert_eq!(cfg.user.as_deref(), Some("from-env"));
        assert_eq!(
            bad_env.unwrap_err().to_string(),
            "OPENTRACKER_RS_TRACKER__NUMWANT__MAX: tracker.numwant.max: invalid number \"x\": \
             expected decimal digits"
        );
        assert!(matches!(help_first, Ok(Command::Help)));
    }
}
