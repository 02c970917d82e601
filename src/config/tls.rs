//! `listen.tls` and `api.listen_tls`: an HTTPS listener is an address with a certificate chain
//! and a private key, both PEM files (see `net::tls`).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::table::{Field, Syntax};
use super::{special, value};

/// One HTTPS listener, `ADDR[:PORT] CERT KEY`: the address to bind, the PEM file of the
/// certificate chain (leaf first, as certbot's `fullchain.pem`) and the PEM file of its
/// private key (PKCS#8, PKCS#1 or SEC1, as certbot's `privkey.pem`). The paths are single
/// words (no blanks) and are read at start as the starting user, outside `tracker.rootdir`,
/// and again on SIGHUP by the running tracker (after the chroot and the user switch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsListen {
    /// Address to bind (IPv6 sockets are IPv6-only, as `listen.tcp`).
    pub addr: SocketAddr,
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key of the leaf certificate.
    pub key: PathBuf,
}

impl Field for Vec<TlsListen> {
    /// The port of an address written without one, and the kind named in errors.
    type Spec = (u16, &'static str);
    const REPEATABLE: bool = true;
    fn set(&mut self, text: &str, (port, kind): &Self::Spec) -> Result<(), String> {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let [addr, cert, key] = words[..] else {
            return Err(format!(
                "expected ADDRESS CERT KEY (three words), got {} word(s)",
                words.len()
            ));
        };
        let addr = value::socket_addr(addr, *port)?;
        let mut addrs: Vec<SocketAddr> = self.iter().map(|t| t.addr).collect();
        special::add_listener(&mut addrs, addr, kind)?;
        self.push(TlsListen {
            addr,
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        });
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter()
            .map(|t| format!("{} {} {}", t.addr, t.cert.display(), t.key.display()))
            .collect()
    }
    fn syntax(_: &Self::Spec) -> Syntax {
        Syntax::Other("ADDRESS CERT KEY")
    }
}
