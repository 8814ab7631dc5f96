//! The Meta Marketing API adapter: reads `graph.facebook.com` requests as
//! intents (SPEC §4.3; research §2, §10 traps 14–19).
//!
//! # What Graph requests look like
//!
//! Paths carry a version (`/v25.0/act_1/adsets`) or not (`/act_1/adsets`:
//! "an unversioned call will default to the oldest available version",
//! [FB-VER]); updates by object id end in `/` in the Python SDK
//! (`/v25.0/120200000000000777/`). Parameters come from the query string
//! and the body alike: facebook-python-business-sdk posts a form
//! (`daily_budget=2000&targeting=%7B…%7D`, lists and dicts JSON-encoded),
//! facebook-nodejs-business-sdk posts JSON. Both put `access_token` and
//! `appsecret_proof` in the query string; Graph also takes them in the body
//! or as `Authorization: OAuth …` ([FB-SESS], [FB-NODE]).
//!
//! # What leash reads as spends
//!
//! | request | operation | amount | looked up |
//! |---|---|---|---|
//! | `POST /act_{id}/campaigns` with a money field | `campaign.create` | the largest money field | the account's currency |
//! | `POST /act_{id}/adsets` with a money field | `adset.create` | the largest money field | the account's currency |
//! | `POST /{object_id}` with a money field | `object.update` | the new value (largest money field) | the object's account (`GET /{id}?fields=account_id`), its currency |
//! | … with `adset_budgets` / `adset_bid_amounts` | `adset.update`, one intent per ad set | that ad set's budget or bid | as above |
//! | `POST /{object_id}` with `status=ACTIVE` and no money field | `object.activate` | the object's own `daily_budget` / `lifetime_budget` | `GET /{id}?fields=account_id,daily_budget,lifetime_budget` |
//! | `POST /{object_id}/copies` | `object.copy` | the original's own budget | as for activation |
//! | any of these as batch items | each item its own intents | | |
//!
//! Money fields ([`calls::MONEY_FIELDS`]): `daily_budget`,
//! `lifetime_budget`, `spend_cap`, `bid_amount`, `daily_spend_cap`,
//! `lifetime_spend_cap`, `daily_min_spend_target`,
//! `lifetime_min_spend_target`. A write that sets several has one intent,
//! for the **largest**: a daily budget next to a lifetime `spend_cap` is
//! counted as the cap, whole. That overcounts on purpose (a cap bounds what
//! the object may spend over its life, and leash counts a commitment when
//! it is made, not as Meta spends it). An update's amount is the **new**
//! value, not the difference: leash does not know what was spent under
//! the old one. Bids are amounts too: an ad set created with
//! `daily_budget=2000&bid_amount=100` is one intent of 20.00, with the bid
//! in `sources`; a write that changes only a bid is an intent of the bid.
//!
//! # Units
//!
//! Integers of the ad account's currency at Meta's **offset** (`units.rs`;
//! not ISO 4217: HUF `2000` is 2000 Ft, BHD `2000` is 20.00 BHD). The
//! currency is `vendors.meta.accounts` in leash.yaml, else looked up once
//! with the agent's own token (`GET /act_{id}?fields=currency`) and kept
//! in the lookup cache. Updates name an object, not an account: its account
//! is looked up first (`GET /{id}?fields=account_id`, which never changes,
//! so it stays cached).
//!
//! The beneficiary is the ad account, `act_<id>`; the category `ad_spend`.
//!
//! # Batches (`batch.rs`)
//!
//! A `batch` parameter (query or body, form text or JSON) on any path:
//! every item is read like a request of its own (its `relative_url`'s
//! query with its form `body`), and the request's classification is the
//! most severe of its items' (and of the outer call's, if it is more than
//! the batch): ambiguous, then unreadable, then unknown, then spend (all
//! the items' intents, each evaluated, the most severe decision winning),
//! then safe. A batch item that carries its own `batch` is unreadable.
//!
//! # Safe
//!
//! Reads (GET without a `method` override), deletions, creates and updates
//! that set no money field (a campaign whose ad sets hold the budgets, a
//! paused ad set's new name, `status=PAUSED`), ads, creatives, images,
//! videos, audiences, labels, pixels, and any write with
//! `execution_options=["validate_only"]` (a JSON list naming it).
//!
//! # Fail-closed rules
//!
//! - A `method` parameter (Graph's own override, [FB-METHOD]) and the HTTP
//!   method: the more dangerous wins (`GET ?method=post` is a write, `POST
//!   method=get` too).
//! - A name given twice (in one part, or in the query and the body) is
//!   ambiguous, as is a JSON field name that is not a plain Graph name.
//! - A path that is not canonical is an unknown write. A field on a
//!   campaign, ad set or object update that leash does not know makes the
//!   write unknown; `budget_schedule_specs`, `rf_prediction_id`, a
//!   non-auction `buying_type`, an ad account's own `spend_cap` (unit not
//!   documented), async batches and multipart bodies are not read.
//! - Amounts are plain non-negative integers; a currency Meta lists no
//!   offset for is unreadable.
//!
//! # Secrets
//!
//! `access_token` and `appsecret_proof` ([`SECRET_PARAMS`]) are copied onto
//! lookups from the query (the SDKs' place for them), never appear in a
//! reason leash writes (which quotes paths, never queries or values of
//! those fields), and are skipped in the raw fields a hold shows.

