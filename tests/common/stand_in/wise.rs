//! The Wise stand-in: `api.wise.com`, `api.transferwise.com` and the
//! sandbox `api.wise-sandbox.com`, answering like the Wise Platform API
//! (research §5): one business profile, in memory.
//!
//! - `Authorization: Bearer <any token>`; none → 401
//!   `{"error":"invalid_token","error_description":…}`;
//! - quotes (`POST /v3/profiles/{p}/quotes`, CalVer prefixes too; `GET` by
//!   id): `sourceAmount` or `targetAmount` as JSON numbers, a fixed rate of
//!   0.86 per source unit, no fee;
//! - recipients (`POST /v1/accounts`), transfers (`POST /v1/transfers`,
//!   `GET /v1/transfers/{id}`; a repeated `customerTransactionId` answers
//!   the transfer it made), funding
//!   (`POST /v3/profiles/{p}/transfers/{t}/payments` `{"type":"BALANCE"}` →
//!   `{"type":"BALANCE","status":"COMPLETED","errorCode":null}`; a second
//!   funding of one transfer → 422);
//! - batch groups: create, add transfers, `PATCH` to `COMPLETED`, `GET`,
//!   and fund (`POST /{ver}/profiles/{p}/batch-payments/{b}/payments`);
//! - errors in Wise's shape `{"errors":[{"code","message","path","arguments"}]}`,
//!   404 for any other path.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::{lock, Call, Reply, Vendor};

pub const HOSTS: &[&str] = &[
    "api.wise.com",
    "api.transferwise.com",
    "api.wise-sandbox.com",
];

/// Target units per source unit, for every pair.
const RATE: f64 = 0.86;

#[derive(Default)]
struct State {
    next_id: u64,
    quotes: BTreeMap<String, Value>,
    recipients: BTreeMap<String, Value>,
    transfers: BTreeMap<String, Value>,
    funded: Vec<String>,
    batches: BTreeMap<String, Value>,
}

/// The in-memory Wise profile.
#[derive(Default)]
pub struct Wise {
    state: Mutex<State>,
}

impl Wise {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                next_id: 16_521_632,
                ..State::default()
            }),
        }
    }
}

fn error(status: u16, code: &str, message: &str, path: Option<&str>) -> Reply {
    Reply::json(
        status,
        &json!({"errors": [{"code": code, "message": message, "path": path, "arguments": []}]}),
    )
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `/v1`, `/v2`, `/v3` or a CalVer prefix like `/2026Q3`.
fn versioned(path: &str) -> Option<(&str, Vec<&str>)> {
    let mut segs = path.strip_prefix('/')?.split('/');
    let first = segs.next()?;
    let calver = first.len() == 6 && first.as_bytes()[4] == b'Q';
    let version = if calver { "v3" } else { first };
    Some((version, segs.collect()))
}

impl Vendor for Wise {
    fn hosts(&self) -> &'static [&'static str] {
        HOSTS
    }

    fn object(&self, id: &str) -> Option<Value> {
        let state = lock(&self.state);
        state
            .transfers
            .get(id)
            .or_else(|| state.quotes.get(id))
            .or_else(|| state.recipients.get(id))
            .or_else(|| state.batches.get(id))
            .cloned()
    }

    fn answer(&self, call: &Call<'_>) -> Reply {
        let token = call
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty());
        if token.is_none() {
            return Reply::json(
                401,
                &json!({"error": "invalid_token", "error_description": "Invalid token"}),
            );
        }
        let body: Value = if call.body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(call.body) {
                Ok(v) => v,
                Err(_) => return error(400, "error.json", "Malformed JSON", None),
            }
        };
        let Some((version, segs)) = versioned(call.path) else {
            return error(404, "error.notFound", "Not found", None);
        };
        let mut state = lock(&self.state);
        match (call.method.as_str(), version, segs.as_slice()) {
            ("POST", "v3", ["profiles", p, "quotes"]) => state.quote(p, &body),
            ("GET", "v3", ["profiles", _, "quotes", q]) => match state.quotes.get(*q) {
                Some(quote) => Reply::json(200, quote),
                None => error(404, "error.quote.notFound", "Quote not found", None),
            },
            ("POST", "v1", ["accounts"]) => state.recipient(&body),
            ("POST", "v1", ["transfers"]) => state.transfer(&body, None),
            ("GET", "v1", ["transfers", t]) => match state.transfers.get(*t) {
                Some(transfer) => Reply::json(200, transfer),
                None => error(404, "error.transfer.notFound", "Transfer not found", None),
            },
            ("POST", "v3", ["profiles", _, "transfers", t, "payments"]) => state.fund(t, &body),
            ("POST", "v3", ["profiles", _, "batch-groups"]) => state.batch(&body),
            ("GET", "v3", ["profiles", _, "batch-groups", b]) => match state.batches.get(*b) {
                Some(group) => Reply::json(200, group),
                None => error(
                    404,
                    "error.batchGroup.notFound",
                    "Batch group not found",
                    None,
                ),
            },
            ("POST", "v3", ["profiles", _, "batch-groups", b, "transfers"]) => {
                if !state.batches.contains_key(*b) {
                    return error(
                        404,
                        "error.batchGroup.notFound",
                        "Batch group not found",
                        None,
                    );
                }
                state.transfer(&body, Some(b))
            }
            ("PATCH", "v3", ["profiles", _, "batch-groups", b]) => state.close(b, &body),
            ("POST", "v3", ["profiles", _, "batch-payments", b, "payments"]) => {
                state.fund_batch(b, &body)
            }
            _ => error(404, "error.notFound", "No such endpoint", None),
        }
    }
}

