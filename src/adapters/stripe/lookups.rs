//! Operations whose amount, currency or beneficiary is not (all) in the
//! request, and the lookups that complete them (SPEC §4.2a).
//!
//! Each such operation is matched from its path once, in [`route`]: the
//! same [`Route`] says what to look up ([`Route::lookups`], asked by the
//! proxy before classifying) and how to read the request with the answers
//! ([`Route::classify`]). A path cannot be matched one way for its lookups
//! and another way for its reading.
//!
//! Every lookup is a GET of one object by id at the path Stripe's API serves
//! it (`/v1/payment_intents/{id}`), made by the proxy with the agent's own
//! key and `Stripe-Account`. What is read from the answer is cited in the
//! intent's `sources` (`"eur (GET /v1/payment_intents/pi_1)"`). A lookup that
//! failed, or an answer that is not the object asked for, leaves the request
//! unreadable with the reason: never a spend read from guesses, never safe.

use std::collections::BTreeMap;

use super::{
    balances, beneficiary, billing, canonical_segments, draft, integer, normalize_host, object_id,
    payments, scalar, shown, stripe_currency, to_money, unreadable, Call, Op, API_HOST,
};
use crate::adapters::json::Json;
use crate::adapters::Form;
use crate::intent::{Classification, Facts, Lookup, RequestView};
use crate::money::Currency;

/// Lookups per request at most (distinct prices of a checkout session, say).
/// Each is a GET the agent waits for; a request needing more is unreadable.
pub(super) const MAX_LOOKUPS: usize = 20;