mod batch;
mod calls;
mod params;
mod units;

use std::collections::BTreeMap;

use crate::adapters::json::Json;
use crate::adapters::{normalize_host, Adapter, Refusal, Shaped};
use crate::intent::{Classification, Lookup, RequestView};
use crate::money::Currency;

use calls::{Call, Ctx};
use params::{ParamError, Params};

pub use units::offset_exponent;

/// Vendor name in intents and policies.
pub const VENDOR: &str = "meta";

/// Hosts this adapter reads.
pub const HOSTS: &[&str] = &["graph.facebook.com"];

/// The parameters that carry the agent's credentials (research §0.3).
pub const SECRET_PARAMS: &[&str] = &["access_token", "appsecret_proof"];

/// The Meta adapter, with the ad accounts' currencies from
/// `vendors.meta.accounts`.
///
/// ```
/// use leash::adapters::{meta::MetaAdapter, Adapter};
/// use leash::intent::{Classification, RequestView, NO_FACTS};
///
/// let mut settings = leash::config::MetaSettings::default();
/// settings.accounts.insert("act_1001".into(), "EUR".into());
/// let meta = MetaAdapter::new(&settings);
/// let req = RequestView {
///     method: "POST",
///     host: "graph.facebook.com",
///     path: "/v25.0/act_1001/adsets",
///     query: Some("access_token=EAAB&appsecret_proof=ab12"),
///     content_type: Some("application/x-www-form-urlencoded"),
///     idempotency_key: None,
///     account: None,
///     headers: &[],
///     body: b"name=Spring&daily_budget=2000&campaign_id=1202&status=PAUSED",
///     facts: &NO_FACTS,
/// };
/// match meta.classify(&req) {
///     Classification::Spend(intents) => {
///         assert_eq!(intents[0].amount.unwrap().to_string(), "20.00 EUR");
///         assert_eq!(intents[0].beneficiary.as_deref(), Some("act_1001"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetaAdapter {
    accounts: BTreeMap<String, Currency>,
}

impl MetaAdapter {
    /// An adapter knowing the currencies of `settings.accounts` (already
    /// checked by the config loader; an entry that would not parse is
    /// left out and looked up instead).
    pub fn new(settings: &crate::config::MetaSettings) -> MetaAdapter {
        let accounts = settings
            .accounts
            .iter()
            .filter_map(|(act, code)| Some((act.clone(), Currency::parse(code).ok()?)))
            .collect();
        MetaAdapter { accounts }
    }

