//! HTTPS for the HTTP server: rustls as a sans-I/O state machine driven by the event loop (no
//! thread, no async runtime).
//!
//! A connection accepted on a TLS listener (`listen.tls`, `api.listen_tls`) carries a
//! [`TlsConn`]. The HTTP server reads and writes through it instead of the socket: TLS records
//! read from the socket go into rustls and plaintext comes out into the request buffers;
//! response bytes go into rustls and records go out to the socket. Everything above (fronts,
//! limits, keep-alive, streamed full scrapes, deferred API answers) sees plain bytes.
//!
//! - Versions TLS 1.2 and 1.3, ALPN `http/1.1`, the `ring` provider, no client certificates.
//! - The handshake counts as part of the first request head: it must be over, and that head
//!   complete, `http.header_timeout` seconds after accept.
//! - Certificates: a PEM chain (leaf first) and a PEM private key ([`load_identity`]). A pair
//!   that cannot be read, whose key does not match the leaf, or whose leaf is expired (or not
//!   valid yet) is refused: at start the tracker does not start, on SIGHUP ([`Reloader`]) the
//!   previous pair stays and the log says why. A reload reaches new connections only; open
//!   ones keep the pair they started with.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use crate::config::TlsListen;
use crate::stats::TlsHandshakes;

/// Most plaintext bytes handed to rustls per write (rustls cuts it into 16 KiB records).
const WRITE_CHUNK: usize = 64 * 1024;

/// Reads a certificate chain and its private key from PEM files and makes a server
/// configuration of them (TLS 1.2 and 1.3, ALPN `http/1.1`). `now` is the Unix time in seconds
/// against which the leaf's validity is checked.
///
/// Errors (text for the log): a file cannot be read, holds no certificate or no key, the key
/// does not match the leaf certificate, the leaf is expired or not valid yet.
pub fn load_identity(cert: &Path, key: &Path, now: u64) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{}: no certificate in the file", cert.display()));
    };
    let (not_before, not_after) = validity(leaf).ok_or_else(|| {
        format!(
            "{}: cannot read the validity of the first certificate",
            cert.display()
        )
    })?;
    if now > not_after {
        return Err(format!(
            "{}: the certificate expired {} (now {})",
            cert.display(),
            humantime::format_rfc3339_seconds(
                UNIX_EPOCH + std::time::Duration::from_secs(not_after)
            ),
            humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(now)),
        ));
    }
    if now < not_before {
        return Err(format!(
            "{}: the certificate is not valid before {}",
            cert.display(),
            humantime::format_rfc3339_seconds(
                UNIX_EPOCH + std::time::Duration::from_secs(not_before)
            ),
        ));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "{} and {}: {e} (does the key belong to the certificate?)",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Seconds since the Unix epoch by the wall clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The certificate/key pairs of every TLS listener, each pair once, and which pair each
/// listener uses.
#[derive(Clone)]
pub struct Identities {
    /// `(cert, key)` paths, each pair once, in the order first named.
    pub files: Vec<(PathBuf, PathBuf)>,
    /// The loaded configuration of each pair (same index as `files`).
    pub configs: Vec<Arc<ServerConfig>>,
}

impl Identities {
    /// Loads the pairs of `listens` (tracker and API listeners together); returns them with the
    /// pair index of each listener, in order.
    ///
    /// Errors: the first pair that cannot be loaded ([`load_identity`]), naming the listener.
    pub fn load<'a>(
        listens: impl IntoIterator<Item = &'a TlsListen>,
    ) -> Result<(Self, Vec<usize>), String> {
        let mut ids = Identities {
            files: Vec::new(),
            configs: Vec::new(),
        };
        let mut index = Vec::new();
        let now = unix_now();
        for l in listens {
            let pair = (l.cert.clone(), l.key.clone());
            let i = match ids.files.iter().position(|p| *p == pair) {
                Some(i) => i,
                None => {
                    let config = load_identity(&l.cert, &l.key, now)
                        .map_err(|e| format!("TLS listener {}: {e}", l.addr))?;
                    ids.files.push(pair);
                    ids.configs.push(config);
                    ids.files.len() - 1
                }
            };
            index.push(i);
        }
        Ok((ids, index))
    }
}

