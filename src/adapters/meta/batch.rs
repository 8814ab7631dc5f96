//! Graph batch requests (research §2.5, §10 trap 16): the `batch`
//! parameter, "a JSON object consisting of an array of your requests",
//! given in the query string or the body, as form text (the Python SDK:
//! `batch=<json.dumps(list)>`) or as a JSON array (the Node SDK's JSON
//! body `{"batch":[…]}`).
//!
//! Each item is `{method, relative_url, body?, name?, depends_on?,
//! omit_response_on_success?, attached_files?, headers?}`. Its
//! `relative_url` may carry a version (`v25.0/act_1/adsets`) or not
//! (`act_1/adsets`, the Python SDK's), a trailing slash (`1202…777/`) and
//! a query; its `body` is form text, percent-encoded (Python) or raw
//! `k=v&k=v` (Node), whose values may themselves be JSON strings. Graph
//! takes at most 50 items.
//!
//! Reading is strict: the array and every item are read exactly or the
//! batch is unreadable, and a key twice anywhere is ambiguous. The reader
//! never panics and reads every item or none ([`read`]).

use crate::adapters::json::{self, Json};

use super::params::{ParamError, Val};

/// Graph's limit: "max 50 per batch" [FB-BATCH].
pub(super) const MAX_ITEMS: usize = 50;

/// The keys an item may have. `attachedFiles` is the Node SDK's spelling.
const ITEM_KEYS: &[&str] = &[
    "method",
    "relative_url",
    "body",
    "name",
    "depends_on",
    "omit_response_on_success",
    "attached_files",
    "attachedFiles",
    "headers",
];

/// One batch item, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    /// As written (`POST`, `post`).
    pub method: String,
    /// `relative_url` before any `?`, with a leading `/` added when it has
    /// none (`/act_1/adsets`, `/v25.0/1202/`).
    pub path: String,
    /// `relative_url` after the first `?`.
    pub query: Option<String>,
    /// The item's form body.
    pub body: Option<String>,
    /// Whether the item sets its own headers (which could change how Graph
    /// reads its body): such a write is not read.
    pub has_headers: bool,
}

fn ambiguous_or_unreadable(e: json::JsonError, what: &str) -> ParamError {
    let reason = format!("{what} is not readable JSON: {e}");
    if e.is_ambiguous() {
        ParamError::Ambiguous(reason)
    } else {
        ParamError::Unreadable(reason)
    }
}