impl State {
    fn id(&mut self) -> String {
        self.next_id += 1;
        (self.next_id - 1).to_string()
    }

    fn quote(&mut self, profile: &str, body: &Value) -> Reply {
        let (Some(source), Some(target)) = (
            body["sourceCurrency"].as_str(),
            body["targetCurrency"].as_str(),
        ) else {
            return error(
                422,
                "NotNull",
                "currency must not be null",
                Some("sourceCurrency"),
            );
        };
        let (source_amount, target_amount) =
            match (body["sourceAmount"].as_f64(), body["targetAmount"].as_f64()) {
                (Some(s), None) if s > 0.0 => (s, round(s * RATE)),
                (None, Some(t)) if t > 0.0 => (round(t / RATE), t),
                _ => {
                    return error(
                        422,
                        "error.greaterThanZero",
                        "Give one of sourceAmount or targetAmount, greater than zero",
                        Some("sourceAmount"),
                    )
                }
            };
        let id = uuid::Uuid::new_v4().to_string();
        let quote = json!({
            "id": id,
            "sourceCurrency": source,
            "targetCurrency": target,
            "sourceAmount": source_amount,
            "targetAmount": target_amount,
            "payOut": body["payOut"].as_str().unwrap_or("BANK_TRANSFER"),
            "preferredPayIn": body["preferredPayIn"],
            "rate": RATE,
            "createdTime": "2026-11-24T10:00:00Z",
            "user": 4342275,
            "profile": profile.parse::<u64>().unwrap_or(0),
            "rateType": "FIXED",
            "expirationTime": "2026-11-24T10:30:00Z",
            "paymentOptions": [{"payIn": "BALANCE", "payOut": "BANK_TRANSFER", "fee": {"total": 0}}],
            "status": "PENDING",
        });
        self.quotes.insert(id, quote.clone());
        Reply::json(200, &quote)
    }

    fn recipient(&mut self, body: &Value) -> Reply {
        let (Some(name), Some(currency)) = (
            body["accountHolderName"].as_str(),
            body["currency"].as_str(),
        ) else {
            return error(
                422,
                "NotNull",
                "accountHolderName must not be null",
                Some("accountHolderName"),
            );
        };
        let id = (148_393_305 + self.recipients.len() as u64).to_string();
        let recipient = json!({
            "id": id.parse::<u64>().unwrap_or(0),
            "business": null,
            "profile": 12345,
            "accountHolderName": name,
            "currency": currency,
            "country": body["details"]["address"]["country"],
            "type": body["type"],
            "details": body["details"],
            "active": true,
            "ownedByCustomer": false,
        });
        self.recipients.insert(id, recipient.clone());
        Reply::json(200, &recipient)
    }