/// The certificate configurations (one per pair, as [`Identities::configs`]) shared by the
/// workers (`tracker.workers` above 1): worker 0 replaces a pair on a reload
/// ([`SharedConfigs::set`]); every other worker reads the generation number once per loop turn
/// (one atomic load) and copies the configurations only when it changed
/// ([`SharedConfigs::changed_since`]). Connections never touch the lock: each worker's HTTP
/// server keeps its own `Arc`s and a new connection clones one.
#[derive(Debug)]
pub struct SharedConfigs {
    /// Bumped (under the write lock) by every [`SharedConfigs::set`].
    generation: std::sync::atomic::AtomicU64,
    configs: std::sync::RwLock<Vec<Arc<ServerConfig>>>,
}

impl SharedConfigs {
    /// The configurations loaded at start, generation 0.
    pub fn new(configs: &[Arc<ServerConfig>]) -> Self {
        SharedConfigs {
            generation: std::sync::atomic::AtomicU64::new(0),
            configs: std::sync::RwLock::new(configs.to_vec()),
        }
    }

    /// Replaces pair `index` (a reload) and bumps the generation. An unknown index is ignored.
    pub fn set(&self, index: usize, config: Arc<ServerConfig>) {
        let mut configs = self
            .configs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = configs.get_mut(index) {
            *c = config;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    }

    /// The generation number now (0 until the first [`SharedConfigs::set`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// When the generation is no longer `seen`: the new generation and every configuration
    /// (by pair index), read together; `None` (one atomic load, no lock) when it is.
    pub fn changed_since(&self, seen: u64) -> Option<(u64, Vec<Arc<ServerConfig>>)> {
        if self.generation() == seen {
            return None;
        }
        Some(self.current())
    }

    /// The generation number and every configuration (by pair index), read together.
    pub fn current(&self) -> (u64, Vec<Arc<ServerConfig>>) {
        let configs = self
            .configs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (self.generation(), configs.clone())
    }
}

/// The TLS side of one HTTPS connection; see the module doc.
pub struct TlsConn {
    conn: ServerConnection,
    /// Plaintext bytes whose records were made but not all written to the socket yet: the
    /// next [`TlsConn::write`] reports them consumed once the records are out.
    in_flight: usize,
    /// When the connection was accepted (handshake time).
    accepted: Instant,
    /// The handshake is over (counted once).
    handshaken: bool,
}

impl TlsConn {
    /// A new server-side session with `config`.
    ///
    /// Errors: rustls refuses the configuration (not expected for one made by
    /// [`load_identity`]).
    pub fn new(config: &Arc<ServerConfig>) -> Result<Box<Self>, rustls::Error> {
        Ok(Box::new(TlsConn {
            conn: ServerConnection::new(Arc::clone(config))?,
            in_flight: 0,
            accepted: Instant::now(),
            handshaken: false,
        }))
    }

    /// True until the handshake is over.
    pub fn handshaking(&self) -> bool {
        !self.handshaken
    }

    /// As `Read::read` on the socket, but returns plaintext: reads TLS records from `sock`,
    /// processes them (writing handshake messages back as needed) and copies decrypted bytes
    /// into `buf`. `Ok(0)` at the end of the stream (TCP or TLS `close_notify`);
    /// `WouldBlock` when no plaintext is there yet (handshake under way, partial record).
    ///
    /// Errors: the socket's, or `InvalidData` for a TLS protocol error (an alert is sent, the
    /// caller closes the connection).
    pub fn read(
        &mut self,
        sock: &mut impl ReadWrite,
        buf: &mut [u8],
        stats: &mut TlsHandshakes,
    ) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(sock)? == 0 {
                return Ok(0);
            }
            let processed = self.conn.process_new_packets();
            // Handshake messages, tickets, alerts: written now. What a full socket does not
            // take stays queued ([`TlsConn::wants_write`]); the server then waits for
            // writability and calls [`TlsConn::flush`].
            match self.flush_records(sock) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = processed {
                if !self.handshaken {
                    log::debug!("TLS handshake failed: {e}");
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if !self.handshaken && !self.conn.is_handshaking() {
                self.handshaken = true;
                stats.completed += 1;
                stats.micros += self.accepted.elapsed().as_micros() as u64;
            }
        }
    }

    /// As `Write::write` on the socket, for plaintext: encrypts a prefix of `data` and writes
    /// its records. Returns the number of plaintext bytes whose records are all on the socket;
    /// `WouldBlock` while some are not (the caller must then call again with the same bytes
    /// first, as it does with unsent bytes of a plain socket).
    ///
    /// Errors: the socket's; `WriteZero` if rustls takes nothing.
    pub fn write(&mut self, sock: &mut impl ReadWrite, data: &[u8]) -> io::Result<usize> {
        self.flush_records(sock)?;
        if self.in_flight > 0 {
            return Ok(std::mem::take(&mut self.in_flight));
        }
        let n = self
            .conn
            .writer()
            .write(&data[..data.len().min(WRITE_CHUNK)])?;
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.in_flight = n;
        self.flush_records(sock)?;
        self.in_flight = 0;
        Ok(n)
    }

