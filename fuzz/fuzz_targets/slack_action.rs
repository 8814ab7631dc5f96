//! Feeds arbitrary bytes to what `POST /slack/actions` reads before it
//! trusts anything: Slack's signature check on the raw body, then the
//! `block_actions` parser.
//!
//! The input is split at the first two NUL bytes into the timestamp header,
//! the signature header and the body. Checks that neither step panics, that
//! a forged signature never verifies, and that a parsed click always names a
//! hold id and a Slack member ID of the expected shape.
#![no_main]

use leash::notify::slack::{parse_action, verify_request};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let timestamp = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let signature = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();

    let now = 1_531_420_618;
    // A signature the fuzzer wrote is a forgery unless it found an HMAC
    // collision; it must never verify.
    assert!(verify_request(SECRET, &timestamp, &signature, body, now).is_err());

    if let Ok(action) = parse_action(body) {
        assert!(action.hold_id.starts_with("hold_"), "{}", action.hold_id);
        assert!(!action.user_id.is_empty());
        assert!(action
            .user_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        if let Some(url) = &action.response_url {
            assert!(url.starts_with("https://") || url.starts_with("http://"), "{url}");
        }
    }
});
