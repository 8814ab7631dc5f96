//! gRPC on the wire (research §3.5, trap 20; the gRPC HTTP/2 protocol
//! spec): a request body is length-prefixed messages (1 byte compressed
//! flag, 4 bytes big-endian length, the message), a compressed message is
//! in the request's `grpc-encoding`; an error is an HTTP `200` whose
//! `grpc-status` and percent-encoded `grpc-message` say what failed.
//!
//! HTTP/2 DATA frames do not matter here: the proxy reads the body whole,
//! so a message split across frames (or several frames' worth in one) is
//! read as the bytes it is.

use std::io::Read;

use base64::Engine;
use prost::Message;

use crate::adapters::{Refusal, Shaped, ShapedBody};

/// The largest message leash decompresses (4 MiB, gRPC's default receive
/// limit, which the Google Ads libraries raise only for answers); a larger
/// one is unreadable, never read in part.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Why a gRPC body could not be read as one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the gRPC body is empty: a unary call carries one message")]
    Empty,
    #[error("the gRPC body ends inside a message prefix or message")]
    Truncated,
    #[error("the gRPC body carries more than one message; a unary call carries one")]
    Several,
    #[error("the gRPC message has compressed-flag {0}, neither 0 nor 1")]
    BadFlag(u8),
    #[error("the gRPC message is compressed but the request names no grpc-encoding leash reads (gzip, deflate): {0}")]
    Encoding(String),
    #[error("the gRPC message could not be decompressed ({0})")]
    Corrupt(String),
    #[error("the gRPC message is larger than {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// The one message of a unary call's body, decompressed with `encoding`
/// (the request's `grpc-encoding`) when its flag says so.
pub fn one_message(body: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    let head = body.get(..5).ok_or(FrameError::Truncated)?;
    let flag = head.first().copied().unwrap_or(0);
    let mut len = [0u8; 4];
    len.copy_from_slice(head.get(1..5).ok_or(FrameError::Truncated)?);
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| FrameError::TooLarge)?;
    let end = len.checked_add(5).ok_or(FrameError::TooLarge)?;
    let message = body.get(5..end).ok_or(FrameError::Truncated)?;
    if body.len() > end {
        return Err(FrameError::Several);
    }
    match flag {
        0 => Ok(message.to_vec()),
        1 => decompress(message, encoding),
        other => Err(FrameError::BadFlag(other)),
    }
}

fn decompress(message: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, FrameError> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let limit = (MAX_MESSAGE as u64) + 1;
    let read = match encoding.as_deref() {
        Some("gzip") => flate2::read::GzDecoder::new(message)
            .take(limit)
            .read_to_end(&mut out),
        // gRPC's "deflate" is zlib (RFC 1950), as in HTTP.
        Some("deflate") => flate2::read::ZlibDecoder::new(message)
            .take(limit)
            .read_to_end(&mut out),
        other => {
            return Err(FrameError::Encoding(
                other.unwrap_or("none").chars().take(40).collect(),
            ))
        }
    };
    read.map_err(|e| FrameError::Corrupt(e.to_string()))?;
    if out.len() > MAX_MESSAGE {
        return Err(FrameError::TooLarge);
    }
    Ok(out)
}

/// `message` framed as a gRPC body: uncompressed (flag 0), or gzip (flag
/// 1, to go with `grpc-encoding: gzip`).
pub fn frame(message: &[u8], gzip: bool) -> Vec<u8> {
    let payload = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = std::io::Write::write_all(&mut encoder, message);
        encoder.finish().unwrap_or_default()
    } else {
        message.to_vec()
    };
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(u8::from(gzip));
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&payload);
    out
}

/// gRPC status codes leash answers with (grpc/doc/statuscodes.md).
pub mod code {
    pub const INVALID_ARGUMENT: u8 = 3;
    pub const PERMISSION_DENIED: u8 = 7;
    pub const RESOURCE_EXHAUSTED: u8 = 8;
    pub const ABORTED: u8 = 10;
    pub const INTERNAL: u8 = 13;
}

