//! `POST /v1/transactions` (research §6.2): one intent per destination.
//!
//! - `operation` absent or `TRANSFER` is read; `CONTRACT_CALL`, `RAW`,
//!   `TYPED_MESSAGE`, `APPROVE` and `PROGRAM_CALL` can move value that no
//!   field states (calldata, a signed message, an allowance), so they are
//!   unreadable (a human states the amount); any other operation (`MINT`,
//!   `BURN`, `ENABLE_ASSET`, …) is unknown. A `TRANSFER` whose
//!   `extraParameters` carries call data or a raw message is unreadable too.
//! - `amount` is a decimal in asset units, as a string (`"0.5"`, strictly:
//!   no sign, exponent or spaces) or a JSON number (read exactly from its
//!   text, exponent forms included, never through a float).
//! - `assetId` is counted in the fx currency `vendors.fireblocks.assets`
//!   maps it to; unmapped, in its base symbol, the part before the first
//!   `_` (`BTC_TEST` → `BTC`, `USDC_POLYGON` → `USDC`, `ETH_TEST5` →
//!   `ETH`). Testnet coins are thus counted at mainnet prices: caps err on
//!   the side of counting too much, never too little. A base symbol with no
//!   fx rate leaves the intent unconvertible, hence held (SPEC §5.3).
//! - `destinations[]` (several outputs): one intent per destination, the
//!   amounts of outputs to the same destination summed; a top-level
//!   `amount` beside them must equal their sum, and `destination` beside a
//!   non-empty `destinations` is ambiguous (which does Fireblocks pay?).
//! - Beneficiary: a one-time address as written (`bc1q…`, with `#tag` when
//!   a memo / destination tag is given, since the tag picks the recipient
//!   at an exchange), any other peer as `TYPE:id` (`EXTERNAL_WALLET:<id>`
//!   for a whitelisted wallet, `VAULT_ACCOUNT:1` for an internal move).
//! - `externalTxId` is the idempotency key (Fireblocks' durable dedup id,
//!   §6.1), else the `Idempotency-Key` header.
//! - Fees: with `treatAsGrossAmount: true` the network fee comes out of
//!   the amount; otherwise it is paid on top, in the chain's native asset,
//!   and is not part of the intent's amount. Either way `sources.fee` says
//!   so, with any fee fields the request set.

use rust_decimal::Decimal;

use super::{shown, FireblocksAdapter, CATEGORY, VENDOR};
use crate::adapters::json::{self, Json};
use crate::intent::{Classification, IntentDraft, RequestView};
use crate::money::{parse_decimal_amount, Currency, Money};

const OPERATION: &str = "transaction.create";

/// Operations whose value no field of the request states.
const OPAQUE: &[&str] = &[
    "CONTRACT_CALL",
    "RAW",
    "TYPED_MESSAGE",
    "APPROVE",
    "PROGRAM_CALL",
];

/// `extraParameters` members that turn a transfer into a call.
const CALL_PARAMETERS: &[&str] = &[
    "contractCallData",
    "rawMessageData",
    "programCallData",
    "inputsSelection",
];

/// Fee fields recorded with the intent (not counted in its amount).
const FEE_FIELDS: &[&str] = &[
    "fee",
    "feeLevel",
    "maxFee",
    "maxTotalFee",
    "priorityFee",
    "networkFee",
    "gasPrice",
    "gasLimit",
];

/// Why a transaction could not be read: missing information (a human may
/// state it) or two readings (refused outright).
enum Problem {
    Unreadable(String),
    Ambiguous(String),
    Unknown(String),
}

pub(super) fn create(adapter: &FireblocksAdapter, req: &RequestView<'_>) -> Classification {
    match read(adapter, req) {
        Ok(drafts) => Classification::spend(OPERATION, drafts),
        Err(Problem::Unreadable(reason)) => Classification::Unreadable {
            operation: OPERATION.to_owned(),
            reason,
        },
        Err(Problem::Ambiguous(reason)) => Classification::Ambiguous {
            operation: OPERATION.to_owned(),
            reason,
        },
        Err(Problem::Unknown(reason)) => Classification::Unknown {
            operation: OPERATION.to_owned(),
            reason,
        },
    }
}

