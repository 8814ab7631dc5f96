//! Custom vendors (SPEC §4.4): an API declared in `leash.yaml` instead of
//! written in Rust. Ops teams name the hosts, and for each money-moving
//! operation its method, path pattern, body format and where the amount,
//! currency, beneficiary, category and idempotency key are.
//!
//! What is not declared is not guessed: a read (GET, HEAD, OPTIONS) is
//! safe, a write that matches no declared operation is `unknown`, and a
//! declared operation whose amount or currency cannot be read exactly is
//! `unreadable`. A path that matches an operation only after normalising
//! (`/v2//orders`, `/v2/orders/`, `/V2/Orders`, dot segments) is
//! `ambiguous`: the vendor's router may well treat it as the operation, and
//! leash did not read it as one.

use super::json::{self, Json};
use super::{normalize_host, path, Adapter, Form};
use crate::config::{BodyFormat, CustomOperation, CustomVendor, KeySource};
use crate::intent::{Classification, IntentDraft, RequestView};
use crate::money::{minor_units_to_major, parse_decimal_amount, Currency, Money};

/// Where an operation reads a value: a body reference (a JSON pointer for
/// `body: json`, `/field` or a bare field name for `body: form`), or a
/// literal (see [`CustomOperation`]).
enum Source<'a> {
    Body(&'a str),
    Literal(&'a str),
}

fn source(body: BodyFormat, value: &str, bare_is_field: bool) -> Source<'_> {
    match (body, value.strip_prefix('/')) {
        (BodyFormat::Json, Some(_)) => Source::Body(value),
        (BodyFormat::Form, Some(field)) => Source::Body(field),
        (BodyFormat::Form, None) if bare_is_field => Source::Body(value),
        _ => Source::Literal(value),
    }
}

fn matches(op: &CustomOperation, method: &str, path: &str) -> bool {
    op.method == method && path::matches_template(&op.path, path)
}

/// A custom vendor, built into an adapter.
#[derive(Debug, Clone)]
pub struct CustomAdapter {
    vendor: CustomVendor,
    hosts: Vec<String>,
    /// The idempotency header: the one the operations declare (one per
    /// vendor, the config loader checks: a header is read before the
    /// operation is known), else `Idempotency-Key`.
    idempotency_header: String,
}

