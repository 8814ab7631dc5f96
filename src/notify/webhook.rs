//! Signing hold events the [Standard Webhooks] way (SPEC §6).
//!
//! A webhook is an HTTP request from "somewhere on the internet"; the receiver
//! needs to know that leash sent it, that the body is the one leash signed,
//! and that it is not an old delivery replayed at a better moment. Standard
//! Webhooks answers all three with one HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, carried in three headers:
//!
//! ```text
//! webhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W
//! webhook-timestamp: 1674087231
//! webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=
//! ```
//!
//! Following a published standard rather than inventing a header means a
//! receiver can verify leash's events with an off-the-shelf library (the
//! reference ones exist for most languages) instead of trusting our prose.
//! [`verify`] is the same check in Rust, for tests and for receivers written
//! in Rust.
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::Mac;
use subtle::{Choice, ConstantTimeEq};

use super::{keyed, parse_unix_seconds, skew, tag, HmacSha256, Skew, TAG_LEN};

/// Header carrying the message id: the same for every retry of one event, so
/// receivers can use it as an idempotency key.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the attempt's Unix time in seconds (not the event's).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more space-separated `version,signature` pairs.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Prefix that marks a serialized symmetric secret, so that a secret pasted
/// into the wrong place is recognisable and its encoding is unambiguous.
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest key accepted, in bytes. The specification asks for "at least 24
/// bytes (192 bits)"; an HMAC key shorter than that is guessable offline from
/// a single captured delivery.
pub const MIN_SECRET_LEN: usize = 24;

/// The replay window the reference libraries use: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 5 * 60;

/// Signature scheme identifier for HMAC-SHA256 (`v1a` is ed25519, which leash
/// does not send; such entries are skipped, not failed, when verifying).
const VERSION: &str = "v1";

