//! Value parsers shared by the config file and the command line: addresses, networks,
//! numbers, booleans and free text.
//!
//! Every function returns the human-readable reason as `Err(String)`; the caller wraps it
//! in a [`super::ConfigError`] that names the file, line and directive. None of them panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use ipnet::IpNet;

/// Parses a listen address: `ip`, `ip:port`, `[v6]`, `[v6]:port`, `[v6%scope]:port`, or a
/// bare IPv6 address without brackets (`::1`), which takes `default_port`.
///
/// Ports are decimal, `0..=65535`; port 0 asks the OS for a free port. Host names are not
/// resolved (as opentracker, which only scans IP literals).
///
/// Errors: `invalid address "TEXT": REASON`, e.g. `invalid address "1.2.3.4:99999": port out of range`.
pub(crate) fn socket_addr(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    socket_addr_inner(text, default_port)
        .map_err(|why| format!("invalid address \"{text}\": {why}"))
}

fn socket_addr_inner(text: &str, default_port: u16) -> Result<SocketAddr, &'static str> {
    if text.is_empty() {
        return Err("empty address");
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("missing ']'")?;
        let port = match after {
            "" => default_port,
            _ => match after.strip_prefix(':') {
                Some(p) => port(p)?,
                None => return Err("unexpected text after ']'"),
            },
        };
        let (ip, scope) = match inside.split_once('%') {
            Some((ip, scope)) => (ip, scope_id(scope)?),
            None => (inside, 0),
        };
        let ip: Ipv6Addr = ip.parse().map_err(|_| "not an IPv6 address inside [ ]")?;
        return Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)));
    }
    if let Ok(ip) = text.parse::<Ipv6Addr>() {
        return Ok(SocketAddr::V6(SocketAddrV6::new(ip, default_port, 0, 0)));
    }
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::V4(SocketAddrV4::new(ip, default_port)));
    }
    let Some((host, port_text)) = text.rsplit_once(':') else {
        return Err(NOT_IP);
    };
    if host.contains(':') {
        return Err("an IPv6 address with a port must be written [address]:port");
    }
    if host.is_empty() {
        return Err("missing IP address before ':'");
    }
    let ip: Ipv4Addr = host.parse().map_err(|_| NOT_IP)?;
    Ok(SocketAddr::V4(SocketAddrV4::new(ip, port(port_text)?)))
}

const NOT_IP: &str = "not an IP address (host names are not resolved)";

/// Parses a decimal port `0..=65535`. Errors are bare reasons (`port out of range`, ...).
pub(crate) fn port(text: &str) -> Result<u16, &'static str> {
    if text.is_empty() {
        return Err("missing port");
    }
    match decimal(text) {
        Some(n) => u16::try_from(n).map_err(|_| "port out of range"),
        None if text.bytes().all(|b| b.is_ascii_digit()) => Err("port out of range"),
        None => Err("port is not a decimal number"),
    }
}

fn scope_id(text: &str) -> Result<u32, &'static str> {
    decimal(text)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("scope id is not a decimal interface number")
}

/// Parses a bare IP address, IPv4 or IPv6, brackets allowed around IPv6 (`-i [::1]`).
///
/// Errors: `invalid IP address "TEXT"`.
pub(crate) fn ip_addr(text: &str) -> Result<IpAddr, String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner
        .parse()
        .map_err(|_| format!("invalid IP address \"{text}\" (host names are not resolved)"))
}

/// Parses `ip` (a single host: /32 or /128) or `ip/prefix` (CIDR, host bits kept as
/// written; [`IpNet::contains`] ignores them) for `access.stats`, `access.proxy`, `-A`,
/// `livesync.cluster.node_ip` (CIDR as opentracker after 2024).
///
/// Errors: `invalid address or network "TEXT": REASON`.
pub(crate) fn ip_net(text: &str) -> Result<IpNet, String> {
    let fail = |why: &str| format!("invalid address or network \"{text}\": {why}");
    match text.split_once('/') {
        None => text
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| fail("not an IP address")),
        Some((addr, prefix)) => {
            let addr: IpAddr = addr.parse().map_err(|_| fail("not an IP address"))?;
            let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
            let len = decimal(prefix)
                .and_then(|n| u8::try_from(n).ok())
                .filter(|&n| n <= max)
                .ok_or_else(|| fail(&format!("prefix length must be 0..={max}")))?;
            IpNet::new(addr, len).map_err(|_| fail("prefix length out of range"))
        }
    }
}