/// The gRPC status for leash's HTTP status: the canonical mapping, except
/// that leash's own 5xx are `INTERNAL`, never `UNAVAILABLE`, which the
/// Java and .NET libraries retry (research §0.2: a refusal must not be
/// retried).
pub fn status_for(http: http::StatusCode) -> u8 {
    match http.as_u16() {
        400 | 413 => code::INVALID_ARGUMENT,
        403 => code::PERMISSION_DENIED,
        409 => code::ABORTED,
        429 => code::RESOURCE_EXHAUSTED,
        _ if http.is_server_error() => code::INTERNAL,
        _ => code::PERMISSION_DENIED,
    }
}

/// The API versions whose failure trailer leash sends: a client reads
/// only `google.ads.googleads.<its version>.errors.googleadsfailure-bin`
/// (google-ads-python `interceptor.py`), and a refusal may be made before
/// (or without) a request path that names the version. google-ads-python
/// 31.x speaks v21–v25; v26 is there for the next release.
const FAILURE_TRAILERS: &[&str] = &[
    "google.ads.googleads.v21.errors.googleadsfailure-bin",
    "google.ads.googleads.v22.errors.googleadsfailure-bin",
    "google.ads.googleads.v23.errors.googleadsfailure-bin",
    "google.ads.googleads.v24.errors.googleadsfailure-bin",
    "google.ads.googleads.v25.errors.googleadsfailure-bin",
    "google.ads.googleads.v26.errors.googleadsfailure-bin",
];

/// `GoogleAdsFailure`: 1 errors, 2 request_id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GoogleAdsFailure {
    #[prost(message, repeated, tag = "1")]
    pub errors: Vec<GoogleAdsError>,
    #[prost(string, tag = "2")]
    pub request_id: String,
}

/// `GoogleAdsError`: 1 error_code, 2 message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GoogleAdsError {
    #[prost(message, optional, tag = "1")]
    pub error_code: Option<ErrorCode>,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `ErrorCode`, a oneof of which leash sets 9 `authorization_error`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorCode {
    #[prost(int32, optional, tag = "9")]
    pub authorization_error: Option<i32>,
}

/// `AuthorizationErrorEnum.ACTION_NOT_PERMITTED`.
pub const ACTION_NOT_PERMITTED: i32 = 7;

/// `google.rpc.Status`: 1 code, 2 message, 3 details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`: 1 type_url, 2 value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// The `request-id` leash's answers carry: the libraries need one to raise
/// `GoogleAdsException`, and it must not pass for one of Google's.
pub fn request_id(refusal: &Refusal<'_>) -> String {
    format!("leash-{}", refusal.code)
}

/// What a Google Ads error says for a refusal: leash's code, then its
/// reason.
pub fn error_message(refusal: &Refusal<'_>) -> String {
    format!("{}: {}", refusal.code, refusal.message)
}

