//! The strict JSON reader every JSON vendor's adapter uses.
//!
//! A money request read as JSON must mean one thing. serde_json alone keeps
//! the last of two equal keys (`{"amount":1,"amount":99999}`), while other
//! servers keep the first; and it turns `12.30` into a float. This reader
//! keeps each number's exact text, refuses a key given twice in one object
//! (compared after unescaping, so `"a"` and `"\u0061"` are the same key),
//! refuses trailing data and nesting deeper than [`MAX_DEPTH`], and answers
//! JSON pointers ([RFC 6901]) on the result. Parsing is serde_json's; only
//! the shape of the tree is ours (values are read as [`RawValue`]s, so the
//! text of every number survives).
//!
//! [RFC 6901]: https://www.rfc-editor.org/rfc/rfc6901

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// How deep objects and arrays may nest. Vendor payloads are a few levels
/// deep; the bound keeps re-reading nested values linear enough.
pub const MAX_DEPTH: usize = 32;

/// One JSON value, numbers as their exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number exactly as written (`12.30`, `-1`, `1e3`).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Members in the order written; keys are unique.
    Object(Vec<(String, Json)>),
}

/// Why a JSON body could not be read as one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON (or not UTF-8, or trailing data); serde_json's message,
    /// which names line and column and never quotes the input.
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    /// The same key twice in one object: servers disagree on which wins.
    #[error("the JSON key {0:?} appears more than once in one object")]
    Duplicate(String),
    #[error("the JSON nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl JsonError {
    /// Whether the body can be read two ways (refused outright), rather
    /// than not at all.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, JsonError::Duplicate(_))
    }
}

/// Reads `bytes` as exactly one JSON value.
pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    let raw: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
    read(raw, 0)
}

fn read(raw: &RawValue, depth: usize) -> Result<Json, JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') | Some(b'[') => {
            let mut de = serde_json::Deserializer::from_str(text);
            let tree = de
                .deserialize_any(Tree { depth })
                .map_err(|e| match take_ours(&e) {
                    Some(ours) => ours,
                    None => JsonError::Syntax(e.to_string()),
                })?;
            Ok(tree)
        }
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(Json::String)
            .map_err(|e| JsonError::Syntax(e.to_string())),
        Some(b't') => Ok(Json::Bool(true)),
        Some(b'f') => Ok(Json::Bool(false)),
        Some(b'n') => Ok(Json::Null),
        // serde_json checked the grammar: anything else is a number. One
        // no float can hold (`1e400`) is refused, as serde_json and most
        // vendors' parsers refuse it (or read it as infinity).
        _ => match serde_json::from_str::<serde_json::Number>(text) {
            Ok(_) => Ok(Json::Number(text.to_owned())),
            Err(e) => Err(JsonError::Syntax(e.to_string())),
        },
    }
}

/// Our own errors travel through serde as custom messages with a prefix.
const DUPLICATE: &str = "leash-json-duplicate:";
const TOO_DEEP: &str = "leash-json-too-deep";

fn take_ours(error: &serde_json::Error) -> Option<JsonError> {
    let message = error.to_string();
    if let Some(rest) = message.strip_prefix(DUPLICATE) {
        // serde_json appends " at line L column C".
        let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
        return Some(JsonError::Duplicate(key.to_owned()));
    }
    message.starts_with(TOO_DEEP).then_some(JsonError::TooDeep)
}

struct Tree {
    depth: usize,
}