/// Parses a non-empty run of ASCII decimal digits; `None` on anything else or on overflow
/// of `u64`. No sign, no `0x`, no separators.
pub(crate) fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses a decimal number and checks `min..=max`.
///
/// Errors: `invalid number "TEXT": expected decimal digits` or
/// `value N is out of range MIN..=MAX`.
pub(crate) fn number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = match decimal(text) {
        Some(n) => n,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("value {text} is out of range {min}..={max}"));
        }
        None => {
            return Err(format!(
                "invalid number \"{text}\": expected decimal digits"
            ));
        }
    };
    if n < min || n > max {
        return Err(format!("value {n} is out of range {min}..={max}"));
    }
    Ok(n)
}

/// [`number`] narrowed to `u32` (bounds must fit in `u32`).
pub(crate) fn number_u32(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let n = number(text, u64::from(min), u64::from(max))?;
    u32::try_from(n).map_err(|_| format!("value {n} is out of range {min}..={max}"))
}

/// [`number`] narrowed to `usize`.
pub(crate) fn number_usize(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let lo = u64::try_from(min).unwrap_or(u64::MAX);
    let hi = u64::try_from(max).unwrap_or(u64::MAX);
    let n = number(text, lo, hi)?;
    usize::try_from(n).map_err(|_| format!("value {n} is out of range {min}..={max}"))
}

/// Parses a boolean: `on/off`, `yes/no`, `true/false`, `1/0`, ASCII case-insensitive.
///
/// Errors: `invalid boolean "TEXT": expected on/off, yes/no, true/false or 1/0`.
pub(crate) fn boolean(text: &str) -> Result<bool, String> {
    const TRUE: [&str; 4] = ["on", "yes", "true", "1"];
    const FALSE: [&str; 4] = ["off", "no", "false", "0"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(text)) {
        Ok(true)
    } else if FALSE.iter().any(|t| t.eq_ignore_ascii_case(text)) {
        Ok(false)
    } else {
        Err(format!(
            "invalid boolean \"{text}\": expected on/off, yes/no, true/false or 1/0"
        ))
    }
}