    /// Reads `req`; `need` gets the lookups that would complete it.
    fn read(&self, req: &RequestView<'_>, need: &mut Vec<Lookup>) -> Classification {
        if let Some(read) = plain_read(req) {
            return read;
        }
        let operation = calls::operation_of(req.path);
        let params = match params::encoding(req.content_type)
            .map_err(ParamError::Unreadable)
            .and_then(|enc| Params::read(req.query, enc, req.body))
        {
            Ok(p) => p,
            Err(ParamError::Ambiguous(reason)) => {
                return Classification::Ambiguous {
                    operation: operation.to_owned(),
                    reason,
                }
            }
            Err(ParamError::Unreadable(reason)) => {
                return unreadable_or_unknown(req.method, operation, reason)
            }
        };
        let version = calls::segments(req.path)
            .and_then(|(v, _)| v)
            .map(|v| format!("/{v}"))
            .unwrap_or_default();
        let ctx = Ctx {
            accounts: &self.accounts,
            facts: req.facts,
            version: &version,
        };
        match params.get("batch") {
            None => calls::read(
                &Call {
                    method: req.method,
                    path: req.path,
                    params: &params,
                },
                &ctx,
                need,
            ),
            Some(value) => read_batch(req, &params, value, &ctx, need),
        }
    }
}

/// A read that needs no parsing: `GET`/`HEAD`/`OPTIONS` with no body and
/// no `method` or `batch` in the query (either could make it a write). Everything else
/// is read strictly (a GET whose query repeats `fields` is still a read).
fn plain_read(req: &RequestView<'_>) -> Option<Classification> {
    if !matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
        return None;
    }
    let body_empty = req.body.iter().all(u8::is_ascii_whitespace);
    let overrides = req.query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(name, _)| {
            name.eq_ignore_ascii_case("method") || name.eq_ignore_ascii_case("batch")
        })
    });
    (body_empty && !overrides).then(|| safe("read"))
}

/// A write whose parameters cannot be read: unreadable on a path that may
/// move money, unknown on others (and on any path, for a read that may
/// hide a `method` override in a body leash cannot read).
fn unreadable_or_unknown(method: &str, operation: &str, reason: String) -> Classification {
    if operation == "unknown" || matches!(method, "GET" | "HEAD" | "OPTIONS") {
        Classification::Unknown {
            operation: operation.to_owned(),
            reason,
        }
    } else {
        Classification::Unreadable {
            operation: operation.to_owned(),
            reason,
        }
    }
}

/// How severe a classification is: the most severe of a batch's items
/// is the batch's.
fn severity(c: &Classification) -> u8 {
    match c {
        Classification::Safe { .. } => 0,
        Classification::Spend(_) => 1,
        Classification::Unknown { .. } => 2,
        Classification::Unreadable { .. } => 3,
        Classification::Ambiguous { .. } => 4,
    }
}

