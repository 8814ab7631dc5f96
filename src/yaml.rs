//! YAML with positions: every error reads `file:line:column: what is wrong`.
//!
//! This is the only module that names `serde_yaml`. That crate is deprecated;
//! keeping it behind one module makes a swap to a fork (serde_norway) a
//! one-line change, and gives every YAML file leash reads — `leash.yaml`,
//! policies, policy tests — the same error shape.
//!
//! Three things serde_yaml does not do on its own are done here:
//!
//! - **Positions for late errors.** serde_yaml stamps an error with a position
//!   only when it comes out of one of its own `deserialize_*` calls. An error
//!   raised *after* a value was read — `#[serde(try_from)]`, a
//!   `deserialize_with` helper that parses a `String` it got back, the value
//!   inside an `Option` — would otherwise get the position of the enclosing
//!   mapping, often line 1. [`from_str`] follows the key path while it reads and
//!   points such errors at the offending value.
//! - **Duplicate keys.** YAML forbids them, but serde's `BTreeMap` keeps the
//!   last one silently. Here any repeated key is an error at the repeat.
//! - **Positions after deserialization.** Cross-reference checks (a group
//!   naming an unknown person, two rules with one priority) run on typed values
//!   that have no positions; [`locate`] finds the spot again in the text.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

// The YAML parser. serde_norway (a maintained fork with the same API) can
// replace it here and in Cargo.toml.
use serde_yaml as backend;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess,
    SeqAccess, Visitor,
};

/// An error in a YAML file, with the position of the value or key at fault.
///
/// `line` and `column` are 1-based. They are 0 only when the error is not
/// about any place in the text, e.g. the file could not be read; `Display`
/// then leaves them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    /// An error at a known `(line, column)`.
    pub fn new(file: &Path, (line, column): (usize, usize), message: impl Into<String>) -> Self {
        YamlError {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about the key at `path`, or about the scalar `needle` under it
    /// (see [`locate`]); for checks that run after deserialization.
    ///
    /// When the spot cannot be found the error points at the nearest parent
    /// that can, and at line 1, column 1 as a last resort: a position that is
    /// a little off is still better than none.
    pub fn at(
        file: &Path,
        text: &str,
        path: &[&str],
        needle: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let pos = locate(text, path, needle).unwrap_or((1, 1));
        YamlError::new(file, pos, message)
    }

    /// Like [`YamlError::at`], but pointing at the value under `path` rather
    /// than its key: for "this value is wrong" rather than "this key is wrong".
    pub fn at_value(file: &Path, text: &str, path: &[&str], message: impl Into<String>) -> Self {
        let pos = locate_value(text, path).unwrap_or((1, 1));
        YamlError::new(file, pos, message)
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for YamlError {}

/// Reads a file as UTF-8 text; a failure is a [`YamlError`] naming the file.
pub fn read(path: &Path) -> Result<String, YamlError> {
    std::fs::read_to_string(path)
        .map_err(|e| YamlError::new(path, (0, 0), format!("cannot read: {e}")))
}

/// Reads and deserializes one YAML document from a file.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T, YamlError> {
    let text = read(path)?;
    from_str(path, &text)
}

/// Deserializes one YAML document; `file` is only used to name it in errors.
///
/// An empty document (or one holding only comments) deserializes as an
/// empty mapping would, so a `leash.yaml` with everything commented out is
/// valid.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, YamlError> {
    let track = Track::default();
    let de = Tracked {
        de: backend::Deserializer::from_str(text),
        path: Vec::new(),
        track: &track,
        keys: None,
    };
    T::deserialize(de).map_err(|err| {
        // A syntax error further down can surface as a type error where the
        // parser stopped (`n: [1` is "expected u32, found sequence"); the
        // syntax error is the real problem, so it wins.
        match backend::from_str::<IgnoredAny>(text) {
            Err(syntax) => convert(file, text, &syntax, &Track::default()),
            Ok(_) => convert(file, text, &err, &track),
        }
    })
}

/// Deserializes a scalar through `parse`, from inside serde_yaml's own read of
/// it, so that a failure is reported at the scalar itself.
///
/// Use it in `Deserialize` impls and `deserialize_with` helpers instead of
/// reading a `String` and parsing afterwards. `expecting` completes "invalid
/// type: ..., expected ___" when the value is not a scalar at all.
///
/// Unquoted numbers and booleans are scalars too: `port: 8080` reaches `parse`
/// as `"8080"`.
pub fn parse_scalar<'de, D, T, F>(
    deserializer: D,
    expecting: &'static str,
    parse: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct ScalarVisitor<F> {
        expecting: &'static str,
        parse: F,
    }
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for ScalarVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
        // Reached when the deserializer has already typed the scalar (not the
        // case for serde_yaml's `deserialize_str`, but cheap to support).
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
            self.visit_str(if v { "true" } else { "false" })
        }
    }
    deserializer.deserialize_str(ScalarVisitor { expecting, parse })
}