/// An operation that may need lookups, with the ids its path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route<'p> {
    /// `/v1/refunds`, or the legacy `/v1/charges/{id}/refunds` (`/refund`).
    Refund {
        path_charge: Option<&'p str>,
    },
    PiUpdate(&'p str),
    PiConfirm(&'p str),
    PiCapture(&'p str),
    PiIncrement(&'p str),
    ChargeCapture(&'p str),
    InvoicePay(&'p str),
    InvoiceItem {
        update: bool,
    },
    Checkout,
    SubscriptionCreate,
    SubscriptionUpdate(&'p str),
    SubscriptionItemCreate,
    SubscriptionItemUpdate(&'p str),
    TransferReversal(&'p str),
    FeeRefund(&'p str),
    PayoutReverse(&'p str),
}

/// The lookup-driven operation `segs` (a canonical POST path) names, if
/// any. An id that is no plain Stripe id (longer than 255 characters) makes
/// no route: the request is then an unknown write, never read from a
/// lookup of a path leash would not build.
pub(super) fn route<'p>(segs: &[&'p str]) -> Option<Route<'p>> {
    let id = |id: &'p str| object_id(id);
    Some(match *segs {
        ["v1", "refunds"] => Route::Refund { path_charge: None },
        ["v1", "charges", charge, "refunds" | "refund"] => Route::Refund {
            path_charge: Some(id(charge)?),
        },
        ["v1", "payment_intents", pi] => Route::PiUpdate(id(pi)?),
        ["v1", "payment_intents", pi, "confirm"] => Route::PiConfirm(id(pi)?),
        ["v1", "payment_intents", pi, "capture"] => Route::PiCapture(id(pi)?),
        ["v1", "payment_intents", pi, "increment_authorization"] => Route::PiIncrement(id(pi)?),
        ["v1", "charges", charge, "capture"] => Route::ChargeCapture(id(charge)?),
        ["v1", "invoices", invoice, "pay"] => Route::InvoicePay(id(invoice)?),
        ["v1", "invoiceitems"] => Route::InvoiceItem { update: false },
        ["v1", "invoiceitems", _] => Route::InvoiceItem { update: true },
        ["v1", "checkout", "sessions"] => Route::Checkout,
        ["v1", "subscriptions"] => Route::SubscriptionCreate,
        ["v1", "subscriptions", subscription] => Route::SubscriptionUpdate(id(subscription)?),
        ["v1", "subscription_items"] => Route::SubscriptionItemCreate,
        ["v1", "subscription_items", item] => Route::SubscriptionItemUpdate(id(item)?),
        ["v1", "transfers", transfer, "reversals"] => Route::TransferReversal(id(transfer)?),
        ["v1", "application_fees", fee, "refunds" | "refund"] => Route::FeeRefund(id(fee)?),
        ["v1", "payouts", payout, "reverse"] => Route::PayoutReverse(id(payout)?),
        _ => return None,
    })
}

/// What to GET before `req` can be read: the one place the adapter's
/// [`crate::adapters::Adapter::lookups`] is answered. Nothing for reads,
/// other hosts, unknown paths, and forms that cannot be read (the request
/// is unreadable or ambiguous whatever a lookup would say).
pub(super) fn lookups(req: &RequestView<'_>) -> Vec<Lookup> {
    if req.method != "POST" || normalize_host(req.host) != API_HOST {
        return Vec::new();
    }
    let Some(segs) = canonical_segments(req.path) else {
        return Vec::new();
    };
    let Some(route) = route(&segs) else {
        return Vec::new();
    };
    let call = Call::new(req);
    if call.ambiguity.is_some() {
        return Vec::new();
    }
    let Ok(form) = call.form() else {
        return Vec::new();
    };
    let mut wanted = route.lookups(form, req.facts);
    let mut seen = std::collections::BTreeSet::new();
    wanted.retain(|l| seen.insert(l.path.clone()));
    if wanted.len() > MAX_LOOKUPS {
        // Classified as unreadable for want of them (see `too_many`).
        return Vec::new();
    }
    wanted
}

/// Why a request needing more than [`MAX_LOOKUPS`] objects is unreadable.
pub(super) fn too_many(count: usize) -> Option<String> {
    (count > MAX_LOOKUPS).then(|| {
        format!(
            "the request names {count} objects to look up; leash looks up at most {MAX_LOOKUPS}"
        )
    })
}

impl Route<'_> {
    /// The objects this operation needs, given what is already known.
    pub(super) fn lookups(&self, form: &Form, facts: &Facts) -> Vec<Lookup> {
        let one = |path: String, why: &str| {
            vec![Lookup {
                path,
                body: None,
                why: why.to_owned(),
            }]
        };
        match *self {
            Route::Refund { path_charge } => payments::refund_lookups(form, path_charge, facts),
            Route::PiUpdate(pi) => {
                // Only an amount without currency needs the PaymentIntent.
                if form.has_root("amount") && !form.has_root("currency") {
                    one(
                        payment_intent_path(pi),
                        "an amount changed without currency is in the PaymentIntent's currency",
                    )
                } else {
                    Vec::new()
                }
            }
            Route::PiConfirm(pi) => one(
                payment_intent_path(pi),
                "a confirm charges the PaymentIntent's amount in its currency",
            ),
            Route::PiCapture(pi) => one(
                payment_intent_path(pi),
                "a capture is in the PaymentIntent's currency, by default all it can capture",
            ),
            Route::PiIncrement(pi) => one(
                payment_intent_path(pi),
                "an increment is in the PaymentIntent's currency",
            ),
            Route::ChargeCapture(charge) => one(
                charge_path(charge),
                "a capture is in the charge's currency, by default its whole amount",
            ),
            Route::InvoicePay(invoice) => {
                if billing::paid_out_of_band(form) {
                    Vec::new()
                } else {
                    one(
                        invoice_path(invoice),
                        "paying an invoice charges what is left of it, in its currency",
                    )
                }
            }
            Route::InvoiceItem { .. } => billing::invoice_item_lookups(form),
            Route::Checkout => billing::checkout_lookups(form),
            Route::SubscriptionCreate => billing::subscription_lookups(form, false),
            Route::SubscriptionUpdate(_) => billing::subscription_lookups(form, true),
            Route::SubscriptionItemCreate => billing::subscription_item_lookups(form, None),
            Route::SubscriptionItemUpdate(item) => {
                billing::subscription_item_lookups(form, Some(item))
            }
            Route::TransferReversal(transfer) => one(
                transfer_path(transfer),
                "a reversal is in the transfer's currency, by default all not yet reversed",
            ),
            Route::FeeRefund(fee) => one(
                application_fee_path(fee),
                "a fee refund is in the fee's currency, by default all not yet refunded",
            ),
            Route::PayoutReverse(payout) => one(
                payout_path(payout),
                "reversing a payout brings back its whole amount, in its currency",
            ),
        }
    }

    /// Reads the request, with whatever the lookups returned.
    pub(super) fn classify(&self, c: &Call<'_>) -> Classification {
        match *self {
            Route::Refund { path_charge } => payments::refund(c, path_charge),
            Route::PiUpdate(pi) => payments::pi_update(c, pi),
            Route::PiConfirm(pi) => payments::pi_confirm(c, pi),
            Route::PiCapture(pi) => payments::pi_capture(c, pi),
            Route::PiIncrement(pi) => payments::pi_increment(c, pi),
            Route::ChargeCapture(charge) => payments::charge_capture(c, charge),
            Route::InvoicePay(invoice) => billing::invoice_pay(c, invoice),
            Route::InvoiceItem { update } => billing::invoice_item(c, update),
            Route::Checkout => billing::checkout_session_create(c),
            Route::SubscriptionCreate => billing::subscription_create(c),
            Route::SubscriptionUpdate(subscription) => {
                billing::subscription_update(c, subscription)
            }
            Route::SubscriptionItemCreate => billing::subscription_item(c, None),
            Route::SubscriptionItemUpdate(item) => billing::subscription_item(c, Some(item)),
            Route::TransferReversal(transfer) => balances::transfer_reversal(c, transfer),
            Route::FeeRefund(fee) => balances::application_fee_refund(c, fee),
            Route::PayoutReverse(payout) => balances::payout_reverse(c, payout),
        }
    }
}

pub(super) fn charge_path(id: &str) -> String {
    format!("/v1/charges/{id}")
}

pub(super) fn payment_intent_path(id: &str) -> String {
    format!("/v1/payment_intents/{id}")
}

pub(super) fn invoice_path(id: &str) -> String {
    format!("/v1/invoices/{id}")
}

pub(super) fn price_path(id: &str) -> String {
    format!("/v1/prices/{id}")
}

pub(super) fn transfer_path(id: &str) -> String {
    format!("/v1/transfers/{id}")
}

pub(super) fn application_fee_path(id: &str) -> String {
    format!("/v1/application_fees/{id}")
}

pub(super) fn payout_path(id: &str) -> String {
    format!("/v1/payouts/{id}")
}

pub(super) fn subscription_item_path(id: &str) -> String {
    format!("/v1/subscription_items/{id}")
}

/// A looked-up (or learned) object and how to cite it
/// (`GET /v1/charges/ch_1`, `the answer to POST /v1/charges`).
#[derive(Debug, Clone)]
pub(super) struct Found<'f> {
    pub(super) json: &'f Json,
    pub(super) source: String,
}

/// The object looked up at `path`, if it is a `kind` (`payment_intent`).
///
/// `need` says why the request needs it; it opens the reason when there is
/// no object: the lookup failed (the failure follows, e.g. Stripe's 404),
/// was not made, or answered another kind of object. An answer without an
/// `object` field is taken as what was asked for (the path says what it
/// is); one that names another kind is never used.
pub(super) fn found<'f>(
    facts: &'f Facts,
    path: &'f str,
    kind: &str,
    need: &str,
) -> Result<Found<'f>, String> {
    let Some(json) = facts.get(path) else {
        return Err(match facts.failure(path) {
            Some(failure) => format!("{need}; {failure}"),
            None => format!("{need}; leash has not looked it up (GET {path})"),
        });
    };
    if !matches!(json, Json::Object(_)) {
        return Err(format!("{need}; GET {path} did not answer an object"));
    }
    match json.pointer("/object") {
        None => {}
        Some(Json::String(k)) if k == kind => {}
        Some(other) => {
            let named = other
                .as_str()
                .map(shown)
                .unwrap_or_else(|| "no name".into());
            return Err(format!(
                "{need}; GET {path} answered an object of kind {named}, not of kind {kind:?}"
            ));
        }
    }
    Ok(Found {
        json,
        source: facts.source(path),
    })
}

impl Found<'_> {
    /// `what (GET path)` (or `what (the answer to POST …)` for a learned
    /// object), for `sources` and reasons.
    pub(super) fn cite(&self, what: &str) -> String {
        format!("{what} ({})", self.source)
    }

    /// A non-negative integer field (minor units, a quantity), exactly.
    pub(super) fn count(&self, field: &str) -> Option<u128> {
        self.json
            .pointer(&format!("/{field}"))
            .and_then(Json::as_i64)
            .and_then(|n| u128::try_from(n).ok())
    }

    /// The object's `currency` and Stripe's exponent for it, with the code
    /// as Stripe writes it (lowercase) for `sources`.
    pub(super) fn currency(&self, object: &str) -> Result<(Currency, u32, String), String> {
        let text = self
            .json
            .pointer("/currency")
            .and_then(Json::as_str)
            .ok_or_else(|| self.cite(&format!("the {object} has no `currency`")))?;
        let (currency, exp) = stripe_currency("currency", text).map_err(|e| self.cite(&e))?;
        let code = currency.code().to_ascii_lowercase();
        Ok((currency, exp, code))
    }

    /// The id at `pointer`: a plain id string, or an expanded object's `id`.
    pub(super) fn id_at(&self, pointer: &str) -> Option<String> {
        let value = self.json.pointer(pointer)?;
        let id = match value {
            Json::String(s) => s.as_str(),
            Json::Object(_) => value.pointer("/id")?.as_str()?,
            _ => return None,
        };
        object_id(id).map(str::to_owned)
    }
}

/// How an operation's amount follows from the object when the request
/// leaves it out.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fallback {
    /// The first of these integer fields the object has.
    First(&'static [&'static str]),
    /// `a` − `b`: what is left (to capture, reverse, refund).
    Left(&'static str, &'static str),
    /// None: the request must state the amount.
    Required,
}