/// Why a secret was refused or a delivery did not verify.
///
/// The verification variants are deliberately coarse about signatures: a
/// receiver learns "no signature matched", never which byte differed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A `whsec_` secret whose remainder is not standard base64.
    #[error("webhook secret after `whsec_` is not valid base64")]
    SecretEncoding,
    /// The key is shorter than the specification's minimum.
    #[error("webhook secret is {len} bytes; at least {MIN_SECRET_LEN} are required")]
    SecretTooShort { len: usize },
    /// A required header was absent (from [`WebhookHeaders::from_http`]).
    #[error("missing `{0}` header")]
    MissingHeader(&'static str),
    /// A header was present but not visible ASCII.
    #[error("`{0}` header is not valid text")]
    InvalidHeader(&'static str),
    /// The message id was empty or contained a full stop. The id is the first
    /// field of the dot-separated signed string; a dot inside it would let
    /// one signed string be re-split into a different (id, timestamp, body).
    #[error("`webhook-id` must be non-empty and contain no `.`")]
    InvalidId,
    /// `webhook-timestamp` was not a plain integer of seconds.
    #[error("`webhook-timestamp` is not an integer Unix timestamp")]
    InvalidTimestamp,
    /// Signed longer ago than the tolerance allows: possibly a replay.
    #[error("webhook timestamp is too old")]
    TimestampTooOld,
    /// Signed further in the future than the tolerance allows.
    #[error("webhook timestamp is too far in the future")]
    TimestampTooNew,
    /// `webhook-signature` held no `v1,` entry at all.
    #[error("`webhook-signature` has no v1 signature")]
    NoSignature,
    /// At least one `v1,` entry was present and none matched.
    #[error("no webhook signature matched")]
    SignatureMismatch,
}

/// The key for signing (and verifying) webhook deliveries.
///
/// Holds the HMAC already keyed, not the key bytes: signing clones it, which
/// skips the key schedule, and the raw secret is not kept around to leak
/// through a stray `{:?}`. `Debug` prints nothing of the key.
#[derive(Clone)]
pub struct WebhookSecret {
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Reads a secret as it appears in configuration or an environment
    /// variable.
    ///
    /// - `whsec_<base64>`: the specification's serialization; the base64 text
    ///   (standard alphabet, padded) decodes to the key bytes. This is the
    ///   form to share with receivers, whose libraries expect it.
    /// - anything else: a *raw* secret, whose UTF-8 bytes are the key.
    ///
    /// The reference libraries instead base64-decode an unprefixed secret
    /// too. leash does not, because then a typed passphrase that happens to
    /// be valid base64 (`"mysecretmysecret"` is) would silently become a
    /// different key from the one the operator wrote. With the prefix the
    /// encoding is explicit either way. A receiver that uses a reference
    /// library with a raw leash secret must pass the bytes directly (their
    /// `from_bytes`-style constructor), or the operator can switch to a
    /// `whsec_` secret.
    ///
    /// Surrounding whitespace is trimmed: a secret read from a file or pasted
    /// into an environment variable often carries a newline, and a key that
    /// differs by an invisible byte is a miserable thing to debug.
    pub fn parse(secret: &str) -> Result<Self, WebhookError> {
        let secret = secret.trim();
        match secret.strip_prefix(SECRET_PREFIX) {
            Some(encoded) => {
                let key = BASE64
                    .decode(encoded)
                    .map_err(|_| WebhookError::SecretEncoding)?;
                Self::from_bytes(&key)
            }
            None => Self::from_bytes(secret.as_bytes()),
        }
    }

    /// Uses `key` as the HMAC key as is.
    pub fn from_bytes(key: &[u8]) -> Result<Self, WebhookError> {
        if key.len() < MIN_SECRET_LEN {
            return Err(WebhookError::SecretTooShort { len: key.len() });
        }
        // HMAC takes keys of any length; the error arm is unreachable in
        // practice and reported as a bad secret rather than a panic.
        let mac = keyed(key).ok_or(WebhookError::SecretTooShort { len: key.len() })?;
        Ok(WebhookSecret { mac })
    }

    /// The raw HMAC-SHA256 tag of `{msg_id}.{timestamp}.{body}`.
    fn tag(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        tag(mac)
    }
}

impl FromStr for WebhookSecret {
    type Err = WebhookError;

    fn from_str(s: &str) -> Result<Self, WebhookError> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Signs one delivery: `v1,` and the base64 HMAC-SHA256 of
/// `{msg_id}.{timestamp}.{body}`.
///
/// `msg_id` must not contain `.` (see [`WebhookError::InvalidId`]); leash's
/// own ids never do, and [`verify`] refuses ids that do. `timestamp` is the
/// time of *this attempt*: a retry is re-signed with a fresh one, so that the
/// receiver's replay window does not reject late retries.
///
/// `body` must be exactly the bytes sent. Re-serializing the JSON between
/// signing and sending (or in the receiver, before verifying) breaks the
/// signature, which is the point.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.tag(msg_id, &timestamp.to_string(), body);
    format!("{VERSION},{}", BASE64.encode(tag))
}

/// The three headers for one delivery, names in lower case as the
/// specification writes them.
pub fn headers(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, msg_id.to_string()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, sign(secret, msg_id, timestamp, body)),
    ]
}

/// The three header values of a received delivery, as text.
///
/// A separate type (rather than three `&str` arguments to [`verify`]) so the
/// id and the signature cannot be swapped silently at a call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`, unparsed: it is signed as the text it is.
    pub timestamp: &'a str,
    /// `webhook-signature`: one or more space-separated `version,base64`.
    pub signature: &'a str,
}

impl<'a> WebhookHeaders<'a> {
    /// Picks the three headers out of an HTTP header map.
    pub fn from_http(headers: &'a http::HeaderMap) -> Result<Self, WebhookError> {
        fn get<'m>(map: &'m http::HeaderMap, name: &'static str) -> Result<&'m str, WebhookError> {
            map.get(name)
                .ok_or(WebhookError::MissingHeader(name))?
                .to_str()
                .map_err(|_| WebhookError::InvalidHeader(name))
        }
        Ok(WebhookHeaders {
            id: get(headers, HEADER_ID)?,
            timestamp: get(headers, HEADER_TIMESTAMP)?,
            signature: get(headers, HEADER_SIGNATURE)?,
        })
    }
}

