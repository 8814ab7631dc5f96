//! Payments: PaymentIntents and Charges (create, update, confirm, capture,
//! increment) and refunds.
//!
//! A create states its amount and currency. Everything after it acts on
//! the object and inherits its currency, and often its amount: those are
//! read from the object looked up ([`super::lookups`]).
//!
//! # Where the parts of a payment go
//!
//! `application_fee_amount` (the platform's cut), `transfer_data[amount]`
//! (what the connected account receives) and the legacy `application_fee`
//! and `destination[amount]` are parts of the payment's `amount`, not money
//! on top of it: the intent's amount stays the payment's. [`IntentDraft`]
//! has no field for them, so they are recorded in the intent's `sources`
//! under their field name (`"application_fee_amount": "2.00 EUR (request):
//! …"`), scaled in the payment's currency, where the audit entry shows them.
//! One that cannot be read makes the request unreadable: leash would
//! otherwise forward a request it has not read whole.
//!
//! [`IntentDraft`]: crate::intent::IntentDraft

use std::collections::BTreeMap;

use super::lookups::{
    charge_path, found, payment_intent_path, spend_from_object, Fallback, FromObject,
};
use super::{
    amount_currency, beneficiary, draft, first_not_in, integer, object_id, safe, scalar, shown,
    shown_field, stripe_currency, to_money, unreadable, Call, Op, PAYMENT_BENEFICIARY, PI_UPDATE,
    REFUND_CREATE,
};
use crate::adapters::Form;
use crate::intent::{Classification, Facts, Lookup};
use crate::money::Currency;

const PI_CONFIRM: Op = Op {
    name: "payment_intent.confirm",
    category: "payment",
};
const PI_CAPTURE: Op = Op {
    name: "payment_intent.capture",
    category: "payment",
};
const PI_INCREMENT: Op = Op {
    name: "payment_intent.increment_authorization",
    category: "payment",
};
const CHARGE_CAPTURE: Op = Op {
    name: "charge.capture",
    category: "payment",
};

/// Where a PaymentIntent's money goes, first present: the connected account
/// that receives it, the account it is made on behalf of, the customer.
const PI_OBJECT_BENEFICIARY: &[&str] =
    &["/transfer_data/destination", "/on_behalf_of", "/customer"];

/// The same for a Charge, with the legacy `destination` account.
const CHARGE_OBJECT_BENEFICIARY: &[&str] = &[
    "/transfer_data/destination",
    "/destination",
    "/on_behalf_of",
    "/customer",
];

const REFUND_BENEFICIARY: &[&str] = &["charge", "payment_intent", "customer"];

/// Fields a PaymentIntent update may carry and still move no money. Anything
/// else without an `amount` (a new `currency`, `transfer_data`,
/// `application_fee_amount`, ...) changes what the PaymentIntent commits.
const PI_UPDATE_HARMLESS: &[&str] = &[
    "description",
    "expand",
    "metadata",
    "receipt_email",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
];

/// Parts of a payment the request may route elsewhere, and what they are.
const SPLIT_FIELDS: &[(&str, &str)] = &[
    (
        "application_fee_amount",
        "the platform's application fee, part of the amount",
    ),
    (
        "application_fee",
        "the platform's application fee (legacy field), part of the amount",
    ),
    (
        "transfer_data[amount]",
        "what the connected account receives, part of the amount",
    ),
    (
        "destination[amount]",
        "what the connected account receives (legacy `destination`), part of the amount",
    ),
];

/// The parts of a payment the request routes elsewhere, scaled in the
/// payment's `currency`, by field name, for the intent's `sources`.
pub(super) fn splits(
    form: &Form,
    currency: Currency,
    exp: u32,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (field, what) in SPLIT_FIELDS {
        let Some(value) = scalar(form, field)? else {
            continue;
        };
        // Stripe reads an empty value as "unset".
        if value.is_empty() {
            continue;
        }
        let money = to_money(field, integer(field, value)?, currency, exp)?;
        out.insert((*field).to_owned(), format!("{money} (request): {what}"));
    }
    Ok(out)
}

/// `POST /v1/payment_intents` and `/v1/charges`: `amount` + `currency`, and
/// the parts that go elsewhere.
pub(super) fn create(c: &Call<'_>, op: Op, beneficiary_keys: &[&str]) -> Classification {
    let form = match c.form() {
        Ok(form) => form,
        Err(reason) => return unreadable(op, reason),
    };
    stated_payment(c, form, op, beneficiary_keys)
}

