//! A Graph call's parameters: the query string and the body read as one
//! set (research §2.2, §10 trap 1).
//!
//! Graph takes any parameter from the query string or the body, and the
//! body is form-encoded (facebook-python-business-sdk: `data=`, lists and
//! dicts as JSON strings) or JSON (facebook-nodejs-business-sdk). So a
//! call's parameters are the query's merged with the body's, and a name
//! given twice — twice in one part, or once in each — is ambiguous: leash
//! cannot know which copy Graph reads.

use std::collections::BTreeMap;

use crate::adapters::json::{self, Json};
use crate::adapters::Form;

/// One parameter's value: form text (which may hold JSON, as the Python
/// SDK sends lists and dicts), or a value of a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Val {
    Text(String),
    Json(Json),
}

/// Why a call's parameters cannot be read as one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParamError {
    /// Read two ways (a name twice, a field in the query and the body).
    Ambiguous(String),
    /// Not read at all (bad encoding, a body type Graph's fields are not
    /// read from).
    Unreadable(String),
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Form,
    Json,
}

/// The parameters of one call, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Params {
    map: BTreeMap<String, Val>,
}

/// Names as Graph's fields are spelled: letters, digits, `_`. A JSON key
/// with anything else (`"daily_budget "`) might be a second spelling of a
/// field to a lenient reader.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The encoding a `Content-Type` names: none or form-urlencoded is a form
/// (the Python SDK's, and Graph's batch item bodies), JSON is JSON (the
/// Node SDK's). Anything else (multipart with files) is not read.
pub(super) fn encoding(content_type: Option<&str>) -> Result<Encoding, String> {
    let Some(ct) = content_type else {
        return Ok(Encoding::Form);
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(Encoding::Form),
        "application/json" => Ok(Encoding::Json),
        _ => Err(format!(
            "the body is {}, which leash does not read Graph fields from (form or JSON)",
            super::shown(&media)
        )),
    }
}

fn form_error(e: crate::adapters::FormError) -> ParamError {
    let reason = format!("the parameters cannot be read: {e}");
    if e.is_ambiguous() {
        ParamError::Ambiguous(reason)
    } else {
        ParamError::Unreadable(reason)
    }
}

impl Params {
    /// Reads the query and the body (`encoding`) as one set.
    pub(super) fn read(
        query: Option<&str>,
        encoding: Encoding,
        body: &[u8],
    ) -> Result<Params, ParamError> {
        let mut map = BTreeMap::new();
        let body_is_empty = body.iter().all(u8::is_ascii_whitespace);
        match encoding {
            Encoding::Form => {
                let form = Form::parse_parts(query, body).map_err(form_error)?;
                for (name, value) in form.with_prefix("") {
                    // `expand[]`-style names may repeat in a form; Graph
                    // has no such fields, so a repeat is ambiguous here.
                    if map
                        .insert(name.to_owned(), Val::Text(value.to_owned()))
                        .is_some()
                    {
                        return Err(ParamError::Ambiguous(format!(
                            "`{}` is given more than once",
                            super::field(name)
                        )));
                    }
                }
            }
            Encoding::Json => {
                let q = Params::read(query, Encoding::Form, b"")?;
                map = q.map;
                if !body_is_empty {
                    let json = json::parse(body).map_err(|e| {
                        let reason = format!("the JSON body cannot be read: {e}");
                        if e.is_ambiguous() {
                            ParamError::Ambiguous(reason)
                        } else {
                            ParamError::Unreadable(reason)
                        }
                    })?;
                    let Json::Object(members) = json else {
                        return Err(ParamError::Unreadable(
                            "the JSON body is not an object of fields".to_owned(),
                        ));
                    };
                    for (name, value) in members {
                        if !plain_name(&name) {
                            return Err(ParamError::Ambiguous(format!(
                                "the JSON field name {} is not a plain Graph field name",
                                super::shown(&name)
                            )));
                        }
                        if map.contains_key(&name) {
                            return Err(ParamError::Ambiguous(format!(
                                "`{}` is in both the query string and the body",
                                super::field(&name)
                            )));
                        }
                        map.insert(name, Val::Json(value));
                    }
                }
            }
        }
        Ok(Params { map })
    }

    /// Reads a batch item's parameters: its `relative_url` query and its
    /// form-encoded `body` (percent-encoded by the Python SDK, raw
    /// `k=v&k=v` by the Node SDK: the same form grammar).
    pub(super) fn read_item(query: Option<&str>, body: Option<&str>) -> Result<Params, ParamError> {
        Params::read(
            query,
            Encoding::Form,
            body.map(str::as_bytes).unwrap_or(b""),
        )
    }