// ---------------------------------------------------------------------------
// Turning serde_yaml's error into a YamlError.

fn convert(file: &Path, text: &str, err: &backend::Error, track: &Track) -> YamlError {
    let mut message = err.to_string();
    let location = err.location().map(|l| (l.line(), l.column()));
    // serde_yaml appends " at line L column C" (libyaml errors put it in the
    // middle, before their context); we carry the position in fields instead.
    if let Some((line, column)) = location {
        let suffix = format!(" at line {line} column {column}");
        if let Some(at) = message.find(&suffix) {
            message.replace_range(at..at + suffix.len(), "");
        }
    }
    if let Some(stray) = track.stray.borrow_mut().take() {
        if message.contains(&stray.message) {
            return stray_error(file, text, message, location, stray);
        }
    }
    YamlError::new(file, location.unwrap_or((1, 1)), message)
}

/// The key named by serde's "unknown field `key`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// Re-aims an error that serde_yaml stamped with the enclosing mapping's
/// position at the value (or key) recorded while reading.
fn stray_error(
    file: &Path,
    text: &str,
    mut message: String,
    location: Option<(usize, usize)>,
    stray: Stray,
) -> YamlError {
    let mut names: Vec<String> = stray.path.iter().map(Seg::to_string).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut pos = if stray.key {
        locate(text, &refs, None)
    } else {
        locate_value(text, &refs)
    };
    // An internally tagged enum (`#[serde(tag = "type")]`) reads its whole
    // mapping first and checks the fields afterwards, so an unknown field
    // arrives here as an error about the mapping; find the key by its name.
    if let (false, Some(field)) = (stray.key, unknown_field(&stray.message)) {
        names.push(field.to_string());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        pos = probe(text, &refs, Target::Key).or(pos);
    }
    if !stray.key {
        // serde_yaml prefixed the path of the enclosing mapping; name the
        // value's own path instead, as it does for errors it places itself.
        let parent = render_path(&stray.path[..stray.path.len().saturating_sub(1)]);
        if let Some(rest) = message.strip_prefix(&format!("{parent}: ")) {
            message = rest.to_string();
        }
        if !stray.path.is_empty() {
            message = format!("{}: {message}", render_path(&stray.path));
        }
    }
    YamlError::new(file, pos.or(location).unwrap_or((1, 1)), message)
}

/// Renders a path the way serde_yaml does in its messages (`a.b[0].c`, or
/// `.` for the root), so prefixes can be matched and replaced.
fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => {
                if out.is_empty() {
                    out.push('.');
                }
                out.push_str(&format!("[{i}]"));
            }
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

// ---------------------------------------------------------------------------
// Following the key path while deserializing.
//
// `Tracked` wraps the real deserializer (and, recursively, every visitor,
// map and sequence it hands out) and forwards everything unchanged. It only
// watches: which key or index is being read, whether an error now unwinding
// came out of serde_yaml (which has placed it), and — when one did not — the
// path where it started.

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
    Unknown,
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "{i}"),
            // No key can be this, so locating it falls back to the parent.
            Seg::Unknown => f.write_str("\u{0}?"),
        }
    }
}

struct Stray {
    path: Vec<Seg>,
    /// Points at the key at `path` rather than its value.
    key: bool,
    /// The error's own message, to check that the error which finally comes
    /// out is this one and not a later one after this was caught.
    message: String,
}

#[derive(Default)]
struct Track {
    /// The error now unwinding came out of serde_yaml, which placed it.
    located: Cell<bool>,
    /// The last map key read, as text.
    key: RefCell<Option<String>>,
    /// The first error that serde_yaml did not place, and where it started.
    stray: RefCell<Option<Stray>>,
}

impl Track {
    fn record(&self, path: Vec<Seg>, key: bool, message: String) {
        if !self.located.get() {
            let mut stray = self.stray.borrow_mut();
            if stray.is_none() {
                *stray = Some(Stray { path, key, message });
            }
        }
        self.located.set(true);
    }
}

fn child(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut out = path.to_vec();
    out.push(seg);
    out
}

struct Tracked<'t, D> {
    de: D,
    path: Vec<Seg>,
    track: &'t Track,
    /// Set while reading a map key: the keys seen so far in that map.
    keys: Option<Rc<RefCell<HashSet<String>>>>,
}

