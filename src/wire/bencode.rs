//! Bencode (BEP 3, "The connectivity is as follows" / bencoding): a writer for responses and a
//! small strict reader for tests and tools.
//!
//! The writer appends to a caller-owned `Vec<u8>` and never allocates anything else: integers
//! are formatted into a 20-byte stack buffer. It does not track structure, so the caller must
//! close every [`begin_dict`]/[`begin_list`] with [`end`] and must write the keys of a
//! dictionary in ascending raw-byte order (BEP 3: "Keys must be strings and appear in sorted
//! order"). [`decode`] enforces that order, so a test that decodes our output proves it is
//! canonical.
//!
//! The reader ([`decode`], [`Value`]) is not on a hot path and allocates its `Vec`s.

use std::fmt;

/// Appends the decimal digits of `n` (no sign, no leading zeros) to `out`.
///
/// Shared by the bencode and HTTP writers; formats into a stack buffer (no allocation other
/// than growing `out`).
pub(crate) fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20]; // u64::MAX has 20 digits
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes the integer `n` as `i<n>e` (BEP 3): `0` is `i0e`, negatives carry `-`, never `-0`
/// and never leading zeros.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    if n < 0 {
        out.push(b'-');
    }
    write_decimal(out, n.unsigned_abs());
    out.push(b'e');
}

/// Writes the unsigned integer `n` as `i<n>e` (BEP 3). Convenience for counters (seeders,
/// leechers, downloaded) that are unsigned in the store.
pub fn put_uint(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    write_decimal(out, n);
    out.push(b'e');
}

/// Writes the byte string `bytes` as `<len>:<bytes>` (BEP 3), `len` in decimal bytes.
/// Any bytes are allowed (info_hashes and compact peers are binary).
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_decimal(out, bytes.len() as u64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Writes the UTF-8 text `s` as a byte string `<len>:<s>`; `len` counts bytes, not chars.
/// Alias of [`put_bytes`] for dictionary keys and text values.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Opens a dictionary (`d`). The caller writes key/value pairs with keys in ascending
/// raw-byte order, then calls [`end`].
pub fn begin_dict(out: &mut Vec<u8>) {
    out.push(b'd');
}

/// Opens a list (`l`). Close it with [`end`].
pub fn begin_list(out: &mut Vec<u8>) {
    out.push(b'l');
}

/// Closes the innermost open dictionary or list (`e`).
pub fn end(out: &mut Vec<u8>) {
    out.push(b'e');
}

/// Writes a complete failure response body `d14:failure reason<len>:<reason>e` (BEP 3: "If
/// the response has the key `failure reason`, then that maps to a human readable string which
/// explains why the query failed, and no other keys are required").
pub fn failure(out: &mut Vec<u8>, reason: &str) {
    begin_dict(out);
    put_str(out, "failure reason");
    put_str(out, reason);
    end(out);
}

/// Deepest nesting of lists/dictionaries [`decode`] accepts (the top-level value is depth 1).
/// Bounds the reader's recursion so hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value; byte strings and dictionary keys borrow from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `i<n>e`, a signed 64-bit integer.
    Int(i64),
    /// `<len>:<bytes>`, raw bytes (not necessarily UTF-8).
    Bytes(&'a [u8]),
    /// `l...e`, values in order.
    List(Vec<Value<'a>>),
    /// `d...e`, (key, value) pairs in strictly ascending raw-byte key order (as decoded).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The value under `key` if `self` is a dictionary that has it (binary search: keys are
    /// sorted because [`decode`] rejects anything else).
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        let pairs = self.as_dict()?;
        pairs
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| &pairs[i].1)
    }

    /// The integer if `self` is [`Value::Int`].
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The bytes if `self` is [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements if `self` is [`Value::List`].
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// The (key, value) pairs, sorted by key, if `self` is [`Value::Dict`].
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(v) => Some(v),
            _ => None,
        }
    }
}

