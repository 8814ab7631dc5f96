//! The Google Ads stand-in (`googleads.googleapis.com`): campaign budgets
//! in memory, over gRPC (what the client libraries speak: HTTP/2,
//! `application/grpc`, length-prefixed protobuf, `grpc-status` in the
//! trailers) and over REST JSON, plus the `googleAds:search` read leash
//! uses to learn a customer's currency.
//!
//! - Credentials: an `authorization: Bearer …` and a `developer-token`
//!   are required (gRPC `UNAUTHENTICATED`, REST 401 otherwise).
//! - `CampaignBudgetService/MutateCampaignBudgets` and
//!   `campaignBudgets:mutate`: creates get `customers/{id}/campaignBudgets/{n}`,
//!   updates change the amount of a budget; `validate_only` stores
//!   nothing. gzip-compressed gRPC messages are read.
//! - `googleAds:search` (REST) answers `customer.currency_code` for the
//!   seeded customers: `1234567890` (EUR), `5550001111` (USD).
//! - Anything else: gRPC `UNIMPLEMENTED`, REST 404, in Google's shapes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use prost::Message;
use serde_json::{json, Value};

use super::{Call, Reply, Vendor};
use leash::adapters::google_ads::{grpc, proto};

const HOSTS: &[&str] = &["googleads.googleapis.com"];

/// `MutateCampaignBudgetsResponse`: 2 results.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutateCampaignBudgetsResponse {
    #[prost(message, repeated, tag = "2")]
    pub results: Vec<MutateCampaignBudgetResult>,
}

/// `MutateCampaignBudgetResult`: 1 resource_name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutateCampaignBudgetResult {
    #[prost(string, tag = "1")]
    pub resource_name: String,
}

/// One stored budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub amount_micros: Option<i64>,
    pub total_amount_micros: Option<i64>,
}

/// The stand-in Google Ads API.
pub struct GoogleAds {
    customers: BTreeMap<&'static str, &'static str>,
    budgets: Mutex<BTreeMap<String, Budget>>,
    next: Mutex<u64>,
}

impl Default for GoogleAds {
    fn default() -> Self {
        Self::new()
    }
}

impl GoogleAds {
    pub fn new() -> Self {
        GoogleAds {
            customers: BTreeMap::from([("1234567890", "EUR"), ("5550001111", "USD")]),
            budgets: Mutex::default(),
            next: Mutex::new(1000),
        }
    }

