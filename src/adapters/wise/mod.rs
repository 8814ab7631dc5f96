//! The Wise adapter: reads Wise Platform API requests (`api.wise.com`,
//! `api.transferwise.com`, and any host in `vendors.wise.hosts`, such as a
//! sandbox) as intents.
//!
//! # How money moves on Wise (research §5.2, §5.3)
//!
//! Sending money takes four calls, and only the last moves any:
//!
//! 1. `POST /v3/profiles/{p}/quotes` — a quote: `sourceAmount`,
//!    `sourceCurrency`, rate and fee, locked for 30 minutes. Safe.
//! 2. `POST /v1/accounts` — a recipient (the beneficiary). Safe.
//! 3. `POST /v1/transfers` — a transfer of that quote to that recipient
//!    (`targetAccount`, `quoteUuid`, `customerTransactionId`). No amount in
//!    the body, no money moved. Safe.
//! 4. `POST /v3/profiles/{p}/transfers/{t}/payments` `{"type":"BALANCE"}` —
//!    **funding**: the balance is debited. The body carries no amount.
//!
//! Batch groups work alike: transfers are added to a group
//! (`POST /v3/profiles/{p}/batch-groups/{b}/transfers`, safe) and the group
//! is funded at once (`POST /{ver}/profiles/{p}/batch-payments/{b}/payments`).
//! Every route is matched under its legacy version (`/v1`, `/v3`) and its
//! CalVer prefix (`/2026Q3/…`, research §5.1).
//!
//! # How a funding call is read (`funding.rs`)
//!
//! leash reads the quotes and transfers Wise returns as they pass through
//! (`learn.rs`, SPEC §4.2a): a quote at `/v3/profiles/{p}/quotes/{id}`, a
//! transfer at `/v1/transfers/{id}`, kept for the same agent and token as
//! if looked up. The funding call is then decided on the transfer's
//! `sourceValue` and `sourceCurrency` (what the balance is debited, Wise's
//! fee included) and its `targetAccount` (the recipient id) as beneficiary.
//! Nothing learned (leash restarted, the transfer was made elsewhere):
//! leash GETs `/v1/transfers/{t}` with the agent's own token. A transfer
//! without `sourceValue` is read through its quote (`quoteUuid` →
//! `sourceAmount`). A batch funding is one intent per transfer of the
//! group (`GET /v3/profiles/{p}/batch-groups/{b}` → `transferIds`). A
//! lookup that fails leaves the call unreadable, never approved.
//!
//! # Writes known to move no money (safe)
//!
//! Quote create and update, recipient creation (`recipients.rs` reads the
//! account details for the record), transfer creation (plain and in a batch
//! group), batch-group create and update (close, cancel), transfer
//! cancellation. Every other write — balance movements and conversions
//! included (their amount shape is not verified, research §5.3) — is
//! unknown.
//!
//! # Refusals
//!
//! Wise's error body `{"errors":[{"code","message","path","arguments"}]}`
//! with leash's status, and never an `x-2fa-*` header: a 403 carrying
//! `x-2fa-approval` is Wise's SCA challenge, which makes clients run the
//! challenge and retry (research §5.4, trap 29).

mod funding;
mod learn;
mod recipients;

use super::json::Json;
use super::path::canonical_segments;
use super::{normalize_host, Adapter, Refusal, Shaped};
use crate::config::WiseSettings;
use crate::intent::{Classification, Lookup, RequestView};

/// Vendor name in intents and policies.
pub const VENDOR: &str = "wise";

/// The category of funding intents.
pub const CATEGORY: &str = "transfer";

/// The Wise adapter, with its hosts from `vendors.wise.hosts`.
#[derive(Debug, Clone)]
pub struct WiseAdapter {
    hosts: Vec<String>,
}

impl Default for WiseAdapter {
    fn default() -> Self {
        WiseAdapter::new(&WiseSettings::default())
    }
}

impl WiseAdapter {
    /// Reads Wise's production hosts and every host of `settings`: a list
    /// that names only a sandbox adds it, and never leaves production
    /// Wise tunnelled unread.
    pub fn new(settings: &WiseSettings) -> WiseAdapter {
        WiseAdapter {
            hosts: with_defaults(&WiseSettings::default().hosts, &settings.hosts),
        }
    }
}

