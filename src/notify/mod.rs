//! Telling approvers about holds, and checking what comes back (SPEC §6, §9).
//!
//! A `REQUIRE_HUMAN` decision is only as safe as the channel that carries the
//! human's answer. Two channels exist:
//!
//! - [`webhook`]: a JSON event sent to any HTTP receiver, signed the
//!   [Standard Webhooks] way so the receiver can tell leash sent it and that
//!   nobody replayed it later;
//! - [`slack`]: a Block Kit message with Approve / Reject buttons, whose
//!   clicks Slack posts back to `POST /slack/actions`, signed with the app's
//!   signing secret.
//!
//! [`send`] is what puts both on the wire: it delivers to every `notify`
//! target concurrently, in the background, with bounded retries.
//!
//! Everything else here is a pure function: no sockets, no clock. The current
//! time is an argument, so the replay windows are tested at their exact edges
//! instead of "about now", and the caller decides which clock is trusted.
//!
//! Both schemes are HMAC-SHA256 over a string that binds a timestamp to the
//! body; they differ only in framing. The shared pieces (keying, the strict
//! timestamp reader and the window check) live here so the two cannot drift.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com

pub mod send;
pub mod slack;
pub mod webhook;

use hmac::{KeyInit, Mac};

/// HMAC-SHA256, as both schemes use it.
pub(crate) type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Length of an HMAC-SHA256 tag in bytes.
pub(crate) const TAG_LEN: usize = 32;

/// Longest piece of untrusted input echoed back inside an error message.
/// Errors end up in logs and HTTP answers; a megabyte "action id" must not.
const SNIPPET_CHARS: usize = 32;

/// Keys an HMAC-SHA256 instance.
///
/// HMAC accepts keys of any length (longer ones are hashed first), so this
/// never fails in practice; the `Option` exists because the `KeyInit` trait
/// is fallible in general, and a network-facing path must not panic on the
/// strength of "never".
pub(crate) fn keyed(key: &[u8]) -> Option<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(key).ok()
}

/// Finishes a MAC into a plain array, ready for a constant-time comparison.
pub(crate) fn tag(mac: HmacSha256) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Reads a Unix timestamp header: ASCII digits only, as both specifications
/// define it ("integer unix timestamp").
///
/// Stricter than `str::parse::<i64>`, which also takes `+123` and `-5`. The
/// header text itself is part of the signed string, so accepting spellings the
/// sender never produces only widens what a forger can try; and a negative or
/// signed "timestamp" is never legitimate.
pub(crate) fn parse_unix_seconds(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Where a signed timestamp falls relative to the replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skew {
    Within,
    /// Older than `now - tolerance`: a replay, or a very slow delivery.
    TooOld,
    /// Newer than `now + tolerance`: the sender's clock is ahead, or someone
    /// pre-signed a message to replay later.
    TooNew,
}

/// Checks `timestamp` against `now` with `tolerance_secs` either way. The
/// edges are inclusive: exactly `tolerance_secs` away is still accepted.
///
/// Computed in `i128` so that a hostile timestamp near `i64::MAX` cannot
/// overflow the subtraction.
pub(crate) fn skew(timestamp: i64, now: i64, tolerance_secs: u64) -> Skew {
    let diff = i128::from(now) - i128::from(timestamp);
    let tolerance = i128::from(tolerance_secs);
    if diff > tolerance {
        Skew::TooOld
    } else if -diff > tolerance {
        Skew::TooNew
    } else {
        Skew::Within
    }
}

/// The first few characters of untrusted input, for an error message.
pub(crate) fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(SNIPPET_CHARS).collect();
    if s.chars().nth(SNIPPET_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_digits_only() {
        assert_eq!(parse_unix_seconds("1531420618"), Some(1_531_420_618));
        assert_eq!(parse_unix_seconds("0"), Some(0));
        for bad in ["", "+1531420618", "-1", " 1", "1 ", "1e9", "1.5", "0x10"] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
        // Digits, but beyond i64: refused rather than wrapped.
        assert_eq!(parse_unix_seconds("9999999999999999999"), None);
        assert_eq!(parse_unix_seconds("99999999999999999999"), None);
    }

    #[test]
    fn skew_edges_are_inclusive_and_overflow_free() {
        assert_eq!(skew(1000, 1300, 300), Skew::Within);
        assert_eq!(skew(999, 1300, 300), Skew::TooOld);
        assert_eq!(skew(1600, 1300, 300), Skew::Within);
        assert_eq!(skew(1601, 1300, 300), Skew::TooNew);
        assert_eq!(skew(i64::MAX, i64::MIN, u64::MAX), Skew::Within);
        assert_eq!(skew(i64::MAX, i64::MIN, 0), Skew::TooNew);
        assert_eq!(skew(i64::MIN, i64::MAX, 0), Skew::TooOld);
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet("short"), "short");
        let long = "x".repeat(1000);
        assert_eq!(snippet(&long).chars().count(), SNIPPET_CHARS + 1);
    }
}