fn unreadable(reason: impl Into<String>) -> Problem {
    Problem::Unreadable(reason.into())
}

fn read(adapter: &FireblocksAdapter, req: &RequestView<'_>) -> Result<Vec<IntentDraft>, Problem> {
    if let Some(ct) = req.content_type {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/json" {
            return Err(unreadable(format!(
                "the body is {}, not application/json",
                shown(&media)
            )));
        }
    }
    if req.query.is_some_and(|q| !q.is_empty()) {
        return Err(Problem::Ambiguous(
            "POST /v1/transactions carries a query string as well as its JSON body".to_owned(),
        ));
    }
    let body = match json::parse(req.body) {
        Ok(body) => body,
        Err(e) if e.is_ambiguous() => return Err(Problem::Ambiguous(e.to_string())),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    if !matches!(body, Json::Object(_)) {
        return Err(unreadable("the body is not a JSON object"));
    }
    let field = |name: &str| body.pointer(&format!("/{name}"));

    let operation = match field("operation") {
        None => "TRANSFER",
        Some(Json::String(op)) => op.as_str(),
        Some(_) => return Err(unreadable("`operation` is not a string")),
    };
    if OPAQUE.contains(&operation) {
        return Err(unreadable(format!(
            "operation {} can move value that no field of the request states; an approver must state the amount",
            shown(operation)
        )));
    }
    if operation != "TRANSFER" {
        return Err(Problem::Unknown(format!(
            "operation {} is not one leash reads (it reads TRANSFER)",
            shown(operation)
        )));
    }
    if let Some(extra) = field("extraParameters") {
        if let Some(name) = CALL_PARAMETERS
            .iter()
            .find(|name| extra.pointer(&format!("/{name}")).is_some())
        {
            return Err(unreadable(format!(
                "extraParameters.{name} makes this transfer a call whose value leash cannot read"
            )));
        }
    }

    let asset = match field("assetId") {
        Some(Json::String(asset)) if !asset.is_empty() => asset.as_str(),
        Some(_) => return Err(unreadable("`assetId` is not a non-empty string")),
        None => return Err(unreadable("the transaction has no `assetId`")),
    };
    let (currency, counted_as) = adapter.currency_of(asset).map_err(unreadable)?;

    let idempotency_key = match field("externalTxId") {
        Some(Json::String(id)) => Some(id.clone()),
        Some(_) => return Err(unreadable("`externalTxId` is not a string")),
        None => req.idempotency_key.map(str::to_owned),
    };
    let gross = match field("treatAsGrossAmount") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(unreadable("`treatAsGrossAmount` is not true or false")),
    };
    let source = match field("source") {
        None => None,
        Some(peer) => Some(peer_name(peer).map_err(|e| unreadable(format!("source: {e}")))?),
    };

    let outputs = outputs(&body)?;

    let mut fee = if gross {
        "included in the amount (treatAsGrossAmount)".to_owned()
    } else {
        "the network fee is paid on top of the amount, in the network's native asset, and not counted"
            .to_owned()
    };
    for name in FEE_FIELDS {
        if let Some(value) = field(name).and_then(Json::scalar_text) {
            fee.push_str(&format!("; {name} {}", shown(value)));
        }
    }

    let total_outputs = outputs.len();
    Ok(outputs
        .into_iter()
        .map(|output| {
            let mut sources = std::collections::BTreeMap::new();
            sources.insert("currency".to_owned(), counted_as.clone());
            sources.insert("fee".to_owned(), fee.clone());
            if let Some(source) = &source {
                sources.insert("source".to_owned(), source.clone());
            }
            if total_outputs > 1 || output.from != "amount" {
                sources.insert("amount".to_owned(), output.from.clone());
            }
            IntentDraft {
                vendor: VENDOR.to_owned(),
                operation: OPERATION.to_owned(),
                amount: Some(Money::new(output.amount, currency)),
                beneficiary: Some(output.beneficiary),
                category: CATEGORY.to_owned(),
                idempotency_key: idempotency_key.clone(),
                sources,
            }
        })
        .collect())
}