/// Reads a `batch` parameter into its items, in order: all of them, or an
/// error naming the first item that cannot be read.
pub(super) fn read(value: &Val) -> Result<Vec<Item>, ParamError> {
    let json = match value {
        Val::Text(s) | Val::Json(Json::String(s)) => {
            json::parse(s.as_bytes()).map_err(|e| ambiguous_or_unreadable(e, "`batch`"))?
        }
        Val::Json(other) => other.clone(),
    };
    let Json::Array(items) = json else {
        return Err(ParamError::Unreadable(
            "`batch` is not a JSON array of requests".to_owned(),
        ));
    };
    if items.len() > MAX_ITEMS {
        return Err(ParamError::Unreadable(format!(
            "`batch` has {} requests; Graph takes at most {MAX_ITEMS}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item_of(item)
                .map_err(|reason| ParamError::Unreadable(format!("batch item {}: {reason}", i + 1)))
        })
        .collect()
}

fn string(item: &[(String, Json)], key: &str) -> Result<Option<String>, String> {
    match item.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` is not a string")),
    }
}

fn item_of(item: &Json) -> Result<Item, String> {
    let Json::Object(members) = item else {
        return Err("not a JSON object".to_owned());
    };
    if let Some((key, _)) = members
        .iter()
        .find(|(k, _)| !ITEM_KEYS.contains(&k.as_str()))
    {
        return Err(format!(
            "has {}, which leash does not know in a batch item",
            super::shown(key)
        ));
    }
    let method = string(members, "method")?.ok_or("has no `method`")?;
    let url = string(members, "relative_url")?.ok_or("has no `relative_url`")?;
    let body = string(members, "body")?;
    let has_headers = match members.iter().find(|(k, _)| k == "headers") {
        None | Some((_, Json::Null)) => false,
        Some((_, Json::Array(h))) => !h.is_empty(),
        Some(_) => true,
    };
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (url, None),
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    Ok(Item {
        method,
        path,
        query,
        body,
        has_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_python_sdks_batch_reads_item_by_item() {
        // research §2.5, decoded.
        let batch = r#"[{"body":"name=Spring%20sale&objective=OUTCOME_TRAFFIC&status=PAUSED&daily_budget=5000&special_ad_categories=%5B%5D","method":"POST","relative_url":"act_1234567890/campaigns"},{"body":"daily_budget=7500","method":"POST","relative_url":"120200000000000777/"}]"#;
        let items = read(&Val::Text(batch.into())).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].path, "/act_1234567890/campaigns");
        assert_eq!(items[0].method, "POST");
        assert!(items[0]
            .body
            .as_deref()
            .unwrap()
            .contains("daily_budget=5000"));
        assert_eq!(items[1].path, "/120200000000000777/");
        assert_eq!(items[1].query, None);
    }

    #[test]
    fn relative_urls_keep_their_query_and_version() {
        let batch =
            r#"[{"method":"GET","relative_url":"v25.0/act_1?fields=currency&access_token=x"}]"#;
        let items = read(&Val::Text(batch.into())).unwrap();
        assert_eq!(items[0].path, "/v25.0/act_1");
        assert_eq!(
            items[0].query.as_deref(),
            Some("fields=currency&access_token=x")
        );
    }

    #[test]
    fn odd_batches_are_refused_whole() {
        let unreadable = |b: &str| {
            let e = read(&Val::Text(b.into())).unwrap_err();
            assert!(matches!(e, ParamError::Unreadable(_)), "{b}: {e:?}");
        };
        unreadable("{}");
        unreadable("[1]");
        unreadable(r#"[{"relative_url":"act_1/adsets"}]"#);
        unreadable(r#"[{"method":"POST"}]"#);
        unreadable(r#"[{"method":"POST","relative_url":"x","body":{"a":1}}]"#);
        unreadable(r#"[{"method":"POST","relative_url":"x","bodyy":"a=1"}]"#);
        let many: Vec<String> = (0..51)
            .map(|_| r#"{"method":"GET","relative_url":"me"}"#.to_owned())
            .collect();
        unreadable(&format!("[{}]", many.join(",")));
        let e = read(&Val::Text(
            r#"[{"method":"POST","relative_url":"x","body":"a=1","body":"daily_budget=9"}]"#.into(),
        ))
        .unwrap_err();
        assert!(matches!(e, ParamError::Ambiguous(_)), "{e:?}");
    }

    proptest! {
        /// Never panics on any text.
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = read(&Val::Text(text));
        }

        /// Every well-formed item is read, in order, with its fields.
        #[test]
        fn every_item_is_read(items in prop::collection::vec(
            ("(GET|POST|DELETE)", "(v25\\.0/)?(act_[0-9]{1,5}/adsets|[0-9]{1,8}/?)", prop::option::of("[a-z_]{1,8}=[0-9]{1,6}")),
            0..=MAX_ITEMS,
        )) {
            let json: Vec<serde_json::Value> = items
                .iter()
                .map(|(m, u, b)| {
                    let mut o = serde_json::json!({"method": m, "relative_url": u});
                    if let Some(b) = b {
                        o["body"] = serde_json::json!(b);
                    }
                    o
                })
                .collect();
            let text = serde_json::to_string(&json).unwrap();
            let read = read(&Val::Text(text)).unwrap();
            prop_assert_eq!(read.len(), items.len());
            for (got, (m, u, b)) in read.iter().zip(&items) {
                prop_assert_eq!(&got.method, m);
                prop_assert_eq!(&got.path, &format!("/{u}"));
                prop_assert_eq!(&got.body, b);
            }
        }
    }
}