    fn new_budget(&self, customer: &str, budget: Budget) -> String {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let name = format!("customers/{customer}/campaignBudgets/{next}");
        self.budgets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), budget);
        name
    }

    /// Changes the amounts the update sets (a budget it did not create is
    /// taken as existing).
    fn update_budget(&self, name: &str, budget: Budget) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let stored = budgets.entry(name.to_owned()).or_insert(Budget {
            amount_micros: None,
            total_amount_micros: None,
        });
        if budget.amount_micros.is_some() {
            stored.amount_micros = budget.amount_micros;
        }
        if budget.total_amount_micros.is_some() {
            stored.total_amount_micros = budget.total_amount_micros;
        }
    }

    fn authorized(call: &Call<'_>) -> bool {
        let bearer = call
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
        bearer && call.headers.contains_key("developer-token")
    }

    fn grpc(&self, call: &Call<'_>) -> Reply {
        if !Self::authorized(call) {
            return grpc_error(16, "Request is missing required authentication credential.");
        }
        let encoding = call
            .headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok());
        let method = call
            .path
            .strip_prefix("/google.ads.googleads.")
            .and_then(|rest| rest.split_once(".services."))
            .map(|(_, method)| method);
        if method != Some("CampaignBudgetService/MutateCampaignBudgets") {
            return grpc_error(12, "Method not found.");
        }
        let message = match grpc::one_message(call.body, encoding) {
            Ok(message) => message,
            Err(e) => return grpc_error(13, &e.to_string()),
        };
        let request = match proto::MutateCampaignBudgetsRequest::decode(message.as_slice()) {
            Ok(request) => request,
            Err(e) => return grpc_error(3, &format!("Request message serialization failure: {e}")),
        };
        if !self.customers.contains_key(request.customer_id.as_str()) {
            return grpc_error(7, "The caller does not have permission");
        }
        let mut results = Vec::new();
        for op in &request.operations {
            let resource_name = match &op.operation {
                Some(proto::BudgetAction::Create(b)) => {
                    let budget = Budget {
                        amount_micros: b.amount_micros,
                        total_amount_micros: b.total_amount_micros,
                    };
                    if request.validate_only {
                        String::new()
                    } else {
                        self.new_budget(&request.customer_id, budget)
                    }
                }
                Some(proto::BudgetAction::Update(b)) => {
                    if !request.validate_only {
                        self.update_budget(
                            &b.resource_name,
                            Budget {
                                amount_micros: b.amount_micros,
                                total_amount_micros: b.total_amount_micros,
                            },
                        );
                    }
                    b.resource_name.clone()
                }
                Some(proto::BudgetAction::Remove(name)) => name.clone(),
                None => return grpc_error(3, "Operation is required."),
            };
            results.push(MutateCampaignBudgetResult { resource_name });
        }
        let answer = MutateCampaignBudgetsResponse { results }.encode_to_vec();
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        Reply {
            status: 200,
            headers: vec![
                ("content-type", HeaderValue::from_static("application/grpc")),
                ("request-id", HeaderValue::from_static("stand-in-request")),
            ],
            body: Bytes::from(grpc::frame(&answer, false)),
            trailers: Some(Box::new(trailers)),
        }
    }

    fn rest(&self, call: &Call<'_>) -> Reply {
        if !Self::authorized(call) {
            return rest_error(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential.",
            );
        }
        let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        let [_version, "customers", customer, verb] = segments.as_slice() else {
            return rest_error(
                404,
                "NOT_FOUND",
                "The requested URL was not found on this server.",
            );
        };
        let Some(currency) = self.customers.get(customer) else {
            return rest_error(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            );
        };
        let body: Value = match serde_json::from_slice(call.body) {
            Ok(body) => body,
            Err(_) => return rest_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
        };
        match (call.method.as_str(), *verb) {
            ("POST", "googleAds:search") => {
                let query = body["query"].as_str().unwrap_or("");
                if !query.contains("customer.currency_code") {
                    return rest_error(
                        400,
                        "INVALID_ARGUMENT",
                        "The stand-in answers only SELECT customer.currency_code FROM customer.",
                    );
                }
                Reply::json(
                    200,
                    &json!({
                        "results": [{"customer": {
                            "resourceName": format!("customers/{customer}"),
                            "currencyCode": currency,
                        }}],
                        "fieldMask": "customer.currencyCode",
                        "requestId": "stand-in-request",
                    }),
                )
            }
            ("POST", "campaignBudgets:mutate") => {
                let validate_only = body["validateOnly"].as_bool().unwrap_or(false);
                let micros = |b: &Value, key: &str| {
                    b.get(key).and_then(|v| match v {
                        Value::String(s) => s.parse::<i64>().ok(),
                        other => other.as_i64(),
                    })
                };
                let mut results = Vec::new();
                for op in body["operations"].as_array().cloned().unwrap_or_default() {
                    let name = if let Some(b) = op.get("create") {
                        let budget = Budget {
                            amount_micros: micros(b, "amountMicros"),
                            total_amount_micros: micros(b, "totalAmountMicros"),
                        };
                        if validate_only {
                            String::new()
                        } else {
                            self.new_budget(customer, budget)
                        }
                    } else if let Some(b) = op.get("update") {
                        let name = b["resourceName"].as_str().unwrap_or("").to_owned();
                        if !validate_only {
                            self.update_budget(
                                &name,
                                Budget {
                                    amount_micros: micros(b, "amountMicros"),
                                    total_amount_micros: micros(b, "totalAmountMicros"),
                                },
                            );
                        }
                        name
                    } else {
                        op["remove"].as_str().unwrap_or("").to_owned()
                    };
                    results.push(json!({ "resourceName": name }));
                }
                Reply::json(200, &json!({ "results": results }))
            }
            _ => rest_error(
                404,
                "NOT_FOUND",
                "The requested URL was not found on this server.",
            ),
        }
    }
}

/// A gRPC error as Google sends it: HTTP 200, the status in trailers.
fn grpc_error(code: u8, message: &str) -> Reply {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(message) = HeaderValue::from_str(&grpc::percent_encode(message)) {
        trailers.insert("grpc-message", message);
    }
    Reply {
        status: 200,
        headers: vec![("content-type", HeaderValue::from_static("application/grpc"))],
        body: Bytes::new(),
        trailers: Some(Box::new(trailers)),
    }
}

/// Google's JSON error envelope.
fn rest_error(status: u16, name: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": status, "message": message, "status": name}}),
    )
}

impl Vendor for GoogleAds {
    fn hosts(&self) -> &'static [&'static str] {
        HOSTS
    }

    fn answer(&self, call: &Call<'_>) -> Reply {
        let grpc = call
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if grpc {
            self.grpc(call)
        } else {
            self.rest(call)
        }
    }

    /// A budget by resource name, as `{"amountMicros": …}`.
    fn object(&self, id: &str) -> Option<Value> {
        let budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets.get(id).map(|b| {
            json!({
                "resourceName": id,
                "amountMicros": b.amount_micros.map(|m| m.to_string()),
                "totalAmountMicros": b.total_amount_micros.map(|m| m.to_string()),
            })
        })
    }
}