impl CustomAdapter {
    /// Builds the adapter from a declaration the config loader checked.
    pub fn new(vendor: CustomVendor) -> CustomAdapter {
        let hosts = vendor.hosts.iter().map(|h| normalize_host(h)).collect();
        let idempotency_header = vendor
            .operations
            .iter()
            .find_map(|op| match &op.idempotency_key {
                Some(KeySource::Header(name)) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .unwrap_or_else(|| "idempotency-key".to_owned());
        CustomAdapter {
            vendor,
            hosts,
            idempotency_header,
        }
    }

    fn classify_operation(&self, op: &CustomOperation, req: &RequestView<'_>) -> Classification {
        let unreadable = |reason: String| Classification::Unreadable {
            operation: op.name.clone(),
            reason,
        };
        let ambiguous = |reason: String| Classification::Ambiguous {
            operation: op.name.clone(),
            reason,
        };
        let content_type = req.content_type.map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let body = match op.body {
            BodyFormat::Json => {
                let is_json = content_type.as_deref().is_some_and(|c| {
                    c == "application/json"
                        || (c.starts_with("application/") && c.ends_with("+json"))
                });
                if !is_json {
                    return unreadable(format!(
                        "{} {} is declared as JSON but the request's Content-Type is {}",
                        op.method,
                        op.path,
                        content_type.as_deref().unwrap_or("missing")
                    ));
                }
                match json::parse(req.body) {
                    Ok(json) => Fields::Json(json),
                    Err(error) if error.is_ambiguous() => return ambiguous(error.to_string()),
                    Err(error) => return unreadable(error.to_string()),
                }
            }
            BodyFormat::Form => {
                if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
                    return unreadable(format!(
                        "{} {} is declared as a form but the request's Content-Type is {}",
                        op.method,
                        op.path,
                        content_type.as_deref().unwrap_or("missing")
                    ));
                }
                match Form::parse_parts(req.query, req.body) {
                    Ok(form) => Fields::Form(form),
                    Err(error) if error.is_ambiguous() => return ambiguous(error.to_string()),
                    Err(error) => return unreadable(error.to_string()),
                }
            }
        };
        if op.body == BodyFormat::Json && req.query.is_some_and(|q| !q.is_empty()) {
            // Some servers merge query parameters into the body's: a money
            // field could hide there.
            return ambiguous(format!(
                "{} {} carries a query string as well as its JSON body",
                op.method, op.path
            ));
        }

        let currency = match source(op.body, &op.currency, false) {
            Source::Literal(code) => Currency::parse(code),
            Source::Body(at) => match body.text(at) {
                Some(code) => Currency::parse(code),
                None => return unreadable(format!("no currency at {}", op.currency)),
            },
        };
        let currency = match currency {
            Ok(c) => c,
            Err(e) => return unreadable(format!("currency at {}: {e}", op.currency)),
        };
        let amount_text = match source(op.body, &op.amount, true) {
            Source::Body(at) => body.text(at),
            Source::Literal(_) => None,
        };
        let Some(amount_text) = amount_text else {
            return unreadable(format!("no amount at {}", op.amount));
        };
        let amount = if op.minor_units {
            let Some(exponent) = currency.iso_exponent() else {
                return unreadable(format!("{currency} has no minor unit"));
            };
            minor_units_to_major(amount_text, exponent)
        } else {
            parse_decimal_amount(amount_text)
        };
        let amount = match amount {
            Ok(amount) => amount,
            Err(e) => return unreadable(format!("amount at {}: {e}", op.amount)),
        };
        let beneficiary = match op.beneficiary.as_deref().map(|b| source(op.body, b, false)) {
            Some(Source::Body(at)) => match body.text(at) {
                Some(b) if !b.is_empty() => Some(b.to_owned()),
                _ => return unreadable(format!("no beneficiary at {at}")),
            },
            Some(Source::Literal(name)) => Some(name.to_owned()),
            None => None,
        };
        // No category declared: the operation's name stands for it.
        let category = match op.category.as_deref().map(|c| source(op.body, c, false)) {
            Some(Source::Body(at)) => match body.text(at) {
                Some(c) if !c.is_empty() => c.to_owned(),
                _ => return unreadable(format!("no category at {at}")),
            },
            Some(Source::Literal(name)) => name.to_owned(),
            None => op.name.clone(),
        };
        let idempotency_key = match &op.idempotency_key {
            Some(KeySource::Body(at)) => match source(op.body, at, true) {
                Source::Body(at) => body.text(at).map(str::to_owned),
                Source::Literal(_) => None,
            },
            Some(KeySource::Header(_)) | None => req.idempotency_key.map(str::to_owned),
        };
        Classification::spend(
            &op.name,
            vec![IntentDraft {
                vendor: self.vendor.name.clone(),
                operation: op.name.clone(),
                amount: Some(Money::new(amount, currency)),
                beneficiary,
                category,
                idempotency_key,
                sources: Default::default(),
            }],
        )
    }
}

/// A declared operation's body, read.
enum Fields {
    Json(Json),
    Form(Form),
}

impl Fields {
    /// A string value (JSON string or number, form field).
    fn text(&self, at: &str) -> Option<&str> {
        match self {
            Fields::Json(json) => json.pointer(at)?.scalar_text(),
            Fields::Form(form) => form.get(at),
        }
    }
}

impl Adapter for CustomAdapter {
    fn name(&self) -> &str {
        &self.vendor.name
    }

    fn claims_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.hosts.contains(&host)
    }

    fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    fn idempotency_header(&self) -> Option<&str> {
        Some(&self.idempotency_header)
    }

    fn short_lived_signatures(&self) -> bool {
        self.vendor.short_lived_signatures
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
            return Classification::Safe {
                operation: "read".into(),
            };
        }
        if let Some(op) = self
            .vendor
            .operations
            .iter()
            .find(|op| matches(op, req.method, req.path))
        {
            return self.classify_operation(op, req);
        }
        let lenient = path::lenient(req.path);
        if let Some(op) = self.vendor.operations.iter().find(|op| {
            op.method.eq_ignore_ascii_case(req.method)
                && path::matches_template(&op.path.to_ascii_lowercase(), &lenient)
        }) {
            return Classification::Ambiguous {
                operation: op.name.clone(),
                reason: format!(
                    "{} {} is not {} {} as declared, but a server may route it there",
                    req.method, req.path, op.method, op.path
                ),
            };
        }
        Classification::Unknown {
            operation: "unknown".into(),
            reason: format!(
                "no operation of custom vendor {} matches {} {}",
                self.vendor.name, req.method, req.path
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::NO_FACTS;
    use proptest::prelude::*;

    const ACME: &str = r#"
custom_vendors:
  - name: acme_procurement
    hosts: [api.acme-supplies.example]
    operations:
      - name: purchase_order
        method: POST
        path: /v2/orders
        body: json
        amount: /total/value
        currency: /total/currency
        beneficiary: /supplier_id
        category: procurement
        idempotency_key: { header: Idempotency-Key }
      - name: order_confirm
        method: POST
        path: /v2/orders/{id}/confirm
        body: form
        amount: amount
        minor_units: true
        currency: EUR
        idempotency_key: { body: /ref }
"#;

    fn acme() -> CustomAdapter {
        let config =
            crate::config::Config::parse(std::path::Path::new("leash.yaml"), ACME).unwrap();
        CustomAdapter::new(config.custom_vendors[0].clone())
    }

    fn post<'a>(path: &'a str, content_type: &'a str, body: &'a [u8]) -> RequestView<'a> {
        RequestView {
            method: "POST",
            host: "api.acme-supplies.example",
            path,
            query: None,
            content_type: Some(content_type),
            idempotency_key: Some("po-1"),
            account: None,
            headers: &[],
            body,
            facts: &NO_FACTS,
        }
    }

