//! Decoding compressed request bodies so that leash can *read* them.
//!
//! leash forwards a request body exactly as the agent sent it (a body it
//! changed could break a signature, and SPEC §3 says bodies are forwarded as
//! sent). But to classify a gzip-compressed request it must see the fields
//! inside, so it decodes a private copy here.
//!
//! Two rules shape this module:
//!
//! - **Read what the upstream will read.** A gzip body of two concatenated
//!   members is one body to any zlib-based server, so all members are decoded
//!   (`MultiGzDecoder`), not just the first: otherwise an agent could hide
//!   `&amount=99999` in a second member. Bytes left over after a complete
//!   stream are an error, not silently ignored.
//! - **Never allocate what an attacker asks for.** A few kilobytes of deflate
//!   can expand to gigabytes. Output is read through a hard `max_decoded`
//!   limit and anything longer is an error (the zip-bomb guard).
//!
//! Anything leash cannot decode is an error; the caller treats the request as
//! unreadable, never as empty.

use std::borrow::Cow;
use std::io::Read;

use flate2::bufread::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// At most this many stacked codings (`gzip, gzip, ...`) are undone. Real
/// clients send one; a long stack is only useful to multiply decoding work.
pub const MAX_CODINGS: usize = 4;

/// Longest header text echoed in an error message.
const SNIPPET_LEN: usize = 40;

/// Why a body could not be decoded for reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A content coding leash does not decode (`br`, `zstd`, `compress`, or an
    /// unknown token). Refused rather than passed through as opaque bytes,
    /// because an opaque body cannot be classified.
    #[error("content-encoding {0:?} is not supported for reading (only gzip, x-gzip, deflate and identity are)")]
    UnsupportedEncoding(String),
    /// More stacked codings than [`MAX_CODINGS`].
    #[error("content-encoding stacks {0} codings; at most {MAX_CODINGS} are decoded")]
    TooManyCodings(usize),
    /// The compressed data is corrupt or truncated.
    #[error("{coding} body is corrupt: {detail}")]
    Corrupt {
        /// The coding being undone (`gzip`, `deflate`).
        coding: &'static str,
        /// What the decompressor reported.
        detail: String,
    },
    /// Bytes follow the end of a complete compressed stream. A server might
    /// ignore them or might not; leash does not guess.
    #[error("{coding} body has {trailing} bytes after the end of the compressed stream")]
    TrailingData {
        /// The coding being undone.
        coding: &'static str,
        /// How many bytes were left over.
        trailing: usize,
    },
    /// The decoded body is larger than the reading limit.
    #[error("decoded body exceeds the {limit}-byte limit")]
    TooLarge {
        /// The `max_decoded` limit that was exceeded.
        limit: usize,
    },
}

/// A content coding leash can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(SNIPPET_LEN).collect();
    if s.chars().nth(SNIPPET_LEN).is_some() {
        out.push('…');
    }
    out
}

/// Parses a `Content-Encoding` value into the codings to undo, in the order
/// they were applied. Tokens are case-insensitive (RFC 9110 §8.4.1), empty
/// list elements are skipped and `identity` is a no-op.
fn parse_codings(header: &str) -> Result<Vec<Coding>, BodyError> {
    let mut codings = Vec::new();
    for token in header.split(',') {
        let token = token.trim_matches(|c| c == ' ' || c == '\t');
        if token.is_empty() || token.eq_ignore_ascii_case("identity") {
            continue;
        }
        let coding = if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Coding::Gzip
        } else if token.eq_ignore_ascii_case("deflate") {
            Coding::Deflate
        } else {
            return Err(BodyError::UnsupportedEncoding(snippet(token)));
        };
        if codings.len() == MAX_CODINGS {
            let total = header.split(',').filter(|t| !t.trim().is_empty()).count();
            return Err(BodyError::TooManyCodings(total));
        }
        codings.push(coding);
    }
    Ok(codings)
}

/// Reads `decoder` to the end, refusing to produce more than `max` bytes.
fn read_bounded<R: Read>(
    mut decoder: R,
    coding: Coding,
    max: usize,
) -> Result<(Vec<u8>, R), BodyError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly max" from "more than max".
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let read = (&mut decoder)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt {
            coding: coding.name(),
            detail: e.to_string(),
        });
    read?;
    if out.len() > max {
        return Err(BodyError::TooLarge { limit: max });
    }
    Ok((out, decoder))
}