/// Prints a [`IpNet`] the way it is written in the config file: a plain address for a
/// single host (/32, /128), `addr/prefix` otherwise.
pub(crate) fn net_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn address_forms() {
        assert_eq!(socket_addr("1.2.3.4", 6969), Ok(sa("1.2.3.4:6969")));
        assert_eq!(socket_addr("1.2.3.4:80", 6969), Ok(sa("1.2.3.4:80")));
        assert_eq!(socket_addr("0.0.0.0:0", 6969), Ok(sa("0.0.0.0:0")));
        assert_eq!(socket_addr("[::1]:81", 6969), Ok(sa("[::1]:81")));
        assert_eq!(socket_addr("[::1]", 6969), Ok(sa("[::1]:6969")));
        assert_eq!(socket_addr("[::]:0", 6969), Ok(sa("[::]:0")));
        assert_eq!(socket_addr("::1", 6969), Ok(sa("[::1]:6969")));
        assert_eq!(socket_addr("::", 9696), Ok(sa("[::]:9696")));
        // "::1:80" is a valid IPv6 address by itself, so it takes the default port.
        assert_eq!(socket_addr("::1:80", 6969), Ok(sa("[::1:80]:6969")));
        assert_eq!(
            socket_addr("[fe80::1%2]:80", 6969),
            Ok(sa("[fe80::1%2]:80"))
        );
        assert_eq!(socket_addr("1.2.3.4:65535", 1), Ok(sa("1.2.3.4:65535")));
    }

    #[test]
    fn address_errors() {
        let cases = [
            ("1.2.3.4:99999", "port out of range"),
            ("1.2.3.4:99999999999999999999999", "port out of range"),
            ("1.2.3.4:", "missing port"),
            ("1.2.3.4:http", "port is not a decimal number"),
            ("1.2.3.4:-1", "port is not a decimal number"),
            ("[::1]:", "missing port"),
            ("[::1]:70000", "port out of range"),
            ("[::1", "missing ']'"),
            ("[::1]x", "unexpected text after ']'"),
            ("[1.2.3.4]:80", "not an IPv6 address inside [ ]"),
            (
                "[fe80::1%eth0]",
                "scope id is not a decimal interface number",
            ),
            ("localhost", NOT_IP),
            ("localhost:80", NOT_IP),
            ("1.2.3:80", NOT_IP),
            (":80", "missing IP address before ':'"),
            (
                "::1::2:80",
                "an IPv6 address with a port must be written [address]:port",
            ),
            ("", "empty address"),
        ];
        for (text, why) in cases {
            assert_eq!(
                socket_addr(text, 6969),
                Err(format!("invalid address \"{text}\": {why}")),
                "{text}"
            );
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port("0"), Ok(0));
        assert_eq!(port("065535"), Ok(65535));
        assert_eq!(port("65536"), Err("port out of range"));
        assert_eq!(port("+80"), Err("port is not a decimal number"));
        assert_eq!(port(""), Err("missing port"));
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ip_addr("1.2.3.4"), Ok(IpAddr::from([1, 2, 3, 4])));
        assert_eq!(ip_addr("::1"), Ok(IpAddr::from(Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_addr("[::1]"), Ok(IpAddr::from(Ipv6Addr::LOCALHOST)));
        assert_eq!(
            ip_addr("example.org"),
            Err("invalid IP address \"example.org\" (host names are not resolved)".into())
        );
    }

    #[test]
    fn networks() {
        let host: IpNet = "10.1.2.3/32".parse().unwrap();
        assert_eq!(ip_net("10.1.2.3"), Ok(host));
        assert_eq!(ip_net("10.0.0.0/8"), Ok("10.0.0.0/8".parse().unwrap()));
        assert_eq!(
            ip_net("2001:db8::/32"),
            Ok("2001:db8::/32".parse().unwrap())
        );
        assert_eq!(ip_net("::1"), Ok("::1/128".parse().unwrap()));
        assert_eq!(ip_net("0.0.0.0/0"), Ok("0.0.0.0/0".parse().unwrap()));
        assert!(
            ip_net("10.0.0.0/8")
                .unwrap()
                .contains(&IpAddr::from([10, 200, 0, 1]))
        );
        assert!(
            !ip_net("10.0.0.0/8")
                .unwrap()
                .contains(&IpAddr::from([11, 0, 0, 1]))
        );
        assert_eq!(
            ip_net("10.0.0.0/33"),
            Err("invalid address or network \"10.0.0.0/33\": prefix length must be 0..=32".into())
        );
        assert_eq!(
            ip_net("::/129"),
            Err("invalid address or network \"::/129\": prefix length must be 0..=128".into())
        );
        assert_eq!(
            ip_net("10.0.0.0/"),
            Err("invalid address or network \"10.0.0.0/\": prefix length must be 0..=32".into())
        );
        assert_eq!(
            ip_net("10.0.0/8"),
            Err("invalid address or network \"10.0.0/8\": not an IP address".into())
        );
        assert_eq!(
            ip_net("host"),
            Err("invalid address or network \"host\": not an IP address".into())
        );
    }

    #[test]
    fn net_text_drops_host_prefix() {
        assert_eq!(net_text(&ip_net("10.1.2.3").unwrap()), "10.1.2.3");
        assert_eq!(net_text(&ip_net("10.1.2.3/8").unwrap()), "10.1.2.3/8");
        assert_eq!(net_text(&ip_net("::1").unwrap()), "::1");
        assert_eq!(net_text(&ip_net("fd00::/8").unwrap()), "fd00::/8");
    }

    #[test]
    fn numbers() {
        assert_eq!(decimal("0"), Some(0));
        assert_eq!(decimal("18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal("18446744073709551616"), None);
        assert_eq!(decimal(""), None);
        assert_eq!(decimal("1_000"), None);
        assert_eq!(number("5", 1, 10), Ok(5));
        assert_eq!(number("10", 1, 10), Ok(10));
        assert_eq!(
            number("0", 1, 10),
            Err("value 0 is out of range 1..=10".into())
        );
        assert_eq!(
            number("11", 1, 10),
            Err("value 11 is out of range 1..=10".into())
        );
        assert_eq!(
            number("99999999999999999999", 1, 10),
            Err("value 99999999999999999999 is out of range 1..=10".into())
        );
        assert_eq!(
            number("-1", 1, 10),
            Err("invalid number \"-1\": expected decimal digits".into())
        );
        assert_eq!(
            number("0x10", 1, 100),
            Err("invalid number \"0x10\": expected decimal digits".into())
        );
        assert_eq!(number_u32("4294967295", 0, u32::MAX), Ok(u32::MAX));
        assert_eq!(number_usize("8192", 256, 1 << 20), Ok(8192));
    }

    #[test]
    fn booleans() {
        for t in ["on", "ON", "yes", "true", "True", "1"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for f in ["off", "Off", "no", "false", "FALSE", "0"] {
            assert_eq!(boolean(f), Ok(false), "{f}");
        }
        assert_eq!(
            boolean("enabled"),
            Err("invalid boolean \"enabled\": expected on/off, yes/no, true/false or 1/0".into())
        );
    }
}
