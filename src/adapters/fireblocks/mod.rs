//! The Fireblocks adapter: reads `api.fireblocks.io` requests (and the
//! sandbox and EU hosts, `vendors.fireblocks.hosts`) as intents.
//!
//! # What Fireblocks requests look like (research §6)
//!
//! JSON bodies under `/v1`, authenticated by `X-API-Key` (the API key's
//! id) and `Authorization: Bearer <JWT>`, an RS256 token that lives at
//! most 55 s and signs the path and the SHA-256 of the exact body bytes
//! (§6.1). The one call that moves money is `POST /v1/transactions`
//! (§6.2), read in `transactions.rs`; amounts are decimals in the asset's
//! own units (`"0.5"` BTC, never satoshi), as a string or a JSON number.
//!
//! # Signed requests and holds
//!
//! A held transaction cannot be released from its stored copy: by the time
//! a human approves, its JWT has expired and Fireblocks would refuse it. So
//! the adapter says [`Adapter::short_lived_signatures`]: an approved hold is
//! released by forwarding the agent's *retry* — freshly signed by the SDK,
//! with the same body (so the same fingerprint) and the same
//! `externalTxId` — exactly once (SPEC §6). The JWT is never read, never
//! part of the fingerprint and never logged; the fingerprint covers the
//! body, the path and the acting API key (`X-API-Key`, SPEC §6).
//!
//! # Requests
//!
//! | request | read as |
//! |---|---|
//! | `GET`, `HEAD`, `OPTIONS` | safe (reads) |
//! | `POST /v1/transactions` | spend `transaction.create`, one intent per destination (`transactions.rs`) |
//! | `POST /v1/transactions/estimate_fee` | safe (prices a transaction, moves nothing) |
//! | `POST /v1/transactions/{id}/cancel`, `/freeze`, `/unfreeze` | safe (they stop money) |
//! | `POST /v1/vault/accounts`, `/v1/vault/accounts/{id}/{assetId}`, `…/{assetId}/addresses` | safe (create wallets and deposit addresses) |
//! | anything else that writes | unknown: exchange transfers and conversions, payouts, smart transfers, staking, off-exchange settlements, `drop` (§6.3) all move value |
//!
//! Refusals are Fireblocks' error body `{"message", "code"}` (§6.4): the
//! Python SDK raises `FireblocksApiException` with `error_code = code`, the
//! TypeScript SDK `FireblocksError` with the message; neither retries.

mod transactions;

use std::collections::BTreeMap;

use super::path::canonical_segments;
use super::{normalize_host, Adapter, Refusal, Shaped};
use crate::config::FireblocksSettings;
use crate::intent::{Classification, RequestView};

/// Vendor name in intents and policies.
pub const VENDOR: &str = "fireblocks";

/// The category of every transaction intent.
pub const CATEGORY: &str = "crypto_transfer";

/// The Fireblocks adapter, with its hosts and asset map from
/// `vendors.fireblocks`.
#[derive(Debug, Clone)]
pub struct FireblocksAdapter {
    hosts: Vec<String>,
    /// assetId → the fx currency its amounts are counted in.
    assets: BTreeMap<String, String>,
}

impl Default for FireblocksAdapter {
    fn default() -> Self {
        FireblocksAdapter::new(&FireblocksSettings::default())
    }
}

impl FireblocksAdapter {
    /// Reads Fireblocks' own hosts (research §6.1) and every host of
    /// `settings`: listing hosts adds to them, never leaves one of
    /// Fireblocks' hosts tunnelled unread.
    pub fn new(settings: &FireblocksSettings) -> FireblocksAdapter {
        FireblocksAdapter {
            hosts: super::wise::with_defaults(
                &FireblocksSettings::default().hosts,
                &settings.hosts,
            ),
            assets: settings.assets.clone(),
        }
    }
}

/// The codes leash's refusals carry in Fireblocks' `code` member: distinct
/// negative numbers, apart from Fireblocks' own (positive) codes, so a
/// program can tell leash's answer from the vendor's.
fn refusal_code(code: &str) -> i64 {
    match code {
        "leash_rejected" => -4031,
        "leash_held" => -4032,
        "leash_ambiguous" => -4033,
        "leash_too_many_holds" => -4291,
        _ => -4000,
    }
}

impl Adapter for FireblocksAdapter {
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
        classify(self, req)
    }

    /// The acting API key (`X-API-Key`): the same transaction from another
    /// workspace's key is another request (SPEC §6).
    fn account_header(&self) -> Option<&str> {
        Some("x-api-key")
    }

    /// The JWT lives ≤ 55 s (research §0.4, §6.1).
    fn short_lived_signatures(&self) -> bool {
        true
    }

    fn amount_field(&self, name: &str) -> bool {
        super::names_an_amount(name) || name.eq_ignore_ascii_case("assetId")
    }

    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        Shaped::json(serde_json::json!({
            "message": refusal.message,
            "code": refusal_code(refusal.code),
            "leashCode": refusal.code,
        }))
    }
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