impl<'t, D> Tracked<'t, D> {
    fn visitor<V>(&self, inner: V) -> TrackedVisitor<'t, V> {
        TrackedVisitor {
            inner,
            path: self.path.clone(),
            track: self.track,
            keys: self.keys.clone(),
        }
    }
}

/// Forwards `deserialize_*` calls that serde_yaml places errors for.
macro_rules! placed {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let track = self.track;
            let visitor = self.visitor(visitor);
            let result = self.de.$method($($arg,)* visitor);
            track.located.set(result.is_err());
            result
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tracked<'_, D> {
    type Error = D::Error;

    placed! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    // serde_yaml does not place errors that come out of these two: an error
    // from inside `Some(..)` or a newtype is as unplaced as it was.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor);
        self.de.deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor);
        self.de.deserialize_newtype_struct(name, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

struct TrackedVisitor<'t, V> {
    inner: V,
    path: Vec<Seg>,
    track: &'t Track,
    keys: Option<Rc<RefCell<HashSet<String>>>>,
}

impl<V> TrackedVisitor<'_, V> {
    /// While reading a map key: remembers it, and refuses a repeat. Raising
    /// the error here, inside serde_yaml's read of the key, places it there.
    fn key<E: de::Error>(&self, key: impl fmt::Display) -> Result<(), E> {
        if let Some(keys) = &self.keys {
            let key = key.to_string();
            *self.track.key.borrow_mut() = Some(key.clone());
            if !keys.borrow_mut().insert(key.clone()) {
                return Err(E::custom(format!(
                    "duplicate key `{key}`: each key may appear only once in a mapping"
                )));
            }
        }
        Ok(())
    }
}

/// Forwards scalar visits, remembering them when they are a map key.
macro_rules! scalars {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.key(&v)?;
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for TrackedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    scalars! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.inner.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.inner.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.inner.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, de: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_some(Tracked {
            de,
            path: self.path,
            track: self.track,
            keys: None,
        })
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, de: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_newtype_struct(Tracked {
            de,
            path: self.path,
            track: self.track,
            keys: None,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let state = Rc::new(SeqState::default());
        let result = self.inner.visit_seq(TrackedSeq {
            seq,
            path: self.path.clone(),
            track: self.track,
            state: Rc::clone(&state),
        });
        if let Err(err) = &result {
            // Raised by the visitor between elements (say, a repeat it does
            // not allow): blame the element it had just read.
            if let (false, Some(last)) = (state.ended.get(), state.count.get().checked_sub(1)) {
                let path = child(&self.path, Seg::Index(last));
                self.track.record(path, true, err.to_string());
            }
        }
        result
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let state = Rc::new(MapState::default());
        let result = self.inner.visit_map(TrackedMap {
            map,
            path: self.path.clone(),
            track: self.track,
            state: Rc::clone(&state),
        });
        if let Err(err) = &result {
            // Raised by the visitor right after reading a key (a repeat after
            // normalising it, say): blame that key. An error at the end of the
            // map (a missing field) is about the map, where serde_yaml puts it.
            if !state.ended.get() {
                if let Some(key) = state.last.borrow_mut().take() {
                    let path = child(&self.path, Seg::Key(key));
                    self.track.record(path, true, err.to_string());
                }
            }
        }
        result
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

#[derive(Default)]
struct SeqState {
    count: Cell<usize>,
    ended: Cell<bool>,
}

struct TrackedSeq<'t, A> {
    seq: A,
    path: Vec<Seg>,
    track: &'t Track,
    state: Rc<SeqState>,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for TrackedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let index = self.state.count.get();
        let seed = TrackedSeed {
            seed,
            path: child(&self.path, Seg::Index(index)),
            track: self.track,
        };
        let next = self.seq.next_element_seed(seed)?;
        match next {
            Some(_) => self.state.count.set(index + 1),
            None => self.state.ended.set(true),
        }
        Ok(next)
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

#[derive(Default)]
struct MapState {
    keys: Rc<RefCell<HashSet<String>>>,
    last: RefCell<Option<String>>,
    ended: Cell<bool>,
}

struct TrackedMap<'t, A> {
    map: A,
    path: Vec<Seg>,
    track: &'t Track,
    state: Rc<MapState>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TrackedMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        *self.track.key.borrow_mut() = None;
        let seed = KeySeed {
            seed,
            path: self.path.clone(),
            track: self.track,
            keys: Rc::clone(&self.state.keys),
        };
        let next = self.map.next_key_seed(seed);
        let key = self.track.key.borrow_mut().take();
        *self.state.last.borrow_mut() = key;
        match next {
            Ok(None) => {
                self.state.ended.set(true);
                Ok(None)
            }
            other => other,
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let seg = match self.state.last.borrow().as_ref() {
            Some(key) => Seg::Key(key.clone()),
            None => Seg::Unknown,
        };
        let seed = TrackedSeed {
            seed,
            path: child(&self.path, seg),
            track: self.track,
        };
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// Reads one value (a map value or a sequence element) at `path`, and records
/// `path` if its error was raised after serde_yaml had finished with it.
struct TrackedSeed<'t, S> {
    seed: S,
    path: Vec<Seg>,
    track: &'t Track,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for TrackedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        let track = self.track;
        let path = self.path.clone();
        let result = self.seed.deserialize(Tracked {
            de,
            path: self.path,
            track,
            keys: None,
        });
        if let Err(err) = &result {
            track.record(path, false, err.to_string());
        }
        result
    }
}

/// Reads one map key, remembering its text (see `TrackedVisitor::key`).
struct KeySeed<'t, S> {
    seed: S,
    path: Vec<Seg>,
    track: &'t Track,
    keys: Rc<RefCell<HashSet<String>>>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        let track = self.track;
        let path = self.path;
        let result = self.seed.deserialize(Tracked {
            de,
            path: path.clone(),
            track,
            keys: Some(self.keys),
        });
        if let Err(err) = &result {
            // A key type that rejects the key after reading it.
            let seg = match track.key.borrow().as_ref() {
                Some(key) => Seg::Key(key.clone()),
                None => Seg::Unknown,
            };
            track.record(child(&path, seg), true, err.to_string());
        }
        result
    }
}