/// `defaults` then `extra`, normalised, each once.
pub(super) fn with_defaults(defaults: &[String], extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for host in defaults.iter().chain(extra) {
        let host = normalize_host(host);
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

impl Adapter for WiseAdapter {
    fn name(&self) -> &str {
        VENDOR
    }

    fn claims_host(&self, host: &str) -> bool {
        self.hosts.contains(&normalize_host(host))
    }

    fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        classify(req)
    }

    fn lookups(&self, req: &RequestView<'_>) -> Vec<Lookup> {
        match route(req) {
            Some(Route::Fund { profile, transfer }) => {
                funding::transfer_lookups(req, profile, transfer)
            }
            Some(Route::FundBatch { profile, batch }) => {
                funding::batch_lookups(req, profile, batch)
            }
            _ => Vec::new(),
        }
    }

    /// Balance movements carry `X-idempotence-uuid` (research §5.2).
    fn idempotency_header(&self) -> Option<&str> {
        Some("x-idempotence-uuid")
    }

    /// Spelled as Wise's documentation spells it.
    fn resume_hint(&self) -> String {
        "Retry the same request (same X-idempotence-uuid) after approval".to_string()
    }

    fn learns_from(&self, req: &RequestView<'_>) -> bool {
        learn::learns_from(req)
    }

    fn learn(&self, req: &RequestView<'_>, answer: &Json) -> Vec<(String, Json)> {
        learn::learn(req, answer)
    }

    fn safe_record(&self, req: &RequestView<'_>) -> Option<serde_json::Value> {
        match route(req) {
            Some(Route::Recipient) => Some(recipients::record(req)),
            _ => None,
        }
    }

    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        Shaped::json(serde_json::json!({
            "errors": [{
                "code": refusal.code,
                "message": refusal.message,
                "path": null,
                "arguments": [],
            }]
        }))
    }
}

/// One of the Wise endpoints leash knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route<'a> {
    Fund { profile: &'a str, transfer: &'a str },
    FundBatch { profile: &'a str, batch: &'a str },
    QuoteCreate { profile: Option<&'a str> },
    QuoteUpdate { profile: &'a str, quote: &'a str },
    Recipient,
    TransferCreate,
    BatchGroupCreate,
    BatchGroupUpdate,
    BatchTransferCreate,
    TransferCancel,
}

/// A version segment: `v1`…`v4`, or a CalVer prefix (`2026Q3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
    /// `/v3`, or CalVer: the profile-scoped API.
    V3,
}

fn version(seg: &str) -> Option<Version> {
    match seg {
        "v1" => Some(Version::V1),
        "v2" => Some(Version::V2),
        "v3" => Some(Version::V3),
        _ => {
            let b = seg.as_bytes();
            let calver = b.len() == 6
                && b.iter().take(4).all(u8::is_ascii_digit)
                && b.get(4) == Some(&b'Q')
                && matches!(b.get(5), Some(b'1'..=b'4'));
            calver.then_some(Version::V3)
        }
    }
}

fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// The endpoint `req` is, if leash knows it. Exact methods, canonical
/// paths only.
pub(super) fn route<'a>(req: &RequestView<'a>) -> Option<Route<'a>> {
    let segs = canonical_segments(req.path, path_byte)?;
    let (first, rest) = segs.split_first()?;
    let version = version(first)?;
    use Version::*;
    let route = match (req.method, version, rest) {
        ("POST", V3, ["profiles", p, "transfers", t, "payments"]) => Route::Fund {
            profile: p,
            transfer: t,
        },
        ("POST", V3, ["profiles", p, "batch-payments", b, "payments"]) => Route::FundBatch {
            profile: p,
            batch: b,
        },
        ("POST", V3, ["profiles", p, "quotes"]) => Route::QuoteCreate { profile: Some(p) },
        ("POST", V1 | V2, ["quotes"]) => Route::QuoteCreate { profile: None },
        ("PATCH", V3, ["profiles", p, "quotes", q]) => Route::QuoteUpdate {
            profile: p,
            quote: q,
        },
        ("POST", V1 | V2, ["accounts"]) => Route::Recipient,
        ("POST", V1, ["transfers"]) => Route::TransferCreate,
        ("POST", V3, ["profiles", _, "batch-groups"]) => Route::BatchGroupCreate,
        ("PATCH", V3, ["profiles", _, "batch-groups", _]) => Route::BatchGroupUpdate,
        ("POST", V3, ["profiles", _, "batch-groups", _, "transfers"]) => Route::BatchTransferCreate,
        ("PUT", V1, ["transfers", _, "cancel"]) => Route::TransferCancel,
        _ => return None,
    };
    Some(route)
}

fn safe(operation: &str) -> Classification {
    Classification::Safe {
        operation: operation.to_owned(),
    }
}

/// A path or value fit for a reason: bounded, control characters escaped.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 120;
    let mut cut: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}