impl<'de> Visitor<'de> for Tree {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            items.push(read(raw, self.depth + 1).map_err(ours::<A::Error>)?);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let raw = map.next_value::<&RawValue>()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            let value = read(raw, self.depth + 1).map_err(ours::<A::Error>)?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

fn ours<E: serde::de::Error>(error: JsonError) -> E {
    match error {
        JsonError::Duplicate(key) => E::custom(format!("{DUPLICATE}{key}")),
        JsonError::TooDeep => E::custom(TOO_DEEP),
        JsonError::Syntax(message) => E::custom(message),
    }
}

impl Json {
    /// The value at JSON pointer `pointer` (`""` is the whole value,
    /// `/total/value` a member of a member, `/items/0` an array element;
    /// `~1` and `~0` escape `/` and `~`).
    pub fn pointer(&self, pointer: &str) -> Option<&Json> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        let mut at = self;
        for token in rest.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            at = match at {
                Json::Object(members) => &members.iter().find(|(k, _)| *k == token)?.1,
                Json::Array(items) => {
                    // RFC 6901: no leading zeros, no sign.
                    if token.len() > 1 && token.starts_with('0') {
                        return None;
                    }
                    items.get(token.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(at)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a number, or of a string (many APIs send amounts and
    /// int64 ids as strings).
    pub fn scalar_text(&self) -> Option<&str> {
        match self {
            Json::Number(n) => Some(n),
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// An int64 given as a number or as a string of digits (Google's and
    /// Meta's JSON encode int64 as strings): exact, never through a float.
    pub fn as_i64(&self) -> Option<i64> {
        let text = self.scalar_text()?;
        if text.starts_with('+') || text.contains(['.', 'e', 'E', ' ']) {
            return None;
        }
        text.parse::<i64>().ok()
    }

    /// The exact value of a JSON *number* (never a string): see
    /// [`number_decimal`].
    pub fn number_decimal(&self) -> Result<rust_decimal::Decimal, String> {
        match self {
            Json::Number(text) => number_decimal(text),
            Json::String(_) => Err("is a string, not a JSON number".to_owned()),
            _ => Err("is not a number".to_owned()),
        }
    }
}

/// The exact, non-negative value of a JSON number's text: `10`, `129.24`,
/// and the exponent forms a float serialiser writes for small or large
/// values (Python's `json.dumps(0.00001)` is `1e-05`), read as the decimal
/// the text denotes — never through a float. Refused: a sign, more than 28
/// decimal places, and values too large for a `Decimal`.
pub fn number_decimal(text: &str) -> Result<rust_decimal::Decimal, String> {
    use crate::money::parse_decimal_amount;
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (
            text.get(..at).unwrap_or(""),
            Some(text.get(at + 1..).unwrap_or("")),
        ),
        None => (text, None),
    };
    let base = parse_decimal_amount(mantissa).map_err(|e| e.to_string())?;
    let Some(exponent) = exponent else {
        return Ok(base);
    };
    let (negative, digits) = match exponent.as_bytes().first() {
        Some(b'-') => (true, exponent.get(1..).unwrap_or("")),
        Some(b'+') => (false, exponent.get(1..).unwrap_or("")),
        _ => (false, exponent),
    };
    let too_big = || {
        format!(
            "the number {:?} is too large or too precise to read exactly",
            snippet(text)
        )
    };
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(too_big());
    }
    let shift: u32 = digits.parse().map_err(|_| too_big())?;
    let scale = base.scale();
    let (mantissa, scale) = if negative {
        (
            base.mantissa(),
            scale.checked_add(shift).ok_or_else(too_big)?,
        )
    } else if shift <= scale {
        (base.mantissa(), scale - shift)
    } else {
        let factor = 10i128.checked_pow(shift - scale).ok_or_else(too_big)?;
        (base.mantissa().checked_mul(factor).ok_or_else(too_big)?, 0)
    };
    if scale > 28 {
        return Err(too_big());
    }
    rust_decimal::Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| too_big())
}

fn snippet(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_keep_their_text_and_pointers_find_them() {
        let json =
            parse(br#"{"total":{"value":12.30,"currency":"EUR"},"items":[{"q":"3"}]}"#).unwrap();
        assert_eq!(
            json.pointer("/total/value"),
            Some(&Json::Number("12.30".into()))
        );
        assert_eq!(
            json.pointer("/total/currency").and_then(Json::as_str),
            Some("EUR")
        );
        assert_eq!(json.pointer("/items/0/q").and_then(Json::as_i64), Some(3));
        assert_eq!(json.pointer("/items/01/q"), None);
        assert_eq!(json.pointer("/nope"), None);
        assert_eq!(json.pointer(""), Some(&json));
        let big = parse(br#"{"n":12345678901234567890123}"#).unwrap();
        assert_eq!(
            big.pointer("/n").and_then(Json::scalar_text),
            Some("12345678901234567890123")
        );
    }

    #[test]
    fn a_key_twice_is_ambiguous_at_any_depth_and_in_any_spelling() {
        for body in [
            &br#"{"amount":1,"amount":99999}"#[..],
            br#"{"a":{"amount":1,"amount":2}}"#,
            br#"{"a":[{"x":1},{"amount":1,"\u0061mount":2}]}"#,
        ] {
            let error = parse(body).unwrap_err();
            assert!(error.is_ambiguous(), "{error}");
            assert!(error.to_string().contains("amount"), "{error}");
        }
        // The same key in two different objects is fine.
        assert!(parse(br#"[{"amount":1},{"amount":2}]"#).is_ok());
    }

    #[test]
    fn not_json_trailing_data_bad_utf8_and_depth_are_refused() {
        for body in [
            &b""[..],
            b"{",
            b"{} {}",
            b"{\"a\":1}x",
            b"\xff",
            b"{\"a\":\"\\ud800\"}",
            b"NaN",
            b"{\"a\":01}",
            b"22244444E444",
            b"[1e400]",
        ] {
            let error = parse(body).unwrap_err();
            assert!(!error.is_ambiguous(), "{body:?}: {error}");
        }
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::TooDeep));
        let ok = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn int64_as_string_or_number_exactly() {
        let json =
            parse(br#"{"a":"9007199254740993","b":9007199254740993,"c":"1.0","d":"+1","e":1e3}"#)
                .unwrap();
        assert_eq!(
            json.pointer("/a").and_then(Json::as_i64),
            Some(9007199254740993)
        );
        assert_eq!(
            json.pointer("/b").and_then(Json::as_i64),
            Some(9007199254740993)
        );
        for p in ["/c", "/d", "/e"] {
            assert_eq!(json.pointer(p).and_then(Json::as_i64), None, "{p}");
        }
    }

    #[test]
    fn numbers_read_as_exact_decimals() {
        for (text, want) in [
            ("10", "10"),
            ("129.24", "129.24"),
            ("0.5", "0.5"),
            ("1e-05", "0.00001"),
            ("2.5E+3", "2500"),
            ("1.50e1", "15.0"),
            ("0.1", "0.1"),
            ("12e0", "12"),
        ] {
            assert_eq!(number_decimal(text).unwrap().to_string(), want, "{text}");
        }
        for text in [
            "-1", "1e", "1e-", "1e400", "1e-29", "1e29", "", "+1", "1.", "01",
        ] {
            assert!(number_decimal(text).is_err(), "{text}");
        }
        assert!(Json::String("1".into()).number_decimal().is_err());
    }

    fn value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            "[a-z\u{e9}\"\\\\/]{0,6}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn same(ours: &Json, theirs: &serde_json::Value) -> bool {
        match (ours, theirs) {
            (Json::Null, serde_json::Value::Null) => true,
            (Json::Bool(a), serde_json::Value::Bool(b)) => a == b,
            (Json::Number(a), serde_json::Value::Number(b)) => *a == b.to_string(),
            (Json::String(a), serde_json::Value::String(b)) => a == b,
            (Json::Array(a), serde_json::Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Json::Object(a), serde_json::Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
            }
            _ => false,
        }
    }

    proptest! {
        /// Any document without duplicate keys reads as serde_json reads
        /// it, number texts included.
        #[test]
        fn reads_what_serde_json_reads(v in value()) {
            let text = serde_json::to_vec(&v).unwrap();
            let ours = parse(&text).unwrap();
            prop_assert!(same(&ours, &v), "{ours:?} vs {v}");
        }

        /// A decimal written plainly or in exponent form reads back as
        /// itself, exactly.
        #[test]
        fn number_decimal_round_trips(mantissa in 0u64..u64::MAX, scale in 0u32..20, shift in 0u32..8) {
            let want = rust_decimal::Decimal::from_i128_with_scale(i128::from(mantissa), scale);
            prop_assert_eq!(number_decimal(&want.to_string()).unwrap(), want);
            let shifted = rust_decimal::Decimal::from_i128_with_scale(i128::from(mantissa), scale + shift);
            let text = format!("{want}e-{shift}");
            prop_assert_eq!(number_decimal(&text).unwrap(), shifted);
        }

        #[test]
        fn number_decimal_never_panics(text in "[-+0-9eE.]{0,40}") {
            let _ = number_decimal(&text);
        }

        /// Arbitrary bytes never panic, and whatever parses is valid JSON.
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if parse(&bytes).is_ok() {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
            }
        }
    }
}