/// An operation whose currency (and, when the request leaves it out, its
/// amount and beneficiary) is the looked-up object's.
pub(super) struct FromObject<'s> {
    pub(super) op: Op,
    /// The object for reasons (`PaymentIntent`), its `object` kind
    /// (`payment_intent`) and the path it was looked up at.
    pub(super) object: &'static str,
    pub(super) kind: &'static str,
    pub(super) path: String,
    /// The request field with the amount, if the operation has one.
    pub(super) amount_field: Option<&'static str>,
    pub(super) fallback: Fallback,
    /// Why the object is needed when the request states the amount, and
    /// when it does not: the start of the reason if the lookup failed.
    pub(super) need_given: &'s str,
    pub(super) need_missing: &'s str,
    /// Beneficiary fields of the request, then JSON pointers into the
    /// object, then a fixed one (the object itself).
    pub(super) request_beneficiary: &'static [&'static str],
    pub(super) object_beneficiary: &'static [&'static str],
    pub(super) fixed_beneficiary: Option<&'s str>,
    /// Whether the request may say where parts of the payment go
    /// (`application_fee_amount`, `transfer_data[amount]`): recorded in
    /// `sources` in the object's currency.
    pub(super) splits: bool,
}

/// Reads an operation described by a [`FromObject`].
pub(super) fn spend_from_object(c: &Call<'_>, s: &FromObject<'_>) -> Classification {
    let op = s.op;
    let form = match c.form() {
        Ok(form) => form,
        Err(reason) => return unreadable(op, reason),
    };
    let given = match s.amount_field.map(|f| (f, scalar(form, f))) {
        None | Some((_, Ok(None))) => None,
        Some((_, Err(reason))) => return unreadable(op, reason),
        Some((field, Ok(Some(value)))) => match integer(field, value) {
            Ok(minor) => Some(minor),
            Err(reason) => return unreadable(op, reason),
        },
    };
    let amount_field = s.amount_field.unwrap_or("amount");
    if given.is_none() && matches!(s.fallback, Fallback::Required) {
        return unreadable(op, format!("no `{amount_field}`"));
    }
    let need = if given.is_some() {
        s.need_given
    } else {
        s.need_missing
    };
    let object = match found(c.facts(), &s.path, s.kind, need) {
        Ok(object) => object,
        Err(reason) => return unreadable(op, reason),
    };
    let (currency, exp, code) = match object.currency(s.object) {
        Ok(found) => found,
        Err(reason) => return unreadable(op, reason),
    };
    let mut sources = BTreeMap::new();
    sources.insert("currency".to_owned(), object.cite(&code));
    let minor = match given {
        Some(minor) => minor,
        None => match object_amount(&object, s.object, s.fallback) {
            Ok((minor, how)) => {
                sources.insert("amount".to_owned(), object.cite(&how));
                minor
            }
            Err(reason) => return unreadable(op, reason),
        },
    };
    let money = match to_money(amount_field, minor, currency, exp) {
        Ok(money) => money,
        Err(reason) => return unreadable(op, reason),
    };
    let who = beneficiary(form, s.request_beneficiary)
        .or_else(|| {
            s.object_beneficiary.iter().find_map(|pointer| {
                let id = object.id_at(pointer)?;
                let field = pointer.trim_start_matches('/').replace('/', ".");
                sources.insert(
                    "beneficiary".to_owned(),
                    object.cite(&format!("{id}, the {}'s `{field}`", s.object)),
                );
                Some(id)
            })
        })
        .or_else(|| s.fixed_beneficiary.map(str::to_owned));
    if s.splits {
        match payments::splits(form, currency, exp) {
            Ok(more) => sources.extend(more),
            Err(reason) => return unreadable(op, reason),
        }
    }
    let mut draft = draft(&c.req, op, money, who);
    draft.sources = sources;
    Classification::spend(op.name, vec![draft])
}