/// A refusal as a gRPC trailers-only answer: HTTP `200`,
/// `content-type: application/grpc`, no body; `grpc-status`,
/// percent-encoded `grpc-message`, a `google.rpc.Status` in
/// `grpc-status-details-bin`, and the `GoogleAdsFailure`
/// (`authorization_error: ACTION_NOT_PERMITTED`) and `request-id` the
/// libraries need to raise `GoogleAdsException` rather than a transport
/// error. hyper sends a header block with an empty body as one HEADERS
/// frame with END_STREAM: exactly the trailers-only form.
pub fn shape(refusal: &Refusal<'_>) -> Shaped {
    let status = status_for(refusal.status);
    let message = error_message(refusal);
    let failure = GoogleAdsFailure {
        errors: vec![GoogleAdsError {
            error_code: Some(ErrorCode {
                authorization_error: Some(ACTION_NOT_PERMITTED),
            }),
            message: message.clone(),
        }],
        request_id: request_id(refusal),
    }
    .encode_to_vec();
    let details = RpcStatus {
        code: i32::from(status),
        message: message.clone(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure"
                .to_owned(),
            value: failure.clone(),
        }],
    }
    .encode_to_vec();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
    let mut shaped = Shaped {
        status: Some(http::StatusCode::OK),
        body: ShapedBody::Raw {
            content_type: "application/grpc",
            bytes: Vec::new(),
        },
        headers: Vec::new(),
    }
    .with_header("grpc-status", status.to_string())
    .with_header("grpc-message", percent_encode(&message))
    .with_header("grpc-status-details-bin", b64(&details))
    .with_header("request-id", request_id(refusal));
    for name in FAILURE_TRAILERS {
        shaped = shaped.with_header(name, b64(&failure));
    }
    shaped
}