/// A payment whose amount and currency are both in the request.
fn stated_payment(c: &Call<'_>, form: &Form, op: Op, beneficiary_keys: &[&str]) -> Classification {
    let money = match amount_currency(form, op) {
        Ok(money) => money,
        Err(reason) => return unreadable(op, reason),
    };
    let exp = match stripe_currency("currency", money.currency.code()) {
        Ok((_, exp)) => exp,
        Err(reason) => return unreadable(op, reason),
    };
    let sources = match splits(form, money.currency, exp) {
        Ok(sources) => sources,
        Err(reason) => return unreadable(op, reason),
    };
    let mut draft = draft(&c.req, op, money, beneficiary(form, beneficiary_keys));
    draft.sources = sources;
    Classification::spend(op.name, vec![draft])
}

/// `POST /v1/payment_intents/{id}`: with `amount` a spend (in the
/// PaymentIntent's currency when the request gives none); without, safe
/// only if every field is harmless.
pub(super) fn pi_update(c: &Call<'_>, pi: &str) -> Classification {
    let op = PI_UPDATE;
    let form = match c.form() {
        Ok(form) => form,
        Err(reason) => return unreadable(op, reason),
    };
    if form.has_root("amount") {
        if form.has_root("currency") {
            return stated_payment(c, form, op, PAYMENT_BENEFICIARY);
        }
        return spend_from_object(
            c,
            &FromObject {
                op,
                object: "PaymentIntent",
                kind: "payment_intent",
                path: payment_intent_path(pi),
                amount_field: Some("amount"),
                fallback: Fallback::Required,
                need_given: "`amount` is changed without `currency`: the PaymentIntent's \
                             currency is not in the request, so the amount cannot be scaled",
                need_missing: "",
                request_beneficiary: PAYMENT_BENEFICIARY,
                object_beneficiary: PI_OBJECT_BENEFICIARY,
                fixed_beneficiary: None,
                splits: true,
            },
        );
    }
    match first_not_in(form, PI_UPDATE_HARMLESS) {
        None => safe(op.name),
        Some(field) => unreadable(
            op,
            format!(
                "changes `{}` of a PaymentIntent without stating its `amount`; leash cannot \
                 tell what the PaymentIntent then commits",
                shown_field(field)
            ),
        ),
    }
}

/// `POST /v1/payment_intents/{id}/confirm`: `amount_to_confirm` ("Defaults
/// to `amount`"), else the PaymentIntent's `amount`, in its currency. A
/// confirm of a `capture_method=manual` PaymentIntent only authorises, which
/// still commits the amount, so it is a spend all the same.
pub(super) fn pi_confirm(c: &Call<'_>, pi: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: PI_CONFIRM,
            object: "PaymentIntent",
            kind: "payment_intent",
            path: payment_intent_path(pi),
            amount_field: Some("amount_to_confirm"),
            fallback: Fallback::First(&["amount"]),
            need_given: "`amount_to_confirm` is given, but a confirm carries no `currency` \
                         (Stripe uses the PaymentIntent's), so the amount cannot be scaled",
            need_missing: "confirming a PaymentIntent charges the amount set when it was \
                           created or updated, in its currency; the confirm request does not \
                           carry them",
            request_beneficiary: PAYMENT_BENEFICIARY,
            object_beneficiary: PI_OBJECT_BENEFICIARY,
            fixed_beneficiary: None,
            splits: false,
        },
    )
}

/// `POST /v1/payment_intents/{id}/capture`: `amount_to_capture`, else
/// ("Defaults to the full `amount_capturable`") the PaymentIntent's
/// `amount_capturable`, in its currency.
pub(super) fn pi_capture(c: &Call<'_>, pi: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: PI_CAPTURE,
            object: "PaymentIntent",
            kind: "payment_intent",
            path: payment_intent_path(pi),
            amount_field: Some("amount_to_capture"),
            fallback: Fallback::First(&["amount_capturable"]),
            need_given: "`amount_to_capture` is given but a capture carries no `currency` \
                         (Stripe uses the PaymentIntent's), so the amount cannot be scaled",
            need_missing: "a capture without `amount_to_capture` captures the whole authorized \
                           amount of the PaymentIntent (`amount_capturable`), which is not in \
                           the request",
            request_beneficiary: &[],
            object_beneficiary: PI_OBJECT_BENEFICIARY,
            fixed_beneficiary: None,
            splits: true,
        },
    )
}