/// The amount the object gives when the request leaves it out, and how
/// (for `sources`).
fn object_amount(
    object: &Found<'_>,
    name: &str,
    fallback: Fallback,
) -> Result<(u128, String), String> {
    match fallback {
        Fallback::First(fields) => fields
            .iter()
            .find_map(|f| object.count(f).map(|n| (n, *f)))
            .map(|(n, f)| (n, format!("{n} minor units, the {name}'s `{f}`")))
            .ok_or_else(|| {
                let list: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                object.cite(&format!(
                    "the {name} gives no {} as a non-negative integer",
                    list.join(" or ")
                ))
            }),
        Fallback::Left(total, used) => match (object.count(total), object.count(used)) {
            (Some(a), Some(b)) => {
                let left = a.saturating_sub(b);
                Ok((
                    left,
                    format!("{left} minor units, the {name}'s `{total}` − `{used}`"),
                ))
            }
            _ => Err(object.cite(&format!(
                "the amount is the {name}'s `{total}` − `{used}`, which it does not give as \
                 non-negative integers"
            ))),
        },
        Fallback::Required => Err(format!("no `amount` for the {name}")),
    }
}

/// A price id from the request, checked to be one.
pub(super) fn plain_id<'v>(field: &str, value: &'v str) -> Result<&'v str, String> {
    object_id(value).ok_or_else(|| format!("`{field}` is {}, not a Stripe object id", shown(value)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{decided_as, FORM, JSON};
    use super::super::{classify, StripeAdapter};
    use super::*;
    use crate::adapters::Adapter;
    use crate::intent::Classification;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    /// Every POST path this adapter reads as money that must never be
    /// answered `Safe`, whatever the body and whatever the lookups say.
    const MONEY_POST_PATHS: &[&str] = &[
        "/v1/payment_intents",
        "/v1/payment_intents/pi_1/confirm",
        "/v1/payment_intents/pi_1/capture",
        "/v1/payment_intents/pi_1/increment_authorization",
        "/v1/charges",
        "/v1/charges/ch_1/capture",
        "/v1/refunds",
        "/v1/charges/ch_1/refunds",
        "/v1/charges/ch_1/refund",
        "/v1/transfers",
        "/v1/transfers/tr_1/reversals",
        "/v1/payouts",
        "/v1/payouts/po_1/reverse",
        "/v1/topups",
        "/v1/invoiceitems",
        "/v1/invoices/in_1/finalize",
        "/v1/quotes/qt_1/accept",
        "/v1/subscriptions",
        "/v1/subscription_items",
        "/v1/customers/cus_1/balance_transactions",
        "/v1/application_fees/fee_1/refunds",
        "/v1/application_fees/fee_1/refund",
        "/v1/treasury/outbound_payments",
        "/v1/treasury/outbound_transfers",
        "/v2/money_management/outbound_payments",
        "/v2/money_management/outbound_transfers",
    ];

    /// Money paths where `Safe` is right for some bodies, each with the
    /// test's own statement of when.
    const SOMETIMES_SAFE_PATHS: &[&str] = &[
        "/v1/invoices/in_1/pay",
        "/v1/checkout/sessions",
        "/v1/payment_intents/pi_1",
        "/v1/invoiceitems/ii_1",
        "/v1/subscriptions/sub_1",
        "/v1/subscription_items/si_1",
        "/v1/setup_intents",
    ];

    /// Whether `Safe` is an acceptable answer for `body` on `path`.
    fn may_be_safe(path: &str, body: &[u8]) -> bool {
        let Ok(form) = Form::parse(body) else {
            return false;
        };
        let only = |allowed: &[&str]| form.roots().iter().all(|r| allowed.contains(r));
        match path {
            "/v1/invoices/in_1/pay" => form.get("paid_out_of_band") == Some("true"),
            "/v1/checkout/sessions" => {
                form.get("mode") == Some("setup")
                    && !form.has_root("line_items")
                    && !form.has_root("optional_items")
            }
            "/v1/payment_intents/pi_1" => only(&[
                "description",
                "expand",
                "metadata",
                "receipt_email",
                "shipping",
                "statement_descriptor",
                "statement_descriptor_suffix",
            ]),
            "/v1/invoiceitems/ii_1" => only(&["description", "expand", "metadata", "period"]),
            "/v1/subscriptions/sub_1" => only(&[
                "default_payment_method",
                "default_source",
                "description",
                "expand",
                "metadata",
            ]),
            "/v1/subscription_items/si_1" => only(&["expand", "metadata"]),
            "/v1/setup_intents" => {
                !form.has_root("single_use")
                    && !form
                        .with_prefix("payment_method_options[")
                        .any(|(n, _)| n.ends_with("[amount]"))
            }
            _ => false,
        }
    }

    /// Paths of every object a lookup may ask for in these tests.
    const LOOKUP_PATHS: &[&str] = &[
        "/v1/payment_intents/pi_1",
        "/v1/charges/ch_1",
        "/v1/invoices/in_1",
        "/v1/prices/price_1",
        "/v1/prices/price_2",
        "/v1/transfers/tr_1",
        "/v1/application_fees/fee_1",
        "/v1/payouts/po_1",
        "/v1/subscription_items/si_1",
    ];

    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "amount",
                "currency",
                "amount_to_confirm",
                "amount_to_capture",
                "application_fee_amount",
                "transfer_data[amount]",
                "paid_out_of_band",
                "mode",
                "price",
                "pricing[price]",
                "quantity",
                "charge",
                "payment_intent",
                "customer",
                "metadata[x]",
                "description",
                "subscription",
                "single_use[amount]",
                "single_use[currency]",
                "line_items[0][price]",
                "line_items[0][quantity]",
                "line_items[0][price_data][unit_amount]",
                "line_items[0][price_data][currency]",
                "items[0][price]",
                "items[0][id]",
                "items[0][quantity]",
                "items[0][deleted]",
                "add_invoice_items[0][price]",
            ])
            .prop_map(str::to_owned),
            "[a-z_]{1,8}",
        ]
    }

    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "1000", "0", "-5", "12.5", "", "eur", "jpy", "kwd", "xyz", "true", "false",
                "payment", "setup", "price_1", "price_2", "ch_1", "pi_1", "si_1", "sub_1",
            ])
            .prop_map(str::to_owned),
            ".{0,6}",
        ]
    }

    fn body() -> impl Strategy<Value = (Option<&'static str>, Vec<u8>)> {
        prop_oneof![
            4 => prop::collection::vec((field_name(), field_value()), 0..6).prop_map(|pairs| {
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish();
                (FORM, body.into_bytes())
            }),
            1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| (FORM, b)),
            1 => (field_value(), field_value(), prop::option::of("[a-z_]{1,8}")).prop_map(|(v, c, extra)| {
                let extra = extra.map(|k| format!(r#","{k}":1"#)).unwrap_or_default();
                let body = format!(r#"{{"amount":{{"value":{v:?},"currency":{c:?}}}{extra}}}"#);
                (JSON, body.into_bytes())
            }),
            1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| (JSON, b)),
        ]
    }

    /// A looked-up object with any mix of the fields adapters read.
    fn object() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("1000".to_owned()),
            Just("0".to_owned()),
            Just("-7".to_owned()),
            Just("1.5".to_owned()),
            Just("null".to_owned()),
            Just("\"eur\"".to_owned()),
            Just("\"jpy\"".to_owned()),
            Just("\"zzz\"".to_owned()),
            Just("\"1999.5\"".to_owned()),
            Just("\"ch_1\"".to_owned()),
            Just(r#"{"id":"acct_1"}"#.to_owned()),
            Just(r#"{"interval":"month","usage_type":"metered"}"#.to_owned()),
            Just(r#"{"object":"price","unit_amount":5,"currency":"eur"}"#.to_owned()),
        ];
        let key = prop::sample::select(vec![
            "object",
            "amount",
            "amount_capturable",
            "amount_refunded",
            "amount_reversed",
            "amount_remaining",
            "amount_due",
            "currency",
            "unit_amount",
            "unit_amount_decimal",
            "recurring",
            "billing_scheme",
            "customer",
            "quantity",
            "price",
            "latest_charge",
            "transfer_data",
            "account",
        ]);
        prop::collection::btree_map(key, value, 0..8).prop_map(|m| {
            let members: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", members.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Whatever the body and whatever the vendor answers to the
        /// lookups (or fails to), a POST to a money path never panics, is
        /// never `Safe` (except where the test's own model says so), and a
        /// spend it reads is never negative.
        #[test]
        fn money_paths_are_never_safe(
            path in prop::sample::select(
                MONEY_POST_PATHS.iter().chain(SOMETIMES_SAFE_PATHS).copied().collect::<Vec<_>>()
            ),
            (content_type, body) in body(),
            vendor in prop::collection::btree_map(prop::sample::select(LOOKUP_PATHS.to_vec()), object(), 0..6),
        ) {
            let vendor: Vec<(&str, &str)> = vendor.iter().map(|(p, o)| (*p, o.as_str())).collect();
            let text = String::from_utf8_lossy(&body).into_owned();
            // The proxy hands over the decoded body; a lossy copy keeps the
            // helper's `&str` and is what the form reader sees for UTF-8.
            let (c, asked) = decided_as(path, content_type, &text, &vendor);
            prop_assert!(asked.len() <= MAX_LOOKUPS);
            if c.kind() == "safe" {
                prop_assert!(
                    content_type == FORM && may_be_safe(path, text.as_bytes()),
                    "{path} {text:?}: {c:?}"
                );
            }
            if let Classification::Spend(drafts) = &c {
                for d in drafts {
                    prop_assert!(d.amount.is_some_and(|m| m.amount >= Decimal::ZERO));
                }
            }
            // Classifying the raw bytes with no lookups never panics either.
            let none = Facts::default();
            let raw = super::super::testing::request(path, content_type, &body, &none);
            let _ = classify(&raw);
            let _ = StripeAdapter.lookups(&raw);
        }
    }

    #[test]
    fn every_route_is_a_money_path() {
        // Each lookup-driven route is in one of the lists the property walks.
        for path in MONEY_POST_PATHS.iter().chain(SOMETIMES_SAFE_PATHS) {
            let segs = canonical_segments(path).unwrap();
            let _ = route(&segs);
        }
        for path in [
            "/v1/refunds",
            "/v1/charges/ch_1/refunds",
            "/v1/payment_intents/pi_1",
            "/v1/payment_intents/pi_1/confirm",
            "/v1/payment_intents/pi_1/capture",
            "/v1/payment_intents/pi_1/increment_authorization",
            "/v1/charges/ch_1/capture",
            "/v1/invoices/in_1/pay",
            "/v1/invoiceitems",
            "/v1/invoiceitems/ii_1",
            "/v1/checkout/sessions",
            "/v1/subscriptions",
            "/v1/subscriptions/sub_1",
            "/v1/subscription_items",
            "/v1/subscription_items/si_1",
            "/v1/transfers/tr_1/reversals",
            "/v1/application_fees/fee_1/refunds",
            "/v1/payouts/po_1/reverse",
        ] {
            let segs = canonical_segments(path).unwrap();
            assert!(route(&segs).is_some(), "{path}");
            assert!(
                MONEY_POST_PATHS.contains(&path) || SOMETIMES_SAFE_PATHS.contains(&path),
                "{path} is not walked by the property"
            );
        }
        assert_eq!(route(&["v1", "payment_intents", "pi_1", "cancel"]), None);
        assert_eq!(route(&["v1", "customers"]), None);
    }

    #[test]
    fn lookups_only_for_api_posts_with_readable_forms() {
        let none = Facts::default();
        let mut req =
            super::super::testing::request("/v1/payment_intents/pi_1/confirm", FORM, b"", &none);
        assert_eq!(StripeAdapter.lookups(&req).len(), 1);
        req.method = "GET";
        assert!(StripeAdapter.lookups(&req).is_empty());
        req.method = "POST";
        req.host = "files.stripe.com";
        assert!(StripeAdapter.lookups(&req).is_empty());
        req.host = "API.Stripe.com:443";
        assert_eq!(StripeAdapter.lookups(&req).len(), 1);
        req.body = b"a=1&a=2";
        assert!(
            StripeAdapter.lookups(&req).is_empty(),
            "ambiguous: refused anyway"
        );
        req.body = b"a=%zz";
        assert!(StripeAdapter.lookups(&req).is_empty(), "unreadable anyway");
        req.body = b"";
        req.content_type = JSON;
        assert!(StripeAdapter.lookups(&req).is_empty());
        // Each lookup says why.
        req.content_type = FORM;
        let wanted = StripeAdapter.lookups(&req);
        assert_eq!(wanted[0].path, "/v1/payment_intents/pi_1");
        assert!(wanted[0].why.contains("PaymentIntent"));
    }
}