/// Checks a received delivery: the timestamp is within `tolerance_secs` of
/// `now` (either way), and some `v1` signature in the header matches.
///
/// Several signatures are allowed so that a sender can rotate its secret
/// without downtime: during the overlap it signs with both keys, and a
/// receiver holding either one accepts. Entries with other versions (`v1a`
/// for ed25519, future ones) are skipped. Each candidate is compared in
/// constant time, and all candidates are compared even after a match, so the
/// time taken reveals neither how much of a forged tag was right nor where a
/// good one sat in the list.
///
/// The timestamp is checked first: a stale delivery is refused for what it
/// is, whatever its signature, without spending an HMAC on it.
///
/// Receivers should also remember recent `webhook-id`s (for at least the
/// tolerance) to drop duplicates: a signature proves origin, not uniqueness.
pub fn verify(
    secret: &WebhookSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), WebhookError> {
    if headers.id.is_empty() || headers.id.contains('.') {
        return Err(WebhookError::InvalidId);
    }
    let timestamp = parse_unix_seconds(headers.timestamp).ok_or(WebhookError::InvalidTimestamp)?;
    match skew(timestamp, now, tolerance_secs) {
        Skew::Within => {}
        Skew::TooOld => return Err(WebhookError::TimestampTooOld),
        Skew::TooNew => return Err(WebhookError::TimestampTooNew),
    }

    let expected = secret.tag(headers.id, headers.timestamp, body);
    let mut seen_v1 = false;
    let mut matched = Choice::from(0);
    for entry in headers.signature.split(' ').filter(|e| !e.is_empty()) {
        let Some((VERSION, encoded)) = entry.split_once(',') else {
            continue;
        };
        seen_v1 = true;
        // A candidate that is not 32 bytes of base64 cannot match; it still
        // counts as "a v1 signature was offered" for the error.
        if let Ok(candidate) = BASE64.decode(encoded) {
            matched |= candidate.as_slice().ct_eq(&expected);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else if seen_v1 {
        Err(WebhookError::SignatureMismatch)
    } else {
        Err(WebhookError::NoSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vector 1, from the Standard Webhooks reference libraries' sign tests:
    // libraries/javascript/src/webhook.test.ts ("sign function works") and
    // libraries/go/webhook_test.go (TestWebhookSign) in
    // github.com/standard-webhooks/standard-webhooks.
    const V1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const V1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const V1_TS: i64 = 1_614_265_330;
    const V1_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const V1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // Vector 2, from the same repository's Rust library:
    // libraries/rust/src/lib.rs, `test_sign`.
    const V2_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const V2_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const V2_TS: i64 = 1_649_367_553;
    const V2_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const V2_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::parse(s).unwrap()
    }

    fn received<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders {
            id,
            timestamp: ts,
            signature: sig,
        }
    }

    #[test]
    fn signs_the_published_vectors() {
        assert_eq!(sign(&secret(V1_SECRET), V1_ID, V1_TS, V1_BODY), V1_SIG);
        assert_eq!(sign(&secret(V2_SECRET), V2_ID, V2_TS, V2_BODY), V2_SIG);
    }

    #[test]
    fn verifies_the_published_vectors() {
        let ts = V1_TS.to_string();
        let h = received(V1_ID, &ts, V1_SIG);
        assert_eq!(verify(&secret(V1_SECRET), &h, V1_BODY, V1_TS, 300), Ok(()));
        let ts = V2_TS.to_string();
        let h = received(V2_ID, &ts, V2_SIG);
        assert_eq!(verify(&secret(V2_SECRET), &h, V2_BODY, V2_TS, 300), Ok(()));
    }

    #[test]
    fn headers_carry_id_timestamp_and_signature() {
        let h = headers(&secret(V1_SECRET), V1_ID, V1_TS, V1_BODY);
        assert_eq!(
            h,
            [
                ("webhook-id", V1_ID.to_string()),
                ("webhook-timestamp", "1614265330".to_string()),
                ("webhook-signature", V1_SIG.to_string()),
            ]
        );
    }

    #[test]
    fn headers_round_trip_through_an_http_header_map() {
        let s = secret(V2_SECRET);
        let mut map = http::HeaderMap::new();
        for (name, value) in headers(&s, V2_ID, V2_TS, V2_BODY) {
            map.insert(name, value.parse().unwrap());
        }
        let h = WebhookHeaders::from_http(&map).unwrap();
        assert_eq!(verify(&s, &h, V2_BODY, V2_TS + 10, 300), Ok(()));

        map.remove(HEADER_TIMESTAMP);
        assert_eq!(
            WebhookHeaders::from_http(&map),
            Err(WebhookError::MissingHeader("webhook-timestamp"))
        );
    }

    #[test]
    fn tampered_body_is_refused() {
        let ts = V1_TS.to_string();
        let h = received(V1_ID, &ts, V1_SIG);
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(&secret(V1_SECRET), &h, tampered, V1_TS, 300),
            Err(WebhookError::SignatureMismatch)
        );
        // A trailing newline is a different body too.
        let mut longer = V1_BODY.to_vec();
        longer.push(b'\n');
        assert_eq!(
            verify(&secret(V1_SECRET), &h, &longer, V1_TS, 300),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn tampered_id_and_timestamp_are_refused() {
        let ts = V1_TS.to_string();
        let h = received("msg_p5jXN8AQM9LWM0D4loKWxJel", &ts, V1_SIG);
        assert_eq!(
            verify(&secret(V1_SECRET), &h, V1_BODY, V1_TS, 300),
            Err(WebhookError::SignatureMismatch)
        );
        // Moving the timestamp by one second (still inside the window) breaks
        // the signature: the timestamp is signed, not just checked.
        let ts = (V1_TS + 1).to_string();
        let h = received(V1_ID, &ts, V1_SIG);
        assert_eq!(
            verify(&secret(V1_SECRET), &h, V1_BODY, V1_TS, 300),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn wrong_secret_is_refused() {
        let ts = V1_TS.to_string();
        let h = received(V1_ID, &ts, V1_SIG);
        assert_eq!(
            verify(&secret(V2_SECRET), &h, V1_BODY, V1_TS, 300),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_at_the_edge() {
        let s = secret(V1_SECRET);
        let ts = V1_TS.to_string();
        let h = received(V1_ID, &ts, V1_SIG);
        // Exactly at the tolerance: accepted, both ways.
        assert_eq!(verify(&s, &h, V1_BODY, V1_TS + 300, 300), Ok(()));
        assert_eq!(verify(&s, &h, V1_BODY, V1_TS - 300, 300), Ok(()));
        // One second beyond: refused, with the direction named.
        assert_eq!(
            verify(&s, &h, V1_BODY, V1_TS + 301, 300),
            Err(WebhookError::TimestampTooOld)
        );
        assert_eq!(
            verify(&s, &h, V1_BODY, V1_TS - 301, 300),
            Err(WebhookError::TimestampTooNew)
        );
        // A valid signature does not rescue a replay a day later.
        assert_eq!(
            verify(&s, &h, V1_BODY, V1_TS + 86_400, DEFAULT_TOLERANCE_SECS),
            Err(WebhookError::TimestampTooOld)
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        let s = secret(V1_SECRET);
        for ts in [
            "",
            "hello",
            "+1614265330",
            "-1614265330",
            "1614265330.0",
            " 1614265330",
        ] {
            let h = received(V1_ID, ts, V1_SIG);
            assert_eq!(
                verify(&s, &h, V1_BODY, V1_TS, 300),
                Err(WebhookError::InvalidTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn ids_with_a_full_stop_or_empty_are_refused() {
        let s = secret(V1_SECRET);
        let ts = V1_TS.to_string();
        for id in ["", "msg.1", "."] {
            let h = received(id, &ts, V1_SIG);
            assert_eq!(
                verify(&s, &h, V1_BODY, V1_TS, 300),
                Err(WebhookError::InvalidId)
            );
        }
    }

    #[test]
    fn any_one_of_several_signatures_may_match() {
        // The shape of the reference libraries' multi-signature tests: wrong
        // v1 entries and an unknown version around the good one.
        let s = secret(V1_SECRET);
        let ts = V1_TS.to_string();
        let sigs = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {V1_SIG} v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
        );
        let h = received(V1_ID, &ts, &sigs);
        assert_eq!(verify(&s, &h, V1_BODY, V1_TS, 300), Ok(()));

        // Same list without the good one.
        let sigs = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        let h = received(V1_ID, &ts, sigs);
        assert_eq!(
            verify(&s, &h, V1_BODY, V1_TS, 300),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn truncated_empty_and_foreign_signatures_are_refused() {
        // A prefix of the right tag must not pass (a comparison that zips two
        // strings and stops at the shorter would accept "v1," here).
        let s = secret(V1_SECRET);
        let ts = V1_TS.to_string();
        for sig in [
            "v1,",
            "v1,g0hM9SsE",
            &V1_SIG[..V1_SIG.len() - 4],
            "v1,dawfeoifkpqwoekfpqoekf",
            "v1,!!!not-base64!!!",
        ] {
            let h = received(V1_ID, &ts, sig);
            assert_eq!(
                verify(&s, &h, V1_BODY, V1_TS, 300),
                Err(WebhookError::SignatureMismatch),
                "{sig:?}"
            );
        }
        for sig in [
            "",
            "   ",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1a,abc",
            "V1,x",
        ] {
            let h = received(V1_ID, &ts, sig);
            assert_eq!(
                verify(&s, &h, V1_BODY, V1_TS, 300),
                Err(WebhookError::NoSignature),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn secrets_whsec_base64_or_raw() {
        // The prefixed form decodes; the same text without the prefix is a
        // raw secret (its own bytes), which signs differently.
        let prefixed = secret(V1_SECRET);
        let raw = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_ne!(
            sign(&prefixed, V1_ID, V1_TS, V1_BODY),
            sign(&raw, V1_ID, V1_TS, V1_BODY)
        );
        let raw_bytes = WebhookSecret::from_bytes(b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(&raw, V1_ID, V1_TS, V1_BODY),
            sign(&raw_bytes, V1_ID, V1_TS, V1_BODY)
        );
        // from_bytes with the decoded key equals the whsec_ form.
        let key = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let decoded = WebhookSecret::from_bytes(&key).unwrap();
        assert_eq!(sign(&decoded, V1_ID, V1_TS, V1_BODY), V1_SIG);
        // A trailing newline from a secrets file is trimmed.
        let trimmed = WebhookSecret::parse(&format!("{V1_SECRET}\n")).unwrap();
        assert_eq!(sign(&trimmed, V1_ID, V1_TS, V1_BODY), V1_SIG);
        // FromStr is the same parser.
        let parsed: WebhookSecret = V1_SECRET.parse().unwrap();
        assert_eq!(sign(&parsed, V1_ID, V1_TS, V1_BODY), V1_SIG);
    }

    #[test]
    fn weak_or_garbled_secrets_are_refused() {
        assert_eq!(
            WebhookSecret::parse("").unwrap_err(),
            WebhookError::SecretTooShort { len: 0 }
        );
        assert_eq!(
            WebhookSecret::parse("changeme").unwrap_err(),
            WebhookError::SecretTooShort { len: 8 }
        );
        // 16 bytes, validly encoded, still too short.
        assert_eq!(
            WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAA==").unwrap_err(),
            WebhookError::SecretTooShort { len: 16 }
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            WebhookError::SecretEncoding
        );
        assert_eq!(
            WebhookSecret::parse("whsec_").unwrap_err(),
            WebhookError::SecretTooShort { len: 0 }
        );
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let shown = format!("{:?}", secret(V1_SECRET));
        assert_eq!(shown, "WebhookSecret(..)");
    }
}
