//! The Meta Marketing API (Graph) stand-in: `graph.facebook.com`, in
//! memory, answering as Graph does for what a growth agent does.
//!
//! - a token as `access_token` (query or body) or `Authorization: OAuth …`
//!   / `Bearer …`; none → Graph's `190` `OAuthException`;
//! - parameters from the query and a form or JSON body (a repeated name
//!   keeps its last value, as a lenient server would);
//! - versioned (`/v25.0/…`) and unversioned paths, a trailing `/`;
//! - `GET /act_{id}?fields=…` (the account's `currency`, …) and
//!   `GET /{id}?fields=…` (a campaign's or ad set's `account_id`,
//!   `daily_budget`, …): only the fields asked for, and `id`;
//! - `POST /act_{id}/campaigns` and `/act_{id}/adsets` create
//!   (`{"id":…}`), `POST /{id}` updates (`{"success":true}`),
//!   `POST /{id}/copies` copies (`{"copied_campaign_id"|"copied_adset_id":…}`),
//!   `execution_options=["validate_only"]` creates nothing;
//! - `batch=[…]` (form or JSON, on any path): each item run in order,
//!   answered as `[{"code","headers","body":"<json>"}]`;
//! - errors in Graph's shape, `{"error":{"message","type","code",
//!   "error_subcode","fbtrace_id"}}`, status 400.
//!
//! Seeded ad accounts: `act_1001` and `act_1002` (EUR), `act_2002` (JPY),
//! `act_3003` (HUF), `act_9999` (EUR, an account the growth stack does not
//! know); campaign `120200000000000001` (`act_1001`, no budget of its own)
//! and ad set `120200000000000777` (`act_1001`, `daily_budget` 5000).
//! Budgets are integers at Meta's offset, as Graph writes them (strings).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::{lock, Call, Reply, Vendor};

/// The host played.
pub const HOSTS: &[&str] = &["graph.facebook.com"];

/// In-memory Graph.
pub struct Meta {
    state: Mutex<State>,
}

struct State {
    objects: BTreeMap<String, Value>,
    next: u64,
}

type Params = BTreeMap<String, String>;

/// Graph's error: 400 with `{"error":{…}}`.
fn error(code: u64, kind: &str, message: &str) -> Reply {
    Reply::json(
        400,
        &json!({"error": {
            "message": message,
            "type": kind,
            "code": code,
            "error_subcode": null,
            "fbtrace_id": "StandInTrace",
        }}),
    )
}

fn invalid(message: &str) -> Reply {
    error(100, "OAuthException", &format!("(#100) {message}"))
}

impl Default for Meta {
    fn default() -> Self {
        Self::new()
    }
}

impl Meta {
    /// Graph with the seeded accounts and objects.
    pub fn new() -> Self {
        let mut objects = BTreeMap::new();
        for (act, currency) in [
            ("act_1001", "EUR"),
            ("act_1002", "EUR"),
            ("act_2002", "JPY"),
            ("act_3003", "HUF"),
            ("act_9999", "EUR"),
        ] {
            let digits = act.trim_start_matches("act_");
            objects.insert(
                act.to_string(),
                json!({"id": act, "account_id": digits, "currency": currency, "name": format!("Stand-in {act}"), "account_status": 1}),
            );
        }
        objects.insert(
            "120200000000000001".into(),
            json!({"id": "120200000000000001", "account_id": "1001", "name": "Always on", "objective": "OUTCOME_TRAFFIC", "status": "ACTIVE"}),
        );
        objects.insert(
            "120200000000000777".into(),
            json!({"id": "120200000000000777", "account_id": "1001", "campaign_id": "120200000000000001", "name": "Retargeting", "daily_budget": "5000", "status": "PAUSED"}),
        );
        Self {
            state: Mutex::new(State {
                objects,
                next: 120_200_000_000_100_000,
            }),
        }
    }
}

/// Query and body parameters, the body's winning.
fn params(call: &Call<'_>) -> Result<Params, Reply> {
    let mut out = Params::new();
    for (k, v) in form_urlencoded::parse(call.query.as_bytes()) {
        out.insert(k.into_owned(), v.into_owned());
    }
    let json = call
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json && !call.body.is_empty() {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(call.body) else {
            return Err(invalid("The request body is not a JSON object"));
        };
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(k, text);
        }
    } else {
        for (k, v) in form_urlencoded::parse(call.body) {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    Ok(out)
}

fn token(call: &Call<'_>, params: &Params) -> Option<String> {
    if let Some(t) = params.get("access_token").filter(|t| !t.is_empty()) {
        return Some(t.clone());
    }
    let auth = call.headers.get("authorization")?.to_str().ok()?;
    let (scheme, value) = auth.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("oauth") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| value.trim().to_string())
}

/// The path's segments after an optional `vNN.N`, without a trailing `/`.
fn segments(path: &str) -> Vec<String> {
    let mut segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if segs.first().is_some_and(|s| {
        s.starts_with('v')
            && s[1..]
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }) {
        segs.remove(0);
    }
    segs
}