    fn transfer(&mut self, body: &Value, batch: Option<&str>) -> Reply {
        let Some(quote) = body["quoteUuid"]
            .as_str()
            .and_then(|q| self.quotes.get(q))
            .cloned()
        else {
            return error(
                422,
                "error.quote.invalid",
                "Quote not found",
                Some("quoteUuid"),
            );
        };
        let target = body["targetAccount"]
            .as_u64()
            .filter(|t| self.recipients.contains_key(&t.to_string()));
        let Some(target) = target else {
            return error(
                422,
                "error.recipient.invalid",
                "Recipient not found",
                Some("targetAccount"),
            );
        };
        if let Some(existing) = self.transfers.values().find(|t| {
            body["customerTransactionId"].is_string()
                && t["customerTransactionId"] == body["customerTransactionId"]
        }) {
            return Reply::json(200, existing);
        }
        let id = self.id();
        let transfer = json!({
            "id": id.parse::<u64>().unwrap_or(0),
            "user": 4342275,
            "targetAccount": target,
            "sourceAccount": null,
            "quote": null,
            "quoteUuid": quote["id"],
            "status": "incoming_payment_waiting",
            "reference": body["details"]["reference"],
            "rate": RATE,
            "created": "2026-11-24 10:00:01",
            "business": 12345,
            "details": body["details"],
            "hasActiveIssues": false,
            "sourceCurrency": quote["sourceCurrency"],
            "sourceValue": quote["sourceAmount"],
            "targetCurrency": quote["targetCurrency"],
            "targetValue": quote["targetAmount"],
            "customerTransactionId": body["customerTransactionId"],
        });
        self.transfers.insert(id.clone(), transfer.clone());
        if let Some(batch) = batch.and_then(|b| self.batches.get_mut(b)) {
            if let Some(ids) = batch["transferIds"].as_array_mut() {
                ids.push(json!(transfer["id"]));
            }
        }
        Reply::json(200, &transfer)
    }

    fn fund(&mut self, transfer: &str, body: &Value) -> Reply {
        if body["type"].as_str() != Some("BALANCE") {
            return error(
                422,
                "error.payIn.type",
                "Only BALANCE funding is supported",
                Some("type"),
            );
        }
        if !self.transfers.contains_key(transfer) {
            return error(404, "error.transfer.notFound", "Transfer not found", None);
        }
        if self.funded.iter().any(|t| t == transfer) {
            return error(
                422,
                "error.transfer.alreadyFunded",
                "Transfer already funded",
                None,
            );
        }
        self.funded.push(transfer.to_string());
        if let Some(t) = self.transfers.get_mut(transfer) {
            t["status"] = json!("processing");
        }
        Reply::json(
            200,
            &json!({"type": "BALANCE", "status": "COMPLETED", "errorCode": null}),
        )
    }

    fn batch(&mut self, body: &Value) -> Reply {
        let id = uuid::Uuid::new_v4().to_string();
        let group = json!({
            "id": id,
            "version": 1,
            "name": body["name"],
            "sourceCurrency": body["sourceCurrency"],
            "status": "NEW",
            "transferIds": [],
            "payInDetails": [],
        });
        self.batches.insert(id, group.clone());
        Reply::json(200, &group)
    }

    fn close(&mut self, batch: &str, body: &Value) -> Reply {
        let Some(group) = self.batches.get_mut(batch) else {
            return error(
                404,
                "error.batchGroup.notFound",
                "Batch group not found",
                None,
            );
        };
        if body["version"] != group["version"] {
            return error(
                409,
                "error.batchGroup.version",
                "Version mismatch",
                Some("version"),
            );
        }
        group["status"] = body["status"].clone();
        group["version"] = json!(group["version"].as_i64().unwrap_or(0) + 1);
        Reply::json(200, group)
    }

    fn fund_batch(&mut self, batch: &str, body: &Value) -> Reply {
        let Some(group) = self.batches.get(batch).cloned() else {
            return error(
                404,
                "error.batchGroup.notFound",
                "Batch group not found",
                None,
            );
        };
        if group["status"] != "COMPLETED" {
            return error(
                422,
                "error.batchGroup.status",
                "Batch group is not completed",
                None,
            );
        }
        for id in group["transferIds"].as_array().into_iter().flatten() {
            let id = id.to_string();
            let _ = self.fund(&id, body);
        }
        Reply::json(
            200,
            &json!({"type": "BALANCE", "status": "COMPLETED", "errorCode": null}),
        )
    }
}