/// Why [`decode`] rejected its input. `offset` fields are byte offsets into the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value (or was empty).
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here (e.g. `x`, or `e` at top level).
    UnexpectedByte {
        /// Byte offset into the input.
        offset: usize,
    },
    /// An integer that is empty, has leading zeros, is `-0`, has a non-digit or overflows i64.
    InvalidInt {
        /// Byte offset into the input.
        offset: usize,
    },
    /// A string length with leading zeros, a non-digit, or overflow.
    InvalidLength {
        /// Byte offset into the input.
        offset: usize,
    },
    /// A dictionary key that is not a byte string.
    KeyNotString {
        /// Byte offset into the input.
        offset: usize,
    },
    /// A dictionary key not greater than the previous one (BEP 3: keys appear in sorted order).
    UnsortedKey {
        /// Byte offset into the input.
        offset: usize,
    },
    /// A dictionary key equal to the previous one.
    DuplicateKey {
        /// Byte offset into the input.
        offset: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Byte offset into the input.
        offset: usize,
    },
    /// A complete value followed by more bytes.
    TrailingBytes {
        /// Byte offset into the input.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd => write!(f, "bencode: unexpected end of input"),
            DecodeError::UnexpectedByte { offset } => {
                write!(f, "bencode: unexpected byte at offset {offset}")
            }
            DecodeError::InvalidInt { offset } => {
                write!(f, "bencode: invalid integer at offset {offset}")
            }
            DecodeError::InvalidLength { offset } => {
                write!(f, "bencode: invalid string length at offset {offset}")
            }
            DecodeError::KeyNotString { offset } => {
                write!(
                    f,
                    "bencode: dictionary key is not a string at offset {offset}"
                )
            }
            DecodeError::UnsortedKey { offset } => {
                write!(f, "bencode: dictionary key out of order at offset {offset}")
            }
            DecodeError::DuplicateKey { offset } => {
                write!(f, "bencode: duplicate dictionary key at offset {offset}")
            }
            DecodeError::TooDeep { offset } => write!(
                f,
                "bencode: nesting deeper than {MAX_DEPTH} at offset {offset}"
            ),
            DecodeError::TrailingBytes { offset } => {
                write!(f, "bencode: trailing bytes at offset {offset}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one bencoded value that spans all of `input` (BEP 3), strictly: no trailing
/// bytes, no leading zeros in integers or lengths, no `-0`, dictionary keys are byte strings in
/// strictly ascending raw-byte order (so duplicates are rejected), nesting at most
/// [`MAX_DEPTH`]. Errors: [`DecodeError`]. Allocates; meant for tests and tools.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut pos = 0;
    let value = decode_value(input, &mut pos, 1)?;
    if pos != input.len() {
        return Err(DecodeError::TrailingBytes { offset: pos });
    }
    Ok(value)
}

fn decode_value<'a>(
    input: &'a [u8],
    pos: &mut usize,
    depth: usize,
) -> Result<Value<'a>, DecodeError> {
    let start = *pos;
    let &first = input.get(start).ok_or(DecodeError::UnexpectedEnd)?;
    match first {
        b'i' => {
            *pos += 1;
            decode_int(input, pos).map(Value::Int)
        }
        b'0'..=b'9' => decode_bytes(input, pos).map(Value::Bytes),
        b'l' | b'd' => {
            if depth > MAX_DEPTH {
                return Err(DecodeError::TooDeep { offset: start });
            }
            *pos += 1;
            if first == b'l' {
                let mut items = Vec::new();
                loop {
                    match input.get(*pos) {
                        None => return Err(DecodeError::UnexpectedEnd),
                        Some(b'e') => {
                            *pos += 1;
                            return Ok(Value::List(items));
                        }
                        Some(_) => items.push(decode_value(input, pos, depth + 1)?),
                    }
                }
            } else {
                let mut pairs: Vec<(&'a [u8], Value<'a>)> = Vec::new();
                loop {
                    let key_at = *pos;
                    match input.get(key_at) {
                        None => return Err(DecodeError::UnexpectedEnd),
                        Some(b'e') => {
                            *pos += 1;
                            return Ok(Value::Dict(pairs));
                        }
                        Some(b'0'..=b'9') => {}
                        Some(_) => return Err(DecodeError::KeyNotString { offset: key_at }),
                    }
                    let key = decode_bytes(input, pos)?;
                    if let Some((prev, _)) = pairs.last() {
                        match (*prev).cmp(key) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => {
                                return Err(DecodeError::DuplicateKey { offset: key_at });
                            }
                            std::cmp::Ordering::Greater => {
                                return Err(DecodeError::UnsortedKey { offset: key_at });
                            }
                        }
                    }
                    let value = decode_value(input, pos, depth + 1)?;
                    pairs.push((key, value));
                }
            }
        }
        _ => Err(DecodeError::UnexpectedByte { offset: start }),
    }
}