/// Path bytes Fireblocks ids use: letters, digits, `_`, `-` (UUIDs) and
/// `.` (none alone: `..` is never a segment).
fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn classify(adapter: &FireblocksAdapter, req: &RequestView<'_>) -> Classification {
    if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
        return safe("read");
    }
    let unknown = |why: &str| Classification::Unknown {
        operation: "unknown".to_owned(),
        reason: format!("{} {} {why}", shown(req.method), shown(req.path)),
    };
    let Some(segs) = canonical_segments(req.path, path_byte) else {
        return unknown("is not a canonical Fireblocks API path");
    };
    if req.method != "POST" {
        return unknown("is not a write leash knows to move no money");
    }
    match segs.as_slice() {
        ["v1", "transactions"] => transactions::create(adapter, req),
        ["v1", "transactions", "estimate_fee"] => safe("transaction.estimate_fee"),
        ["v1", "transactions", _, "cancel"] => safe("transaction.cancel"),
        ["v1", "transactions", _, "freeze"] => safe("transaction.freeze"),
        ["v1", "transactions", _, "unfreeze"] => safe("transaction.unfreeze"),
        ["v1", "vault", "accounts"] => safe("vault_account.create"),
        ["v1", "vault", "accounts", _, _] => safe("vault_asset.create"),
        ["v1", "vault", "accounts", _, _, "addresses"] => safe("vault_address.create"),
        _ => unknown(
            "is not a Fireblocks endpoint leash knows to be safe or knows how to read (exchange transfers, payouts, smart transfers, staking and settlements move value)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::NO_FACTS;

    pub(super) fn post<'a>(path: &'a str, body: &'a [u8]) -> RequestView<'a> {
        RequestView {
            method: "POST",
            host: "api.fireblocks.io",
            path,
            query: None,
            content_type: Some("application/json; charset=utf-8"),
            idempotency_key: None,
            account: Some("3f1c2b4a-0000-4000-8000-000000000001"),
            headers: &[],
            body,
            facts: &NO_FACTS,
        }
    }

    #[test]
    fn hosts_come_from_the_settings() {
        let default = FireblocksAdapter::default();
        for host in [
            "api.fireblocks.io",
            "SANDBOX-API.fireblocks.io:443",
            "eu-api.fireblocks.io.",
            "eu2-api.fireblocks.io",
        ] {
            assert!(default.claims_host(host), "{host}");
        }
        assert!(!default.claims_host("fireblocks.io"));
        let more = FireblocksAdapter::new(&FireblocksSettings {
            hosts: vec!["fireblocks.internal.example".into()],
            assets: BTreeMap::new(),
        });
        assert!(more.claims_host("fireblocks.internal.example"));
        assert!(
            more.claims_host("api.fireblocks.io"),
            "its own hosts stay read"
        );
        assert_eq!(more.hosts().len(), 5);
    }

    #[test]
    fn routes() {
        let a = FireblocksAdapter::default();
        let kind = |method: &'static str, path: &'static str| {
            let mut req = post(path, b"{}");
            req.method = method;
            a.classify(&req).kind()
        };
        assert_eq!(kind("GET", "/v1/transactions"), "safe");
        assert_eq!(kind("POST", "/v1/transactions/estimate_fee"), "safe");
        assert_eq!(kind("POST", "/v1/transactions/abc-1/cancel"), "safe");
        assert_eq!(kind("POST", "/v1/vault/accounts"), "safe");
        for path in [
            "/v1/exchange_accounts/e1/internal_transfer",
            "/v1/exchange_accounts/e1/convert",
            "/v1/payments/payout/p1/actions/execute",
            "/v1/smart-transfers/t1/terms/x/fund",
            "/v1/staking/chains/ETH/stake",
            "/v1/off_exchange/settlements/transactions",
            "/v1/transactions/abc/drop",
            "/v1/transactions/",
            "/v1//transactions",
            "/v1/transactions/../transactions",
        ] {
            assert_eq!(kind("POST", path), "unknown", "{path}");
        }
        assert_eq!(kind("PUT", "/v1/transactions"), "unknown");
        assert_eq!(kind("post", "/v1/transactions/estimate_fee"), "unknown");
    }

    #[test]
    fn refusals_are_fireblocks_errors_without_retry_hints() {
        let a = FireblocksAdapter::default();
        let shaped = a.shape_refusal(&Refusal {
            status: http::StatusCode::FORBIDDEN,
            code: "leash_rejected",
            message: "leash: rejected by policy 10",
        });
        assert_eq!(
            shaped.json_body(),
            Some(&serde_json::json!({
                "message": "leash: rejected by policy 10",
                "code": -4031,
                "leashCode": "leash_rejected",
            }))
        );
        assert!(shaped.headers.is_empty());
        assert_eq!(shaped.status, None);
        let codes: std::collections::BTreeSet<i64> = [
            "leash_rejected",
            "leash_held",
            "leash_ambiguous",
            "leash_too_many_holds",
            "leash_unavailable",
        ]
        .iter()
        .map(|c| refusal_code(c))
        .collect();
        assert_eq!(codes.len(), 5);
    }

    #[test]
    fn the_signature_is_not_read_and_retries_carry_a_fresh_one() {
        let a = FireblocksAdapter::default();
        assert!(a.short_lived_signatures());
        let read = a.read_headers();
        assert!(read.contains(&"x-api-key") && read.contains(&"idempotency-key"));
        assert!(!read.contains(&"authorization"));
    }
}
