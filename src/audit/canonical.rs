//! Canonical JSON: one byte sequence per value, so a hash can be recomputed.
//!
//! A hash chain is only as good as the rule that turns an entry into bytes:
//! if two writers (or a writer and a verifier in another language) can
//! serialise the same entry differently, a verification failure proves
//! nothing. The rule here is RFC 8785 (JSON Canonicalization Scheme)
//! restricted to what audit entries may contain:
//!
//! - object members sorted by their keys' UTF-16 code units, no duplicates;
//! - no whitespace between tokens;
//! - strings with only `"` and `\` escaped, control characters as `\b \t \n
//!   \f \r` or `\u00xx` (lowercase hex), everything else as literal UTF-8;
//! - numbers are integers only, written in plain decimal.
//!
//! Floating-point numbers are refused rather than formatted: money is exact
//! in leash (decimal strings), and a float that reached an entry would be a
//! bug whose rounding the chain would then certify. (Integers beyond ±2⁵³
//! are written exactly, where RFC 8785 would round them; leash writes none.)

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("{path}: floating-point number {value} (audit entries hold exact values only: write amounts and rates as strings)")]
    Float { path: String, value: String },
}

/// The canonical bytes of `value`.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_value(value, &mut out).map_err(|e| e.at_root())?;
    Ok(out)
}

/// Appends the canonical bytes of `value` to `out`.
pub(crate) fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), PathError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(PathError {
                    path: Vec::new(),
                    value: n.to_string(),
                });
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out).map_err(|e| e.within(format!("[{i}]")))?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| utf16_order(a.0, b.0));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out).map_err(|e| e.within(key.clone()))?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// RFC 8785 member order: by UTF-16 code units. For ASCII keys (all of
/// leash's own) that is plain byte order, which is much cheaper to compare.
pub(crate) fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Appends `s` as an RFC 8785 string literal.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            b'\t' => Some(b"\\t"),
            b'\n' => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            b'\r' => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// A float found at `path` (innermost segment first while unwinding).
#[derive(Debug)]
pub(crate) struct PathError {
    path: Vec<String>,
    value: String,
}

impl PathError {
    fn within(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }

    /// The error, naming where the float was from the top of the value.
    pub(crate) fn at_root(self) -> CanonicalError {
        self.under("")
    }

    /// The error, naming where the float was under the field `field`.
    pub(crate) fn under(self, field: &str) -> CanonicalError {
        let mut path = field.to_string();
        for segment in self.path.iter().rev() {
            if !segment.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
        if path.is_empty() {
            path.push_str("value");
        }
        CanonicalError::Float {
            path,
            value: self.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_canonical(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(
            canon(json!({"b": 1, "a": [true, null, {"z": -2, "y": "x"}]})),
            r#"{"a":[true,null,{"y":"x","z":-2}],"b":1}"#
        );
    }

    #[test]
    fn sorts_keys_by_utf16_like_rfc8785() {
        // U+1F600 is a surrogate pair (0xD83D…) and sorts before U+FB01 in
        // UTF-16, after it in UTF-8: RFC 8785 §3.2.3 wants UTF-16 order.
        assert_eq!(
            canon(json!({"\u{fb01}": 1, "\u{1f600}": 2, "a": 0})),
            "{\"a\":0,\"\u{1f600}\":2,\"\u{fb01}\":1}"
        );
    }

    #[test]
    fn escapes_like_rfc8785() {
        assert_eq!(
            canon(json!("q\"b\\n\n\t\u{1}\u{1f}é€/")),
            "\"q\\\"b\\\\n\\n\\t\\u0001\\u001fé€/\""
        );
    }

    #[test]
    fn refuses_floats_and_names_where() {
        let err = to_canonical(&json!({"fx": [{"rate": 0.92}]})).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::Float {
                path: "fx[0].rate".into(),
                value: "0.92".into()
            }
        );
        assert!(to_canonical(&json!(1.0)).is_err());
        assert_eq!(canon(json!(u64::MAX)), u64::MAX.to_string());
        assert_eq!(canon(json!(i64::MIN)), i64::MIN.to_string());
    }

    #[test]
    fn agrees_with_serde_json_on_plain_ascii() {
        let v = json!({"k": "v", "n": [1, 2], "o": {"b": false, "a": "\u{7f}"}});
        let ours = canon(v.clone());
        let reparsed: Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(reparsed, v);
    }
}