/// Reads a batch: the outer call (when it is more than a carrier) and
/// every item, combined by [`severity`].
fn read_batch(
    req: &RequestView<'_>,
    params: &Params,
    value: &params::Val,
    ctx: &Ctx<'_>,
    need: &mut Vec<Lookup>,
) -> Classification {
    let items = match batch::read(value) {
        Ok(items) => items,
        Err(ParamError::Ambiguous(reason)) => {
            return Classification::Ambiguous {
                operation: "batch".to_owned(),
                reason,
            }
        }
        Err(ParamError::Unreadable(reason)) => {
            return Classification::Unreadable {
                operation: "batch".to_owned(),
                reason,
            }
        }
    };
    let mut read: Vec<(String, Classification)> = Vec::new();
    // The call that carries the batch: on the root with only credentials
    // it is nothing but the carrier; anywhere else it is read too.
    let outer = params.without("batch");
    let carrier_only = calls::segments(req.path).is_some_and(|(_, s)| s.is_empty())
        && outer
            .names()
            .all(|n| SECRET_PARAMS.contains(&n) || n == "include_headers");
    if !carrier_only {
        let c = calls::read(
            &Call {
                method: req.method,
                path: req.path,
                params: &outer,
            },
            ctx,
            need,
        );
        read.push((
            format!("the request carrying the batch ({})", shown(req.path)),
            c,
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let label = format!(
            "batch item {} ({} {})",
            i + 1,
            shown(&item.method),
            shown(&item.path)
        );
        let op = calls::operation_of(&item.path);
        let c = match Params::read_item(item.query.as_deref(), item.body.as_deref()) {
            Err(ParamError::Ambiguous(reason)) => Classification::Ambiguous {
                operation: op.to_owned(),
                reason,
            },
            Err(ParamError::Unreadable(reason)) => {
                unreadable_or_unknown(&item.method.to_ascii_uppercase(), op, reason)
            }
            Ok(p) if p.has("batch") => Classification::Unreadable {
                operation: op.to_owned(),
                reason: "it carries a batch of its own".to_owned(),
            },
            Ok(p) => {
                let c = calls::read(
                    &Call {
                        method: &item.method,
                        path: &item.path,
                        params: &p,
                    },
                    ctx,
                    need,
                );
                if item.has_headers && !matches!(c, Classification::Safe { .. }) {
                    Classification::Unreadable {
                        operation: c.operation().to_owned(),
                        reason:
                            "it sets its own headers, which may change how Graph reads its body"
                                .to_owned(),
                    }
                } else {
                    c
                }
            }
        };
        read.push((label, c));
    }
    combine(read)
}

/// The most severe of `read`, reasons naming the item; spends together.
fn combine(read: Vec<(String, Classification)>) -> Classification {
    let worst = read.iter().map(|(_, c)| severity(c)).max().unwrap_or(0);
    match worst {
        0 => safe("batch"),
        1 => {
            let drafts = read
                .into_iter()
                .filter_map(|(_, c)| match c {
                    Classification::Spend(d) => Some(d),
                    _ => None,
                })
                .flatten()
                .collect();
            Classification::spend("batch", drafts)
        }
        _ => {
            let mut first = None;
            let mut reasons = Vec::new();
            for (label, c) in read {
                if severity(&c) != worst {
                    continue;
                }
                let (op, reason) = match c {
                    Classification::Unknown { operation, reason }
                    | Classification::Unreadable { operation, reason }
                    | Classification::Ambiguous { operation, reason } => (operation, reason),
                    _ => continue,
                };
                first.get_or_insert(op);
                reasons.push(format!("{label}: {reason}"));
            }
            let operation = first.unwrap_or_else(|| "batch".to_owned());
            let reason = reasons.join("; ");
            match worst {
                2 => Classification::Unknown { operation, reason },
                3 => Classification::Unreadable { operation, reason },
                _ => Classification::Ambiguous { operation, reason },
            }
        }
    }
}

pub(super) fn safe(operation: &str) -> Classification {
    Classification::Safe {
        operation: operation.to_owned(),
    }
}

/// A path or value fit for a reason string: bounded, control characters
/// escaped, quoted.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 120;
    let mut cut: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// A field name for a reason string, without quotes.
pub(super) fn field(name: &str) -> String {
    name.chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Adapter for MetaAdapter {
    fn name(&self) -> &str {
        VENDOR
    }

    fn claims_host(&self, host: &str) -> bool {
        HOSTS.contains(&normalize_host(host).as_str())
    }

    fn hosts(&self) -> Vec<String> {
        HOSTS.iter().map(|h| h.to_string()).collect()
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        let mut need = Vec::new();
        let read = self.read(req, &mut need);
        dedup(&mut need);
        if need.len() > calls::MAX_LOOKUPS {
            return Classification::Unreadable {
                operation: read.operation().to_owned(),
                reason: format!(
                    "the request names {} objects to look up; leash looks up at most {}",
                    need.len(),
                    calls::MAX_LOOKUPS
                ),
            };
        }
        read
    }

    fn lookups(&self, req: &RequestView<'_>) -> Vec<Lookup> {
        if normalize_host(req.host) != HOSTS[0] {
            return Vec::new();
        }
        let mut need = Vec::new();
        let read = self.read(req, &mut need);
        if matches!(read, Classification::Ambiguous { .. }) {
            return Vec::new();
        }
        dedup(&mut need);
        if need.len() > calls::MAX_LOOKUPS {
            return Vec::new();
        }
        need
    }

    /// A campaign or ad set created on an account: its answer
    /// (`{"id":"…"}`) says which object now belongs to that account.
    fn learns_from(&self, req: &RequestView<'_>) -> bool {
        learned_account(req).is_some()
    }

    /// The new object's account, as [`calls::account_path`] would look it
    /// up: a later update of it by id needs no lookup. Only a plain create
    /// (no batch, no `validate_only`) is learned from, and only an answer
    /// whose `id` is a Graph object id.
    fn learn(&self, req: &RequestView<'_>, answer: &Json) -> Vec<(String, Json)> {
        let Some((version, act)) = learned_account(req) else {
            return Vec::new();
        };
        let Some(id) = answer.pointer("/id").and_then(Json::scalar_text) else {
            return Vec::new();
        };
        if id.is_empty() || id.len() > 30 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Vec::new();
        }
        let digits = act.trim_start_matches("act_").to_owned();
        vec![(
            calls::account_path(&version, id),
            Json::Object(vec![
                ("account_id".to_owned(), Json::String(digits)),
                ("id".to_owned(), Json::String(id.to_owned())),
            ]),
        )]
    }

    /// Graph has no idempotency header.
    fn idempotency_header(&self) -> Option<&str> {
        None
    }

    /// No header decides whose money moves: the ad account is in the path
    /// (or the object's).
    fn read_headers(&self) -> Vec<&str> {
        Vec::new()
    }

    /// `Authorization: OAuth …` / `Bearer …`, when the agent sends its token
    /// there; the query's `access_token` is copied by
    /// [`Adapter::secret_params`].
    fn lookup_headers(&self) -> Vec<&str> {
        vec!["authorization"]
    }

    fn secret_params(&self) -> Vec<&str> {
        SECRET_PARAMS.to_vec()
    }

    /// An ad account's currency and an object's account do not change when
    /// a budget is written.
    fn stays_fresh(&self, path: &str) -> bool {
        path.ends_with("?fields=currency") || path.ends_with("?fields=account_id")
    }

    /// What an approver of a request leash could not read is shown: the
    /// money fields, never the credentials.
    fn amount_field(&self, name: &str) -> bool {
        calls::MONEY_FIELDS.contains(&name)
            || name == "adset_budgets"
            || name == "adset_bid_amounts"
    }

    /// Graph's error shape (research §2.6): facebook-business raises
    /// `FacebookRequestError` for any body with `error`, and does not
    /// retry; `is_transient: false` and a permission code (200, not the
    /// retryable 1, 2, 4, 17 or 341) say a retry will not help.
    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        Shaped::json(serde_json::json!({
            "error": {
                "message": refusal.message,
                "type": "OAuthException",
                "code": 200,
                "is_transient": false,
                "error_user_title": refusal.code,
                "error_user_msg": refusal.message,
                "fbtrace_id": "leash",
            }
        }))
    }
}

/// The version prefix and ad account of a plain campaign or ad set
/// create, whose answer names the new object.
fn learned_account(req: &RequestView<'_>) -> Option<(String, String)> {
    if req.method != "POST" || normalize_host(req.host) != HOSTS[0] {
        return None;
    }
    let (version, segs) = calls::segments(req.path)?;
    let act = match segs.as_slice() {
        [act, "campaigns" | "adsets"] if act.starts_with("act_") => (*act).to_owned(),
        _ => return None,
    };
    let encoding = params::encoding(req.content_type).ok()?;
    let params = Params::read(req.query, encoding, req.body).ok()?;
    if params.has("batch") || params.validate_only() || params.has("method") {
        return None;
    }
    let version = version.map(|v| format!("/{v}")).unwrap_or_default();
    Some((version, act))
}

fn dedup(need: &mut Vec<Lookup>) {
    let mut seen = std::collections::BTreeSet::new();
    need.retain(|l| seen.insert(l.path.clone()));
}

#[cfg(test)]
mod tests;
