//! A test PKI made with rcgen: a CA and a server certificate it signs for `localhost`,
//! `127.0.0.1` and `::1`, as PEM files, plus rustls clients that trust the CA.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// The CA and one server certificate, written to files.
pub struct TestPki {
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server certificate chain (PEM, leaf only).
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS#8).
    pub key: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    server_key: KeyPair,
}

impl TestPki {
    /// Makes the CA and a server certificate valid from yesterday for a year, in `dir`.
    pub fn new(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "opentracker-rs test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.clone().self_signed(&ca_key).unwrap();
        let pki = TestPki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            ca_params,
            ca_key,
            server_key: KeyPair::generate().unwrap(),
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.key, pki.server_key.serialize_pem()).unwrap();
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        std::fs::write(&pki.cert, pki.server_cert_pem(now - day, now + 365 * day)).unwrap();
        pki
    }

    /// A server certificate for the same key, valid from `not_before` to `not_after`, as PEM.
    pub fn server_cert_pem(
        &self,
        not_before: std::time::SystemTime,
        not_after: std::time::SystemTime,
    ) -> String {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .subject_alt_names
            .push(SanType::IpAddress("::1".parse().unwrap()));
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let issuer = self.ca_params.clone().self_signed(&self.ca_key).unwrap();
        params
            .signed_by(&self.server_key, &issuer, &self.ca_key)
            .unwrap()
            .pem()
    }

    /// A rustls client configuration trusting the CA (TLS 1.2 and 1.3, ALPN `http/1.1`).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client_config_for(rustls::DEFAULT_VERSIONS)
    }

    /// As [`TestPki::client_config`], offering only `versions`.
    pub fn client_config_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A TLS connection to `addr` (server name `localhost`), handshake done.
    pub fn connect(&self, addr: SocketAddr) -> TlsStream {
        self.connect_with(addr, rustls::DEFAULT_VERSIONS)
    }

    /// As [`TestPki::connect`], offering only `versions`.
    pub fn connect_with(
        &self,
        addr: SocketAddr,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsStream {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.client_config_for(versions), name).unwrap();
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).unwrap();
        }
        s
    }
}

/// A client TLS stream.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// DER bytes of the server's leaf certificate on `s`.
pub fn peer_leaf(s: &TlsStream) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

/// DER bytes of the first certificate in a PEM file.
pub fn pem_leaf(path: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Sends a keep-alive GET of `target` on `s` and returns the status and body (by
/// Content-Length).
pub fn get_keep_alive(s: &mut TlsStream, target: &str) -> (u16, Vec<u8>) {
    // One write, so one TLS record and one segment (several would meet Nagle and delayed ACKs).
    let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed mid-head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, body)
}