/// What one destination receives, and the fields it was read from.
struct Output {
    beneficiary: String,
    amount: Decimal,
    from: String,
}

fn outputs(body: &Json) -> Result<Vec<Output>, Problem> {
    let destination = body.pointer("/destination").filter(|d| **d != Json::Null);
    let destinations = match body.pointer("/destinations") {
        None | Some(Json::Null) => None,
        Some(Json::Array(items)) if items.is_empty() => None,
        Some(Json::Array(items)) => Some(items),
        Some(_) => return Err(unreadable("`destinations` is not an array")),
    };
    let top = match body.pointer("/amount").filter(|a| **a != Json::Null) {
        None => None,
        Some(amount) => Some(amount_of(amount).map_err(|e| unreadable(format!("amount {e}")))?),
    };
    match (destination, destinations) {
        (Some(_), Some(_)) => Err(Problem::Ambiguous(
            "the transaction names both `destination` and `destinations`".to_owned(),
        )),
        (None, None) => Err(unreadable("the transaction has no destination")),
        (Some(destination), None) => {
            let beneficiary =
                peer_name(destination).map_err(|e| unreadable(format!("destination: {e}")))?;
            let amount = top.ok_or_else(|| unreadable("the transaction has no `amount`"))?;
            Ok(vec![Output {
                beneficiary,
                amount,
                from: "amount".to_owned(),
            }])
        }
        (None, Some(items)) => {
            let mut out: Vec<Output> = Vec::new();
            let mut sum = Decimal::ZERO;
            for (i, item) in items.iter().enumerate() {
                let at = format!("destinations[{i}]");
                if !matches!(item, Json::Object(_)) {
                    return Err(unreadable(format!("{at} is not an object")));
                }
                let amount = item
                    .pointer("/amount")
                    .ok_or_else(|| unreadable(format!("{at} has no amount")))
                    .and_then(|a| {
                        amount_of(a).map_err(|e| unreadable(format!("{at}.amount {e}")))
                    })?;
                let beneficiary = item
                    .pointer("/destination")
                    .ok_or_else(|| unreadable(format!("{at} has no destination")))
                    .and_then(|d| {
                        peer_name(d).map_err(|e| unreadable(format!("{at}.destination: {e}")))
                    })?;
                sum = sum
                    .checked_add(amount)
                    .ok_or_else(|| unreadable("the destinations' amounts overflow"))?;
                match out.iter_mut().find(|o| o.beneficiary == beneficiary) {
                    Some(o) => {
                        o.amount = o
                            .amount
                            .checked_add(amount)
                            .ok_or_else(|| unreadable("the destinations' amounts overflow"))?;
                        o.from.push_str(&format!(" + {at}"));
                    }
                    None => out.push(Output {
                        beneficiary,
                        amount,
                        from: at,
                    }),
                }
            }
            if let Some(top) = top {
                if top != sum {
                    return Err(Problem::Ambiguous(format!(
                        "the top-level amount {top} differs from the sum of destinations[] ({sum})"
                    )));
                }
            }
            Ok(out)
        }
    }
}

/// An amount in asset units: a strict decimal string, or a JSON number read
/// exactly from its text.
fn amount_of(value: &Json) -> Result<Decimal, String> {
    match value {
        Json::String(text) => parse_decimal_amount(text).map_err(|e| e.to_string()),
        Json::Number(_) => value.number_decimal(),
        _ => Err("is neither a decimal string nor a number".to_owned()),
    }
}

