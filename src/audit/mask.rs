//! Card-number masking for everything that goes into the audit chain.
//!
//! leash never stores request bodies, but intent fields and details are
//! partly free text an agent chose (descriptions, metadata, idempotency keys),
//! and agents do paste card numbers into such places. An audit log that holds
//! a primary account number drags the whole machine into PCI DSS scope, and
//! the chain makes it impossible to remove later without breaking every hash
//! after it. So every string is masked *before* it is hashed: what the chain
//! proves is the masked text.
//!
//! The detector is the one payment scanners use: a run of 13 to 19 digits, as
//! cards are written (plain, or in groups separated by single spaces or
//! dashes), that passes the Luhn check. It errs towards masking: one in ten
//! random 13–19 digit numbers (order ids, millisecond timestamps) passes Luhn
//! and is masked too; that loses a few digits of an id, never a card.
//!
//! Two shapes are deliberately exempt, because leash itself puts them in
//! entries and roughly one SHA-256 hex digest in a hundred contains a
//! Luhn-valid run of 13+ digits: a digit run that lies inside a hexadecimal
//! token of 32 or more characters (digests, keys), and a UUID
//! (`8-4-4-4-12` hex). Masking those would corrupt fingerprints and policy
//! hashes — the very values an auditor matches entries by.

use std::borrow::Cow;

use serde_json::Value;

/// The shortest and longest card numbers (ISO/IEC 7812).
const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;
/// How many trailing digits a mask keeps (what receipts print).
const KEEP: usize = 4;
/// A hexadecimal token at least this long is a digest or a key, not text.
const HEX_TOKEN_MIN: usize = 32;

/// Replaces every card number in `s` by a mask keeping at most its last four
/// digits: `4242424242424242` → `************4242`,
/// `4242 4242 4242 4242` → `**** **** **** 4242`.
///
/// Separators are kept, so the text keeps its shape and its length. Returns
/// the input unchanged (borrowed) when there is nothing to mask.
///
/// A run of digits grouped by single spaces or dashes is tried window by
/// window along group boundaries, so a card number next to other numbers
/// (`4242 4242 4242 4242 12/29`, `call 555-0100 4242424242424242`) is still
/// found; digits glued to more digits with no separator (`…424242429`) are
/// one longer number, not a card.
pub fn mask_card_numbers(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let groups = digit_groups(bytes, i);
        let end = groups.last().map_or(i + 1, |g| g.1);
        for first in 0..groups.len() {
            let mut digits = 0;
            for last in first..groups.len() {
                digits += groups[last].1 - groups[last].0;
                if digits > MAX_DIGITS {
                    break;
                }
                if digits < MIN_DIGITS {
                    continue;
                }
                let (start, stop) = (groups[first].0, groups[last].1);
                if luhn_valid(&bytes[start..stop]) && !is_exempt(bytes, start, stop, first == last)
                {
                    let out = masked.get_or_insert_with(|| bytes.to_vec());
                    mask_window(out, start, stop, digits);
                }
            }
        }
        i = end;
    }
    match masked {
        // Only ASCII digits were replaced by ASCII '*', so the bytes are
        // still the UTF-8 they were; the fallback is never taken.
        Some(out) => match String::from_utf8(out) {
            Ok(text) => Cow::Owned(text),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
        None => Cow::Borrowed(s),
    }
}

