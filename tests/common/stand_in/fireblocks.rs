//! The Fireblocks stand-in: `api.fireblocks.io` and
//! `sandbox-api.fireblocks.io`, answering like the Fireblocks API
//! (research §6): one workspace, in memory.
//!
//! - Every request needs `X-API-Key` and `Authorization: Bearer <JWT>`
//!   whose claims (read, not verified against a key: the stand-in has
//!   none) hold: `sub` equal to the API key, `uri` equal to the path and
//!   query, `bodyHash` equal to the hex SHA-256 of the exact body bytes,
//!   `exp` in the future, and a `nonce` never seen before. Otherwise 401
//!   `{"message":"Unauthorized: …","code":-7}` — so a stored copy of a
//!   request whose token expired is refused, as Fireblocks refuses it.
//! - `POST /v1/transactions` → `{"id":…,"status":"SUBMITTED"}`; a repeated
//!   `externalTxId` → 400 (the stand-in's code 1438). `GET
//!   /v1/transactions/{id}` shows what was created.
//! - `GET /v1/supported_assets`: BTC, ETH, USDC.
//! - Errors in Fireblocks' shape `{"message","code"}`; 404 for any other
//!   path.

use std::sync::Mutex;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{lock, Call, Reply, Vendor};

pub const HOSTS: &[&str] = &["api.fireblocks.io", "sandbox-api.fireblocks.io"];

#[derive(Default)]
struct State {
    transactions: Vec<Value>,
    nonces: Vec<String>,
}

/// The in-memory Fireblocks workspace.
#[derive(Default)]
pub struct Fireblocks {
    state: Mutex<State>,
}

impl Fireblocks {
    pub fn new() -> Self {
        Self::default()
    }
}

fn error(status: u16, code: i64, message: &str) -> Reply {
    Reply::json(status, &json!({"message": message, "code": code}))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A test JWT as the SDKs build it (RS256 in the header; the signature
/// part is not checked by the stand-in): `exp` seconds from now.
pub fn jwt(api_key: &str, uri: &str, body: &[u8], exp_in: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let iat = now();
    let claims = json!({
        "uri": uri,
        "nonce": uuid::Uuid::new_v4().to_string(),
        "iat": iat,
        "exp": iat + exp_in,
        "sub": api_key,
        "bodyHash": hex::encode(Sha256::digest(body)),
    });
    let payload = b64.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

impl State {
    /// Checks the JWT; the reason it is refused, if it is.
    fn authenticate(&mut self, call: &Call<'_>) -> Result<(), String> {
        let key = call
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .ok_or("missing X-API-Key")?;
        let token = call
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("missing bearer token")?;
        let payload = token.split('.').nth(1).ok_or("malformed JWT")?;
        let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or("malformed JWT")?;
        let uri = if call.query.is_empty() {
            call.path.to_string()
        } else {
            format!("{}?{}", call.path, call.query)
        };
        if claims["sub"].as_str() != Some(key) {
            return Err("the token was not issued for this API key".into());
        }
        if claims["uri"].as_str() != Some(uri.as_str()) {
            return Err("the token was signed for another URI".into());
        }
        if claims["bodyHash"].as_str() != Some(hex::encode(Sha256::digest(call.body)).as_str()) {
            return Err("the body does not match the token's bodyHash".into());
        }
        if claims["exp"].as_i64().is_none_or(|exp| exp <= now()) {
            return Err("JWT is expired".into());
        }
        let nonce = claims["nonce"].as_str().ok_or("no nonce")?.to_string();
        if self.nonces.contains(&nonce) {
            return Err("the nonce was used before".into());
        }
        self.nonces.push(nonce);
        Ok(())
    }
}

impl Vendor for Fireblocks {
    fn hosts(&self) -> &'static [&'static str] {
        HOSTS
    }

    fn object(&self, id: &str) -> Option<Value> {
        lock(&self.state)
            .transactions
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
    }

    fn answer(&self, call: &Call<'_>) -> Reply {
        let mut state = lock(&self.state);
        if let Err(why) = state.authenticate(call) {
            return error(401, -7, &format!("Unauthorized: {why}"));
        }
        let segs: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        match (call.method.as_str(), segs.as_slice()) {
            ("POST", ["v1", "transactions"]) => {
                let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
                    return error(400, 1001, "Invalid JSON body");
                };
                if body["assetId"].as_str().is_none() {
                    return error(400, 1002, "assetId is required");
                }
                if body["externalTxId"].is_string()
                    && state
                        .transactions
                        .iter()
                        .any(|t| t["externalTxId"] == body["externalTxId"])
                {
                    return error(
                        400,
                        1438,
                        "A transaction with this externalTxId already exists",
                    );
                }
                let id = uuid::Uuid::new_v4().to_string();
                let mut stored = body.clone();
                stored["id"] = json!(id);
                stored["status"] = json!("SUBMITTED");
                stored["createdAt"] = json!(now() * 1000);
                state.transactions.push(stored);
                Reply::json(200, &json!({"id": id, "status": "SUBMITTED"}))
            }
            ("GET", ["v1", "transactions", id]) => {
                match state.transactions.iter().find(|t| t["id"] == *id) {
                    Some(t) => Reply::json(200, t),
                    None => error(404, 1404, "Transaction not found"),
                }
            }
            ("GET", ["v1", "supported_assets"]) => Reply::json(
                200,
                &json!([
                    {"id": "BTC", "name": "Bitcoin", "type": "BASE_ASSET", "contractAddress": "", "nativeAsset": "BTC", "decimals": 8},
                    {"id": "ETH", "name": "Ethereum", "type": "BASE_ASSET", "contractAddress": "", "nativeAsset": "ETH", "decimals": 18},
                    {"id": "USDC", "name": "USD Coin", "type": "ERC20", "contractAddress": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "nativeAsset": "ETH", "decimals": 6},
                ]),
            ),
            _ => error(404, 1404, "Not found"),
        }
    }
}