    /// Every parameter name, sorted.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub(super) fn get(&self, name: &str) -> Option<&Val> {
        self.map.get(name)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name) || self.nested(name)
    }

    /// Whether a field is given bracketed under `name` (`daily_budget[x]`).
    pub(super) fn nested(&self, name: &str) -> bool {
        let prefix = format!("{name}[");
        self.map
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// A copy without `name` (the outer call of a batch, without `batch`).
    pub(super) fn without(&self, name: &str) -> Params {
        let mut map = self.map.clone();
        map.remove(name);
        Params { map }
    }

    /// A scalar's text: form text, or a JSON string, number or boolean.
    /// An object or array where a scalar belongs is unreadable.
    pub(super) fn text(&self, name: &str) -> Result<Option<String>, ParamError> {
        if self.nested(name) && !self.map.contains_key(name) {
            return Err(ParamError::Unreadable(format!(
                "`{}` is given as bracketed fields, not as a value",
                super::field(name)
            )));
        }
        if self.nested(name) {
            return Err(ParamError::Ambiguous(format!(
                "`{}` is given both as a value and as bracketed fields",
                super::field(name)
            )));
        }
        match self.map.get(name) {
            None => Ok(None),
            Some(Val::Text(s)) => Ok(Some(s.clone())),
            Some(Val::Json(Json::String(s))) => Ok(Some(s.clone())),
            Some(Val::Json(Json::Number(n))) => Ok(Some(n.clone())),
            Some(Val::Json(Json::Bool(b))) => Ok(Some(b.to_string())),
            Some(Val::Json(_)) => Err(ParamError::Unreadable(format!(
                "`{}` is a JSON object or array, not a value",
                super::field(name)
            ))),
        }
    }

    /// A structured value: a JSON value of a JSON body, or form text that
    /// holds JSON (the Python SDK JSON-encodes lists and dicts, research
    /// §2.2). A key twice inside it is ambiguous.
    pub(super) fn json(&self, name: &str) -> Result<Option<Json>, ParamError> {
        if self.nested(name) {
            return Err(ParamError::Unreadable(format!(
                "`{}` is given as bracketed fields, which leash does not read",
                super::field(name)
            )));
        }
        match self.map.get(name) {
            None => Ok(None),
            Some(Val::Json(Json::String(s))) | Some(Val::Text(s)) => {
                json::parse(s.as_bytes()).map(Some).map_err(|e| {
                    let reason = format!("`{}` is not readable JSON: {e}", super::field(name));
                    if e.is_ambiguous() {
                        ParamError::Ambiguous(reason)
                    } else {
                        ParamError::Unreadable(reason)
                    }
                })
            }
            Some(Val::Json(other)) => Ok(Some(other.clone())),
        }
    }

    /// Whether `execution_options` asks Graph only to validate the call
    /// ([FB-CAMP]: `execution_options=["validate_only"]` executes nothing).
    /// Only a readable JSON list naming `validate_only` counts; anything
    /// else is read as the write it is.
    pub(super) fn validate_only(&self) -> bool {
        match self.json("execution_options") {
            Ok(Some(Json::Array(items))) => {
                items.iter().any(|i| i.as_str() == Some("validate_only"))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_form_body_are_one_set() {
        let p = Params::read(
            Some("access_token=t&x=1"),
            Encoding::Form,
            b"daily_budget=2000",
        )
        .unwrap();
        assert_eq!(p.text("daily_budget").unwrap().as_deref(), Some("2000"));
        assert_eq!(p.text("x").unwrap().as_deref(), Some("1"));
        let e =
            Params::read(Some("daily_budget=1"), Encoding::Form, b"daily_budget=2000").unwrap_err();
        assert!(matches!(e, ParamError::Ambiguous(_)), "{e:?}");
        let e =
            Params::read(None, Encoding::Form, b"daily_budget=1&daily_budget=2000").unwrap_err();
        assert!(matches!(e, ParamError::Ambiguous(_)), "{e:?}");
    }

    #[test]
    fn json_bodies_merge_with_the_query_and_refuse_overlap() {
        let p = Params::read(
            Some("access_token=t"),
            Encoding::Json,
            br#"{"daily_budget":2000,"name":"x","targeting":{"geo_locations":{"countries":["FR"]}}}"#,
        )
        .unwrap();
        assert_eq!(p.text("daily_budget").unwrap().as_deref(), Some("2000"));
        assert!(p.text("targeting").is_err());
        assert!(p.json("targeting").unwrap().is_some());
        let e = Params::read(
            Some("daily_budget=1"),
            Encoding::Json,
            br#"{"daily_budget":2000}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, ParamError::Ambiguous(r) if r.contains("both the query string and the body")),
            "{e:?}"
        );
        let e = Params::read(
            None,
            Encoding::Json,
            br#"{"daily_budget":1,"daily_budget":2}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ParamError::Ambiguous(_)), "{e:?}");
        let e = Params::read(None, Encoding::Json, br#"{"daily_budget ":1}"#).unwrap_err();
        assert!(matches!(e, ParamError::Ambiguous(_)), "{e:?}");
        let e = Params::read(None, Encoding::Json, b"[1]").unwrap_err();
        assert!(matches!(e, ParamError::Unreadable(_)), "{e:?}");
    }

    #[test]
    fn validate_only_needs_a_json_list_naming_it() {
        let p = |body: &str| Params::read(None, Encoding::Form, body.as_bytes()).unwrap();
        assert!(p("execution_options=%5B%22validate_only%22%5D").validate_only());
        assert!(
            p("execution_options=[\"include_recommendations\",\"validate_only\"]").validate_only()
        );
        assert!(!p("execution_options=validate_only").validate_only());
        assert!(!p("execution_options=[\"include_recommendations\"]").validate_only());
        assert!(!p("x=1").validate_only());
        let j = Params::read(
            None,
            Encoding::Json,
            br#"{"execution_options":["validate_only"]}"#,
        )
        .unwrap();
        assert!(j.validate_only());
    }

    #[test]
    fn bracketed_money_fields_are_not_values() {
        let p = Params::read(None, Encoding::Form, b"daily_budget[x]=5").unwrap();
        assert!(matches!(
            p.text("daily_budget"),
            Err(ParamError::Unreadable(_))
        ));
        assert!(p.has("daily_budget"));
    }
}