/// Masks every string (and object key) in a JSON value, recursively, and
/// every integer that is itself a card number (it becomes a masked string:
/// a card number is never a quantity).
pub(crate) fn mask_value(value: Value) -> Value {
    match value {
        Value::String(s) => match mask_card_numbers(&s) {
            Cow::Borrowed(_) => Value::String(s),
            Cow::Owned(m) => Value::String(m),
        },
        Value::Number(n) => {
            let text = n.to_string();
            match mask_card_numbers(&text) {
                Cow::Borrowed(_) => Value::Number(n),
                Cow::Owned(m) => Value::String(m),
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(mask_value).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (mask_card_numbers(&k).into_owned(), mask_value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The digit groups of the run starting at `start`: `(begin, end)` byte
/// ranges of maximal digit runs joined by exactly one space or dash.
fn digit_groups(bytes: &[u8], start: usize) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut i = start;
    loop {
        let begin = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        groups.push((begin, i));
        let joined =
            i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit();
        if !joined {
            return groups;
        }
        i += 1;
    }
}

/// The Luhn (mod 10) check over the digits of `window`, separators skipped.
fn luhn_valid(window: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in window.iter().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

/// Whether the window `[start, stop)` is part of a digest or a UUID rather
/// than free text (see the module documentation).
fn is_exempt(bytes: &[u8], start: usize, stop: usize, single_group: bool) -> bool {
    if single_group {
        let mut lo = start;
        while lo > 0 && bytes[lo - 1].is_ascii_hexdigit() {
            lo -= 1;
        }
        let mut hi = stop;
        while hi < bytes.len() && bytes[hi].is_ascii_hexdigit() {
            hi += 1;
        }
        if hi - lo >= HEX_TOKEN_MIN {
            return true;
        }
    }
    inside_uuid(bytes, start, stop)
}

/// Whether `[start, stop)` lies inside a UUID-shaped token (`8-4-4-4-12`
/// hex digits, not itself part of a longer hex-or-dash run).
fn inside_uuid(bytes: &[u8], start: usize, stop: usize) -> bool {
    let is_part = |b: u8| b.is_ascii_hexdigit() || b == b'-';
    let mut lo = start;
    while lo > 0 && is_part(bytes[lo - 1]) {
        lo -= 1;
    }
    let mut hi = stop;
    while hi < bytes.len() && is_part(bytes[hi]) {
        hi += 1;
    }
    let token = &bytes[lo..hi];
    let mut lens = token.split(|&b| b == b'-').map(<[u8]>::len);
    token.len() == 36
        && [8, 4, 4, 4, 12]
            .into_iter()
            .all(|want| lens.next() == Some(want))
        && lens.next().is_none()
}

/// Stars every digit of the window but its last [`KEEP`].
fn mask_window(out: &mut [u8], start: usize, stop: usize, digits: usize) {
    let mut to_mask = digits.saturating_sub(KEEP);
    for b in &mut out[start..stop] {
        if to_mask == 0 {
            break;
        }
        if b.is_ascii_digit() {
            *b = b'*';
            to_mask -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn luhn_complete(body: &str) -> String {
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|c| luhn_valid(c.as_bytes()))
            .unwrap()
    }

    #[test]
    fn masks_plain_and_grouped_cards() {
        assert_eq!(mask_card_numbers("4242424242424242"), "************4242");
        assert_eq!(
            mask_card_numbers("card 4242 4242 4242 4242 exp"),
            "card **** **** **** 4242 exp"
        );
        assert_eq!(
            mask_card_numbers("pan=4000-0566-5566-5556;"),
            "pan=****-****-****-5556;"
        );
        // Amex, 15 digits, 4-6-5.
        assert_eq!(mask_card_numbers("3782 822463 10005"), "**** ****** *0005");
        // Glued to letters that are not a digest: still a card.
        assert_eq!(
            mask_card_numbers("x4242424242424242y"),
            "x************4242y"
        );
    }

    #[test]
    fn finds_a_card_beside_other_numbers() {
        assert_eq!(
            mask_card_numbers("4242 4242 4242 4242 2029"),
            "**** **** **** 4242 2029"
        );
        assert_eq!(
            mask_card_numbers("call 555-0100 4242424242424242"),
            "call 555-0100 ************4242"
        );
    }

    #[test]
    fn leaves_non_cards_alone() {
        for s in [
            "4242424242424241",            // fails Luhn
            "order 123456789012",          // 12 digits
            "42424242424242424242",        // 20 digits, one number
            "amount 1200.00 EUR",          // short
            "2025-06-01T12:00:00.000000Z", // a timestamp
            "",
        ] {
            assert!(matches!(mask_card_numbers(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn digests_and_uuids_are_not_cards() {
        // A SHA-256 hex digest whose digit run passes Luhn.
        let digest = format!(
            "ab{}cdef0123456789abcdef0123456789abcdef0123456789",
            "4242424242424242"
        );
        assert_eq!(digest.len(), 64);
        assert_eq!(mask_card_numbers(&digest), digest.as_str());
        let uuid = "abcdefab-4242-4242-4242-424242424242";
        assert_eq!(mask_card_numbers(uuid), uuid);
        // A short hex-looking token is text: masked.
        assert_eq!(
            mask_card_numbers("ab4242424242424242"),
            "ab************4242"
        );
    }

    #[test]
    fn values_are_masked_everywhere() {
        let v = serde_json::json!({
            "description": "pay with 4242424242424242",
            "nested": [{"4242424242424242": 4242424242424242u64}],
            "order": 4242424242424241u64,
        });
        let m = mask_value(v);
        assert_eq!(
            m,
            serde_json::json!({
                "description": "pay with ************4242",
                "nested": [{"************4242": "************4242"}],
                "order": 4242424242424241u64,
            })
        );
    }

    fn card() -> impl Strategy<Value = String> {
        "[0-9]{15}".prop_map(|body| luhn_complete(&body))
    }

    /// A character that may stand next to a card: anything but a hex digit
    /// (glued hex could make a digest, glued digits a longer number).
    fn boundary() -> impl Strategy<Value = String> {
        "[^0-9a-fA-F]"
    }

    proptest! {
        #[test]
        fn a_luhn_valid_card_never_survives(
            prefix in ".{0,24}",
            left in boundary(),
            card in card(),
            grouping in 0..3usize,
            right in boundary(),
            suffix in ".{0,24}",
        ) {
            let written = match grouping {
                0 => card.clone(),
                1 => card.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join(" "),
                _ => card.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("-"),
            };
            let text = format!("{prefix}{left}{written}{right}{suffix}");
            let masked = mask_card_numbers(&text);
            let digits: String = masked.chars().filter(|c| c.is_ascii_digit() || *c == '*').collect();
            prop_assert!(!masked.contains(&written), "{masked}");
            prop_assert!(!digits.contains(&card[..12]), "{masked}");
            prop_assert_eq!(masked.chars().count(), text.chars().count());
        }

        #[test]
        fn non_luhn_digit_runs_survive(
            prefix in "[^0-9]{0,24}",
            body in "[1-9][0-9]{11,17}",
            suffix in "[^0-9]{0,24}",
        ) {
            let valid = luhn_complete(&body);
            // The one check digit that is wrong-by-one is never Luhn-valid.
            let last = valid.as_bytes()[valid.len() - 1] - b'0';
            let id = format!("{body}{}", (last + 1) % 10);
            let text = format!("{prefix} {id} {suffix}");
            prop_assert_eq!(mask_card_numbers(&text), text.as_str());
        }
    }
}