/// `POST /v1/payment_intents/{id}/increment_authorization`: the whole new
/// `amount` counts, in the PaymentIntent's currency.
///
/// Stripe's reference calls `amount` "the updated total amount", but the
/// research could not verify whether it is the new total or the increment
/// (n/v). Counting the whole `amount` is right if it is the total and an
/// over-count if it is the increment; counting only a difference would
/// under-count if it were the increment. Over-counting holds a request a
/// human can release; under-counting lets money through.
pub(super) fn pi_increment(c: &Call<'_>, pi: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: PI_INCREMENT,
            object: "PaymentIntent",
            kind: "payment_intent",
            path: payment_intent_path(pi),
            amount_field: Some("amount"),
            fallback: Fallback::Required,
            need_given: "increment_authorization sets a new `amount` without a `currency` \
                         (Stripe uses the PaymentIntent's), so leash cannot scale it",
            need_missing: "",
            request_beneficiary: &[],
            object_beneficiary: PI_OBJECT_BENEFICIARY,
            fixed_beneficiary: None,
            splits: true,
        },
    )
}

/// `POST /v1/charges/{id}/capture`: `amount`, else the charge's `amount` −
/// `amount_refunded`, in the charge's currency.
///
/// Why not `amount_captured`: it is 0 until the capture, so it says nothing
/// about what a capture takes. A full capture takes the authorized `amount`;
/// `amount_refunded` is subtracted because an uncaptured charge that was
/// refunded (released) has that much less left to take. For a charge that
/// is already captured Stripe refuses the capture, and the spend leash reads
/// is at most what the charge still holds.
pub(super) fn charge_capture(c: &Call<'_>, charge: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: CHARGE_CAPTURE,
            object: "Charge",
            kind: "charge",
            path: charge_path(charge),
            amount_field: Some("amount"),
            fallback: Fallback::Left("amount", "amount_refunded"),
            need_given: "`amount` is given but a capture carries no `currency` (Stripe uses \
                         the Charge's), so the amount cannot be scaled",
            need_missing: "a capture without `amount` captures the whole authorized amount of \
                           the Charge, which is not in the request",
            request_beneficiary: &[],
            object_beneficiary: CHARGE_OBJECT_BENEFICIARY,
            fixed_beneficiary: None,
            splits: true,
        },
    )
}