/// True when the first two bytes form a valid zlib header (RFC 1950 §2.2):
/// compression method 8 (deflate), window size at most 32 KiB, and the
/// header checksum `(CMF * 256 + FLG) % 31 == 0`.
fn looks_like_zlib(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && (cmf >> 4) <= 7
                && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Undoes one coding of `data`.
fn decode_one(coding: Coding, data: &[u8], max: usize) -> Result<Vec<u8>, BodyError> {
    let (out, rest) = match coding {
        Coding::Gzip => {
            let (out, dec) = read_bounded(MultiGzDecoder::new(data), coding, max)?;
            (out, dec.into_inner())
        }
        // HTTP "deflate" means the zlib format (RFC 9110 §8.4.1.2), but some
        // clients send a raw deflate stream. The zlib header decides which:
        // with a valid header the body is zlib (and a failure is an error, not
        // a reason to try the other reading); without one it is raw deflate.
        Coding::Deflate if looks_like_zlib(data) => {
            let (out, dec) = read_bounded(ZlibDecoder::new(data), coding, max)?;
            (out, dec.into_inner())
        }
        Coding::Deflate => {
            let (out, dec) = read_bounded(DeflateDecoder::new(data), coding, max)?;
            (out, dec.into_inner())
        }
    };
    if !rest.is_empty() {
        return Err(BodyError::TrailingData {
            coding: coding.name(),
            trailing: rest.len(),
        });
    }
    Ok(out)
}

/// Returns the body as the upstream will see it after undoing
/// `Content-Encoding`, without ever producing more than `max_decoded` bytes.
///
/// - no header, an empty header, or `identity`: `raw` itself, borrowed (no
///   copy, and no size check: the proxy already bounds raw bodies by
///   `limits.max_body`);
/// - `gzip` / `x-gzip` (all members), `deflate` (zlib, or raw deflate when
///   the zlib header is absent): decoded;
/// - stacked codings (`gzip, deflate`) are undone last-applied first, up to
///   [`MAX_CODINGS`], each step bounded by `max_decoded`;
/// - anything else (`br`, `zstd`, unknown): [`BodyError::UnsupportedEncoding`].
///
/// ```
/// use leash::body::{decode_for_reading, BodyError};
/// let plain = decode_for_reading(None, b"amount=100", 1024).unwrap();
/// assert_eq!(&*plain, b"amount=100");
/// assert!(matches!(
///     decode_for_reading(Some("br"), b"...", 1024),
///     Err(BodyError::UnsupportedEncoding(_))
/// ));
/// ```
pub fn decode_for_reading<'a>(
    content_encoding: Option<&str>,
    raw: &'a [u8],
    max_decoded: usize,
) -> Result<Cow<'a, [u8]>, BodyError> {
    let codings = match content_encoding {
        None => return Ok(Cow::Borrowed(raw)),
        Some(header) => parse_codings(header)?,
    };
    let mut body: Cow<'a, [u8]> = Cow::Borrowed(raw);
    for coding in codings.into_iter().rev() {
        body = Cow::Owned(decode_one(coding, &body, max_decoded)?);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use proptest::prelude::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const BODY: &[u8] = b"amount=1500&currency=jpy&metadata[order]=42";

    #[test]
    fn identity_is_borrowed() {
        for enc in [None, Some(""), Some("identity"), Some(" Identity , ")] {
            let out = decode_for_reading(enc, BODY, 10).unwrap();
            assert!(matches!(out, Cow::Borrowed(_)), "{enc:?}");
            assert_eq!(&*out, BODY);
        }
    }

    #[test]
    fn gzip_and_x_gzip() {
        let z = gzip(BODY);
        for enc in ["gzip", "x-gzip", "GZIP", " gzip "] {
            assert_eq!(&*decode_for_reading(Some(enc), &z, 1024).unwrap(), BODY);
        }
    }

    #[test]
    fn gzip_reads_every_member() {
        let mut z = gzip(b"amount=1&currency=usd");
        z.extend(gzip(b"&amount=99999"));
        let out = decode_for_reading(Some("gzip"), &z, 1024).unwrap();
        assert_eq!(&*out, b"amount=1&currency=usd&amount=99999");
    }

    #[test]
    fn gzip_trailing_garbage_is_an_error() {
        let mut z = gzip(BODY);
        z.extend(b"&amount=99999");
        assert!(decode_for_reading(Some("gzip"), &z, 1024).is_err());
    }

    #[test]
    fn deflate_zlib_and_raw() {
        assert_eq!(
            &*decode_for_reading(Some("deflate"), &zlib(BODY), 1024).unwrap(),
            BODY
        );
        assert_eq!(
            &*decode_for_reading(Some("deflate"), &raw_deflate(BODY), 1024).unwrap(),
            BODY
        );
    }

    #[test]
    fn deflate_trailing_data_is_an_error() {
        let mut z = zlib(BODY);
        z.extend(b"&amount=99999");
        assert_eq!(
            decode_for_reading(Some("deflate"), &z, 1024),
            Err(BodyError::TrailingData {
                coding: "deflate",
                trailing: 13
            })
        );
    }

    #[test]
    fn stacked_codings() {
        let z = gzip(&zlib(BODY));
        // Applied deflate first, then gzip: listed in that order.
        assert_eq!(
            &*decode_for_reading(Some("deflate, gzip"), &z, 1024).unwrap(),
            BODY
        );
        assert!(decode_for_reading(Some("gzip, deflate"), &z, 1024).is_err());
        let gg = gzip(&gzip(BODY));
        assert_eq!(
            &*decode_for_reading(Some("gzip, gzip"), &gg, 1024).unwrap(),
            BODY
        );
        assert_eq!(
            decode_for_reading(Some("gzip,gzip,gzip,gzip,gzip"), &gg, 1024),
            Err(BodyError::TooManyCodings(5))
        );
    }

    #[test]
    fn unsupported_codings() {
        for enc in ["br", "zstd", "compress", "gzip, br", "x-custom", "gzip;q=1"] {
            assert!(
                matches!(
                    decode_for_reading(Some(enc), BODY, 1024),
                    Err(BodyError::UnsupportedEncoding(_))
                ),
                "{enc}"
            );
        }
        let long = "y".repeat(5000);
        let msg = decode_for_reading(Some(&long), BODY, 1024)
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 200);
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bomb = gzip(&vec![b'a'; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            decode_for_reading(Some("gzip"), &bomb, 1024 * 1024),
            Err(BodyError::TooLarge { limit: 1024 * 1024 })
        );
        let zbomb = zlib(&vec![0u8; 4 * 1024 * 1024]);
        assert_eq!(
            decode_for_reading(Some("deflate"), &zbomb, 4096),
            Err(BodyError::TooLarge { limit: 4096 })
        );
    }

    #[test]
    fn exact_limit_is_allowed() {
        let z = gzip(&[b'x'; 100]);
        assert_eq!(
            decode_for_reading(Some("gzip"), &z, 100).unwrap().len(),
            100
        );
        assert!(decode_for_reading(Some("gzip"), &z, 99).is_err());
    }

    #[test]
    fn corrupt_and_empty() {
        assert!(matches!(
            decode_for_reading(Some("gzip"), b"not gzip", 1024),
            Err(BodyError::Corrupt { .. })
        ));
        let z = gzip(BODY);
        let truncated = &z[..z.len() - 5];
        assert!(decode_for_reading(Some("gzip"), truncated, 1024).is_err());
        assert!(decode_for_reading(Some("deflate"), &[0x78, 0x9c, 0xff], 1024).is_err());
        // An empty body under a coding is not a valid stream of that coding.
        let empty_gzip = decode_for_reading(Some("gzip"), b"", 1024);
        assert!(empty_gzip.is_err() || empty_gzip.unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(enc in prop::option::of("[a-zA-Z, -]{0,20}"), raw in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_for_reading(enc.as_deref(), &raw, 4096);
            let _ = decode_for_reading(Some("gzip"), &raw, 4096);
            let _ = decode_for_reading(Some("deflate"), &raw, 4096);
        }

        #[test]
        fn output_never_exceeds_limit(data in prop::collection::vec(any::<u8>(), 0..4096), max in 0usize..4096) {
            for (enc, z) in [("gzip", gzip(&data)), ("deflate", zlib(&data)), ("deflate", raw_deflate(&data))] {
                match decode_for_reading(Some(enc), &z, max) {
                    Ok(out) => { prop_assert!(out.len() <= max); prop_assert_eq!(&*out, &data[..]); }
                    Err(e) => prop_assert_eq!(e, BodyError::TooLarge { limit: max }),
                }
            }
        }
    }
}