/// `grpc-message` encoding: UTF-8, then every byte outside printable ASCII
/// (0x20–0x7E) and `%` itself as `%XX` (gRPC HTTP/2 spec).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`percent_encode`], as a gRPC client decodes
/// `grpc-message` (a malformed escape is kept as written).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(value)) => {
                out.push(value);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_plain_message_is_read() {
        let body = frame(b"\x0a\x011", false);
        assert_eq!(body, b"\x00\x00\x00\x00\x03\x0a\x011");
        assert_eq!(one_message(&body, None).unwrap(), b"\x0a\x011");
        // The flag says plain: grpc-encoding does not matter.
        assert_eq!(one_message(&body, Some("gzip")).unwrap(), b"\x0a\x011");
    }

    #[test]
    fn compressed_messages_are_read_in_their_encoding() {
        let message = b"\x0a\x0a1234567890".repeat(20);
        let body = frame(&message, true);
        assert_eq!(body.first(), Some(&1));
        assert_eq!(one_message(&body, Some("gzip")).unwrap(), message);
        assert_eq!(one_message(&body, Some(" GZIP ")).unwrap(), message);
        // A gzip stream is not zlib, nor a message in no encoding.
        assert!(matches!(
            one_message(&body, Some("deflate")),
            Err(FrameError::Corrupt(_))
        ));
        assert!(matches!(
            one_message(&body, None),
            Err(FrameError::Encoding(_))
        ));
        assert!(matches!(
            one_message(&body, Some("identity")),
            Err(FrameError::Encoding(_))
        ));
        assert!(matches!(
            one_message(&body, Some("snappy")),
            Err(FrameError::Encoding(_))
        ));
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut zlib, &message).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut body = vec![1];
        body.extend_from_slice(&(zlib.len() as u32).to_be_bytes());
        body.extend_from_slice(&zlib);
        assert_eq!(one_message(&body, Some("deflate")).unwrap(), message);
    }

    #[test]
    fn bodies_that_are_not_one_message_are_refused() {
        assert_eq!(one_message(b"", None), Err(FrameError::Empty));
        assert_eq!(
            one_message(b"\x00\x00\x00", None),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            one_message(b"\x00\x00\x00\x00\x05abc", None),
            Err(FrameError::Truncated)
        );
        let mut two = frame(b"ab", false);
        two.extend(frame(b"cd", false));
        assert_eq!(one_message(&two, None), Err(FrameError::Several));
        assert_eq!(
            one_message(b"\x02\x00\x00\x00\x00", None),
            Err(FrameError::BadFlag(2))
        );
        assert_eq!(
            one_message(b"\x00\xff\xff\xff\xff", None),
            Err(FrameError::Truncated)
        );
    }

    #[test]
    fn a_compression_bomb_is_too_large_not_read_in_part() {
        let big = vec![0u8; MAX_MESSAGE + 1];
        let body = frame(&big, true);
        assert!(body.len() < 64 * 1024);
        assert_eq!(one_message(&body, Some("gzip")), Err(FrameError::TooLarge));
        let exact = vec![0u8; MAX_MESSAGE];
        assert_eq!(
            one_message(&frame(&exact, true), Some("gzip"))
                .unwrap()
                .len(),
            MAX_MESSAGE
        );
    }

    #[test]
    fn the_refusal_is_a_trailers_only_permission_denied() {
        let refusal = Refusal {
            status: http::StatusCode::FORBIDDEN,
            code: "leash_rejected",
            message: "over the daily cap: 120% of €5,000",
        };
        let shaped = shape(&refusal);
        assert_eq!(shaped.status, Some(http::StatusCode::OK));
        assert_eq!(
            shaped.body,
            ShapedBody::Raw {
                content_type: "application/grpc",
                bytes: Vec::new()
            }
        );
        let header = |name: &str| {
            shaped
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("grpc-status"), "7");
        assert_eq!(
            header("grpc-message"),
            "leash_rejected: over the daily cap: 120%25 of %E2%82%AC5,000"
        );
        assert_eq!(
            percent_decode(&header("grpc-message")),
            "leash_rejected: over the daily cap: 120% of €5,000"
        );
        assert_eq!(header("request-id"), "leash-leash_rejected");
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let failure = GoogleAdsFailure::decode(
            b64.decode(header(
                "google.ads.googleads.v25.errors.googleadsfailure-bin",
            ))
            .unwrap()
            .as_slice(),
        )
        .unwrap();
        assert_eq!(failure.request_id, "leash-leash_rejected");
        let error = &failure.errors[0];
        assert_eq!(
            error.error_code.as_ref().unwrap().authorization_error,
            Some(ACTION_NOT_PERMITTED)
        );
        assert!(error.message.contains("over the daily cap"));
        let status = RpcStatus::decode(
            b64.decode(header("grpc-status-details-bin"))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        assert_eq!(status.code, 7);
        assert!(status.details[0].type_url.ends_with("GoogleAdsFailure"));
        assert_eq!(
            GoogleAdsFailure::decode(status.details[0].value.as_slice()).unwrap(),
            failure
        );
        // Every value is a valid header value (the renderer drops others).
        for (name, value) in &shaped.headers {
            assert!(http::HeaderValue::from_str(value).is_ok(), "{name}");
        }
    }

    #[test]
    fn statuses_map_to_codes_that_are_not_retried() {
        use http::StatusCode as S;
        assert_eq!(status_for(S::FORBIDDEN), code::PERMISSION_DENIED);
        assert_eq!(status_for(S::BAD_REQUEST), code::INVALID_ARGUMENT);
        assert_eq!(status_for(S::PAYLOAD_TOO_LARGE), code::INVALID_ARGUMENT);
        assert_eq!(status_for(S::CONFLICT), code::ABORTED);
        assert_eq!(status_for(S::TOO_MANY_REQUESTS), code::RESOURCE_EXHAUSTED);
        for s in [S::BAD_GATEWAY, S::SERVICE_UNAVAILABLE, S::GATEWAY_TIMEOUT] {
            assert_eq!(status_for(s), code::INTERNAL, "{s}");
        }
    }

    proptest! {
        #[test]
        fn framing_never_panics(body in prop::collection::vec(any::<u8>(), 0..64), gzip in any::<bool>()) {
            let _ = one_message(&body, gzip.then_some("gzip"));
        }

        #[test]
        fn framed_messages_round_trip(message in prop::collection::vec(any::<u8>(), 0..512), gzip in any::<bool>()) {
            let body = frame(&message, gzip);
            prop_assert_eq!(one_message(&body, Some("gzip")).unwrap(), message);
        }

        #[test]
        fn grpc_message_encoding_round_trips(text in ".*") {
            let encoded = percent_encode(&text);
            prop_assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(percent_decode(&encoded), text);
        }
    }
}
