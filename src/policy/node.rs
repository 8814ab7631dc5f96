//! Policy files as plain trees, checked by hand so that one file can report
//! every mistake it holds.
//!
//! `leash.yaml` is read with serde derives: the first error stops the read,
//! which is fine for one file an operator fixes and restarts. A policy
//! directory is different. `leash policy check` runs in CI on a change that
//! may touch ten rules in five files, and an author who fixes one error only
//! to be shown the next is an author who stops running the check. serde
//! cannot resume after an error, so policy files are read in two steps:
//!
//! 1. [`parse`] reads the document into a [`Value`] tree through
//!    [`crate::yaml::from_str`], which still catches what only the parser
//!    can see (syntax, tabs, duplicate keys) with exact positions;
//! 2. the loader walks the tree with a [`Checker`], which records an error
//!    and carries on, and finds each error's position again in the text
//!    with [`crate::yaml::locate`] from the path it was walking.
//!
//! Scalars keep the type YAML gave them, so an unquoted `1500.50` (a float,
//! already rounded to binary by the parser) can be told apart from the
//! exact `"1500.50"` and refused.

use std::fmt;
use std::path::Path;

use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::money::parse_decimal_amount;
use crate::yaml::{self, YamlError};

/// One YAML node, as the parser typed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `~`, `null`, or a key with nothing after it.
    Null,
    Bool(bool),
    Int(i128),
    /// An unquoted number with a point or exponent, or `.inf` / `.nan`.
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    /// Keys in the order written. Keys are scalars; duplicates were refused
    /// by the parser.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// What the value is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null => "no value".to_string(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the number {i}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Str(s) => format!("the string {s:?}"),
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        // Beyond i128 is beyond any amount a Decimal holds anyway; keep it
        // as a float so it is refused like one rather than wrapped.
        Ok(i128::try_from(v).map_or(Value::Float(f64::INFINITY), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let value = map.next_value::<Value>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// A mapping key: any scalar, as text. A list or mapping used as a key has
/// no place in a policy file and is refused where it stands.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plain key")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Key, E> {
        Ok(Key("null".to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
        Err(de::Error::custom(
            "a list cannot be a key here: keys are plain names",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
        Err(de::Error::custom(
            "a mapping cannot be a key here: keys are plain names",
        ))
    }
}

/// Reads one YAML document into a tree. Syntax errors, tabs and duplicate
/// keys come back with their positions; an empty document is [`Value::Null`].
pub(crate) fn parse(file: &Path, text: &str) -> Result<Value, YamlError> {
    yaml::from_str::<Value>(file, text)
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits in its document: `rules[2].amount.gte`.
///
/// Kept alongside every value the checker reads, because the tree carries
/// no positions: the path is what finds the spot in the text again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loc(Vec<Seg>);

impl Loc {
    pub(crate) fn root() -> Loc {
        Loc(Vec::new())
    }

    pub(crate) fn key(&self, key: &str) -> Loc {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        Loc(segs)
    }

    pub(crate) fn index(&self, index: usize) -> Loc {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Loc(segs)
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as `yaml::locate` takes it: keys, and indices as numbers.
    fn parts(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Key(k) => k.clone(),
                Seg::Index(i) => i.to_string(),
            })
            .collect()
    }
}

impl fmt::Display for Loc {
    /// Rendered the way serde_yaml renders paths in `leash.yaml` errors, so
    /// both kinds of file read alike.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A file's name and text, to turn paths into positions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Src<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl<'a> Src<'a> {
    fn message(loc: &Loc, message: &str) -> String {
        if loc.is_root() {
            message.to_string()
        } else {
            format!("{loc}: {message}")
        }
    }

    /// An error about the key at `loc` ("this key is wrong").
    pub(crate) fn at_key(&self, loc: &Loc, message: &str) -> YamlError {
        let parts = loc.parts();
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        YamlError::at(
            self.file,
            self.text,
            &refs,
            None,
            Src::message(loc, message),
        )
    }

    /// An error about the value at `loc` ("this value is wrong").
    pub(crate) fn at_value(&self, loc: &Loc, message: &str) -> YamlError {
        let parts = loc.parts();
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        YamlError::at_value(self.file, self.text, &refs, Src::message(loc, message))
    }

    /// The 1-based line of the value at `loc` (of a list item: its first
    /// key), for `Rule.origin`.
    pub(crate) fn line(&self, loc: &Loc) -> usize {
        let parts = loc.parts();
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        yaml::locate_value(self.text, &refs).map_or(1, |(line, _)| line)
    }

    /// The text of the plain scalar written at `loc`, as the author wrote it
    /// (`1500.50`, not the `1500.5` the parser made of it), for hints.
    pub(crate) fn written(&self, loc: &Loc) -> Option<String> {
        let parts = loc.parts();
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let (line, column) = yaml::locate_value(self.text, &refs)?;
        let line_text = self.text.lines().nth(line.checked_sub(1)?)?;
        let rest: String = line_text.chars().skip(column.checked_sub(1)?).collect();
        let token: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}' | '#'))
            .collect();
        (!token.is_empty()).then_some(token)
    }
}

/// Walks a tree, recording every error (and warning) instead of stopping at
/// the first. Each reader returns `None` after recording why.
pub(crate) struct Checker<'a> {
    pub src: Src<'a>,
    pub errors: Vec<YamlError>,
    pub warnings: Vec<YamlError>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Checker<'a> {
        Checker {
            src: Src { file, text },
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error_value(&mut self, loc: &Loc, message: impl AsRef<str>) {
        let e = self.src.at_value(loc, message.as_ref());
        self.errors.push(e);
    }

    pub(crate) fn error_key(&mut self, loc: &Loc, message: impl AsRef<str>) {
        let e = self.src.at_key(loc, message.as_ref());
        self.errors.push(e);
    }

    pub(crate) fn warn_value(&mut self, loc: &Loc, message: impl AsRef<str>) {
        let e = self.src.at_value(loc, message.as_ref());
        self.warnings.push(e);
    }

    pub(crate) fn warn_key(&mut self, loc: &Loc, message: impl AsRef<str>) {
        let e = self.src.at_key(loc, message.as_ref());
        self.warnings.push(e);
    }

    /// "expected X, found Y", with a hint for the mistakes YAML invites.
    fn wrong_type(&mut self, v: &Value, loc: &Loc, expected: &str) {
        let message = match v {
            Value::Null => {
                format!("no value: expected {expected} (leave the key out to use the default)")
            }
            Value::Float(_) => {
                let written = self.src.written(loc).unwrap_or_else(|| v.describe());
                format!("expected {expected}, found the number {written}")
            }
            other => format!("expected {expected}, found {}", other.describe()),
        };
        self.error_value(loc, message);
    }

    /// A mapping. A document with nothing in it counts as an empty one.
    pub(crate) fn mapping<'v>(
        &mut self,
        v: &'v Value,
        loc: &Loc,
        expected: &str,
    ) -> Option<&'v [(String, Value)]> {
        match v {
            Value::Map(entries) => Some(entries),
            Value::Null if loc.is_root() => Some(&[]),
            other => {
                self.wrong_type(other, loc, expected);
                None
            }
        }
    }

    /// Reports every key of `entries` not in `allowed`. `elsewhere` may name
    /// a better reason for a key that is known but misplaced ("`limit` is a
    /// DAILY_CAP key").
    pub(crate) fn known_keys(
        &mut self,
        entries: &[(String, Value)],
        loc: &Loc,
        allowed: &[&str],
        elsewhere: impl Fn(&str) -> Option<String>,
    ) {
        for (key, _) in entries {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let message = match elsewhere(key) {
                Some(reason) => reason,
                None => match closest(key, allowed) {
                    Some(near) => format!("unknown key `{key}`: did you mean `{near}`?"),
                    None => format!(
                        "unknown key `{key}`; expected one of {}",
                        allowed
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            };
            self.error_key(&loc.key(key), message);
        }
    }

    /// A string. Plain numbers are taken as their digits (`act_1001` and
    /// `1001` are both ids); floats and booleans are refused, because their
    /// text is not what the parser kept.
    pub(crate) fn string(&mut self, v: &Value, loc: &Loc, expected: &str) -> Option<String> {
        match v {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(_) => {
                let written = self.src.written(loc).unwrap_or_else(|| v.describe());
                self.error_value(
                    loc,
                    format!(
                        "expected {expected}, found the number {written}: put it in quotes, like \"{written}\""
                    ),
                );
                None
            }
            other => {
                self.wrong_type(other, loc, expected);
                None
            }
        }
    }

    /// A string that must pass `parse`.
    pub(crate) fn parsed<T>(
        &mut self,
        v: &Value,
        loc: &Loc,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.string(v, loc, expected)?;
        match parse(&s) {
            Ok(t) => Some(t),
            Err(message) => {
                self.error_value(loc, message);
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, v: &Value, loc: &Loc) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(other, loc, "true or false");
                None
            }
        }
    }

    /// A whole number in `0..=max`.
    pub(crate) fn uint(&mut self, v: &Value, loc: &Loc, expected: &str, max: u64) -> Option<u64> {
        match v {
            Value::Int(i) => match u64::try_from(*i) {
                Ok(n) if n <= max => Some(n),
                _ => {
                    self.error_value(loc, format!("{i} is out of range: expected {expected}"));
                    None
                }
            },
            other => {
                self.wrong_type(other, loc, expected);
                None
            }
        }
    }

    /// An exact amount: a whole number, or a decimal in quotes. Floats are
    /// refused with the quoted form to write instead: money never goes
    /// through binary floating point, and the parser already did.
    pub(crate) fn amount(&mut self, v: &Value, loc: &Loc) -> Option<Decimal> {
        match v {
            Value::Int(i) if *i < 0 => {
                self.error_value(loc, format!("{i} is negative: amounts are 0 or more"));
                None
            }
            Value::Int(i) => match parse_decimal_amount(&i.to_string()) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error_value(loc, e.to_string());
                    None
                }
            },
            Value::Str(s) => match parse_decimal_amount(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error_value(
                        loc,
                        format!("{e}; write an amount like 1500 or \"1500.50\""),
                    );
                    None
                }
            },
            Value::Float(f) if f.is_finite() => {
                let written = self.src.written(loc).unwrap_or_else(|| f.to_string());
                self.error_value(
                    loc,
                    format!(
                        "{written} is a YAML float, and money never goes through floats: quote it, like \"{written}\""
                    ),
                );
                None
            }
            other => {
                self.wrong_type(other, loc, "an amount like 1500 or \"1500.50\"");
                None
            }
        }
    }

    /// A list (`[a, b]` or one `- item` per line).
    pub(crate) fn list<'v>(
        &mut self,
        v: &'v Value,
        loc: &Loc,
        expected: &str,
    ) -> Option<&'v [Value]> {
        match v {
            Value::Seq(items) => Some(items),
            Value::Str(s) => {
                self.error_value(
                    loc,
                    format!(
                        "expected {expected}, found the string {s:?}: write a list, like [{s}]"
                    ),
                );
                None
            }
            other => {
                self.wrong_type(other, loc, expected);
                None
            }
        }
    }

    /// A non-empty list of distinct strings, each passing `check`. Returns
    /// each with its index, so later checks can point at one item.
    pub(crate) fn names(
        &mut self,
        v: &Value,
        loc: &Loc,
        expected: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<(usize, String)>> {
        let items = self.list(v, loc, expected)?;
        if items.is_empty() {
            self.error_value(
                loc,
                "the list is empty: an empty list matches nothing (leave the key out instead)",
            );
            return None;
        }
        let mut out: Vec<(usize, String)> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = loc.index(i);
            let Some(name) = self.string(item, &at, "a name") else {
                ok = false;
                continue;
            };
            if let Err(message) = check(&name) {
                self.error_value(&at, message);
                ok = false;
                continue;
            }
            if out.iter().any(|(_, n)| *n == name) {
                self.error_value(&at, format!("`{name}` is listed twice"));
                ok = false;
                continue;
            }
            out.push((i, name));
        }
        ok.then_some(out)
    }
}

