//! Feeds arbitrary bytes to `decode_for_reading` under each content coding.
//!
//! Byte 0 picks the `Content-Encoding` value; the rest is the raw body.
//! Checks that decoding never panics and never returns more than the limit
//! (the zip-bomb guard) for any coding that actually decodes.
#![no_main]

use leash::body::decode_for_reading;
use libfuzzer_sys::fuzz_target;

const ENCODINGS: &[Option<&str>] = &[
    Some("gzip"),
    Some("x-gzip"),
    Some("deflate"),
    Some("gzip, gzip"),
    Some("deflate, gzip"),
    Some("identity"),
    None,
    Some("br"),
    Some("GZIP , identity"),
];

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else {
        return;
    };
    let encoding = ENCODINGS[usize::from(sel) % ENCODINGS.len()];
    let limit = if sel & 0x80 == 0 {
        LIMIT
    } else {
        usize::from(sel & 0x7f)
    };
    if let Ok(out) = decode_for_reading(encoding, raw, limit) {
        let decodes = encoding.is_some_and(|e| {
            e.split(',')
                .any(|t| !t.trim().is_empty() && !t.trim().eq_ignore_ascii_case("identity"))
        });
        if decodes {
            assert!(out.len() <= limit, "{} > {limit}", out.len());
        } else {
            assert_eq!(&*out, raw);
        }
    }
});
