//! BEP 41 announce options: the bytes after byte 98 of a UDP announce request, chiefly
//! URLData (the path and query of the announce URL).

use super::Error;

/// BEP 41 option type `0x0`: EndOfOptions, one byte; option parsing stops here.
pub const OPTION_END: u8 = 0x0;
/// BEP 41 option type `0x1`: NOP, one byte (padding).
pub const OPTION_NOP: u8 = 0x1;
/// BEP 41 option type `0x2`: URLData, then a length byte and that many bytes of the tracker
/// URL's path and query; several URLData options are concatenated in order.
pub const OPTION_URL_DATA: u8 = 0x2;

/// One BEP 41 option of an announce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceOption<'a> {
    /// Type 0x1, padding.
    Nop,
    /// Type 0x2: a chunk of the announce URL's path and query (at most 255 bytes).
    UrlData(&'a [u8]),
    /// Any other type except 0x0, skipped by its length byte as BEP 41 allows for future
    /// options: `(type, data)`.
    Unknown(u8, &'a [u8]),
}

/// The BEP 41 options of an announce request: the bytes after byte 98, known to be well
/// formed (every length byte and its data present before the end or an EndOfOptions).
///
/// Bytes after an EndOfOptions (0x0) are ignored but kept, so emit after parse is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnnounceOptions<'a> {
    raw: &'a [u8],
}

impl<'a> AnnounceOptions<'a> {
    /// No options.
    pub const EMPTY: AnnounceOptions<'static> = AnnounceOptions { raw: &[] };

    /// Validates raw option bytes (BEP 41): 0x0 ends the options, 0x1 is one byte, every
    /// other type is followed by a length byte and that many data bytes.
    ///
    /// Errors: [`Error::BadOption`] if a length byte or data runs past the end.
    pub fn parse(raw: &'a [u8]) -> Result<AnnounceOptions<'a>, Error> {
        let mut iter = OptionIter { rest: raw };
        while let Some(option) = iter.next_option() {
            option?;
        }
        Ok(AnnounceOptions { raw })
    }

    /// The raw bytes, as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// True when there are no option bytes at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The options in order, up to the first EndOfOptions.
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter { rest: self.raw }
    }

    /// The URLData chunks in order; concatenated they are the path and query of the announce
    /// URL (e.g. `/announce?key=abc`, BEP 41). Not copied.
    pub fn url_data(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter_map(|option| match option {
            AnnounceOption::UrlData(chunk) => Some(chunk),
            _ => None,
        })
    }

    /// Copies the URL data (the URLData chunks, concatenated in order) into `out` and returns
    /// the bytes written; data past `out.len()` is cut off. For reading the announce URL's path
    /// (e.g. a private tracker's `/announce/KEY`) without allocating.
    pub fn copy_url_data(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for chunk in self.url_data() {
            let take = chunk.len().min(out.len() - n);
            out[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            if n == out.len() {
                break;
            }
        }
        n
    }

    /// Total length in bytes of the URL data (sum of the URLData chunks).
    pub fn url_data_len(&self) -> usize {
        self.url_data().map(<[u8]>::len).sum()
    }

    /// Appends `url` (path and query) as URLData options of at most 255 bytes each, for a
    /// client building a request; returns the number of bytes appended. No EndOfOptions is
    /// added (the end of the datagram ends the options).
    pub fn emit_url_data(url: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        for chunk in url.chunks(u8::MAX as usize) {
            out.push(OPTION_URL_DATA);
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
        out.len() - start
    }
}

impl<'a> IntoIterator for AnnounceOptions<'a> {
    type Item = AnnounceOption<'a>;
    type IntoIter = OptionIter<'a>;
    fn into_iter(self) -> OptionIter<'a> {
        self.iter()
    }
}

/// Iterator over the BEP 41 options of an [`AnnounceOptions`]; ends at EndOfOptions or at the
/// end of the bytes. Yields nothing past a malformed option (which a parsed
/// [`AnnounceOptions`] cannot hold).
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    fn next_option(&mut self) -> Option<Result<AnnounceOption<'a>, Error>> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            OPTION_END => {
                self.rest = &[];
                None
            }
            OPTION_NOP => {
                self.rest = after_kind;
                Some(Ok(AnnounceOption::Nop))
            }
            _ => {
                let Some((&len, after_len)) = after_kind.split_first() else {
                    self.rest = &[];
                    return Some(Err(Error::BadOption));
                };
                let Some(data) = after_len.get(..len as usize) else {
                    self.rest = &[];
                    return Some(Err(Error::BadOption));
                };
                self.rest = after_len.get(len as usize..).unwrap_or(&[]);
                Some(Ok(if kind == OPTION_URL_DATA {
                    AnnounceOption::UrlData(data)
                } else {
                    AnnounceOption::Unknown(kind, data)
                }))
            }
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = AnnounceOption<'a>;
    fn next(&mut self) -> Option<AnnounceOption<'a>> {
        self.next_option()?.ok()
    }
}
