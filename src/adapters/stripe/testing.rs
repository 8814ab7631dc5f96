//! Helpers for the Stripe adapter's unit tests: requests as stripe-python
//! sends them, and a stand-in for the proxy's lookup rounds.

use super::{classify, StripeAdapter};
use crate::adapters::json;
use crate::adapters::Adapter;
use crate::intent::{Classification, Facts, IntentDraft, RequestView};

pub(super) const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
pub(super) const JSON: Option<&str> = Some("application/json");

/// `facts` by path: a JSON body, or `!why` for a failed lookup.
pub(super) fn facts(list: &[(&str, &str)]) -> Facts {
    let mut known = Facts::default();
    for (at, body) in list {
        let got = match body.strip_prefix('!') {
            Some(failure) => Err(failure.to_string()),
            None => json::parse(body.as_bytes()).map_err(|e| e.to_string()),
        };
        known.insert(at.to_string(), got);
    }
    known
}

pub(super) fn request<'a>(
    path: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
    facts: &'a Facts,
) -> RequestView<'a> {
    RequestView {
        method: "POST",
        host: "api.stripe.com",
        path,
        query: None,
        content_type,
        idempotency_key: Some("idem-1"),
        account: None,
        headers: &[],
        body,
        facts,
    }
}

/// A form POST classified with `known` already looked up.
pub(super) fn post_with(path: &str, body: &str, known: &[(&str, &str)]) -> Classification {
    let known = facts(known);
    classify(&request(path, FORM, body.as_bytes(), &known))
}

/// The paths the adapter asks to GET for a form POST, given `known`.
pub(super) fn lookups_for(path: &str, body: &str, known: &[(&str, &str)]) -> Vec<String> {
    let known = facts(known);
    StripeAdapter
        .lookups(&request(path, FORM, body.as_bytes(), &known))
        .into_iter()
        .map(|l| l.path)
        .collect()
}

/// What the proxy does: up to three rounds of lookups answered from
/// `vendor` (a path it does not have answers 404), then the classification.
/// Returns it with every path that was looked up, in order.
pub(super) fn decided_as(
    path: &str,
    content_type: Option<&str>,
    body: &str,
    vendor: &[(&str, &str)],
) -> (Classification, Vec<String>) {
    let mut known = Facts::default();
    let mut asked = Vec::new();
    for _ in 0..3 {
        let wanted: Vec<String> = StripeAdapter
            .lookups(&request(path, content_type, body.as_bytes(), &known))
            .into_iter()
            .map(|l| l.path)
            .filter(|p| !known.has(p))
            .collect();
        if wanted.is_empty() {
            break;
        }
        for at in wanted {
            let got = match vendor.iter().find(|(p, _)| *p == at) {
                Some((_, body)) => json::parse(body.as_bytes()).map_err(|e| e.to_string()),
                None => Err(format!(
                    "the lookup GET {at} failed: stripe answered 404 Not Found"
                )),
            };
            known.insert(at.clone(), got);
            asked.push(at);
        }
    }
    let c = classify(&request(path, content_type, body.as_bytes(), &known));
    (c, asked)
}

/// [`decided_as`] for a form body, without the list of lookups.
pub(super) fn decided(path: &str, body: &str, vendor: &[(&str, &str)]) -> Classification {
    decided_as(path, FORM, body, vendor).0
}

pub(super) fn one(c: &Classification) -> &IntentDraft {
    match c {
        Classification::Spend(d) if d.len() == 1 => &d[0],
        other => panic!("expected one spend intent, got {other:?}"),
    }
}

pub(super) fn amount(c: &Classification) -> String {
    one(c)
        .amount
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

pub(super) fn reason(c: &Classification) -> &str {
    match c {
        Classification::Unreadable { reason, .. }
        | Classification::Unknown { reason, .. }
        | Classification::Ambiguous { reason, .. } => reason,
        other => panic!("expected unreadable/unknown/ambiguous, got {other:?}"),
    }
}

/// `c` is of `kind` and its reason mentions every one of `needles`.
#[track_caller]
pub(super) fn assert_is(c: &Classification, kind: &str, needles: &[&str]) {
    assert_eq!(c.kind(), kind, "{c:?}");
    for needle in needles {
        assert!(
            reason(c).contains(needle),
            "{needle:?} not in {:?}",
            reason(c)
        );
    }
}

/// The source recorded for `field`.
#[track_caller]
pub(super) fn source<'c>(c: &'c Classification, field: &str) -> &'c str {
    let d = one(c);
    match d.sources.get(field) {
        Some(s) => s,
        None => panic!("no source for {field:?} in {:?}", d.sources),
    }
}
