//! BEP 41 options of announce requests.

use super::*;

#[test]
fn options_url_data_split_in_two_with_nop_and_end() {
    // NOP, URLData "/announce" (9 bytes), URLData "?key=abc" (8 bytes), EndOfOptions,
    // then garbage that must be ignored.
    let mut bytes = announce_bytes();
    bytes.extend_from_slice(&hex(
        "01 02 09 2f616e6e6f756e6365 02 08 3f6b65793d616263 00 ff ff",
    ));
    let Ok(Request::Announce(a)) = parse_request(&bytes) else {
        panic!("{:?}", parse_request(&bytes))
    };
    let options: Vec<_> = a.options.iter().collect();
    assert_eq!(
        options,
        vec![
            AnnounceOption::Nop,
            AnnounceOption::UrlData(b"/announce"),
            AnnounceOption::UrlData(b"?key=abc"),
        ]
    );
    let url: Vec<u8> = a.options.url_data().flatten().copied().collect();
    assert_eq!(url, b"/announce?key=abc");
    assert_eq!(a.options.url_data_len(), 17);
    // Emit keeps the bytes verbatim.
    assert_eq!(emitted(|o| a.emit(o)), bytes);
}

#[test]
fn options_end_of_options_only() {
    let mut bytes = announce_bytes();
    bytes.push(0x00);
    let Ok(Request::Announce(a)) = parse_request(&bytes) else {
        panic!()
    };
    assert_eq!(a.options.iter().count(), 0);
    assert_eq!(a.options.url_data_len(), 0);
    // Trailing zero padding is common and harmless.
    bytes.extend_from_slice(&[0; 4]);
    assert!(parse_request(&bytes).is_ok());
}

#[test]
fn options_unknown_type_skipped() {
    let mut bytes = announce_bytes();
    bytes.extend_from_slice(&hex("07 02 aabb 02 01 2f"));
    let Ok(Request::Announce(a)) = parse_request(&bytes) else {
        panic!()
    };
    let options: Vec<_> = a.options.iter().collect();
    assert_eq!(
        options,
        vec![
            AnnounceOption::Unknown(7, &[0xaa, 0xbb]),
            AnnounceOption::UrlData(b"/")
        ]
    );
}

#[test]
fn options_truncated() {
    let base = announce_bytes();
    // Type without a length byte.
    let mut bytes = base.clone();
    bytes.push(0x02);
    assert_eq!(parse_request(&bytes), Err(Error::BadOption));
    // Length past the end.
    let mut bytes = base.clone();
    bytes.extend_from_slice(&hex("02 09 2f616e6e6f756e63"));
    assert_eq!(parse_request(&bytes), Err(Error::BadOption));
    // A good option then a truncated one.
    let mut bytes = base.clone();
    bytes.extend_from_slice(&hex("01 02 01 2f 05 03 00"));
    assert_eq!(parse_request(&bytes), Err(Error::BadOption));
    // But the same truncation after EndOfOptions is ignored.
    let mut bytes = base;
    bytes.extend_from_slice(&hex("02 01 2f 00 02 09"));
    assert!(parse_request(&bytes).is_ok());
}

#[test]
fn options_emit_url_data_chunks() {
    let mut out = Vec::new();
    assert_eq!(
        AnnounceOptions::emit_url_data(b"/announce?key=abc", &mut out),
        19
    );
    assert_eq!(out, hex("02 11 2f616e6e6f756e63653f6b65793d616263"));

    let long = [b'a'; 300];
    let mut out = Vec::new();
    assert_eq!(AnnounceOptions::emit_url_data(&long, &mut out), 304);
    assert_eq!((out[0], out[1], out[257], out[258]), (2, 255, 2, 45));
    let options = AnnounceOptions::parse(&out).unwrap();
    assert_eq!(options.url_data().count(), 2);
    assert_eq!(options.url_data_len(), 300);
}

#[test]
fn options_url_data_zero_length() {
    let options = AnnounceOptions::parse(&[0x02, 0x00]).unwrap();
    assert_eq!(
        options.iter().collect::<Vec<_>>(),
        vec![AnnounceOption::UrlData(b"")]
    );
}

#[test]
fn options_copy_url_data_concatenates_and_cuts() {
    let mut raw = Vec::new();
    let long: Vec<u8> = (0..300).map(|i| b'a' + (i % 26) as u8).collect();
    AnnounceOptions::emit_url_data(&long, &mut raw);
    let options = AnnounceOptions::parse(&raw).unwrap();
    let mut out = [0u8; 512];
    assert_eq!(options.copy_url_data(&mut out), 300);
    assert_eq!(&out[..300], &long[..]);
    let mut small = [0u8; 10];
    assert_eq!(options.copy_url_data(&mut small), 10);
    assert_eq!(&small, &long[..10]);
    assert_eq!(AnnounceOptions::EMPTY.copy_url_data(&mut out), 0);
}
