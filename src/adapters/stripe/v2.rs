//! Stripe's v2 API (`/v2/...`): JSON bodies (`application/json`,
//! `json.dumps(params)` in stripe-python), read with leash's strict JSON
//! reader ([`crate::adapters::json`]): a key given twice is ambiguous, and
//! numbers keep their exact text.
//!
//! # What is read
//!
//! | request | operation | amount | beneficiary |
//! |---|---|---|---|
//! | `POST /v2/money_management/outbound_payments` | `v2.outbound_payment.create` (`payout`) | `amount.value` + `amount.currency` | `to.recipient`, else `to.payout_method` |
//! | `POST /v2/money_management/outbound_transfers` | `v2.outbound_transfer.create` (`transfer`) | `amount.value` + `amount.currency` | `to.payout_method`, else `to.recipient` |
//!
//! `amount.value` is an integer in Stripe's minor units (Go: `Value int64
//! json:"value"`): a JSON number, or a string of digits (the `int64_string`
//! coercion stripe-python applies to some v2 fields). A fraction, an
//! exponent, a sign or a leading zero is unreadable, as in v1. An outbound
//! payment that gives only an `outbound_payment_quote` has its amount in
//! the quote, which leash does not look up: unreadable.
//!
//! A v2 money request whose body is not JSON (a form, say) is unreadable,
//! and so is one with parameters in the query string: leash reads the body
//! and Stripe's handling of v2 query parameters on a POST is not known.
//!
//! # Known v2 writes that move no money (safe)
//!
//! Accounts v2 (`/v2/core/accounts`, update, close, persons), account links
//! and event destinations (create, update, enable, disable, ping): they
//! configure who can be paid and where Stripe sends events, and move no
//! money (research §1.5). Their body must still be strict JSON (or empty),
//! or the request is ambiguous (a duplicate key) or unknown.
//!
//! Meter events (`/v2/billing/meter_events`, `meter_event_adjustments`,
//! `meter_event_session`, and the `meter_event_stream` on
//! `meter-events.stripe.com`) bill usage at the meter's prices, which leash
//! does not read: unknown. Every other v2 write (the private-preview
//! `currency_conversions`, `off_session_payments`, …) is unknown too.

use super::{
    integer, media_type, safe, shown, stripe_currency, to_money, unknown, unreadable, Call, Op,
};
use crate::adapters::json::{self, Json};
use crate::intent::Classification;

const OUTBOUND_PAYMENT: Op = Op {
    name: "v2.outbound_payment.create",
    category: "payout",
};
const OUTBOUND_TRANSFER: Op = Op {
    name: "v2.outbound_transfer.create",
    category: "transfer",
};

/// Reads a `POST /v2/...`; `segs` starts with `v2`.
pub(super) fn classify(c: &Call<'_>, segs: &[&str]) -> Classification {
    match segs {
        ["v2", "money_management", "outbound_payments"] => {
            outbound(c, OUTBOUND_PAYMENT, &["/to/recipient", "/to/payout_method"])
        }
        ["v2", "money_management", "outbound_transfers"] => outbound(
            c,
            OUTBOUND_TRANSFER,
            &["/to/payout_method", "/to/recipient"],
        ),
        ["v2", "money_management", "outbound_payments", _, "cancel"] => {
            harmless(c, "v2.outbound_payment.cancel")
        }
        ["v2", "money_management", "outbound_transfers", _, "cancel"] => {
            harmless(c, "v2.outbound_transfer.cancel")
        }
        ["v2", "billing", meter, ..] if meter.starts_with("meter_event") => unknown(
            "v2.meter_event",
            "meter events bill usage at the meter's prices, which leash does not read".to_owned(),
        ),
        ["v2", "core", rest @ ..] => match core_operation(rest) {
            Some(operation) => harmless(c, operation),
            None => not_known(c),
        },
        _ => not_known(c),
    }
}

/// The v2 core writes known to move no money, by their path after
/// `/v2/core`.
fn core_operation(rest: &[&str]) -> Option<&'static str> {
    Some(match rest {
        ["accounts"] => "v2.account.create",
        ["accounts", _] => "v2.account.update",
        ["accounts", _, "close"] => "v2.account.close",
        ["accounts", _, "persons"] => "v2.account.person.create",
        ["accounts", _, "persons", _] => "v2.account.person.update",
        ["account_links"] => "v2.account_link.create",
        ["event_destinations"] => "v2.event_destination.create",
        ["event_destinations", _] => "v2.event_destination.update",
        ["event_destinations", _, "enable"] => "v2.event_destination.enable",
        ["event_destinations", _, "disable"] => "v2.event_destination.disable",
        ["event_destinations", _, "ping"] => "v2.event_destination.ping",
        _ => return None,
    })
}

fn not_known(c: &Call<'_>) -> Classification {
    unknown(
        "unknown",
        format!(
            "POST {} is not a Stripe v2 endpoint leash knows to be safe or knows how to read",
            shown(c.req.path)
        ),
    )
}