// ---------------------------------------------------------------------------
// Finding positions again after deserialization.

/// Finds the position (1-based line, column) of the key at `path`, or, with
/// `needle`, of the scalar `needle` anywhere under `path` (a list item, a
/// mapping key or value, or the value itself).
///
/// Path segments are mapping keys; under a sequence they are item indices
/// (`["notify", "1", "url"]`). Block and flow style are both understood —
/// `partners: [alex, sam]`, `ca: { cert: a, key: b }` — because the search is
/// done by the same YAML parser that read the file, not by scanning lines.
///
/// When the exact spot is not there, the position of the nearest parent key
/// that is (and finally of the document itself) is returned instead. `None`
/// only when not even the document's first node can be read.
pub fn locate(text: &str, path: &[&str], needle: Option<&str>) -> Option<(usize, usize)> {
    let exact = match needle {
        Some(needle) => probe(text, path, Target::Needle(needle)),
        None => probe(text, path, Target::Key),
    };
    exact.or_else(|| parents(text, path, needle.is_some()))
}

/// Finds the position of the value at `path`: the scalar itself, or the first
/// key (or `-`, `{`, `[`) of a collection. Falls back like [`locate`].
pub fn locate_value(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    probe(text, path, Target::Value).or_else(|| parents(text, path, true))
}

/// Tries `path` itself (when `include_self`) and then each parent, as keys.
fn parents(text: &str, path: &[&str], include_self: bool) -> Option<(usize, usize)> {
    let longest = if include_self {
        path.len()
    } else {
        path.len().saturating_sub(1)
    };
    (0..=longest)
        .rev()
        .find_map(|n| probe(text, &path[..n], Target::Key))
}

/// Whether a key is written at `path` (no fallback to parents).
pub fn has_key(text: &str, path: &[&str]) -> bool {
    !path.is_empty() && probe(text, path, Target::Key).is_some()
}

/// The sentinel error a probe raises when it has reached its target: raising
/// it from inside serde_yaml's read of that node makes serde_yaml stamp it
/// with the node's exact position.
const FOUND: &str = "\u{1}leash-yaml-found\u{1}";

#[derive(Clone, Copy)]
enum Target<'a> {
    Key,
    Value,
    Needle(&'a str),
}

fn probe(text: &str, path: &[&str], target: Target<'_>) -> Option<(usize, usize)> {
    let de = backend::Deserializer::from_str(text);
    match (Probe { path, target }).deserialize(de) {
        Ok(()) => None,
        Err(err) if err.to_string().contains(FOUND) => {
            err.location().map(|l| (l.line(), l.column()))
        }
        Err(_) => None,
    }
}

fn found<E: de::Error>() -> E {
    E::custom(FOUND)
}