/// A peer (`destination`, `source`) as a beneficiary: a one-time address
/// as written (`#tag` appended when there is one), otherwise `TYPE:id`.
fn peer_name(peer: &Json) -> Result<String, String> {
    if !matches!(peer, Json::Object(_)) {
        return Err("is not an object".to_owned());
    }
    let kind = match peer.pointer("/type") {
        Some(Json::String(kind)) if is_word(kind) => kind.as_str(),
        // Fireblocks' default peer type is VAULT_ACCOUNT; leash does not
        // assume it.
        Some(_) => return Err("`type` is not a peer type like VAULT_ACCOUNT".to_owned()),
        None => return Err("has no `type`".to_owned()),
    };
    if kind == "ONE_TIME_ADDRESS" {
        let address = match peer.pointer("/oneTimeAddress/address") {
            Some(Json::String(a)) if !a.trim().is_empty() && a.trim() == a => a,
            _ => return Err("ONE_TIME_ADDRESS without a plain oneTimeAddress.address".to_owned()),
        };
        return match peer.pointer("/oneTimeAddress/tag") {
            None | Some(Json::Null) => Ok(address.clone()),
            Some(Json::String(tag)) if tag.is_empty() => Ok(address.clone()),
            Some(Json::String(tag)) => Ok(format!("{address}#{tag}")),
            Some(_) => Err("oneTimeAddress.tag is not a string".to_owned()),
        };
    }
    match peer.pointer("/id") {
        Some(Json::String(id)) if !id.is_empty() && id.trim() == id => Ok(format!("{kind}:{id}")),
        Some(Json::Number(id)) => Ok(format!("{kind}:{id}")),
        _ => Err(format!("{kind} without an id")),
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

impl FireblocksAdapter {
    /// The currency `asset` is counted in, and how that was decided (for
    /// the intent's `sources`).
    fn currency_of(&self, asset: &str) -> Result<(Currency, String), String> {
        let (code, how) = match self.assets.get(asset) {
            Some(code) => (code.as_str(), "vendors.fireblocks.assets"),
            None => (
                asset.split('_').next().unwrap_or(asset),
                "the asset id's base symbol",
            ),
        };
        let currency = Currency::parse(code)
            .or_else(|_| Currency::asset(code))
            .map_err(|_| {
                format!(
                    "assetId {} has no currency leash can count it in; map it in vendors.fireblocks.assets",
                    shown(asset)
                )
            })?;
        Ok((currency, format!("{currency} (assetId {asset}, by {how})")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::post;
    use super::*;
    use crate::adapters::Adapter;
    use crate::config::FireblocksSettings;
    use proptest::prelude::*;

    /// The exact fireblocks-sdk-py body of research §6.2 (its `json.dumps`
    /// separators), with a real address in place of `bc1q…`.
    const SDK_PY: &str = r#"{"waitForStatus": false, "operation": "TRANSFER", "assetId": "BTC", "source": {"type": "VAULT_ACCOUNT", "id": "0"}, "amount": "0.5", "note": "GPU vendor invoice 1042", "destination": {"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}}, "externalTxId": "inv-1042-attempt-1"}"#;

    fn adapter() -> FireblocksAdapter {
        let mut settings = FireblocksSettings::default();
        settings
            .assets
            .insert("USDC_ETH_TEST5_0GER".into(), "USDC".into());
        settings.assets.insert("WEIRD".into(), "USD".into());
        FireblocksAdapter::new(&settings)
    }

    fn classify(body: &str) -> Classification {
        adapter().classify(&post("/v1/transactions", body.as_bytes()))
    }

    fn drafts(body: &str) -> Vec<IntentDraft> {
        match classify(body) {
            Classification::Spend(d) => d,
            other => panic!("{other:?}"),
        }
    }

    fn summary(d: &IntentDraft) -> (String, String) {
        (
            d.amount.map(|m| m.to_string()).unwrap_or_default(),
            d.beneficiary.clone().unwrap_or_default(),
        )
    }

    #[track_caller]
    fn is(body: &str, kind: &str, needle: &str) {
        let c = classify(body);
        assert_eq!(c.kind(), kind, "{c:?}");
        let reason = match &c {
            Classification::Unreadable { reason, .. }
            | Classification::Unknown { reason, .. }
            | Classification::Ambiguous { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        assert!(reason.contains(needle), "{needle:?} not in {reason:?}");
    }

    #[test]
    fn the_python_sdk_body() {
        let d = drafts(SDK_PY);
        assert_eq!(d.len(), 1);
        assert_eq!(
            summary(&d[0]),
            (
                "0.5 BTC".into(),
                "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into()
            )
        );
        assert_eq!(d[0].operation, "transaction.create");
        assert_eq!(d[0].category, "crypto_transfer");
        assert_eq!(d[0].idempotency_key.as_deref(), Some("inv-1042-attempt-1"));
        assert_eq!(d[0].sources["source"], "VAULT_ACCOUNT:0");
        assert!(d[0].sources["fee"].contains("on top"), "{:?}", d[0].sources);
        assert_eq!(
            d[0].sources["currency"],
            "BTC (assetId BTC, by the asset id's base symbol)"
        );
    }

    /// What the TypeScript SDK sends: `JSON.stringify` of the request, no
    /// spaces, the amount as a JSON number, a whitelisted wallet.
    #[test]
    fn the_typescript_sdk_body_with_a_number_and_a_wallet() {
        let body = r#"{"assetId":"ETH_TEST5","amount":0.00001,"source":{"type":"VAULT_ACCOUNT","id":"1"},"destination":{"type":"EXTERNAL_WALLET","id":"6b4c4b4e-2f0e-4c59-9c1f-1c2f1b0c9e11"},"note":"x","treatAsGrossAmount":true,"feeLevel":"HIGH"}"#;
        let d = drafts(body);
        assert_eq!(
            summary(&d[0]),
            (
                "0.00001 ETH".into(),
                "EXTERNAL_WALLET:6b4c4b4e-2f0e-4c59-9c1f-1c2f1b0c9e11".into()
            )
        );
        assert_eq!(d[0].idempotency_key, None);
        assert_eq!(
            d[0].sources["fee"],
            "included in the amount (treatAsGrossAmount); feeLevel \"HIGH\""
        );
        // Python's json.dumps of the float 0.00001.
        let d = drafts(&body.replace("0.00001", "1e-05"));
        assert_eq!(summary(&d[0]).0, "0.00001 ETH");
    }

    #[test]
    fn asset_ids_map_to_fx_currencies() {
        for (asset, want) in [
            ("BTC_TEST", "1 BTC"),
            ("USDC_POLYGON", "1 USDC"),
            ("USDC_ETH_TEST5_0GER", "1 USDC"),
            ("ETH", "1 ETH"),
            ("WEIRD", "1.00 USD"),
            ("USD", "1.00 USD"),
        ] {
            let body = SDK_PY
                .replace("\"BTC\"", &format!("\"{asset}\""))
                .replace("\"0.5\"", "\"1\"");
            assert_eq!(summary(&drafts(&body)[0]).0, want, "{asset}");
        }
        let d = drafts(&SDK_PY.replace("\"BTC\"", "\"WEIRD\""));
        assert_eq!(
            d[0].sources["currency"],
            "USD (assetId WEIRD, by vendors.fireblocks.assets)"
        );
        for asset in ["", "_X", "A", "TOOLONGASSETNAME_1", "BT C"] {
            let body = SDK_PY.replace("\"BTC\"", &format!("\"{asset}\""));
            assert_eq!(classify(&body).kind(), "unreadable", "{asset}");
        }
    }

    #[test]
    fn destinations_are_one_intent_each_summed_per_destination() {
        let body = r#"{"operation":"TRANSFER","assetId":"USDC","source":{"type":"VAULT_ACCOUNT","id":"0"},
            "destinations":[
              {"amount":"100.5","destination":{"type":"ONE_TIME_ADDRESS","oneTimeAddress":{"address":"0xA"}}},
              {"amount":200,"destination":{"type":"EXTERNAL_WALLET","id":"w1"}},
              {"amount":"0.5","destination":{"type":"ONE_TIME_ADDRESS","oneTimeAddress":{"address":"0xA"}}}
            ],"externalTxId":"batch-7"}"#;
        let d = drafts(body);
        let got: Vec<_> = d.iter().map(summary).collect();
        assert_eq!(
            got,
            [
                ("101.0 USDC".to_string(), "0xA".to_string()),
                ("200 USDC".to_string(), "EXTERNAL_WALLET:w1".to_string()),
            ]
        );
        assert_eq!(d[0].sources["amount"], "destinations[0] + destinations[2]");
        assert!(d
            .iter()
            .all(|d| d.idempotency_key.as_deref() == Some("batch-7")));
        // A matching top-level amount is fine; another is two readings.
        let with_total = body.replace("\"assetId\"", "\"amount\":\"301\",\"assetId\"");
        assert_eq!(drafts(&with_total).len(), 2);
        is(
            &body.replace("\"assetId\"", "\"amount\":\"1\",\"assetId\""),
            "ambiguous",
            "differs from the sum",
        );
        is(
            &body.replace(
                "\"assetId\"",
                "\"destination\":{\"type\":\"VAULT_ACCOUNT\",\"id\":\"2\"},\"assetId\"",
            ),
            "ambiguous",
            "both",
        );
    }

    #[test]
    fn tags_and_peers() {
        let body = SDK_PY.replace(
            r#"{"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}"#,
            r#"{"address": "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", "tag": "12345"}"#,
        );
        assert_eq!(
            summary(&drafts(&body)[0]).1,
            "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh#12345"
        );
        let vault = SDK_PY.replace(
            r#"{"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}}"#,
            r#"{"type": "VAULT_ACCOUNT", "id": "7"}"#,
        );
        assert_eq!(summary(&drafts(&vault)[0]).1, "VAULT_ACCOUNT:7");
        for (peer, needle) in [
            (r#"{"type": "VAULT_ACCOUNT"}"#, "without an id"),
            (r#"{"id": "7"}"#, "no `type`"),
            (r#"{"type": "vault", "id": "7"}"#, "peer type"),
            (r#"{"type": "ONE_TIME_ADDRESS"}"#, "oneTimeAddress.address"),
            (
                r#"{"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {"address": " 0xA"}}"#,
                "oneTimeAddress.address",
            ),
            (r#""0xA""#, "not an object"),
        ] {
            let body = SDK_PY.replace(
                r#"{"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}}"#,
                peer,
            );
            is(&body, "unreadable", needle);
        }
    }

    #[test]
    fn opaque_operations_and_calls_are_unreadable() {
        for op in [
            "CONTRACT_CALL",
            "RAW",
            "TYPED_MESSAGE",
            "APPROVE",
            "PROGRAM_CALL",
        ] {
            is(
                &SDK_PY.replace("\"TRANSFER\"", &format!("\"{op}\"")),
                "unreadable",
                "approver must state the amount",
            );
        }
        for op in ["MINT", "BURN", "transfer"] {
            is(
                &SDK_PY.replace("\"TRANSFER\"", &format!("\"{op}\"")),
                "unknown",
                "not one leash reads",
            );
        }
        let call = SDK_PY.replace(
            "\"externalTxId\"",
            "\"extraParameters\": {\"contractCallData\": \"0xa9059cbb\"}, \"externalTxId\"",
        );
        is(&call, "unreadable", "contractCallData");
        // No operation at all is a TRANSFER.
        let plain = SDK_PY.replace("\"operation\": \"TRANSFER\", ", "");
        assert_eq!(drafts(&plain).len(), 1);
    }

    #[test]
    fn malformed_amounts_and_bodies() {
        for amount in [
            "\"-0.5\"", "\"1e-5\"", "\" 0.5\"", "\"0x10\"", "-1", "true", "null", "\"\"", "1e-40",
        ] {
            let body = SDK_PY.replace("\"0.5\"", amount);
            assert_eq!(classify(&body).kind(), "unreadable", "{amount}");
        }
        is(
            &SDK_PY.replace("\"amount\": \"0.5\", ", ""),
            "unreadable",
            "no `amount`",
        );
        is(
            &SDK_PY.replace(
                "\"amount\": \"0.5\"",
                "\"amount\": \"0.5\", \"amount\": \"5000\"",
            ),
            "ambiguous",
            "amount",
        );
        is("[1]", "unreadable", "not a JSON object");
        is("{", "unreadable", "not valid JSON");
        is(
            &SDK_PY.replace("\"destination\": {\"type\": \"ONE_TIME_ADDRESS\", \"oneTimeAddress\": {\"address\": \"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq\"}}, ", ""),
            "unreadable",
            "no destination",
        );
        is(
            &SDK_PY.replace(
                "false, \"operation\"",
                "false, \"treatAsGrossAmount\": \"yes\", \"operation\"",
            ),
            "unreadable",
            "treatAsGrossAmount",
        );
        let a = adapter();
        let mut req = post("/v1/transactions", SDK_PY.as_bytes());
        req.content_type = Some("application/x-www-form-urlencoded");
        assert_eq!(a.classify(&req).kind(), "unreadable");
        req.content_type = None;
        assert_eq!(a.classify(&req).kind(), "spend");
        req.query = Some("amount=1");
        assert_eq!(a.classify(&req).kind(), "ambiguous");
    }

    #[test]
    fn the_idempotency_header_stands_in_for_a_missing_external_tx_id() {
        let a = adapter();
        let body = SDK_PY.replace(", \"externalTxId\": \"inv-1042-attempt-1\"", "");
        let mut req = post("/v1/transactions", body.as_bytes());
        req.idempotency_key = Some("idem-9");
        match a.classify(&req) {
            Classification::Spend(d) => assert_eq!(d[0].idempotency_key.as_deref(), Some("idem-9")),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        /// Any bytes: a classification, never a panic, never safe.
        #[test]
        fn never_panics_never_safe(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let c = adapter().classify(&post("/v1/transactions", &body));
            prop_assert_ne!(c.kind(), "safe");
        }

        /// An amount written as a string or a number, in plain or exponent
        /// form, is read back exactly.
        #[test]
        fn amounts_round_trip(mantissa in 1u64..10_000_000_000, scale in 0u32..12, as_number in any::<bool>(), shift in 0u32..4) {
            let want = Decimal::from_i128_with_scale(i128::from(mantissa), scale);
            let text = if as_number && shift > 0 {
                let base = Decimal::from_i128_with_scale(i128::from(mantissa), scale - scale.min(shift));
                let applied = scale.min(shift);
                if applied == 0 { want.to_string() } else { format!("{base}e-{applied}") }
            } else if as_number {
                want.to_string()
            } else {
                format!("\"{want}\"")
            };
            let body = SDK_PY.replace("\"0.5\"", &text);
            let d = match adapter().classify(&post("/v1/transactions", body.as_bytes())) {
                Classification::Spend(d) => d,
                other => return Err(TestCaseError::fail(format!("{other:?} for {text}"))),
            };
            prop_assert_eq!(d[0].amount.map(|m| m.amount), Some(want));
        }

        /// Destinations sum exactly, whatever their split.
        #[test]
        fn destinations_sum_exactly(parts in prop::collection::vec((1u64..1_000_000, 0u32..6, 0usize..3), 1..8)) {
            let items: Vec<String> = parts.iter().map(|(m, s, to)| format!(
                r#"{{"amount":"{}","destination":{{"type":"EXTERNAL_WALLET","id":"w{to}"}}}}"#,
                Decimal::from_i128_with_scale(i128::from(*m), *s)
            )).collect();
            let body = format!(r#"{{"assetId":"ETH","destinations":[{}]}}"#, items.join(","));
            let d = match adapter().classify(&post("/v1/transactions", body.as_bytes())) {
                Classification::Spend(d) => d,
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            let total: Decimal = d.iter().filter_map(|d| d.amount.map(|m| m.amount)).sum();
            let want: Decimal = parts.iter().map(|(m, s, _)| Decimal::from_i128_with_scale(i128::from(*m), *s)).sum();
            prop_assert_eq!(total, want);
            let distinct: std::collections::BTreeSet<_> = parts.iter().map(|p| p.2).collect();
            prop_assert_eq!(d.len(), distinct.len());
        }
    }
}