    #[test]
    fn a_po_is_read_exactly_with_its_beneficiary_and_key() {
        let adapter = acme();
        let c = adapter.classify(&post(
            "/v2/orders",
            "application/json",
            br#"{"supplier_id":"sup_fjord_metals","total":{"value":"12000.50","currency":"EUR"}}"#,
        ));
        let Classification::Spend(drafts) = c else {
            panic!("{c:?}")
        };
        assert_eq!(drafts[0].vendor, "acme_procurement");
        assert_eq!(drafts[0].operation, "purchase_order");
        assert_eq!(
            drafts[0].amount.as_ref().unwrap().to_string(),
            "12000.50 EUR"
        );
        assert_eq!(drafts[0].beneficiary.as_deref(), Some("sup_fjord_metals"));
        assert_eq!(drafts[0].category, "procurement");
        assert_eq!(drafts[0].idempotency_key.as_deref(), Some("po-1"));
        assert_eq!(adapter.idempotency_header(), Some("idempotency-key"));
        assert!(adapter.claims_host("API.acme-supplies.example.:443"));
    }

    #[test]
    fn form_operations_with_minor_units_literal_currency_and_body_keys() {
        let c = acme().classify(&post(
            "/v2/orders/po_9/confirm",
            "application/x-www-form-urlencoded",
            b"amount=1250&ref=r-77",
        ));
        let Classification::Spend(drafts) = c else {
            panic!("{c:?}")
        };
        assert_eq!(drafts[0].amount.as_ref().unwrap().to_string(), "12.50 EUR");
        assert_eq!(drafts[0].idempotency_key.as_deref(), Some("r-77"));
        assert_eq!(drafts[0].category, "order_confirm", "the operation's name");
    }

    #[test]
    fn what_cannot_be_read_exactly_is_unreadable_or_ambiguous() {
        let adapter = acme();
        let kind =
            |path: &str, ct: &str, body: &[u8]| adapter.classify(&post(path, ct, body)).kind();
        // Missing, float-ish, negative, unknown currency, wrong body type.
        for body in [
            &br#"{"total":{"currency":"EUR"}}"#[..],
            br#"{"total":{"value":1e4,"currency":"EUR"}}"#,
            br#"{"total":{"value":-5,"currency":"EUR"}}"#,
            br#"{"total":{"value":5,"currency":"XYZ"}}"#,
            br#"{"total":{"value":5}}"#,
            b"not json",
        ] {
            assert_eq!(
                kind("/v2/orders", "application/json", body),
                "unreadable",
                "{body:?}"
            );
        }
        assert_eq!(kind("/v2/orders", "text/plain", br#"{}"#), "unreadable");
        // Two ways to read it.
        assert_eq!(
            kind(
                "/v2/orders",
                "application/json",
                br#"{"total":{"value":5,"value":50000,"currency":"EUR"}}"#
            ),
            "ambiguous"
        );
        for path in [
            "/v2//orders",
            "/v2/orders/",
            "/V2/Orders",
            "/v2/./orders",
            "/v2/x/../orders",
            "/v2/%6frders",
        ] {
            assert_eq!(
                kind(path, "application/json", br#"{}"#),
                "ambiguous",
                "{path}"
            );
        }
        // Another write is unknown; a read is safe.
        assert_eq!(
            kind("/v2/suppliers", "application/json", br#"{}"#),
            "unknown"
        );
        let get = RequestView {
            method: "GET",
            ..post("/v2/orders", "application/json", b"")
        };
        assert_eq!(adapter.classify(&get).kind(), "safe");
    }

    proptest! {
        /// Never panics, and a write is never safe.
        #[test]
        fn a_write_is_never_safe(
            path in "/[a-zA-Z0-9/._%{}-]{0,24}",
            body in prop::collection::vec(any::<u8>(), 0..48),
            json in any::<bool>(),
        ) {
            let ct = if json { "application/json" } else { "application/x-www-form-urlencoded" };
            let c = acme().classify(&post(&path, ct, &body));
            prop_assert_ne!(c.kind(), "safe");
        }
    }
}