/// Why a v2 body cannot be read as one JSON value.
enum Unread {
    /// It can be read two ways (a duplicate key).
    Ambiguous(String),
    /// It cannot be read as JSON at all.
    Unreadable(String),
}

/// The body as strict JSON. An empty body is an empty object (a v2 call
/// without parameters); a declared type other than JSON, or a body that is
/// not one JSON object, is refused.
fn read_json(c: &Call<'_>) -> Result<Json, Unread> {
    let req = &c.req;
    if let Some(ct) = req.content_type {
        let media = media_type(ct);
        if media != "application/json" {
            return Err(Unread::Unreadable(format!(
                "the body is {}, not application/json; Stripe's v2 API reads JSON",
                shown(&media)
            )));
        }
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Object(Vec::new()));
    }
    match json::parse(req.body) {
        Ok(value @ Json::Object(_)) => Ok(value),
        Ok(_) => Err(Unread::Unreadable(
            "the JSON body is not an object".to_owned(),
        )),
        Err(e) if e.is_ambiguous() => Err(Unread::Ambiguous(e.to_string())),
        Err(e) => Err(Unread::Unreadable(e.to_string())),
    }
}

/// A v2 write that moves no money: safe if its body reads as JSON.
fn harmless(c: &Call<'_>, operation: &str) -> Classification {
    match read_json(c) {
        Ok(_) => safe(operation),
        Err(Unread::Ambiguous(reason)) => Classification::Ambiguous {
            operation: operation.to_owned(),
            reason,
        },
        Err(Unread::Unreadable(reason)) => unknown(operation, reason),
    }
}