impl Vendor for Meta {
    fn hosts(&self) -> &'static [&'static str] {
        HOSTS
    }

    fn object(&self, id: &str) -> Option<Value> {
        lock(&self.state).objects.get(id).cloned()
    }

    fn answer(&self, call: &Call<'_>) -> Reply {
        let params = match params(call) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        if token(call, &params).is_none() {
            return error(
                190,
                "OAuthException",
                "An active access token must be used to query information about the current user.",
            );
        }
        let method = params
            .get("method")
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_else(|| call.method.as_str().to_string());
        if method == "POST" {
            if let Some(batch) = params.get("batch") {
                return self.batch(batch);
            }
        }
        let (status, body) = self.run(&method, &segments(call.path), &params);
        Reply::json(status, &body)
    }
}

impl Meta {
    /// One call: `(status, body)`.
    fn run(&self, method: &str, segs: &[String], params: &Params) -> (u16, Value) {
        let mut state = lock(&self.state);
        let err = |code: u64, message: &str| {
            (
                400,
                json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "StandInTrace"}}),
            )
        };
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (method, segs.as_slice()) {
            ("GET", [id]) => match state.objects.get(*id) {
                None => err(100, &format!("Unsupported get request. Object with ID '{id}' does not exist")),
                Some(object) => (200, fields(object, params.get("fields"))),
            },
            ("POST", [act, edge @ ("campaigns" | "adsets")]) => {
                if !state.objects.contains_key(*act) {
                    return err(100, &format!("(#100) Ad account {act} does not exist"));
                }
                if params.get("name").is_none_or(|n| n.is_empty()) {
                    return err(100, "(#100) The parameter name is required");
                }
                if validate_only(params) {
                    return (200, json!({"success": true}));
                }
                let id = state.next.to_string();
                state.next += 1;
                let mut object = Map::new();
                object.insert("id".into(), json!(id));
                object.insert("account_id".into(), json!(act.trim_start_matches("act_")));
                object.insert("object_type".into(), json!(if *edge == "campaigns" { "campaign" } else { "adset" }));
                for (k, v) in params {
                    if !matches!(k.as_str(), "access_token" | "appsecret_proof" | "method" | "batch") {
                        object.insert(k.clone(), json!(v));
                    }
                }
                state.objects.insert(id.clone(), Value::Object(object));
                (200, json!({"id": id}))
            }
            ("POST", [id]) if !id.starts_with("act_") => {
                let Some(Value::Object(object)) = state.objects.get_mut(*id) else {
                    return err(100, &format!("Unsupported post request. Object with ID '{id}' does not exist"));
                };
                if !validate_only(params) {
                    for (k, v) in params {
                        if !matches!(k.as_str(), "access_token" | "appsecret_proof" | "method") {
                            object.insert(k.clone(), json!(v));
                        }
                    }
                }
                (200, json!({"success": true}))
            }
            ("POST", [id, "copies"]) => {
                let Some(original) = state.objects.get(*id).cloned() else {
                    return err(100, &format!("Unsupported post request. Object with ID '{id}' does not exist"));
                };
                let copy_id = state.next.to_string();
                state.next += 1;
                let mut copy = original;
                copy["id"] = json!(copy_id);
                copy["status"] = json!(params.get("status_option").map_or("PAUSED", String::as_str));
                let key = if copy.get("campaign_id").is_some() { "copied_adset_id" } else { "copied_campaign_id" };
                state.objects.insert(copy_id.clone(), copy);
                (200, json!({ key: copy_id }))
            }
            ("DELETE", [id]) => match state.objects.remove(*id) {
                Some(_) => (200, json!({"success": true})),
                None => err(100, &format!("Object with ID '{id}' does not exist")),
            },
            _ => err(
                100,
                &format!("Unsupported {method} request. The stand-in plays campaigns, ad sets and ad accounts."),
            ),
        }
    }

    /// Runs a batch: each item in order, answered as Graph answers one.
    fn batch(&self, batch: &str) -> Reply {
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(batch) else {
            return invalid("Param batch must be a JSON array");
        };
        if items.len() > 50 {
            return invalid("Too many requests in batch message. Maximum batch size is 50");
        }
        let mut answers = Vec::new();
        for item in &items {
            let method = item["method"]
                .as_str()
                .unwrap_or("GET")
                .to_ascii_uppercase();
            let url = item["relative_url"].as_str().unwrap_or("");
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let mut params = Params::new();
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                params.insert(k.into_owned(), v.into_owned());
            }
            for (k, v) in form_urlencoded::parse(item["body"].as_str().unwrap_or("").as_bytes()) {
                params.insert(k.into_owned(), v.into_owned());
            }
            let (status, body) = self.run(&method, &segments(path), &params);
            answers.push(json!({
                "code": status,
                "headers": [{"name": "Content-Type", "value": "application/json; charset=UTF-8"}],
                "body": body.to_string(),
            }));
        }
        Reply::json(200, &Value::Array(answers))
    }
}

fn validate_only(params: &Params) -> bool {
    params
        .get("execution_options")
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .is_some_and(|o| o.iter().any(|x| x == "validate_only"))
}

/// The object with only the fields asked for (and `id`), as Graph answers
/// `?fields=a,b`; without `fields`, its `id` and `name`.
fn fields(object: &Value, wanted: Option<&String>) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), object["id"].clone());
    let wanted: Vec<&str> = match wanted {
        Some(list) => list.split(',').map(str::trim).collect(),
        None => vec!["name"],
    };
    for key in wanted {
        if let Some(value) = object.get(key) {
            out.insert(key.to_string(), value.clone());
        }
    }
    Value::Object(out)
}