/// Parses the body of `i...e` starting just after the `i`.
fn decode_int(input: &[u8], pos: &mut usize) -> Result<i64, DecodeError> {
    let start = *pos;
    let bad = DecodeError::InvalidInt { offset: start };
    let mut i = start;
    let negative = input.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let digits_start = i;
    // Accumulate towards the sign so i64::MIN is representable.
    let mut n: i64 = 0;
    loop {
        match input.get(i) {
            None => return Err(DecodeError::UnexpectedEnd),
            Some(&d @ b'0'..=b'9') => {
                let d = i64::from(d - b'0');
                n = n.checked_mul(10).ok_or(bad)?;
                n = if negative {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
                .ok_or(bad)?;
                i += 1;
            }
            Some(b'e') => break,
            Some(_) => return Err(bad),
        }
    }
    let digits = &input[digits_start..i];
    let leading_zero = digits.len() > 1 && digits[0] == b'0';
    let minus_zero = negative && digits == b"0";
    if digits.is_empty() || leading_zero || minus_zero {
        return Err(bad);
    }
    *pos = i + 1;
    Ok(n)
}

/// Parses `<len>:<bytes>` starting at the first digit.
fn decode_bytes<'a>(input: &'a [u8], pos: &mut usize) -> Result<&'a [u8], DecodeError> {
    let start = *pos;
    let bad = DecodeError::InvalidLength { offset: start };
    let mut i = start;
    let mut len: usize = 0;
    loop {
        match input.get(i) {
            None => return Err(DecodeError::UnexpectedEnd),
            Some(&d @ b'0'..=b'9') => {
                len = len
                    .checked_mul(10)
                    .and_then(|l| l.checked_add(usize::from(d - b'0')))
                    .ok_or(bad)?;
                i += 1;
            }
            Some(b':') => break,
            Some(_) => return Err(bad),
        }
    }
    let digits = &input[start..i];
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return Err(bad);
    }
    let data_start = i + 1;
    if input.len() - data_start < len {
        return Err(DecodeError::UnexpectedEnd);
    }
    *pos = data_start + len;
    Ok(&input[data_start..data_start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn put_int_formats() {
        assert_eq!(written(|o| put_int(o, 0)), b"i0e");
        assert_eq!(written(|o| put_int(o, 7)), b"i7e");
        assert_eq!(written(|o| put_int(o, 1946)), b"i1946e");
        assert_eq!(written(|o| put_int(o, -1)), b"i-1e");
        assert_eq!(written(|o| put_int(o, i64::MAX)), b"i9223372036854775807e");
        assert_eq!(written(|o| put_int(o, i64::MIN)), b"i-9223372036854775808e");
        assert_eq!(
            written(|o| put_uint(o, u64::MAX)),
            b"i18446744073709551615e"
        );
        assert_eq!(written(|o| put_uint(o, 10)), b"i10e");
    }

    #[test]
    fn put_bytes_formats() {
        assert_eq!(written(|o| put_bytes(o, b"")), b"0:");
        assert_eq!(written(|o| put_str(o, "spam")), b"4:spam");
        assert_eq!(
            written(|o| put_bytes(o, &[0x7f, 0, 0, 1, 0xc8, 0xd5])),
            b"6:\x7f\x00\x00\x01\xc8\xd5"
        );
        // Length counts bytes, not chars.
        assert_eq!(written(|o| put_str(o, "é")), b"2:\xc3\xa9");
    }

    #[test]
    fn failure_body_matches_opentracker_shape() {
        let out = written(|o| {
            failure(
                o,
                "Requested download is not authorized for use with this tracker.",
            )
        });
        assert_eq!(
            out,
            &b"d14:failure reason63:Requested download is not authorized for use with this tracker.e"[..]
        );
        let v = decode(&out).unwrap();
        assert_eq!(
            v.get(b"failure reason").and_then(Value::as_bytes),
            Some(&b"Requested download is not authorized for use with this tracker."[..])
        );
    }

    #[test]
    fn announce_response_roundtrip() {
        // The shape opentracker answers with (reference §18.3), written with our primitives.
        let out = written(|o| {
            begin_dict(o);
            put_str(o, "complete");
            put_int(o, 1);
            put_str(o, "downloaded");
            put_int(o, 0);
            put_str(o, "incomplete");
            put_int(o, 1);
            put_str(o, "interval");
            put_int(o, 1757);
            put_str(o, "min interval");
            put_int(o, 878);
            put_str(o, "peers");
            put_bytes(o, b"\x7f\x00\x00\x01\xc8\xd5\x7f\x00\x00\x01\x1a\xe1");
            end(o);
        });
        let expected: &[u8] = b"d8:completei1e10:downloadedi0e10:incompletei1e8:intervali1757e12:min intervali878e5:peers12:\x7f\x00\x00\x01\xc8\xd5\x7f\x00\x00\x01\x1a\xe1e";
        assert_eq!(out, expected);
        let v = decode(&out).unwrap();
        assert_eq!(v.get(b"interval").and_then(Value::as_int), Some(1757));
        assert_eq!(v.get(b"min interval").and_then(Value::as_int), Some(878));
        assert_eq!(
            v.get(b"peers").and_then(Value::as_bytes).map(<[u8]>::len),
            Some(12)
        );
        assert_eq!(v.get(b"missing"), None);
        assert_eq!(v.as_dict().map(<[_]>::len), Some(6));
    }

    #[test]
    fn decode_values() {
        assert_eq!(decode(b"i0e"), Ok(Value::Int(0)));
        assert_eq!(decode(b"i-42e"), Ok(Value::Int(-42)));
        assert_eq!(decode(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
        assert_eq!(decode(b"0:"), Ok(Value::Bytes(b"")));
        assert_eq!(decode(b"3:a:b"), Ok(Value::Bytes(b"a:b")));
        assert_eq!(
            decode(b"l4:spami3ee"),
            Ok(Value::List(vec![Value::Bytes(b"spam"), Value::Int(3)]))
        );
        let v = decode(b"d3:bar4:spam3:fooi42ee").unwrap();
        assert_eq!(v.get(b"bar").and_then(Value::as_bytes), Some(&b"spam"[..]));
        assert_eq!(v.get(b"foo").and_then(Value::as_int), Some(42));
        assert_eq!(decode(b"de"), Ok(Value::Dict(vec![])));
        assert_eq!(decode(b"le").unwrap().as_list(), Some(&[][..]));
        assert_eq!(Value::Int(1).as_bytes(), None);
        assert_eq!(Value::Bytes(b"x").as_int(), None);
        assert_eq!(Value::Int(1).get(b"x"), None);
    }

    #[test]
    fn decode_rejects_non_canonical() {
        use DecodeError::*;
        assert_eq!(decode(b""), Err(UnexpectedEnd));
        assert_eq!(decode(b"i03e"), Err(InvalidInt { offset: 1 }));
        assert_eq!(decode(b"i-0e"), Err(InvalidInt { offset: 1 }));
        assert_eq!(decode(b"i-03e"), Err(InvalidInt { offset: 1 }));
        assert_eq!(decode(b"ie"), Err(InvalidInt { offset: 1 }));
        assert_eq!(decode(b"i-e"), Err(InvalidInt { offset: 1 }));
        assert_eq!(decode(b"i1x2e"), Err(InvalidInt { offset: 1 }));
        assert_eq!(
            decode(b"i9223372036854775808e"),
            Err(InvalidInt { offset: 1 })
        );
        assert_eq!(decode(b"i12"), Err(UnexpectedEnd));
        assert_eq!(decode(b"03:abc"), Err(InvalidLength { offset: 0 }));
        assert_eq!(decode(b"5:abc"), Err(UnexpectedEnd));
        assert_eq!(decode(b"3"), Err(UnexpectedEnd));
        assert_eq!(decode(b"3x"), Err(InvalidLength { offset: 0 }));
        assert_eq!(
            decode(b"99999999999999999999999:"),
            Err(InvalidLength { offset: 0 })
        );
        assert_eq!(decode(b"i1ei2e"), Err(TrailingBytes { offset: 3 }));
        assert_eq!(decode(b"x"), Err(UnexpectedByte { offset: 0 }));
        assert_eq!(decode(b"e"), Err(UnexpectedByte { offset: 0 }));
        assert_eq!(decode(b"l"), Err(UnexpectedEnd));
        assert_eq!(decode(b"d3:fooi1e"), Err(UnexpectedEnd));
        assert_eq!(decode(b"d3:foo"), Err(UnexpectedEnd));
        assert_eq!(decode(b"di1ei2ee"), Err(KeyNotString { offset: 1 }));
        assert_eq!(
            decode(b"d3:fooi1e3:bari2ee"),
            Err(UnsortedKey { offset: 9 })
        );
        assert_eq!(
            decode(b"d3:fooi1e3:fooi2ee"),
            Err(DuplicateKey { offset: 9 })
        );
        // A prefix sorts before the longer key: "a" < "ab" is fine, the reverse is not.
        assert!(decode(b"d1:ai1e2:abi2ee").is_ok());
        assert_eq!(decode(b"d2:abi2e1:ai1ee"), Err(UnsortedKey { offset: 8 }));
    }

    #[test]
    fn decode_depth_limit() {
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(decode(&ok).is_ok());
        let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(
            decode(&deep),
            Err(DecodeError::TooDeep { offset: MAX_DEPTH })
        );
        // Far deeper than any stack would survive unbounded: still a clean error.
        let hostile = vec![b'l'; 1_000_000];
        assert!(matches!(decode(&hostile), Err(DecodeError::TooDeep { .. })));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// A writer-side model of a value: what our primitives can emit.
        #[derive(Clone, Debug)]
        enum Model {
            Int(i64),
            Bytes(Vec<u8>),
            List(Vec<Model>),
            Dict(std::collections::BTreeMap<Vec<u8>, Model>),
        }

        fn model() -> impl Strategy<Value = Model> {
            let leaf = prop_oneof![
                any::<i64>().prop_map(Model::Int),
                proptest::collection::vec(any::<u8>(), 0..24).prop_map(Model::Bytes),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Model::List),
                    proptest::collection::btree_map(
                        proptest::collection::vec(any::<u8>(), 0..8),
                        inner,
                        0..6
                    )
                    .prop_map(Model::Dict),
                ]
            })
        }

        fn emit(m: &Model, out: &mut Vec<u8>) {
            match m {
                Model::Int(n) => put_int(out, *n),
                Model::Bytes(b) => put_bytes(out, b),
                Model::List(items) => {
                    begin_list(out);
                    items.iter().for_each(|i| emit(i, out));
                    end(out);
                }
                Model::Dict(map) => {
                    begin_dict(out);
                    for (k, v) in map {
                        put_bytes(out, k);
                        emit(v, out);
                    }
                    end(out);
                }
            }
        }

        fn same(m: &Model, v: &Value<'_>) -> bool {
            match (m, v) {
                (Model::Int(a), Value::Int(b)) => a == b,
                (Model::Bytes(a), Value::Bytes(b)) => a[..] == b[..],
                (Model::List(a), Value::List(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
                }
                (Model::Dict(a), Value::Dict(b)) => {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|((ka, va), (kb, vb))| ka[..] == kb[..] && same(va, vb))
                }
                _ => false,
            }
        }

        proptest! {
            #[test]
            fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = decode(&bytes);
            }

            #[test]
            fn decode_never_panics_on_bencode_alphabet(
                bytes in proptest::collection::vec(
                    prop_oneof![Just(b'i'), Just(b'l'), Just(b'd'), Just(b'e'), Just(b':'),
                                Just(b'-'), Just(b'0'), Just(b'1'), Just(b'9')], 0..128)
            ) {
                let _ = decode(&bytes);
            }

            #[test]
            fn writer_output_decodes_to_the_same_value(m in model()) {
                let mut out = Vec::new();
                emit(&m, &mut out);
                let v = decode(&out).expect("our writer must emit canonical bencode");
                prop_assert!(same(&m, &v));
            }

            #[test]
            fn failure_always_decodes(reason in ".{0,80}") {
                let mut out = Vec::new();
                failure(&mut out, &reason);
                let v = decode(&out).unwrap();
                prop_assert_eq!(
                    v.get(b"failure reason").and_then(Value::as_bytes),
                    Some(reason.as_bytes())
                );
            }
        }
    }
}