    /// True when TLS records (handshake messages, alerts) wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes the queued TLS records. `WouldBlock` when the socket is full.
    pub fn flush(&mut self, sock: &mut impl ReadWrite) -> io::Result<()> {
        self.flush_records(sock)
    }

    /// Sends `close_notify` (best effort: the connection is closed next).
    pub fn close_notify(&mut self, sock: &mut impl ReadWrite) {
        if self.handshaken {
            self.conn.send_close_notify();
            let _ = self.flush_records(sock);
        }
    }

    /// Writes queued TLS records until none is left. `WouldBlock` when the socket is full.
    fn flush_records(&mut self, sock: &mut impl ReadWrite) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A socket (`Read + Write`), named for the bounds of [`TlsConn`]'s methods.
pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// What one reload of the certificate/key pairs gave: per pair (index into
/// [`Identities::files`]), the new configuration or why the files were refused.
pub type Reloaded = Vec<Result<Arc<ServerConfig>, String>>;

/// Re-reads every certificate/key pair on a helper thread (`tls-reload`) when asked (SIGHUP),
/// and wakes the loop through `wake` when done: the access list's [`Reloader`] thread, with
/// the certificates as its work. Reading files and checking keys never stalls the loop.
pub type Reloader = crate::access::reload::Reloader<Reloaded>;

impl Reloader {
    /// Starts the helper thread for `files` (cert, key paths).
    ///
    /// Errors: the thread cannot be spawned.
    pub fn spawn_certificates(
        files: Vec<(PathBuf, PathBuf)>,
        wake: impl Fn() + Send + 'static,
    ) -> io::Result<Self> {
        Reloader::spawn_with(
            "tls-reload",
            move || {
                let now = unix_now();
                files
                    .iter()
                    .map(|(cert, key)| load_identity(cert, key, now))
                    .collect()
            },
            wake,
        )
    }
}

/// `(notBefore, notAfter)` of a DER X.509 certificate (RFC 5280 §4.1), in Unix seconds; `None`
/// if the bytes are not shaped like one.
pub fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    let (tag, certificate, _) = der(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    // version [0] EXPLICIT (optional), serialNumber, signature, issuer, then validity.
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = der(rest)?.2;
    }
    let (tag, validity, _) = der(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag1, t1, after) = der(validity)?;
    let (tag2, t2, _) = der(after)?;
    Some((der_time(tag1, t1)?, der_time(tag2, t2)?))
}

/// One DER element at the start of `data`: `(tag, contents, rest)`. Single-byte tags and
/// definite lengths only (all DER has).
fn der(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, data) = data.split_first()?;
    let (&first, mut data) = data.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || data.len() < n {
            return None;
        }
        let len = data[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        data = &data[n..];
        len
    };
    if data.len() < len {
        return None;
    }
    Some((tag, &data[..len], &data[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18) as
/// Unix seconds.
fn der_time(tag: u8, text: &[u8]) -> Option<u64> {
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' || year < 1970 {
        return None;
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (h, m, s) = (
        digits(&rest[4..6])?,
        digits(&rest[6..8])?,
        digits(&rest[8..10])?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 to year-month-day (proleptic Gregorian; Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"000301000000Z"), Some(951_868_800));
        assert_eq!(der_time(0x18, b"20380119031408Z"), Some(2_147_483_648));
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(der_time(0x17, b"701301000000Z"), None);
        assert_eq!(der_time(0x17, b"70010100000Z"), None);
        assert_eq!(der_time(0x18, b"19691231235959Z"), None);
    }

    #[test]
    fn validity_of_a_made_certificate_and_garbage() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2001, 2, 3);
        params.not_after = rcgen::date_time_ymd(2031, 4, 5);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            validity(cert.der()),
            Some((981_158_400, 1_933_113_600)),
            "2001-02-03 and 2031-04-05"
        );
        let der = cert.der().to_vec();
        for cut in 0..der.len() {
            let _ = validity(&der[..cut]);
        }
        assert_eq!(validity(b""), None);
        assert_eq!(validity(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    /// A socket in memory: reads what the test put in `inbox` (WouldBlock when empty), takes
    /// at most `budget` bytes of writes (WouldBlock when spent) into `outbox`.
    #[derive(Default)]
    struct Pipe {
        inbox: std::collections::VecDeque<u8>,
        outbox: Vec<u8>,
        budget: usize,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.inbox.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.inbox.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.budget);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.budget -= n;
            self.outbox.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A server config for `localhost` from a fresh CA, and a client config trusting the CA.
    fn pair() -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, leaf.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let server = load_identity(&c, &k, unix_now()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (server, Arc::new(client))
    }

    /// Moves the server's output to the client and the client's output to the server.
    fn exchange(client: &mut rustls::ClientConnection, sock: &mut Pipe) {
        let out = std::mem::take(&mut sock.outbox);
        let mut slice = &out[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
            client.process_new_packets().unwrap();
        }
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        sock.inbox.extend(to_server);
    }

    #[test]
    fn a_response_through_a_socket_that_takes_little_at_a_time_arrives_whole() {
        let (server_config, client_config) = pair();
        let mut server = TlsConn::new(&server_config).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(client_config, name).unwrap();
        let mut sock = Pipe {
            budget: usize::MAX,
            ..Pipe::default()
        };
        let mut stats = TlsHandshakes::default();
        let mut buf = [0u8; 4096];
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut request = Vec::new();
        for _ in 0..10 {
            exchange(&mut client, &mut sock);
            match server.read(&mut sock, &mut buf, &mut stats) {
                Ok(n) => request.extend_from_slice(&buf[..n]),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!(request, b"GET / HTTP/1.1\r\n\r\n");
        assert!(!server.handshaking());
        assert_eq!(stats.completed, 1);
        exchange(&mut client, &mut sock);

        // 300 KB through a socket that takes 1000 bytes per turn, as `flush` drives it.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut pos = 0;
        let mut received = Vec::new();
        let mut turns = 0;
        while pos < data.len() {
            sock.budget = 1000;
            loop {
                match server.write(&mut sock, &data[pos..]) {
                    Ok(n) => pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
                if pos == data.len() {
                    break;
                }
            }
            exchange(&mut client, &mut sock);
            let _ = client.reader().read_to_end(&mut received);
            turns += 1;
            assert!(turns < 10_000);
        }
        // Every byte reported written is on the wire: nothing left inside rustls.
        assert!(!server.conn.wants_write());
        exchange(&mut client, &mut sock);
        let _ = client.reader().read_to_end(&mut received);
        assert_eq!(received.len(), data.len());
        assert!(received == data);
    }

    #[test]
    fn shared_configs_show_a_reload_once_per_generation() {
        let (a, _) = pair();
        let (b, _) = pair();
        let shared = SharedConfigs::new(&[Arc::clone(&a), Arc::clone(&a)]);
        let (seen, configs) = shared.current();
        assert_eq!((seen, configs.len()), (0, 2));
        assert!(shared.changed_since(seen).is_none());
        shared.set(1, Arc::clone(&b));
        shared.set(7, Arc::clone(&b)); // unknown pair: ignored, no new generation
        let (seen, configs) = shared.changed_since(seen).expect("a reload");
        assert_eq!(seen, 1);
        assert!(Arc::ptr_eq(&configs[0], &a) && Arc::ptr_eq(&configs[1], &b));
        assert!(shared.changed_since(seen).is_none());
    }

    #[test]
    fn load_refuses_expired_mismatched_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let old = params.clone().self_signed(&key).unwrap();
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let good = params.self_signed(&key).unwrap();
        let good_cert = write("good.pem", &good.pem());
        let old_cert = write("old.pem", &old.pem());
        let key_file = write("key.pem", &key.serialize_pem());
        let other_key = write("other.pem", &other.serialize_pem());
        let now = unix_now();
        assert!(load_identity(&good_cert, &key_file, now).is_ok());
        let e = load_identity(&old_cert, &key_file, now).err().unwrap();
        assert!(e.contains("expired 2002-01-01T00:00:00Z"), "{e}");
        let e = load_identity(&good_cert, &other_key, now).err().unwrap();
        assert!(e.contains("does the key belong"), "{e}");
        let e = load_identity(&dir.path().join("nope"), &key_file, now)
            .err()
            .unwrap();
        assert!(e.contains("nope"), "{e}");
        let e = load_identity(&key_file, &key_file, now).err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
    }
}