/// The object a refund draws on: its currency and refundable amount are
/// that object's (Stripe refuses `currency` on a charge refund, so SDK
/// refunds carry none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefundOf<'a> {
    Charge(&'a str),
    PaymentIntent(&'a str),
}

fn refund_of<'a>(form: &'a Form, path_charge: Option<&'a str>) -> Option<RefundOf<'a>> {
    if let Some(charge) = path_charge {
        return object_id(charge).map(RefundOf::Charge);
    }
    let field = |name| form.get(name).filter(|v| !v.is_empty());
    match (field("charge"), field("payment_intent")) {
        (Some(charge), _) => object_id(charge).map(RefundOf::Charge),
        (None, Some(pi)) => object_id(pi).map(RefundOf::PaymentIntent),
        (None, None) => None,
    }
}

/// The charge a refund draws on, once known: directly, or a
/// PaymentIntent's `latest_charge`.
fn refund_charge(of: RefundOf<'_>, facts: &Facts) -> Option<String> {
    match of {
        RefundOf::Charge(id) => Some(charge_path(id)),
        RefundOf::PaymentIntent(id) => facts
            .get(&payment_intent_path(id))?
            .pointer("/latest_charge")?
            .as_str()
            .and_then(object_id)
            .map(charge_path),
    }
}

/// A refund's lookups: its charge (through its PaymentIntent when it names
/// one), for the currency and the refundable amount, and to check a
/// `currency` the request gives.
pub(super) fn refund_lookups(form: &Form, path_charge: Option<&str>, facts: &Facts) -> Vec<Lookup> {
    let Some(of) = refund_of(form, path_charge) else {
        return Vec::new();
    };
    if let RefundOf::PaymentIntent(id) = of {
        let path = payment_intent_path(id);
        if !facts.has(&path) {
            return vec![Lookup {
                path,
                body: None,
                why: "a refund of a PaymentIntent draws on its latest charge".into(),
            }];
        }
    }
    match refund_charge(of, facts) {
        Some(path) => vec![Lookup {
            path,
            body: None,
            why: "a refund's currency and refundable amount are its charge's".into(),
        }],
        None => Vec::new(),
    }
}

/// `POST /v1/refunds` and the legacy charge refunds: the amount and
/// currency the request gives, checked against (or completed from) the
/// charge leash looked up.
pub(super) fn refund(c: &Call<'_>, path_charge: Option<&str>) -> Classification {
    let op = REFUND_CREATE;
    let req = &c.req;
    let form = match c.form() {
        Ok(form) => form,
        Err(reason) => return unreadable(op, reason),
    };
    let beneficiary = path_charge
        .map(str::to_owned)
        .or_else(|| beneficiary(form, REFUND_BENEFICIARY));
    let of = refund_of(form, path_charge);
    let charge_at = of.and_then(|of| refund_charge(of, req.facts));
    let charge = charge_at.as_deref().and_then(|at| req.facts.get(at));
    let Some(charge) = charge else {
        // Nothing looked up (no charge named, or the lookup failed): what
        // the request itself says, if it says everything.
        let failed = [
            of.and_then(|of| match of {
                RefundOf::PaymentIntent(id) => req.facts.failure(&payment_intent_path(id)),
                RefundOf::Charge(_) => None,
            }),
            charge_at.as_deref().and_then(|at| req.facts.failure(at)),
        ]
        .into_iter()
        .flatten()
        .next();
        return match amount_currency(form, op) {
            Ok(money) => Classification::spend(op.name, vec![draft(req, op, money, beneficiary)]),
            Err(reason) => unreadable(
                op,
                match failed {
                    Some(failed) => format!("{reason}; {failed}"),
                    None => reason,
                },
            ),
        };
    };
    let at = charge_at.as_deref().unwrap_or("");
    // An answer naming another kind of object is not this refund's charge.
    if let Err(reason) = found(
        req.facts,
        at,
        "charge",
        "a refund's currency and refundable amount are its charge's",
    ) {
        return unreadable(op, reason);
    }
    let source = req.facts.source(at);
    let looked_up = |what: &str| format!("{what} ({source})");
    let Some(charge_currency) = charge.pointer("/currency").and_then(|c| c.as_str()) else {
        return unreadable(op, format!("the charge has no `currency` ({source})"));
    };
    let (currency, exp) = match stripe_currency("currency", charge_currency) {
        Ok(c) => c,
        Err(reason) => return unreadable(op, looked_up(&reason)),
    };
    let mut sources = BTreeMap::new();
    match scalar(form, "currency") {
        Err(reason) => return unreadable(op, reason),
        Ok(Some(given)) if !given.is_empty() => {
            if !given.eq_ignore_ascii_case(charge_currency) {
                return Classification::Ambiguous {
                    operation: op.name.to_owned(),
                    reason: format!(
                        "the refund says `currency` {} but its charge is in {} ({source})",
                        shown(given),
                        currency
                    ),
                };
            }
        }
        Ok(_) => {
            sources.insert(
                "currency".to_owned(),
                looked_up(&currency.code().to_ascii_lowercase()),
            );
        }
    }
    let minor = match scalar(form, "amount") {
        Err(reason) => return unreadable(op, reason),
        Ok(Some(amount)) => match integer("amount", amount) {
            Ok(minor) => minor,
            Err(reason) => return unreadable(op, reason),
        },
        Ok(None) => {
            // A full refund: what is left to refund of the charge.
            let field = |name: &str| charge.pointer(name).and_then(|v| v.as_i64());
            let (Some(amount), Some(refunded)) = (field("/amount"), field("/amount_refunded"))
            else {
                return unreadable(
                    op,
                    format!("a full refund's amount is the charge's `amount` - `amount_refunded`, which the charge does not give as integers ({source})"),
                );
            };
            let left = amount.saturating_sub(refunded).max(0);
            sources.insert(
                "amount".to_owned(),
                looked_up(&format!("{left} minor units left to refund")),
            );
            u128::try_from(left).unwrap_or(0)
        }
    };
    match to_money("amount", minor, currency, exp) {
        Ok(money) => {
            let mut draft = draft(req, op, money, beneficiary);
            draft.sources = sources;
            Classification::spend(op.name, vec![draft])
        }
        Err(reason) => unreadable(op, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        amount, assert_is, decided, decided_as, lookups_for, one, post_with, reason, source, FORM,
    };

    const PI: &str = "/v1/payment_intents/pi_1";

    /// A PaymentIntent as `GET /v1/payment_intents/pi_1` answers it.
    fn pi(amount: u64, capturable: u64, currency: &str) -> String {
        format!(
            r#"{{"id":"pi_1","object":"payment_intent","amount":{amount},"amount_capturable":{capturable},"amount_received":0,"currency":"{currency}","customer":"cus_9","on_behalf_of":null,"transfer_data":null,"latest_charge":null,"status":"requires_confirmation"}}"#
        )
    }

    #[test]
    fn the_sdk_payment_intent_body_records_where_its_parts_go() {
        // stripe.PaymentIntent.create(amount=2000, currency="eur", customer="cus_123",
        //   confirm=True, payment_method="pm_card_visa",
        //   transfer_data={"destination": "acct_1ABC", "amount": 1500},
        //   metadata={"order": "A&B"}), encoded as stripe-python does (§1.2).
        let body = "amount=2000&currency=eur&customer=cus_123&confirm=true&payment_method=pm_card_visa&transfer_data[destination]=acct_1ABC&transfer_data[amount]=1500&metadata[order]=A%26B";
        let c = post_with("/v1/payment_intents", body, &[]);
        assert_eq!(
            amount(&c),
            "20.00 EUR",
            "the payment's amount, not its parts"
        );
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_1ABC"));
        assert!(
            source(&c, "transfer_data[amount]").starts_with("15.00 EUR (request)"),
            "{:?}",
            one(&c).sources
        );
        let c = post_with(
            "/v1/payment_intents",
            "amount=1500&currency=jpy&application_fee_amount=150&on_behalf_of=acct_2",
            &[],
        );
        assert_eq!(amount(&c), "1500 JPY");
        assert!(source(&c, "application_fee_amount").starts_with("150 JPY (request)"));
        // Charges: the legacy fields too.
        let c = post_with(
            "/v1/charges",
            "amount=10000&currency=usd&source=tok_visa&application_fee=300&destination[account]=acct_5&destination[amount]=9000",
            &[],
        );
        assert_eq!(amount(&c), "100.00 USD");
        assert!(source(&c, "application_fee").starts_with("3.00 USD"));
        assert!(source(&c, "destination[amount]").starts_with("90.00 USD"));
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_5"));
        // An empty value is Stripe's "unset".
        let c = post_with(
            "/v1/charges",
            "amount=100&currency=usd&application_fee_amount=",
            &[],
        );
        assert!(one(&c).sources.is_empty());
        // A part that cannot be read leaves the request unread.
        for bad in [
            "application_fee_amount=-1",
            "application_fee_amount=1.5",
            "transfer_data[amount]=01",
            "application_fee_amount[x]=1",
        ] {
            let c = post_with(
                "/v1/payment_intents",
                &format!("amount=100&currency=eur&{bad}"),
                &[],
            );
            assert_eq!(c.kind(), "unreadable", "{bad}: {c:?}");
        }
    }

    #[test]
    fn a_confirm_is_read_on_the_looked_up_payment_intent_jpy() {
        // stripe.PaymentIntent.confirm("pi_1", payment_method="pm_card_visa",
        //   return_url="https://x.example/back")
        let body = "payment_method=pm_card_visa&return_url=https%3A%2F%2Fx.example%2Fback";
        let path = "/v1/payment_intents/pi_1/confirm";
        assert_eq!(lookups_for(path, body, &[]), [PI]);
        let (c, asked) = decided_as(path, FORM, body, &[(PI, &pi(1500, 0, "jpy"))]);
        assert_eq!(asked, [PI]);
        assert_eq!(amount(&c), "1500 JPY", "zero-decimal: 1500 is ¥1500");
        let d = one(&c);
        assert_eq!(d.operation, "payment_intent.confirm");
        assert_eq!(d.category, "payment");
        assert_eq!(d.beneficiary.as_deref(), Some("cus_9"));
        assert_eq!(source(&c, "currency"), "jpy (GET /v1/payment_intents/pi_1)");
        assert_eq!(
            source(&c, "amount"),
            "1500 minor units, the PaymentIntent's `amount` (GET /v1/payment_intents/pi_1)"
        );
        assert!(source(&c, "beneficiary").contains("`customer`"));
        // `amount_to_confirm` wins over the PaymentIntent's amount.
        let c = decided(path, "amount_to_confirm=900", &[(PI, &pi(1500, 0, "jpy"))]);
        assert_eq!(amount(&c), "900 JPY");
        assert!(!one(&c).sources.contains_key("amount"));
        // The connected account the PaymentIntent pays, even expanded, wins
        // over its customer; a beneficiary the request names wins over both.
        let to_account = r#"{"object":"payment_intent","amount":5000,"currency":"eur","customer":{"id":"cus_9","object":"customer"},"on_behalf_of":"acct_8","transfer_data":{"destination":{"id":"acct_7","object":"account"},"amount":null}}"#;
        let c = decided(path, "", &[(PI, to_account)]);
        assert_eq!(amount(&c), "50.00 EUR");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_7"));
        assert!(source(&c, "beneficiary").contains("`transfer_data.destination`"));
        let c = decided(path, "customer=cus_1", &[(PI, to_account)]);
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_1"));
        assert!(!one(&c).sources.contains_key("beneficiary"));
    }

    #[test]
    fn a_confirm_without_its_payment_intent_is_unreadable_never_guessed() {
        let path = "/v1/payment_intents/pi_1/confirm";
        // Not looked up (no facts): unreadable, and says so.
        assert_is(
            &post_with(path, "", &[]),
            "unreadable",
            &["confirm", "has not looked it up"],
        );
        // The lookup failed (the stand-in answers 404): the failure is the reason.
        assert_is(&decided(path, "", &[]), "unreadable", &["confirm", "404"]);
        assert_is(
            &decided(path, "amount_to_confirm=500", &[]),
            "unreadable",
            &["no `currency`", "404"],
        );
        for (answer, needle) in [
            // A charge where the PaymentIntent was asked for.
            (
                r#"{"object":"charge","amount":1099,"currency":"eur"}"#,
                r#"not of kind "payment_intent""#,
            ),
            (
                r#"{"object":"payment_intent","currency":"eur"}"#,
                "`amount`",
            ),
            (
                r#"{"object":"payment_intent","amount":-5,"currency":"eur"}"#,
                "`amount`",
            ),
            (
                r#"{"object":"payment_intent","amount":"12.5","currency":"eur"}"#,
                "`amount`",
            ),
            (
                r#"{"object":"payment_intent","amount":500}"#,
                "no `currency`",
            ),
            (
                r#"{"object":"payment_intent","amount":500,"currency":"xyz"}"#,
                "currency",
            ),
            (
                r#"{"object":"payment_intent","amount":500,"currency":"iqd"}"#,
                "no minor-unit exponent",
            ),
            ("[1]", "not answer an object"),
        ] {
            let c = decided(path, "", &[(PI, answer)]);
            assert_is(&c, "unreadable", &[needle]);
            assert_eq!(c.operation(), "payment_intent.confirm");
        }
        // A bad `amount_to_confirm` is the request's own problem.
        assert_is(
            &decided(path, "amount_to_confirm=-1", &[(PI, &pi(1, 0, "eur"))]),
            "unreadable",
            &["`amount_to_confirm`"],
        );
    }

    #[test]
    fn captures_take_amount_capturable_or_amount_to_capture() {
        let path = "/v1/payment_intents/pi_1/capture";
        assert_eq!(lookups_for(path, "", &[]), [PI]);
        // ISK and UGX: Stripe's exponent is 2 although ISO's is 0.
        let c = decided(path, "", &[(PI, &pi(60000, 50000, "isk"))]);
        assert_eq!(amount(&c), "500.00 ISK");
        assert!(source(&c, "amount").contains("`amount_capturable`"));
        let c = decided(path, "", &[(PI, &pi(60000, 50000, "ugx"))]);
        assert_eq!(amount(&c), "500.00 UGX");
        // stripe.PaymentIntent.capture("pi_1", amount_to_capture=750) (§1.2).
        let c = decided(
            path,
            "amount_to_capture=750",
            &[(PI, &pi(2000, 2000, "eur"))],
        );
        assert_eq!(amount(&c), "7.50 EUR");
        assert_eq!(one(&c).operation, "payment_intent.capture");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_9"));
        // The platform's fee at capture, in the PaymentIntent's currency.
        let c = decided(
            path,
            "amount_to_capture=750&application_fee_amount=75&final_capture=true",
            &[(PI, &pi(2000, 2000, "eur"))],
        );
        assert!(source(&c, "application_fee_amount").starts_with("0.75 EUR"));
        assert_is(
            &decided(path, "", &[(PI, r#"{"amount":5,"currency":"eur"}"#)]),
            "unreadable",
            &["`amount_capturable`"],
        );
        // Without facts, as before lookups existed.
        assert_is(
            &post_with(path, "", &[]),
            "unreadable",
            &["whole authorized amount"],
        );
    }

    #[test]
    fn a_charge_capture_takes_what_the_charge_holds() {
        let path = "/v1/charges/ch_1/capture";
        let charge = r#"{"id":"ch_1","object":"charge","amount":10000,"amount_captured":0,"amount_refunded":0,"captured":false,"currency":"usd","customer":"cus_1"}"#;
        assert_eq!(lookups_for(path, "", &[]), ["/v1/charges/ch_1"]);
        let c = decided(path, "", &[("/v1/charges/ch_1", charge)]);
        assert_eq!(amount(&c), "100.00 USD");
        assert!(source(&c, "amount").contains("`amount` − `amount_refunded`"));
        assert_eq!(one(&c).operation, "charge.capture");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_1"));
        let c = decided(path, "amount=5000", &[("/v1/charges/ch_1", charge)]);
        assert_eq!(amount(&c), "50.00 USD");
        let legacy = r#"{"object":"charge","amount":300,"amount_refunded":100,"currency":"kwd","destination":"acct_3"}"#;
        let c = decided(path, "", &[("/v1/charges/ch_1", legacy)]);
        assert_eq!(amount(&c), "0.200 KWD");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_3"));
        assert_is(
            &decided(
                path,
                "",
                &[("/v1/charges/ch_1", r#"{"amount":300,"currency":"eur"}"#)],
            ),
            "unreadable",
            &["`amount_refunded`"],
        );
    }

    #[test]
    fn an_increment_counts_the_whole_new_amount() {
        let path = "/v1/payment_intents/pi_1/increment_authorization";
        assert_eq!(lookups_for(path, "amount=1500", &[]), [PI]);
        let c = decided(path, "amount=1500", &[(PI, &pi(1000, 1000, "eur"))]);
        assert_eq!(
            amount(&c),
            "15.00 EUR",
            "the new total, not the 5.00 increment"
        );
        assert_eq!(one(&c).operation, "payment_intent.increment_authorization");
        assert!(!one(&c).sources.contains_key("amount"));
        assert_is(
            &decided(path, "", &[(PI, &pi(1000, 1000, "eur"))]),
            "unreadable",
            &["no `amount`"],
        );
    }

    #[test]
    fn an_update_without_currency_is_in_the_payment_intents() {
        // stripe.PaymentIntent.modify("pi_1", amount=5000)
        assert_eq!(lookups_for(PI, "amount=5000", &[]), [PI]);
        let c = decided(PI, "amount=5000", &[(PI, &pi(1000, 0, "eur"))]);
        assert_eq!(amount(&c), "50.00 EUR");
        assert_eq!(source(&c, "currency"), "eur (GET /v1/payment_intents/pi_1)");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_9"));
        // What the request says needs nothing looked up.
        assert!(lookups_for(PI, "amount=5000&currency=usd", &[]).is_empty());
        assert!(lookups_for(PI, "metadata[a]=1", &[]).is_empty());
        assert!(lookups_for(PI, "amount=5000&currency=", &[]).is_empty());
        assert_is(
            &decided(PI, "amount=5000", &[]),
            "unreadable",
            &["PaymentIntent's currency", "404"],
        );
    }

    #[test]
    fn a_refunds_charge_must_be_a_charge() {
        let c = post_with(
            "/v1/refunds",
            "charge=ch_1",
            &[(
                "/v1/charges/ch_1",
                r#"{"object":"payment_intent","amount":100,"amount_refunded":0,"currency":"eur"}"#,
            )],
        );
        assert_is(&c, "unreadable", &[r#"not of kind "charge""#]);
        // One lookup round per object, and nothing for ids that are no ids.
        assert!(lookups_for("/v1/charges/..%2Fx/refunds", "", &[]).is_empty());
        let long = format!("/v1/payment_intents/pi_{}/confirm", "1".repeat(300));
        assert!(lookups_for(&long, "", &[]).is_empty());
        assert_eq!(post_with(&long, "", &[]).kind(), "unknown");
        assert!(reason(&post_with(&long, "", &[])).len() < 400);
    }
}