fn classify(req: &RequestView<'_>) -> Classification {
    if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
        return safe("read");
    }
    match route(req) {
        Some(Route::Fund { profile, transfer }) => funding::transfer(req, profile, transfer),
        Some(Route::FundBatch { profile, batch }) => funding::batch(req, profile, batch),
        Some(Route::QuoteCreate { .. }) => safe("quote.create"),
        Some(Route::QuoteUpdate { .. }) => safe("quote.update"),
        Some(Route::Recipient) => safe("recipient.create"),
        Some(Route::TransferCreate) | Some(Route::BatchTransferCreate) => safe("transfer.create"),
        Some(Route::BatchGroupCreate) => safe("batch_group.create"),
        Some(Route::BatchGroupUpdate) => safe("batch_group.update"),
        Some(Route::TransferCancel) => safe("transfer.cancel"),
        None => Classification::Unknown {
            operation: "unknown".to_owned(),
            reason: format!(
                "{} {} is not a Wise endpoint leash knows to be safe or knows how to read",
                shown(req.method),
                shown(req.path)
            ),
        },
    }
}

#[cfg(test)]
pub(super) mod testing {
    use crate::intent::{RequestView, NO_FACTS};

    pub fn request<'a>(method: &'a str, path: &'a str, body: &'a [u8]) -> RequestView<'a> {
        RequestView {
            method,
            host: "api.wise.com",
            path,
            query: None,
            content_type: Some("application/json"),
            idempotency_key: None,
            account: None,
            headers: &[],
            body,
            facts: &NO_FACTS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::request;
    use super::*;

    #[test]
    fn hosts_come_from_the_settings() {
        let default = WiseAdapter::default();
        assert!(default.claims_host("API.Wise.com:443"));
        assert!(default.claims_host("api.transferwise.com."));
        assert!(!default.claims_host("api.wise-sandbox.com"));
        let sandbox = WiseAdapter::new(&WiseSettings {
            hosts: vec!["API.wise-sandbox.com".into(), "api.wise.com".into()],
        });
        assert!(sandbox.claims_host("api.wise-sandbox.com"));
        // Production stays read, whatever the list says.
        assert!(sandbox.claims_host("api.wise.com"));
        assert!(sandbox.claims_host("api.transferwise.com"));
        assert_eq!(sandbox.hosts().len(), 3);
    }

    #[test]
    fn routes_under_legacy_and_calver_prefixes() {
        let kind = |method: &'static str, path: &'static str| {
            (
                classify(&request(method, path, b"{}")).kind(),
                classify(&request(method, path, b"{}"))
                    .operation()
                    .to_owned(),
            )
        };
        for (method, path, want) in [
            ("POST", "/v3/profiles/1/quotes", "quote.create"),
            ("POST", "/2026Q3/profiles/1/quotes", "quote.create"),
            ("POST", "/v2/quotes", "quote.create"),
            ("PATCH", "/v3/profiles/1/quotes/8d1c-aa", "quote.update"),
            ("POST", "/v1/accounts", "recipient.create"),
            ("POST", "/v2/accounts", "recipient.create"),
            ("POST", "/v1/transfers", "transfer.create"),
            ("POST", "/v3/profiles/1/batch-groups", "batch_group.create"),
            (
                "PATCH",
                "/2026Q4/profiles/1/batch-groups/54a6",
                "batch_group.update",
            ),
            (
                "POST",
                "/v3/profiles/1/batch-groups/54a6/transfers",
                "transfer.create",
            ),
            ("PUT", "/v1/transfers/7/cancel", "transfer.cancel"),
            ("GET", "/v1/transfers/7", "read"),
        ] {
            assert_eq!(
                kind(method, path),
                ("safe", want.to_owned()),
                "{method} {path}"
            );
        }
        for (method, path) in [
            ("POST", "/v2/profiles/1/balance-movements"),
            ("POST", "/v3/profiles/1/transfers"),
            ("POST", "/2026Q5/profiles/1/quotes"),
            ("POST", "/26Q3/profiles/1/quotes"),
            ("POST", "/v1/transfers/"),
            ("POST", "/v1//transfers"),
            ("POST", "/v1/transfers/../accounts"),
            ("DELETE", "/v1/transfers/7"),
            ("post", "/v1/transfers"),
            ("POST", "/V1/transfers"),
        ] {
            assert_eq!(kind(method, path).0, "unknown", "{method} {path}");
        }
    }

    #[test]
    fn refusals_are_wise_errors_without_sca_headers() {
        let a = WiseAdapter::default();
        for code in ["leash_rejected", "leash_held", "leash_ambiguous"] {
            let shaped = a.shape_refusal(&Refusal {
                status: http::StatusCode::FORBIDDEN,
                code,
                message: "no",
            });
            assert_eq!(
                shaped.json_body(),
                Some(&serde_json::json!({"errors": [
                    {"code": code, "message": "no", "path": null, "arguments": []}
                ]}))
            );
            assert!(
                shaped
                    .headers
                    .iter()
                    .all(|(name, _)| !name.starts_with("x-2fa")),
                "{shaped:?}"
            );
            assert_eq!(shaped.status, None);
        }
    }
}