/// The allowed key within edit distance 2 of `key`, for "did you mean".
pub(crate) fn closest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, on chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = row.get(j).copied().unwrap_or(0) + 1;
            row.push(substitute.min(delete).min(insert));
        }
        prev = row;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        parse(Path::new("t.yaml"), text).unwrap()
    }

    #[test]
    fn scalars_keep_their_yaml_types() {
        let v =
            tree("a: 1500\nb: 1500.50\nc: \"1500.50\"\nd: true\ne:\nf: 0012\ng: 08:00\nh: yes\n");
        let Value::Map(entries) = v else {
            panic!("not a map")
        };
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(get("a"), Value::Int(1500));
        assert_eq!(get("b"), Value::Float(1500.5));
        assert_eq!(get("c"), Value::Str("1500.50".into()));
        assert_eq!(get("d"), Value::Bool(true));
        assert_eq!(get("e"), Value::Null);
        // YAML 1.2: a leading zero makes a string, so ids keep their zeros.
        assert_eq!(get("f"), Value::Str("0012".into()));
        assert_eq!(get("g"), Value::Str("08:00".into()));
        assert_eq!(get("h"), Value::Str("yes".into()));
    }

    #[test]
    fn empty_documents_are_null_and_errors_keep_positions() {
        assert_eq!(tree(""), Value::Null);
        assert_eq!(tree("# nothing\n"), Value::Null);
        let e = parse(Path::new("t.yaml"), "a: 1\na: 2\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        let e = parse(Path::new("t.yaml"), "a: [1\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse(Path::new("t.yaml"), "? [x]\n: 1\n").unwrap_err();
        assert!(e.message.contains("keys are plain names"), "{e}");
    }

    #[test]
    fn written_text_of_floats() {
        let text = "amount: { gte: 1500.50 }\nlist:\n  - 2.5 # c\n";
        let src = Src {
            file: Path::new("t.yaml"),
            text,
        };
        let loc = Loc::root().key("amount").key("gte");
        assert_eq!(src.written(&loc).as_deref(), Some("1500.50"));
        let loc = Loc::root().key("list").index(0);
        assert_eq!(src.written(&loc).as_deref(), Some("2.5"));
    }

    #[test]
    fn amounts_refuse_floats_with_a_hint() {
        let text = "a: 1500.50\nb: \"1500.50\"\nc: -3\nd: \"1e3\"\ne: 12\n";
        let v = tree(text);
        let Value::Map(entries) = v else {
            panic!("not a map")
        };
        let mut c = Checker::new(Path::new("p.yaml"), text);
        let root = Loc::root();
        let got: Vec<Option<Decimal>> = entries
            .iter()
            .map(|(k, v)| c.amount(v, &root.key(k)))
            .collect();
        assert_eq!(got[0], None);
        assert_eq!(got[1], Some(Decimal::new(150050, 2)));
        assert_eq!(got[2], None);
        assert_eq!(got[3], None);
        assert_eq!(got[4], Some(Decimal::new(12, 0)));
        let first = c.errors[0].to_string();
        assert_eq!(
            first,
            "p.yaml:1:4: a: 1500.50 is a YAML float, and money never goes through floats: quote it, like \"1500.50\""
        );
        assert_eq!((c.errors[1].line, c.errors[1].column), (3, 4));
        assert_eq!(c.errors.len(), 3);
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let text = "limt: 1\nzzzz: 2\n";
        let Value::Map(entries) = tree(text) else {
            panic!("not a map")
        };
        let mut c = Checker::new(Path::new("p.yaml"), text);
        c.known_keys(&entries, &Loc::root(), &["limit", "scope"], |_| None);
        assert_eq!(
            c.errors[0].to_string(),
            "p.yaml:1:1: limt: unknown key `limt`: did you mean `limit`?"
        );
        assert_eq!(
            c.errors[1].to_string(),
            "p.yaml:2:1: zzzz: unknown key `zzzz`; expected one of `limit`, `scope`"
        );
    }

    #[test]
    fn names_are_distinct_and_non_empty() {
        let text = "a: [x, y, x]\nb: []\nc: x\n";
        let Value::Map(entries) = tree(text) else {
            panic!("not a map")
        };
        let mut c = Checker::new(Path::new("p.yaml"), text);
        let root = Loc::root();
        for (k, v) in &entries {
            assert!(c.names(v, &root.key(k), "a list", |_| Ok(())).is_none());
        }
        let lines: Vec<(usize, usize)> = c.errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(lines, vec![(1, 11), (2, 4), (3, 4)]);
        assert!(c.errors[2].message.contains("write a list, like [x]"));
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("limit", "limit"), 0);
        assert_eq!(distance("limt", "limit"), 1);
        assert_eq!(distance("", "ab"), 2);
        assert_eq!(closest("scpoe", &["scope", "window"]), Some("scope"));
        assert_eq!(closest("x", &["a"]), None);
    }
}