/// An outbound payment or transfer: `amount.value` in minor units of
/// `amount.currency`, to the first id of `beneficiary` (JSON pointers).
fn outbound(c: &Call<'_>, op: Op, beneficiary: &[&str]) -> Classification {
    let body = match read_json(c) {
        Ok(body) => body,
        Err(Unread::Ambiguous(reason)) => {
            return Classification::Ambiguous {
                operation: op.name.to_owned(),
                reason,
            }
        }
        Err(Unread::Unreadable(reason)) => return unreadable(op, reason),
    };
    if c.req.query.is_some_and(|q| !q.is_empty()) {
        return unreadable(
            op,
            "the request has a query string; leash reads a v2 request's JSON body only".to_owned(),
        );
    }
    let Some(amount) = body.pointer("/amount") else {
        let reason = if body.pointer("/outbound_payment_quote").is_some() {
            "no `amount`: it is in the `outbound_payment_quote`, which leash does not look up"
        } else {
            "no `amount`"
        };
        return unreadable(op, reason.to_owned());
    };
    let value = match amount.pointer("/value") {
        Some(Json::Number(text) | Json::String(text)) => integer("amount.value", text),
        Some(_) => Err("`amount.value` is not an integer".to_owned()),
        None => Err("no `amount.value`".to_owned()),
    };
    let currency = match amount.pointer("/currency") {
        Some(Json::String(code)) if !code.is_empty() => stripe_currency("amount.currency", code),
        Some(_) => Err("`amount.currency` is not a currency code".to_owned()),
        None => Err("no `amount.currency`".to_owned()),
    };
    let money = value.and_then(|minor| {
        let (currency, exp) = currency?;
        to_money("amount.value", minor, currency, exp)
    });
    match money {
        Ok(money) => {
            let who = beneficiary.iter().find_map(|pointer| {
                body.pointer(pointer)
                    .and_then(Json::as_str)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
            });
            Classification::spend(op.name, vec![super::draft(&c.req, op, money, who)])
        }
        Err(reason) => unreadable(op, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::super::classify;
    use super::super::testing::{amount, assert_is, facts, one, request, FORM, JSON};
    use crate::intent::Classification;

    const PAYMENTS: &str = "/v2/money_management/outbound_payments";

    fn v2(path: &str, content_type: Option<&str>, body: &str) -> Classification {
        let known = facts(&[]);
        classify(&request(path, content_type, body.as_bytes(), &known))
    }

    #[test]
    fn an_outbound_payment_is_read_from_its_json_amount() {
        // stripe-python v2: json.dumps(params).
        let body = r#"{"amount":{"value":1000,"currency":"usd"},"from":{"financial_account":"fa_1","currency":"usd"},"to":{"recipient":"acct_1","payout_method":"usba_1","currency":"usd"}}"#;
        let c = v2(PAYMENTS, JSON, body);
        assert_eq!(amount(&c), "10.00 USD");
        let d = one(&c);
        assert_eq!(
            (d.operation.as_str(), d.category.as_str()),
            ("v2.outbound_payment.create", "payout")
        );
        assert_eq!(d.beneficiary.as_deref(), Some("acct_1"));
        assert_eq!(d.idempotency_key.as_deref(), Some("idem-1"));
        // int64 as a string; JPY zero-decimal; no content type but JSON.
        let c = v2(
            PAYMENTS,
            None,
            r#"{"amount":{"value":"1500","currency":"jpy"},"to":{"payout_method":"usba_1"}}"#,
        );
        assert_eq!(amount(&c), "1500 JPY");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("usba_1"));
        let c = v2(
            "/v2/money_management/outbound_transfers",
            Some("application/json; charset=utf-8"),
            r#"{"amount":{"value":2500,"currency":"eur"},"from":{"financial_account":"fa_1"},"to":{"payout_method":"usba_2","currency":"eur"}}"#,
        );
        assert_eq!(amount(&c), "25.00 EUR");
        assert_eq!(one(&c).category, "transfer");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("usba_2"));
    }

    #[test]
    fn v2_money_bodies_that_cannot_be_read_exactly() {
        for (body, needle) in [
            (r#"{"amount":{"value":10.5,"currency":"usd"}}"#, "digits"),
            (r#"{"amount":{"value":1e3,"currency":"usd"}}"#, "digits"),
            (r#"{"amount":{"value":-5,"currency":"usd"}}"#, "digits"),
            (
                r#"{"amount":{"value":"0100","currency":"usd"}}"#,
                "leading zero",
            ),
            (
                r#"{"amount":{"value":true,"currency":"usd"}}"#,
                "not an integer",
            ),
            (r#"{"amount":{"currency":"usd"}}"#, "no `amount.value`"),
            (r#"{"amount":{"value":1}}"#, "no `amount.currency`"),
            (
                r#"{"amount":{"value":1,"currency":"xyz"}}"#,
                "amount.currency",
            ),
            (
                r#"{"amount":{"value":1,"currency":"iqd"}}"#,
                "no minor-unit exponent",
            ),
            (r#"{"outbound_payment_quote":"obq_1"}"#, "quote"),
            (r#"{}"#, "no `amount`"),
            ("", "no `amount`"),
            ("[1]", "not an object"),
            ("{", "not valid JSON"),
        ] {
            let c = v2(PAYMENTS, JSON, body);
            assert_is(&c, "unreadable", &[needle]);
            assert_eq!(c.operation(), "v2.outbound_payment.create");
        }
        // A key twice reads two ways.
        let c = v2(
            PAYMENTS,
            JSON,
            r#"{"amount":{"value":1,"value":99999,"currency":"usd"}}"#,
        );
        assert_is(&c, "ambiguous", &["value"]);
        // A form-encoded v2 body, and query parameters, are not read.
        assert_is(
            &v2(PAYMENTS, FORM, "amount[value]=1000&amount[currency]=usd"),
            "unreadable",
            &["not application/json"],
        );
        assert_is(
            &v2(PAYMENTS, None, "amount[value]=1000&amount[currency]=usd"),
            "unreadable",
            &["not valid JSON"],
        );
        let known = facts(&[]);
        let mut req = request(
            PAYMENTS,
            JSON,
            br#"{"amount":{"value":1,"currency":"usd"}}"#,
            &known,
        );
        req.query = Some("amount[value]=99999");
        assert_is(&classify(&req), "unreadable", &["query string"]);
        // v1 money paths with a JSON body stay unreadable.
        assert_is(
            &v2("/v1/payouts", JSON, r#"{"amount":1,"currency":"usd"}"#),
            "unreadable",
            &["application/json"],
        );
    }

    #[test]
    fn other_v2_writes() {
        let safe = |op: &str| Classification::Safe {
            operation: op.into(),
        };
        assert_eq!(
            v2(
                "/v2/core/accounts",
                JSON,
                r#"{"display_name":"Acme","include":["configuration.merchant"]}"#
            ),
            safe("v2.account.create")
        );
        assert_eq!(
            v2("/v2/core/accounts/acct_1/close", JSON, ""),
            safe("v2.account.close")
        );
        assert_eq!(
            v2("/v2/core/event_destinations/ed_1/ping", JSON, "{}"),
            safe("v2.event_destination.ping")
        );
        assert_eq!(
            v2(
                "/v2/money_management/outbound_payments/obp_1/cancel",
                JSON,
                "{}"
            ),
            safe("v2.outbound_payment.cancel")
        );
        assert_eq!(
            v2("/v2/core/accounts", JSON, r#"{"a":1,"a":2}"#).kind(),
            "ambiguous"
        );
        assert_eq!(
            v2("/v2/core/accounts", FORM, "display_name=x").kind(),
            "unknown"
        );
        for path in [
            "/v2/billing/meter_events",
            "/v2/billing/meter_event_adjustments",
            "/v2/billing/meter_event_session",
        ] {
            assert_is(
                &v2(path, JSON, r#"{"event_name":"gpu"}"#),
                "unknown",
                &["meter"],
            );
        }
        for path in [
            "/v2/money_management/currency_conversions",
            "/v2/payments/off_session_payments",
            "/v2/core/vault/us_bank_accounts",
            "/v2/billing/cadences",
        ] {
            assert_is(&v2(path, JSON, "{}"), "unknown", &[path]);
        }
    }
}