#[derive(Clone, Copy)]
struct Probe<'p> {
    path: &'p [&'p str],
    target: Target<'p>,
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl Probe<'_> {
    /// A scalar reached by the walk: the target itself, or a needle candidate.
    fn scalar<E: de::Error>(&self, text: &dyn fmt::Display) -> Result<(), E> {
        match (self.path.is_empty(), self.target) {
            (true, Target::Key | Target::Value) => Err(found()),
            (true, Target::Needle(needle)) if text.to_string() == needle => Err(found()),
            _ => Ok(()),
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(&v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(&"~")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar(&"~")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((head, rest)) = self.path.split_first() else {
            if let Target::Needle(_) = self.target {
                while seq.next_element_seed(Probe { ..self })?.is_some() {}
                return Ok(());
            }
            return Err(found());
        };
        let wanted = head.parse::<usize>().ok();
        let mut index = 0;
        loop {
            let more = if Some(index) == wanted {
                let target = match (rest.is_empty(), self.target) {
                    // An item has no key; its own position stands for it.
                    (true, Target::Key) => Target::Value,
                    (_, target) => target,
                };
                seq.next_element_seed(Probe { path: rest, target })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((head, rest)) = self.path.split_first() else {
            if let Target::Needle(needle) = self.target {
                while map
                    .next_key_seed(KeyIs {
                        name: needle,
                        found: true,
                    })?
                    .is_some()
                {
                    map.next_value_seed(Probe { ..self })?;
                }
                return Ok(());
            }
            return Err(found());
        };
        let last = rest.is_empty() && matches!(self.target, Target::Key);
        while let Some(matched) = map.next_key_seed(KeyIs {
            name: head,
            found: last,
        })? {
            if matched {
                map.next_value_seed(Probe {
                    path: rest,
                    target: self.target,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads a map key: `Ok(true)` when it is `name`, or the sentinel error when
/// it is `name` and the key itself is what we are looking for.
struct KeyIs<'p> {
    name: &'p str,
    found: bool,
}

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl KeyIs<'_> {
    fn check<E: de::Error>(&self, key: &dyn fmt::Display) -> Result<bool, E> {
        let matched = key.to_string() == self.name;
        if matched && self.found {
            return Err(found());
        }
        Ok(matched)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.check(&v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.check(&"~")
    }
    // A collection used as a key: never what a path names; skip it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        odd: Option<Odd>,
        #[serde(default)]
        map: BTreeMap<String, u32>,
        #[serde(default)]
        need: Option<Need>,
        #[serde(default, deserialize_with = "late")]
        late: u32,
        #[serde(default, deserialize_with = "early")]
        early: u32,
        #[serde(default, deserialize_with = "no_repeats")]
        counts: BTreeMap<String, u32>,
        #[serde(default, deserialize_with = "no_repeats_late")]
        totals: BTreeMap<String, u32>,
        #[serde(default, deserialize_with = "distinct")]
        distinct: Vec<String>,
        #[serde(default)]
        odd_keys: BTreeMap<Odd, u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        a: u32,
        #[serde(default)]
        odd: Option<Odd>,
        #[serde(default)]
        list: Vec<Odd>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Tunnel,
        Deny,
    }

    /// Rejects strings starting with `x` after reading them: the kind of
    /// error serde_yaml alone places at the enclosing mapping.
    #[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(try_from = "String")]
    #[allow(dead_code)]
    struct Odd(String);

    impl TryFrom<String> for Odd {
        type Error = String;
        fn try_from(s: String) -> Result<Self, String> {
            match s.strip_prefix('x') {
                Some(_) => Err(format!("`{s}` starts with x")),
                None => Ok(Odd(s)),
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Need {
        need: u32,
    }

    /// A `deserialize_with` helper that parses after reading.
    fn late<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| de::Error::custom("late: not a number"))
    }

    /// The same, written with `parse_scalar`.
    fn early<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        parse_scalar(d, "a number", |s| {
            s.parse().map_err(|_| "early: not a number".to_string())
        })
    }

    /// A map visitor that refuses keys equal but for case, as it reads.
    fn no_repeats<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u32>, D::Error> {
        struct NoRepeats;
        impl<'de> Visitor<'de> for NoRepeats {
            type Value = BTreeMap<String, u32>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, u32>()? {
                    if out.insert(k.to_lowercase(), v).is_some() {
                        return Err(de::Error::custom(format!("{k} twice")));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(NoRepeats)
    }

    /// A sequence visitor that refuses a repeat as it reads.
    fn distinct<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        struct Distinct;
        impl<'de> Visitor<'de> for Distinct {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<String> = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    if out.contains(&item) {
                        return Err(de::Error::custom(format!("{item} again")));
                    }
                    out.push(item);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Distinct)
    }

    /// The same check after reading the whole map.
    fn no_repeats_late<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u32>, D::Error> {
        let raw = BTreeMap::<String, u32>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            if out.insert(k.to_lowercase(), v).is_some() {
                return Err(de::Error::custom(format!("{k} twice")));
            }
        }
        Ok(out)
    }

    fn err(text: &str) -> YamlError {
        match from_str::<Doc>(Path::new("t.yaml"), text) {
            Ok(doc) => panic!("expected an error for {text:?}, got {doc:?}"),
            Err(e) => e,
        }
    }

    fn at(text: &str) -> (usize, usize, String) {
        let e = err(text);
        (e.line, e.column, e.message)
    }

    #[test]
    fn display_is_file_line_column_message() {
        let e = YamlError::new(Path::new("dir/leash.yaml"), (3, 7), "bad");
        assert_eq!(e.to_string(), "dir/leash.yaml:3:7: bad");
        let e = YamlError::new(Path::new("gone.yaml"), (0, 0), "cannot read: nope");
        assert_eq!(e.to_string(), "gone.yaml: cannot read: nope");
    }

    #[test]
    fn valid_and_empty_documents() {
        let doc: Doc = from_str(Path::new("t"), "port: 80\nmap: { a: 1 }\n").unwrap();
        assert_eq!(doc.port, Some(80));
        assert_eq!(doc.map["a"], 1);
        for text in ["", "\n", "# only a comment\n", "---\n"] {
            let doc: Doc = from_str(Path::new("t"), text).unwrap();
            assert!(doc.port.is_none() && doc.map.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn unknown_field_points_at_the_key() {
        let (l, c, m) = at("port: 1\nbogus: 2\n");
        assert_eq!((l, c), (2, 1));
        assert!(
            m.starts_with("unknown field `bogus`, expected one of `port`"),
            "{m}"
        );
        assert!(!m.contains("at line"), "{m}");

        let (l, c, m) = at("inner:\n  a: 1\n  zz: 2\n");
        assert_eq!((l, c), (3, 3));
        assert_eq!(
            m,
            "inner: unknown field `zz`, expected one of `a`, `odd`, `list`"
        );

        let (l, c, _) = at("inner: { a: 1, zz: 2 }\n");
        assert_eq!((l, c), (1, 16));
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let (l, c, m) = at("inner:\n  a: hello\n");
        assert_eq!((l, c), (2, 6));
        assert_eq!(m, "inner.a: invalid type: string \"hello\", expected u32");
        let (l, c, m) = at("port: [1, 2]\n");
        assert_eq!((l, c), (1, 7));
        assert!(m.contains("invalid type: sequence"), "{m}");
    }

    #[test]
    fn bad_enum_variant_points_at_the_value() {
        let (l, c, m) = at("port: 1\nmode: maybe\n");
        assert_eq!((l, c), (2, 7));
        assert_eq!(
            m,
            "mode: unknown variant `maybe`, expected `tunnel` or `deny`"
        );
    }

    #[test]
    fn custom_errors_point_at_the_value() {
        // parse_scalar: raised inside serde_yaml's read, placed by serde_yaml.
        assert_eq!(
            at("port: 1\nearly: abc\n"),
            (2, 8, "early: early: not a number".to_string())
        );
        // deserialize_with that parses after reading: placed by the tracker.
        assert_eq!(
            at("port: 1\nlate: abc\n"),
            (2, 7, "late: late: not a number".to_string())
        );
        // try_from, at the top level, in an Option.
        assert_eq!(
            at("port: 1\nodd: xyz\n"),
            (2, 6, "odd: `xyz` starts with x".to_string())
        );
        // Nested in a block mapping.
        assert_eq!(
            at("inner:\n  a: 1\n  odd: xa\n"),
            (3, 8, "inner.odd: `xa` starts with x".to_string())
        );
        // Items of flow and block sequences.
        assert_eq!(
            at("inner:\n  list: [ok, xb]\n"),
            (2, 14, "inner.list[1]: `xb` starts with x".to_string())
        );
        assert_eq!(
            at("inner:\n  list:\n    - ok\n    - xc\n"),
            (4, 7, "inner.list[1]: `xc` starts with x".to_string())
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Rule {
        DailyCap { priority: u32, limit: u32 },
        AmountThreshold { priority: u32 },
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Stack {
        rules: Vec<Rule>,
    }

    #[test]
    fn internally_tagged_enums() {
        let stack = |text: &str| match from_str::<Stack>(Path::new("p.yaml"), text) {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => (e.line, e.column, e.message),
        };
        // The tag is read first, at its own position.
        let (l, c, m) = stack("rules:\n  - type: NOPE\n    priority: 1\n");
        assert_eq!((l, c), (2, 11));
        assert!(
            m.starts_with("rules[0].type: unknown variant `NOPE`"),
            "{m}"
        );
        // Unknown fields are found again by name.
        let (l, c, m) = stack(
            "rules:\n  - type: AMOUNT_THRESHOLD\n    priority: 1\n  - type: DAILY_CAP\n    priority: 2\n    limit: 5\n    bogus: 1\n",
        );
        assert_eq!((l, c), (7, 5));
        assert_eq!(
            m,
            "rules[1]: unknown field `bogus`, expected `priority` or `limit`"
        );
        // A limit: serde reports other errors inside a tagged variant without
        // the field, so they point at the start of the item.
        let (l, c, m) = stack("rules:\n  - type: DAILY_CAP\n    priority: 1\n    limit: lots\n");
        assert_eq!((l, c), (2, 5));
        assert_eq!(m, "rules[0]: invalid type: string \"lots\", expected u32");
    }

    #[test]
    fn missing_field_points_at_the_mapping() {
        let (l, c, m) = at("port: 1\nneed: { other: 1 }\n");
        assert_eq!((l, c), (2, 7));
        assert_eq!(m, "need: missing field `need`");
    }

    #[test]
    fn duplicate_keys_point_at_the_repeat() {
        let (l, c, m) = at("port: 1\nmap:\n  a: 1\n  b: 2\n  a: 3\n");
        assert_eq!((l, c), (5, 3));
        assert!(m.starts_with("map: duplicate key `a`"), "{m}");
        let (l, c, m) = at("port: 1\nport: 2\n");
        assert_eq!((l, c), (2, 1));
        assert!(m.starts_with("duplicate key `port`"), "{m}");
    }

    #[test]
    fn visitor_errors_after_a_key_point_at_that_key() {
        let (l, c, m) = at("counts:\n  a: 1\n  A: 2\n");
        assert_eq!((l, c, m.as_str()), (3, 3, "counts: A twice"));
        // Checked after the whole map was read: the map is what is wrong.
        let (l, c, m) = at("totals:\n  a: 1\n  A: 2\n");
        assert_eq!((l, c, m.as_str()), (2, 3, "totals: a twice"));
    }

    #[test]
    fn errors_between_items_and_in_keys() {
        let (l, c, m) = at("distinct:\n  - a\n  - b\n  - a\n  - c\n");
        assert_eq!((l, c, m.as_str()), (4, 5, "distinct: a again"));
        let (l, c, m) = at("odd_keys:\n  fine: 1\n  xkey: 2\n");
        assert_eq!((l, c, m.as_str()), (3, 3, "odd_keys: `xkey` starts with x"));
    }

    #[test]
    fn syntax_errors_win_over_type_errors() {
        let (l, c, m) = at("port: [1\n");
        assert_eq!((l, c), (2, 1));
        assert!(m.starts_with("did not find expected ',' or ']'"), "{m}");
        let (l, c, m) = at("port: 1\n\tinner: 2\n");
        assert_eq!((l, c), (2, 1));
        assert!(m.contains("tab"), "{m}");
        let (_, _, m) = at("port: 1\n---\nport: 2\n");
        assert!(m.contains("more than one document"), "{m}");
    }

    #[test]
    fn from_file_names_an_unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.yaml");
        let e = from_file::<Doc>(&path).unwrap_err();
        assert_eq!((e.line, e.column), (0, 0));
        assert_eq!(e.file, path);
        assert!(e
            .to_string()
            .starts_with(&format!("{}: cannot read:", path.display())));

        let path = dir.path().join("ok.yaml");
        std::fs::write(&path, "port: 9\nbogus: 1\n").unwrap();
        let e = from_file::<Doc>(&path).unwrap_err();
        assert_eq!(e.file, path);
        assert_eq!((e.line, e.column), (2, 1));
    }

    const SAMPLE: &str = r#"# leash.yaml
listen: 127.0.0.1:8080
ca: { cert: certs/a.pem, key: "certs/b.key" }
agents:
  growth-agent: { token_sha256: "abcd" }
approvers:
  people:
    maya: { slack: U1 }
    'quoted name': { slack: U2 }
  groups:
    partners: [alex, sam]
    leads:
      - maya
      - bob   # a comment
rules:
  - priority: 10
    approvers: [maya]
  - { priority: 20, type: DAILY_CAP }
"#;

    #[test]
    fn locate_block_keys() {
        assert_eq!(locate(SAMPLE, &["listen"], None), Some((2, 1)));
        assert_eq!(
            locate(SAMPLE, &["approvers", "groups"], None),
            Some((10, 3))
        );
        assert_eq!(
            locate(SAMPLE, &["approvers", "groups", "leads"], None),
            Some((12, 5))
        );
        assert_eq!(
            locate(SAMPLE, &["approvers", "people", "quoted name"], None),
            Some((9, 5))
        );
    }

    #[test]
    fn locate_inside_flow_collections() {
        assert_eq!(locate(SAMPLE, &["ca", "key"], None), Some((3, 26)));
        assert_eq!(locate(SAMPLE, &["ca"], Some("certs/b.key")), Some((3, 31)));
        assert_eq!(
            locate(SAMPLE, &["agents", "growth-agent", "token_sha256"], None),
            Some((5, 19))
        );
        assert_eq!(
            locate(SAMPLE, &["approvers", "groups", "partners"], Some("sam")),
            Some((11, 22))
        );
    }

    #[test]
    fn locate_in_block_sequences_and_by_index() {
        assert_eq!(
            locate(SAMPLE, &["approvers", "groups", "leads"], Some("bob")),
            Some((14, 9))
        );
        assert_eq!(locate(SAMPLE, &["rules", "1"], None), Some((18, 5)));
        assert_eq!(
            locate(SAMPLE, &["rules", "1", "priority"], None),
            Some((18, 7))
        );
        assert_eq!(
            locate(SAMPLE, &["rules", "0", "priority"], None),
            Some((16, 5))
        );
        assert_eq!(
            locate(SAMPLE, &["rules", "0", "approvers"], Some("maya")),
            Some((17, 17))
        );
        assert_eq!(
            locate_value(SAMPLE, &["rules", "1", "type"]),
            Some((18, 27))
        );
    }

    #[test]
    fn locate_values() {
        assert_eq!(locate_value(SAMPLE, &["listen"]), Some((2, 9)));
        assert_eq!(locate_value(SAMPLE, &["ca", "cert"]), Some((3, 13)));
        assert_eq!(
            locate_value(SAMPLE, &["approvers", "groups", "partners", "1"]),
            Some((11, 22))
        );
    }

    #[test]
    fn locate_falls_back_to_the_nearest_parent() {
        // Missing needle: the key it was looked for under.
        assert_eq!(
            locate(SAMPLE, &["approvers", "groups", "partners"], Some("zoe")),
            Some((11, 5))
        );
        // Missing key: its parent.
        assert_eq!(
            locate(SAMPLE, &["approvers", "people", "nobody"], None),
            Some((7, 3))
        );
        assert_eq!(
            locate(SAMPLE, &["rules", "7", "priority"], None),
            Some((15, 1))
        );
        assert_eq!(locate_value(SAMPLE, &["nothing", "here"]), Some((2, 1)));
        // Nothing on the path: the document.
        assert_eq!(locate(SAMPLE, &["nothing"], None), Some((2, 1)));
    }

    #[test]
    fn locate_never_panics_on_odd_input() {
        assert_eq!(locate("key: [unclosed", &["key"], None), Some((1, 1)));
        assert_eq!(locate("", &["a"], None), Some((1, 1)));
        assert_eq!(locate("- a\n- b\n", &["x"], None), Some((1, 1)));
        assert_eq!(locate("- a\n- b\n", &["1"], None), Some((2, 3)));
        assert_eq!(locate("scalar", &["a", "b"], Some("c")), Some((1, 1)));
        assert_eq!(
            locate("a: &x { b: 1 }\nc: *x\n", &["c", "b"], None),
            Some((1, 9))
        );
        assert_eq!(
            locate("? [complex]\n: 1\nk: 2\n", &["k"], None),
            Some((3, 1))
        );
    }

    #[test]
    fn has_key_is_exact() {
        assert!(has_key(SAMPLE, &["ca", "cert"]));
        assert!(!has_key(SAMPLE, &["ca", "chain"]));
        assert!(!has_key(SAMPLE, &[]));
    }

    #[test]
    fn error_helpers_use_locate() {
        let e = YamlError::at(
            Path::new("l.yaml"),
            SAMPLE,
            &["approvers", "groups", "leads"],
            Some("bob"),
            "group `leads` names `bob`, who is not in approvers.people",
        );
        assert_eq!(
            e.to_string(),
            "l.yaml:14:9: group `leads` names `bob`, who is not in approvers.people"
        );
        let e = YamlError::at_value(Path::new("l.yaml"), SAMPLE, &["listen"], "taken");
        assert_eq!((e.line, e.column), (2, 9));
        let e = YamlError::at(Path::new("l.yaml"), "", &["x"], None, "m");
        assert_eq!((e.line, e.column), (1, 1));
    }
}
