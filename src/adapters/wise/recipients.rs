//! Recipient creation (`POST /v1/accounts`, research §5.2 step 2): safe —
//! it moves no money — but it adds a beneficiary, so leash records it in
//! the audit chain (an `event` entry) with what Wise will pay to:
//! `accountHolderName`, `currency`, `type`, `profile`, `ownedByCustomer`,
//! and `details` with account numbers masked to their last four characters
//! (`accountNumber`, `iban`, `cardNumber`, `clabe`, …: whatever key names a
//! number, an IBAN, a card or a token). Bank identifiers (`abartn`,
//! `sortCode`, `bic`, `swiftCode`) are kept: they name the bank, not the
//! account. Nested details (`address`) keep only their country.

use serde_json::{json, Map, Value};

use crate::adapters::json::{self, Json};
use crate::intent::RequestView;

/// Top-level members copied as they are.
const KEPT: &[&str] = &[
    "accountHolderName",
    "currency",
    "type",
    "profile",
    "ownedByCustomer",
    "legalEntityType",
];

pub(super) fn record(req: &RequestView<'_>) -> Value {
    let body = match json::parse(req.body) {
        Ok(body @ Json::Object(_)) => body,
        Ok(_) => return json!({ "unreadable": "the body is not a JSON object" }),
        Err(e) => return json!({ "unreadable": e.to_string() }),
    };
    let mut out = Map::new();
    for name in KEPT {
        if let Some(value) = body.pointer(&format!("/{name}")).and_then(scalar) {
            out.insert((*name).to_owned(), value);
        }
    }
    if let Some(Json::Object(details)) = body.pointer("/details") {
        let mut kept = Map::new();
        for (key, value) in details {
            match value {
                Json::Object(_) => {
                    if let Some(country) = value.pointer("/country").and_then(scalar) {
                        kept.insert(format!("{key}.country"), country);
                    }
                }
                _ => {
                    if let Some(v) = scalar(value) {
                        let v = match (&v, secret(key)) {
                            (Value::String(s), true) => Value::String(masked(s)),
                            (Value::Number(_), true) => Value::String(masked(&v.to_string())),
                            _ => v,
                        };
                        kept.insert(key.clone(), v);
                    }
                }
            }
        }
        out.insert("details".to_owned(), Value::Object(kept));
    }
    Value::Object(out)
}

/// A JSON scalar as a serde value; numbers stay their text (floats are
/// never written into the audit chain).
fn scalar(value: &Json) -> Option<Value> {
    match value {
        Json::String(s) => Some(Value::String(s.clone())),
        Json::Number(n) => Some(Value::String(n.clone())),
        Json::Bool(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

fn secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "number", "iban", "card", "token", "clabe", "cpf", "taxid", "ifsc",
    ]
    .iter()
    .any(|word| key.contains(word))
        && key != "abartn"
}

/// All but the last four characters as `*`.
fn masked(s: &str) -> String {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let keep = chars.len().saturating_sub(4);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep { '*' } else { *c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::request;
    use super::super::WiseAdapter;
    use super::*;
    use crate::adapters::Adapter;

    /// The recipient body of research §5.2 (Wise's SCA sample).
    const RECIPIENT: &str = r#"{"accountHolderName":"John Smith","currency":"USD","type":"ABA","details":{"legalType":"PRIVATE","abartn":"064000020","accountType":"CHECKING","accountNumber":"40000000000","email":"john@example.com","address":{"country":"US","city":"New York","firstLine":"50 Main St","postCode":"10001","state":"NY"}}}"#;

    #[test]
    fn recipient_creation_is_safe_and_recorded_masked() {
        let adapter = WiseAdapter::default();
        let req = request("POST", "/v1/accounts", RECIPIENT.as_bytes());
        assert_eq!(adapter.classify(&req).kind(), "safe");
        let record = adapter.safe_record(&req).unwrap();
        assert_eq!(
            record,
            json!({
                "accountHolderName": "John Smith",
                "currency": "USD",
                "type": "ABA",
                "details": {
                    "legalType": "PRIVATE",
                    "abartn": "064000020",
                    "accountType": "CHECKING",
                    "accountNumber": "*******0000",
                    "email": "john@example.com",
                    "address.country": "US",
                }
            })
        );
        let iban = r#"{"accountHolderName":"A","currency":"EUR","type":"iban","details":{"legalType":"PRIVATE","IBAN":"DE89 3704 0044 0532 0130 00"}}"#;
        let record = adapter
            .safe_record(&request("POST", "/v1/accounts", iban.as_bytes()))
            .unwrap();
        assert_eq!(record["details"]["IBAN"], "******************3000");
        assert_eq!(
            adapter
                .safe_record(&request("POST", "/v1/accounts", b"{"))
                .unwrap()["unreadable"]
                .as_str()
                .map(|s| s.contains("JSON")),
            Some(true)
        );
        // Other safe writes record nothing.
        assert!(adapter
            .safe_record(&request("POST", "/v1/transfers", b"{}"))
            .is_none());
    }
}
