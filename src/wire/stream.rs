//! Framing of streamed HTTP responses, whose body length is not known when the head is sent
//! (the full scrape, `/stats?mode=statedump`, `tpbs`, `top100`: built in slices by the loop).
//!
//! Two framings (RFC 9112 §6.3), chosen by the request's version:
//! - HTTP/1.1: `Transfer-Encoding: chunked` (RFC 9112 §7.1). Each slice is one chunk
//!   `<hex size>\r\n<data>\r\n`; the body ends with the last chunk `0\r\n\r\n`, so a client can
//!   tell a complete body from a cut connection. This is what opentracker sends since 2024.
//! - HTTP/1.0 (and request lines without a version): no framing; the body ends when the server
//!   closes the connection (chunked must not be sent to HTTP/1.0 clients, RFC 9112 §7.1).
//!
//! Both framings send `Connection: close`: a streamed response is the last one on its
//! connection (pipelined requests after it are not answered; RFC 9112 §9.6 lets a client retry
//! them on a new connection).

use super::bencode::write_decimal;
use super::http::Status;

/// How a streamed body is delimited; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked` (HTTP/1.1 requests).
    Chunked,
    /// Body ends at connection close (HTTP/1.0 requests).
    CloseDelimited,
}

/// Writes the head of a streamed `200 OK` response:
/// `HTTP/1.1 200 OK\r\nContent-Type: <content_type>\r\n[Content-Encoding: gzip\r\n]`
/// `[Transfer-Encoding: chunked\r\n]Connection: close\r\n\r\n`. No `Content-Length`.
/// `content_type` must be a constant without CR/LF (it is written as given).
pub fn write_stream_head(out: &mut Vec<u8>, content_type: &str, framing: Framing, gzip: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(out, u64::from(Status::Ok200.code()));
    out.push(b' ');
    out.extend_from_slice(Status::Ok200.reason().as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\n");
    if gzip {
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
}

/// Appends `data` as the next piece of the body: one chunk (`<hex size>\r\n<data>\r\n`,
/// size in bytes, lower-case hex) with [`Framing::Chunked`], the bare bytes otherwise. Empty
/// `data` writes nothing (an empty chunk would end the body).
pub fn write_body_piece(out: &mut Vec<u8>, framing: Framing, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if framing == Framing::Chunked {
        write_hex(out, data.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// Ends the body: the last chunk `0\r\n\r\n` (no trailers) with [`Framing::Chunked`], nothing
/// otherwise (the server closes the connection).
pub fn write_body_end(out: &mut Vec<u8>, framing: Framing) {
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

fn write_hex(out: &mut Vec<u8>, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_bytes() {
        let mut out = Vec::new();
        write_stream_head(&mut out, "text/plain", Framing::Chunked, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_stream_head(&mut out, "text/plain", Framing::CloseDelimited, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn chunks_and_end() {
        let mut out = Vec::new();
        write_body_piece(&mut out, Framing::Chunked, b"d5:filesd");
        write_body_piece(&mut out, Framing::Chunked, b"");
        write_body_piece(&mut out, Framing::Chunked, &[b'x'; 26]);
        write_body_end(&mut out, Framing::Chunked);
        let mut expect = b"9\r\nd5:filesd\r\n1a\r\n".to_vec();
        expect.extend_from_slice(&[b'x'; 26]);
        expect.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, expect);

        out.clear();
        write_body_piece(&mut out, Framing::CloseDelimited, b"abc");
        write_body_end(&mut out, Framing::CloseDelimited);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn hex_sizes() {
        for (n, s) in [
            (1u64, "1"),
            (15, "f"),
            (16, "10"),
            (0xabcdef, "abcdef"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            write_hex(&mut out, n);
            assert_eq!(out, s.as_bytes());
        }
    }
}
