//! Request paths, read the one way a vendor's router reads them.
//!
//! Adapters match paths exactly: a path leash would have to normalise to
//! recognise (`//`, a trailing `/`, `.` segments, percent-escaped letters,
//! another letter case) may be routed by a lenient server to the same
//! endpoint, so it is never silently taken for a harmless one. Adapters
//! read canonical paths with [`canonical_segments`] or
//! [`matches_template`], and use [`lenient`] to tell when a path that
//! matched nothing would match after normalising (then it is ambiguous).

/// Splits a canonical path (`/v1/checkout/sessions`) into its segments, or
/// `None` when it is not canonical: it must start with `/`, have no empty
/// segment (no `//`, no trailing `/`), and every byte of every segment must
/// pass `allowed` (so `.` and `..` are refused unless `allowed` lets dots
/// in, in which case a segment made only of dots still is).
pub fn canonical_segments(path: &str, allowed: impl Fn(u8) -> bool) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    let ok = segs
        .iter()
        .all(|s| !s.is_empty() && !s.bytes().all(|b| b == b'.') && s.bytes().all(&allowed));
    ok.then_some(segs)
}

/// Letters, digits and `_`: the bytes of object ids and path words of most
/// JSON and form APIs (`pi_3Mx`, `payment_intents`, `act_1001`).
pub fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `pattern` segment by segment; `{name}` takes one non-empty segment.
pub fn matches_template(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) => {
                let placeholder = w.starts_with('{') && w.ends_with('}');
                if placeholder {
                    if g.is_empty() {
                        return false;
                    }
                } else if w != g {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The path as a lenient router may see it: lower case, no empty or `.`
/// segments, `..` applied, percent-escapes of unreserved characters undone.
pub fn lenient(path: &str) -> String {
    let decoded = percent_decode_unreserved(path).to_ascii_lowercase();
    let mut out: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn percent_decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                    i += 3;
                    continue;
                }
            }
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_paths_split_and_odd_ones_do_not() {
        assert_eq!(
            canonical_segments("/v1/refunds", id_byte),
            Some(vec!["v1", "refunds"])
        );
        for odd in [
            "",
            "v1/refunds",
            "/v1//refunds",
            "/v1/refunds/",
            "/v1/./refunds",
            "/v1/%72efunds",
            "/v1/re-funds",
        ] {
            assert_eq!(canonical_segments(odd, id_byte), None, "{odd}");
        }
        let hyphen_dot = |b: u8| id_byte(b) || b == b'-' || b == b'.';
        assert_eq!(
            canonical_segments(
                "/v1/bulk-payments/pain.001-sepa-credit-transfers",
                hyphen_dot
            ),
            Some(vec![
                "v1",
                "bulk-payments",
                "pain.001-sepa-credit-transfers"
            ])
        );
        assert_eq!(canonical_segments("/v1/../x", hyphen_dot), None);
    }

    #[test]
    fn templates_take_one_whole_segment_per_placeholder() {
        assert!(matches_template(
            "/v2/orders/{id}/confirm",
            "/v2/orders/o_1/confirm"
        ));
        assert!(!matches_template(
            "/v2/orders/{id}/confirm",
            "/v2/orders//confirm"
        ));
        assert!(!matches_template(
            "/v2/orders/{id}/confirm",
            "/v2/orders/a/b/confirm"
        ));
        assert!(!matches_template("/v2/orders", "/v2/orders/"));
    }

    #[test]
    fn lenient_is_what_a_forgiving_router_sees() {
        assert_eq!(lenient("/V2//Orders/./x/../"), "/v2/orders");
        assert_eq!(lenient("/v2/%6Frders"), "/v2/orders");
        assert_eq!(
            lenient("/v2/%2Forders"),
            "/v2/%2forders",
            "an escaped slash is not a separator"
        );
    }

    proptest! {
        #[test]
        fn canonical_segments_rejoin_to_the_path(path in "\\PC{0,40}") {
            if let Some(segs) = canonical_segments(&path, id_byte) {
                prop_assert_eq!(format!("/{}", segs.join("/")), path.clone());
            }
            let _ = lenient(&path);
        }
    }
}
