//! The Stripe adapter: reads `api.stripe.com` requests as intents.
//!
//! # What Stripe requests look like
//!
//! Stripe's v1 API takes `application/x-www-form-urlencoded` bodies with
//! bracketed nesting (`metadata[order]=42`, `transfer_data[destination]=acct_1`,
//! `line_items[0][price_data][unit_amount]=500`). Amounts are integers in the
//! currency's minor unit next to a lowercase ISO code: `amount=1099&currency=usd`
//! is 10.99 USD. Reads are `GET`; creates and updates are `POST`; a few
//! objects can be `DELETE`d.
//!
//! # How Stripe scales amounts (not always as ISO 4217 does)
//!
//! From Stripe's "Supported currencies" page,
//! <https://docs.stripe.com/currencies> (sections "Zero-decimal currencies",
//! "Three-decimal currencies" and "Special cases"):
//!
//! - "Currencies are two-decimal currencies unless otherwise specified."
//! - Zero-decimal ("the charge and the amount are the same"): BIF, CLP, DJF,
//!   GNF, JPY, KMF, KRW, MGA, PYG, RWF, VND, VUV, XAF, XOF, XPF. Note MGA,
//!   which ISO 4217 gives two decimals.
//! - Three-decimal: BHD, JOD, KWD, OMR, TND ("5.124 KWD" is `5124`; Stripe
//!   also requires the last digit to be 0 for payments, which changes nothing
//!   about how an amount is read). Wording from the archived page,
//!   <https://web.archive.org/web/20221231002856/https://stripe.com/docs/currencies>.
//! - Special cases:
//!   - ISK: "transitioned to a zero-decimal currency, but backward
//!     compatibility requires you to represent it as a two-decimal value …
//!     to charge 5 ISK, provide an `amount` value of `500`". ISO says 0;
//!     Stripe's exponent is **2**.
//!   - UGX: the same sentence, "to charge 5 UGX, provide an `amount` value of
//!     `500`". Stripe also still lists UGX among zero-decimal currencies; the
//!     special case is what the API does (Stripe rejects UGX amounts not
//!     divisible by 100 with "Currency UGX has become effectively
//!     zero-decimal", reported in woocommerce/woocommerce-gateway-stripe#2674,
//!     and integrations that sent UGX unscaled charged 1/100 of the price,
//!     WordPress/wordcamp.org#1320). Exponent **2**.
//!   - HUF and TWD: "Stripe treats HUF (TWD) as a zero-decimal currency for
//!     payouts, even though you can charge two-decimal amounts"; manual
//!     payouts must be divisible by 100. The *representation* stays
//!     two-decimal (a HUF 10 payout is `1000`), so the exponent is **2**.
//! - Any other currency whose ISO exponent is not 2 (IQD, LYD, CLF, UYW,
//!   UYI) is not documented by Stripe; leash refuses to guess and reports the
//!   request unreadable. Guessing 2 for a 0-exponent currency would read 100×
//!   too little.
//!
//! # Endpoints read as spends (params from the Stripe API reference,
//! <https://docs.stripe.com/api>)
//!
//! | request | operation | amount |
//! |---|---|---|
//! | `POST /v1/payment_intents` | `payment_intent.create` | `amount` + `currency` |
//! | `POST /v1/payment_intents/{id}` with `amount` | `payment_intent.update` | `amount` + `currency` |
//! | `POST /v1/payment_intents/{id}/confirm` | `payment_intent.confirm` | not in the request: unreadable |
//! | `POST /v1/payment_intents/{id}/capture` | `payment_intent.capture` | `amount_to_capture` is optional and there is no `currency` param: unreadable |
//! | `POST /v1/payment_intents/{id}/increment_authorization` | `payment_intent.increment_authorization` | `amount` without currency: unreadable |
//! | `POST /v1/charges` | `charge.create` | `amount` + `currency` |
//! | `POST /v1/charges/{id}/capture` | `charge.capture` | optional `amount`, no `currency`: unreadable |
//! | `POST /v1/refunds` | `refund.create` | `amount` (optional: absent = full refund) + `currency` (optional: absent = the charge's) |
//! | `POST /v1/charges/{id}/refunds`, `/refund` (legacy) | `refund.create` | as above |
//! | `POST /v1/transfers` | `transfer.create` | `amount` + `currency` |
//! | `POST /v1/payouts` | `payout.create` | `amount` + `currency` |
//! | `POST /v1/topups` | `topup.create` | `amount` + `currency` |
//! | `POST /v1/invoiceitems`, `/v1/invoiceitems/{id}` | `invoiceitem.create` / `.update` | `amount` + `currency`, or `unit_amount` × `quantity`, or `price_data[unit_amount]` × `quantity` with `price_data[currency]` |
//! | `POST /v1/checkout/sessions` (`mode=payment`) | `checkout_session.create` | Σ `line_items[i][price_data][unit_amount]` × `line_items[i][quantity]`, one currency |
//!
//! An invoice-item update carries no `currency` (Stripe keeps the item's), so
//! only `price_data[...]` with an explicit `quantity` is readable there.
//!
//! Stripe takes the currency of a capture, a confirm, and of a refund sent
//! without `currency` from the underlying PaymentIntent or Charge. leash does
//! not look objects up (yet), so those requests are unreadable, and the
//! reason says so. A refund without `amount` is a full refund whose amount is
//! likewise not in the request.
//!
//! # Writes known to move no money (safe)
//!
//! Creating or updating customers (unless the write sets `balance`, a credit
//! on future invoices), products, prices, payment methods (and attach /
//! detach), setup intents (and confirm / cancel / verify), tax rates, tokens,
//! ephemeral keys, webhook endpoints and customer tax ids; cancelling a
//! PaymentIntent, refund, payout or top-up; expiring a checkout session;
//! updates of charges, refunds, transfers, payouts, top-ups, payment intents,
//! invoice items and checkout sessions that set only descriptive fields
//! (`metadata`, `description`, ...); deleting customers, customer tax ids,
//! products, webhook endpoints and ephemeral keys. Every other write is
//! unknown.
//!
//! # Beneficiary: first present, in this order
//!
//! - payments (payment intents, charges): `transfer_data[destination]`, then
//!   (charges only) the legacy `destination[account]` / `destination`, then
//!   `on_behalf_of`, then `customer`. A connected account that receives the
//!   funds is where the money goes, so it wins over the paying customer.
//! - checkout sessions: `payment_intent_data[transfer_data][destination]`,
//!   `payment_intent_data[on_behalf_of]`, `customer`.
//! - refunds: `charge`, then `payment_intent`, then `customer` (customer
//!   balance refunds); for the legacy `/v1/charges/{id}/refunds` the charge
//!   id in the path.
//! - transfers and payouts: `destination` (a payout without one goes to the
//!   default external account, and has no beneficiary in the intent).
//! - top-ups: none (money moves into the platform's own balance).
//! - invoice items: `customer`, then `customer_account`.
//!
//! # Fail-closed rules
//!
//! - Only `GET`, `HEAD` and `OPTIONS` (exact, case-sensitive) are reads.
//! - A non-read to a path that is not canonical (`/v1/x` with segments of
//!   `[A-Za-z0-9_]` only: no `%`, `.`, `//` or trailing `/`) is unknown, so
//!   that `/v1/customers/..%2Frefunds` cannot pass as a customer update.
//! - The query string is read together with the body ([`Form::parse_parts`]).
//! - Any duplicate field, malformed escape, non-UTF-8 text, raw `;`, odd name
//!   or JSON body on a spend path makes the request unreadable.
//! - Amounts must be plain non-negative integers without a leading zero.
//!   Negative invoice items (credits) are therefore unreadable too.
//! - Checkout totals are pre-tax (Stripe computes tax from rates and
//!   addresses leash does not see). Anything that lets the end customer
//!   raise the total (adjustable quantities, optional items, shipping
//!   options) or that leash cannot price (a `price` id, `unit_amount_decimal`,
//!   recurring prices, `mode=subscription`) makes the session unreadable.

use crate::adapters::{normalize_host, Adapter, Form, Refusal, Shaped};
use crate::intent::{Classification, Facts, IntentDraft, Lookup, RequestView};
use crate::money::{minor_value_to_major, parse_minor_digits, Currency, Money, MoneyError};

/// Hosts this adapter reads.
pub const HOSTS: &[&str] = &[
    "api.stripe.com",
    // Uploads (multipart), OAuth for Connect, and the v2 meter-event
    // stream (research §1.1): claimed so none is ever tunnelled blind.
    "files.stripe.com",
    "connect.stripe.com",
    "meter-events.stripe.com",
];

/// Vendor name in intents and policies.
pub const VENDOR: &str = "stripe";

/// Stripe's zero-decimal currencies (see the module docs).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF",
    "XOF", "XPF",
];

/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// ISO zero-exponent currencies that Stripe nevertheless sends with two
/// decimals ("Special cases").
const TWO_DECIMAL_BY_STRIPE: &[&str] = &["ISK", "UGX"];

/// The exponent Stripe uses for `currency`'s minor unit, or `None` when
/// Stripe does not document it (never guessed).
pub fn stripe_exponent(currency: &Currency) -> Option<u32> {
    let code = currency.code();
    if !currency.is_iso() {
        None
    } else if ZERO_DECIMAL.contains(&code) {
        Some(0)
    } else if THREE_DECIMAL.contains(&code) {
        Some(3)
    } else if TWO_DECIMAL_BY_STRIPE.contains(&code) || currency.iso_exponent() == Some(2) {
        Some(2)
    } else {
        None
    }
}

/// A spend operation: its name and default category.
#[derive(Debug, Clone, Copy)]
struct Op {
    name: &'static str,
    category: &'static str,
}

const PI_CREATE: Op = Op {
    name: "payment_intent.create",
    category: "payment",
};
const PI_UPDATE: Op = Op {
    name: "payment_intent.update",
    category: "payment",
};
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
const CHARGE_CREATE: Op = Op {
    name: "charge.create",
    category: "payment",
};
const CHARGE_CAPTURE: Op = Op {
    name: "charge.capture",
    category: "payment",
};
const REFUND_CREATE: Op = Op {
    name: "refund.create",
    category: "refund",
};
const TRANSFER_CREATE: Op = Op {
    name: "transfer.create",
    category: "transfer",
};
const PAYOUT_CREATE: Op = Op {
    name: "payout.create",
    category: "payout",
};
const TOPUP_CREATE: Op = Op {
    name: "topup.create",
    category: "topup",
};
const INVOICEITEM_CREATE: Op = Op {
    name: "invoiceitem.create",
    category: "invoice",
};
const INVOICEITEM_UPDATE: Op = Op {
    name: "invoiceitem.update",
    category: "invoice",
};
const CHECKOUT_CREATE: Op = Op {
    name: "checkout_session.create",
    category: "payment",
};
const CHECKOUT_UPDATE: Op = Op {
    name: "checkout_session.update",
    category: "payment",
};

const PAYMENT_BENEFICIARY: &[&str] = &["transfer_data[destination]", "on_behalf_of", "customer"];
const CHARGE_BENEFICIARY: &[&str] = &[
    "transfer_data[destination]",
    "destination[account]",
    "destination",
    "on_behalf_of",
    "customer",
];
const REFUND_BENEFICIARY: &[&str] = &["charge", "payment_intent", "customer"];
const DESTINATION_BENEFICIARY: &[&str] = &["destination"];
const INVOICEITEM_BENEFICIARY: &[&str] = &["customer", "customer_account"];
const CHECKOUT_BENEFICIARY: &[&str] = &[
    "payment_intent_data[transfer_data][destination]",
    "payment_intent_data[on_behalf_of]",
    "customer",
];

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

/// Invoice-item update fields that change no amount.
const INVOICEITEM_UPDATE_HARMLESS: &[&str] = &["description", "expand", "metadata", "period"];

/// The Stripe adapter. Stateless; see the module docs for what it reads.
///
/// ```
/// use leash::intent::{Classification, RequestView, NO_FACTS};
/// use leash::adapters::Registry;
///
/// let vendors = Registry::builtin();
/// let stripe = vendors.for_host("api.stripe.com:443").unwrap();
/// let req = RequestView {
///     method: "POST",
///     host: "api.stripe.com",
///     path: "/v1/payment_intents",
///     query: None,
///     content_type: Some("application/x-www-form-urlencoded"),
///     idempotency_key: Some("order-42"),
///     account: None,
///     body: b"amount=1500&currency=jpy&customer=cus_1",
///     facts: &NO_FACTS,
/// };
/// match stripe.classify(&req) {
///     Classification::Spend(intents) => {
///         assert_eq!(intents[0].amount.unwrap().to_string(), "1500 JPY");
///         assert_eq!(intents[0].beneficiary.as_deref(), Some("cus_1"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StripeAdapter;

impl Adapter for StripeAdapter {
    fn name(&self) -> &str {
        VENDOR
    }

    fn claims_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        HOSTS.contains(&host.as_str())
    }

    fn hosts(&self) -> Vec<String> {
        HOSTS.iter().map(|h| h.to_string()).collect()
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        classify(req)
    }

    fn lookups(&self, req: &RequestView<'_>) -> Vec<Lookup> {
        refund_lookups(req)
    }

    fn read_headers(&self) -> Vec<&str> {
        READ_HEADERS.to_vec()
    }

    fn account_header(&self) -> Option<&str> {
        Some("stripe-account")
    }

    /// Stripe's SDKs pick the exception class from the status and
    /// `error.type` (4xx from leash are request problems, 5xx API errors)
    /// and honour `Stripe-Should-Retry: false`.
    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        let kind = if refusal.status.is_server_error() {
            "api_error"
        } else {
            "invalid_request_error"
        };
        Shaped {
            body: serde_json::json!({
                "error": { "type": kind, "code": refusal.code, "message": refusal.message }
            }),
            headers: vec![("stripe-should-retry", "false")],
        }
    }
}

/// Headers Stripe acts on that leash reads (or must not see two of):
/// the idempotency key (retry identity), and the account the request acts
/// as (`Stripe-Account`, and `Stripe-Context`, its successor for
/// organisation keys), which decides whose money moves.
const READ_HEADERS: &[&str] = &["idempotency-key", "stripe-account", "stripe-context"];

fn safe(operation: &str) -> Classification {
    Classification::Safe {
        operation: operation.to_owned(),
    }
}

fn unknown(operation: &str, reason: String) -> Classification {
    Classification::Unknown {
        operation: operation.to_owned(),
        reason,
    }
}

fn unreadable(op: Op, reason: String) -> Classification {
    Classification::Unreadable {
        operation: op.name.to_owned(),
        reason,
    }
}

/// A path or field fit for a reason string: bounded, with control
/// characters escaped.
fn shown(s: &str) -> String {
    const MAX: usize = 120;
    let mut cut: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Splits a canonical path (`/v1/checkout/sessions`) into its segments, or
/// `None` when the path is not canonical.
fn canonical_segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    let ok = segs
        .iter()
        .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    ok.then_some(segs)
}

/// Reads one request. Total: every input yields a classification.
///
/// A write whose parameters can be read in more than one way is
/// `Ambiguous`, whichever endpoint it targets: even a write leash knows to
/// be harmless may be read by Stripe as another one.
pub fn classify(req: &RequestView<'_>) -> Classification {
    if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
        return safe("read");
    }
    match normalize_host(req.host).as_str() {
        "files.stripe.com" => return side_host(req, &[("POST", "/v1/files", "file.create")]),
        "connect.stripe.com" => {
            return side_host(
                req,
                &[
                    ("POST", "/oauth/token", "oauth.token"),
                    ("POST", "/oauth/deauthorize", "oauth.deauthorize"),
                ],
            )
        }
        // Meter events bill usage: money, in units leash cannot price.
        "meter-events.stripe.com" => return side_host(req, &[]),
        _ => {}
    }
    let read = classify_write(req);
    match form_ambiguity(req) {
        Some(reason) => Classification::Ambiguous {
            operation: read.operation().to_owned(),
            reason,
        },
        None => read,
    }
}

/// A Stripe host that is not the API: the listed writes move no money,
/// every other write is unknown.
fn side_host(req: &RequestView<'_>, harmless: &[(&str, &str, &str)]) -> Classification {
    match harmless
        .iter()
        .find(|(method, path, _)| *method == req.method && *path == req.path)
    {
        Some((_, _, operation)) => safe(operation),
        None => unknown(
            "unknown",
            format!(
                "{} {} on {} is not a write leash knows to move no money",
                shown(req.method),
                shown(req.path),
                shown(req.host)
            ),
        ),
    }
}

/// Why the request's form parameters (query and body) can be read in more
/// than one way, if they can. Only bodies Stripe would read as a form are
/// looked at; a malformed escape is unreadable, not ambiguous, and left to
/// the operation's own reading.
fn form_ambiguity(req: &RequestView<'_>) -> Option<String> {
    if read_form_media(req).is_err() {
        return None;
    }
    match Form::parse_parts(req.query, req.body) {
        Err(e) if e.is_ambiguous() => Some(format!("the form parameters are ambiguous: {e}")),
        _ => None,
    }
}

fn classify_write(req: &RequestView<'_>) -> Classification {
    let Some(segs) = canonical_segments(req.path) else {
        return unknown(
            "unknown",
            format!(
                "{} {} is not a canonical Stripe API path (segments of letters, digits and '_' only)",
                shown(req.method),
                shown(req.path)
            ),
        );
    };
    match req.method {
        "POST" => classify_post(req, &segs),
        "DELETE" => classify_delete(req, &segs),
        other => unknown(
            "unknown",
            format!(
                "method {} on {} is not one Stripe's API uses for known operations",
                shown(other),
                shown(req.path)
            ),
        ),
    }
}

fn classify_delete(req: &RequestView<'_>, segs: &[&str]) -> Classification {
    match segs {
        ["v1", "customers", _] => safe("customer.delete"),
        ["v1", "customers", _, "tax_ids", _] => safe("customer.tax_id.delete"),
        ["v1", "products", _] => safe("product.delete"),
        ["v1", "webhook_endpoints", _] => safe("webhook_endpoint.delete"),
        ["v1", "ephemeral_keys", _] => safe("ephemeral_key.delete"),
        _ => unknown(
            "unknown",
            format!(
                "DELETE {} is not a deletion leash knows to move no money",
                shown(req.path)
            ),
        ),
    }
}

fn classify_post(req: &RequestView<'_>, segs: &[&str]) -> Classification {
    match segs {
        // Spends.
        ["v1", "payment_intents"] => simple_spend(req, PI_CREATE, PAYMENT_BENEFICIARY, None),
        ["v1", "payment_intents", _] => payment_intent_update(req),
        ["v1", "payment_intents", _, "confirm"] => unreadable(
            PI_CONFIRM,
            "confirming a PaymentIntent charges the amount set when it was created or updated; \
             the confirm request does not carry it, and leash does not look it up"
                .to_owned(),
        ),
        ["v1", "payment_intents", _, "capture"] => {
            capture(req, PI_CAPTURE, "amount_to_capture", "PaymentIntent")
        }
        ["v1", "payment_intents", _, "increment_authorization"] => unreadable(
            PI_INCREMENT,
            "increment_authorization sets a new `amount` without a `currency` (Stripe uses the \
             PaymentIntent's), so leash cannot scale it"
                .to_owned(),
        ),
        ["v1", "payment_intents", _, "cancel"] => safe("payment_intent.cancel"),
        ["v1", "charges"] => simple_spend(req, CHARGE_CREATE, CHARGE_BENEFICIARY, None),
        ["v1", "charges", _, "capture"] => capture(req, CHARGE_CAPTURE, "amount", "Charge"),
        ["v1", "charges", charge, "refunds"] | ["v1", "charges", charge, "refund"] => {
            refund(req, Some(charge))
        }
        ["v1", "refunds"] => refund(req, None),
        ["v1", "transfers"] => simple_spend(req, TRANSFER_CREATE, DESTINATION_BENEFICIARY, None),
        ["v1", "payouts"] => simple_spend(req, PAYOUT_CREATE, DESTINATION_BENEFICIARY, None),
        ["v1", "topups"] => simple_spend(req, TOPUP_CREATE, &[], None),
        ["v1", "invoiceitems"] => invoice_item(req, INVOICEITEM_CREATE),
        ["v1", "invoiceitems", _] => invoice_item(req, INVOICEITEM_UPDATE),
        ["v1", "checkout", "sessions"] => checkout_session_create(req),
        ["v1", "checkout", "sessions", _] => checkout_session_update(req),

        // Updates of money objects: safe only with fields that change no
        // money; anything else is a write leash does not know.
        ["v1", "charges", _] => update(
            req,
            "charge.update",
            &[
                "customer",
                "description",
                "expand",
                "fraud_details",
                "metadata",
                "receipt_email",
                "shipping",
                "transfer_group",
            ],
        ),
        ["v1", "refunds", _] => update(req, "refund.update", &["expand", "metadata"]),
        ["v1", "transfers", _] => update(
            req,
            "transfer.update",
            &["description", "expand", "metadata"],
        ),
        ["v1", "payouts", _] => update(req, "payout.update", &["expand", "metadata"]),
        ["v1", "topups", _] => update(req, "topup.update", &["description", "expand", "metadata"]),

        // Cancellations keep money where it is.
        ["v1", "refunds", _, "cancel"] => safe("refund.cancel"),
        ["v1", "payouts", _, "cancel"] => safe("payout.cancel"),
        ["v1", "topups", _, "cancel"] => safe("topup.cancel"),
        ["v1", "checkout", "sessions", _, "expire"] => safe("checkout_session.expire"),

        // Customers are safe unless the write sets their credit balance.
        ["v1", "customers"] => customer_write(req, "customer.create"),
        ["v1", "customers", _] => customer_write(req, "customer.update"),

        // Known writes that move no money.
        ["v1", "customers", _, "tax_ids"] => safe("customer.tax_id.create"),
        ["v1", "products"] => safe("product.create"),
        ["v1", "products", _] => safe("product.update"),
        ["v1", "prices"] => safe("price.create"),
        ["v1", "prices", _] => safe("price.update"),
        ["v1", "payment_methods"] => safe("payment_method.create"),
        ["v1", "payment_methods", _] => safe("payment_method.update"),
        ["v1", "payment_methods", _, "attach"] => safe("payment_method.attach"),
        ["v1", "payment_methods", _, "detach"] => safe("payment_method.detach"),
        ["v1", "setup_intents"] => safe("setup_intent.create"),
        ["v1", "setup_intents", _] => safe("setup_intent.update"),
        ["v1", "setup_intents", _, "confirm"] => safe("setup_intent.confirm"),
        ["v1", "setup_intents", _, "cancel"] => safe("setup_intent.cancel"),
        ["v1", "setup_intents", _, "verify_microdeposits"] => {
            safe("setup_intent.verify_microdeposits")
        }
        ["v1", "webhook_endpoints"] => safe("webhook_endpoint.create"),
        ["v1", "webhook_endpoints", _] => safe("webhook_endpoint.update"),
        ["v1", "tax_rates"] => safe("tax_rate.create"),
        ["v1", "tax_rates", _] => safe("tax_rate.update"),
        ["v1", "tokens"] => safe("token.create"),
        ["v1", "ephemeral_keys"] => safe("ephemeral_key.create"),

        _ => unknown(
            "unknown",
            format!(
                "POST {} is not a Stripe endpoint leash knows to be safe or knows how to read",
                shown(req.path)
            ),
        ),
    }
}

/// The request's parameters (query and body), refused unless the body is
/// form-encoded and unambiguous.
fn read_form(req: &RequestView<'_>) -> Result<Form, String> {
    read_form_media(req)?;
    Form::parse_parts(req.query, req.body).map_err(|e| format!("the form body is unreadable: {e}"))
}

/// Refuses a body that is not declared (or shaped) as a form.
fn read_form_media(req: &RequestView<'_>) -> Result<(), String> {
    if let Some(ct) = req.content_type {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/x-www-form-urlencoded" {
            return Err(format!(
                "the body is {}, not application/x-www-form-urlencoded; Stripe's v1 API reads form fields",
                shown(&media)
            ));
        }
    }
    let first = req.body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        return Err("the body looks like JSON; Stripe's v1 API reads form fields".to_owned());
    }
    Ok(())
}

/// A scalar field, refusing one that is only given nested (`amount[x]=1`).
fn scalar<'f>(form: &'f Form, name: &str) -> Result<Option<&'f str>, String> {
    match form.get(name) {
        Some(v) => Ok(Some(v)),
        None if form.has_children(name) => Err(format!(
            "`{name}` is given as nested fields, not as a plain value"
        )),
        None => Ok(None),
    }
}

/// The first non-empty beneficiary field. Stripe reads an empty value as
/// "unset", so an empty field is skipped.
fn beneficiary(form: &Form, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| form.get(k))
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Parses a currency field and finds Stripe's exponent for it.
fn stripe_currency(field: &str, value: &str) -> Result<(Currency, u32), String> {
    let currency = Currency::parse(value).map_err(|e| format!("`{field}`: {e}"))?;
    let exp = stripe_exponent(&currency).ok_or_else(|| {
        format!(
            "`{field}` is {currency}, for which Stripe documents no minor-unit exponent; \
             leash will not guess one"
        )
    })?;
    Ok((currency, exp))
}

/// Parses an integer count (of minor units, or a quantity).
fn integer(field: &str, value: &str) -> Result<u128, String> {
    parse_minor_digits(value).map_err(|e| match e {
        MoneyError::Empty => format!("`{field}` is empty"),
        other => format!("`{field}`: {other}"),
    })
}

fn to_money(field: &str, minor: u128, currency: Currency, exp: u32) -> Result<Money, String> {
    minor_value_to_major(minor, exp)
        .map(|amount| Money::new(amount, currency))
        .map_err(|e| format!("`{field}`: {e}"))
}

fn draft(req: &RequestView<'_>, op: Op, amount: Money, beneficiary: Option<String>) -> IntentDraft {
    IntentDraft {
        vendor: VENDOR.to_owned(),
        operation: op.name.to_owned(),
        amount: Some(amount),
        beneficiary,
        category: op.category.to_owned(),
        idempotency_key: req.idempotency_key.map(str::to_owned),
        sources: Default::default(),
    }
}

/// `amount` + `currency` operations.
fn simple_spend(
    req: &RequestView<'_>,
    op: Op,
    beneficiary_keys: &[&str],
    path_beneficiary: Option<&str>,
) -> Classification {
    match read_amount_currency(req, op) {
        Ok((money, form)) => {
            let who = path_beneficiary
                .map(str::to_owned)
                .or_else(|| beneficiary(&form, beneficiary_keys));
            Classification::spend(op.name, vec![draft(req, op, money, who)])
        }
        Err(reason) => unreadable(op, reason),
    }
}

fn read_amount_currency(req: &RequestView<'_>, op: Op) -> Result<(Money, Form), String> {
    let form = read_form(req)?;
    let money = amount_currency(&form, op)?;
    Ok((money, form))
}

fn amount_currency(form: &Form, op: Op) -> Result<Money, String> {
    let is_refund = op.name == REFUND_CREATE.name;
    let amount = scalar(form, "amount")?.ok_or_else(|| {
        if is_refund {
            "no `amount`: a refund without one refunds the whole remaining charge, \
             whose amount is not in the request"
                .to_owned()
        } else {
            "no `amount`".to_owned()
        }
    })?;
    let minor = integer("amount", amount)?;
    let currency = match scalar(form, "currency")? {
        Some(c) if !c.is_empty() => c,
        _ if is_refund => {
            return Err(
                "`amount` is given without `currency`: Stripe refunds in the \
                        charge's currency, which is not in the request, so the amount \
                        cannot be scaled"
                    .to_owned(),
            )
        }
        _ if op.name == PI_UPDATE.name => {
            return Err(
                "`amount` is changed without `currency`: the PaymentIntent's \
                        currency is not in the request, so the amount cannot be scaled"
                    .to_owned(),
            )
        }
        _ => return Err("no `currency`".to_owned()),
    };
    let (currency, exp) = stripe_currency("currency", currency)?;
    to_money("amount", minor, currency, exp)
}

/// The object a refund draws on: its currency and refundable amount are
/// that object's (Stripe refuses `currency` on a charge refund, so SDK
/// refunds carry none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefundOf<'a> {
    Charge(&'a str),
    PaymentIntent(&'a str),
}

/// A Stripe object id fit for a lookup path: letters, digits and `_`.
fn object_id(id: &str) -> Option<&str> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(id)
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

/// The path of the refund's path charge (`/v1/charges/{id}/refunds`).
fn path_charge<'a>(req: &RequestView<'a>) -> Option<&'a str> {
    match canonical_segments(req.path)?.as_slice() {
        ["v1", "charges", charge, "refunds"] | ["v1", "charges", charge, "refund"] => Some(charge),
        _ => None,
    }
}

fn charge_path(id: &str) -> String {
    format!("/v1/charges/{id}")
}

fn payment_intent_path(id: &str) -> String {
    format!("/v1/payment_intents/{id}")
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
fn refund_lookups(req: &RequestView<'_>) -> Vec<Lookup> {
    let is_refund_path = matches!(
        canonical_segments(req.path).as_deref(),
        Some(["v1", "refunds"])
            | Some(["v1", "charges", _, "refunds"])
            | Some(["v1", "charges", _, "refund"])
    );
    if req.method != "POST" || !is_refund_path {
        return Vec::new();
    }
    let Ok(form) = read_form(req) else {
        return Vec::new();
    };
    let Some(of) = refund_of(&form, path_charge(req)) else {
        return Vec::new();
    };
    if let RefundOf::PaymentIntent(id) = of {
        let path = payment_intent_path(id);
        if !req.facts.has(&path) {
            return vec![Lookup {
                path,
                why: "a refund of a PaymentIntent draws on its latest charge".into(),
            }];
        }
    }
    match refund_charge(of, req.facts) {
        Some(path) => vec![Lookup {
            path,
            why: "a refund's currency and refundable amount are its charge's".into(),
        }],
        None => Vec::new(),
    }
}

/// `POST /v1/refunds` and the legacy charge refunds: the amount and
/// currency the request gives, checked against (or completed from) the
/// charge leash looked up.
fn refund(req: &RequestView<'_>, path_charge: Option<&str>) -> Classification {
    let op = REFUND_CREATE;
    let form = match read_form(req) {
        Ok(form) => form,
        Err(reason) => return unreadable(op, reason),
    };
    let beneficiary = path_charge
        .map(str::to_owned)
        .or_else(|| beneficiary(&form, REFUND_BENEFICIARY));
    let of = refund_of(&form, path_charge);
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
        return match amount_currency(&form, op) {
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
    let source = format!("GET {}", charge_at.as_deref().unwrap_or(""));
    let looked_up = |what: &str| format!("{what} ({source})");
    let Some(charge_currency) = charge.pointer("/currency").and_then(|c| c.as_str()) else {
        return unreadable(op, format!("the charge has no `currency` ({source})"));
    };
    let (currency, exp) = match stripe_currency("currency", charge_currency) {
        Ok(c) => c,
        Err(reason) => return unreadable(op, looked_up(&reason)),
    };
    let mut sources = std::collections::BTreeMap::new();
    match scalar(&form, "currency") {
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
    let minor = match scalar(&form, "amount") {
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

/// Captures never carry a currency, so they are always unreadable; the
/// reason says which part is missing.
fn capture(req: &RequestView<'_>, op: Op, amount_field: &str, object: &str) -> Classification {
    let reason = match read_form(req) {
        Err(e) => e,
        Ok(form) if form.has_root(amount_field) => format!(
            "`{amount_field}` is given but a capture carries no `currency` (Stripe uses the \
             {object}'s), so the amount cannot be scaled"
        ),
        Ok(_) => format!(
            "a capture without `{amount_field}` captures the whole authorized amount of the \
             {object}, which is not in the request"
        ),
    };
    unreadable(op, reason)
}

fn payment_intent_update(req: &RequestView<'_>) -> Classification {
    let op = PI_UPDATE;
    let form = match read_form(req) {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    if form.has_root("amount") {
        return match amount_currency(&form, op) {
            Ok(money) => {
                let who = beneficiary(&form, PAYMENT_BENEFICIARY);
                Classification::spend(op.name, vec![draft(req, op, money, who)])
            }
            Err(e) => unreadable(op, e),
        };
    }
    match form
        .roots()
        .into_iter()
        .find(|r| !PI_UPDATE_HARMLESS.contains(r))
    {
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

/// A field name for a reason string, without the quotes `shown` adds.
fn shown_field(field: &str) -> String {
    const MAX: usize = 60;
    let cut: String = field
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    cut
}

/// Updates of money objects: `Safe` when every field is in `harmless`,
/// otherwise `Unknown` naming the first other field.
fn update(req: &RequestView<'_>, operation: &str, harmless: &[&str]) -> Classification {
    let form = match read_form(req) {
        Ok(f) => f,
        Err(e) => return unknown(operation, e),
    };
    match form.roots().into_iter().find(|r| !harmless.contains(r)) {
        None => safe(operation),
        Some(field) => unknown(
            operation,
            format!(
                "{operation} sets `{}`, which leash does not know to be harmless",
                shown_field(field)
            ),
        ),
    }
}

/// Customer writes are safe unless they set `balance`, the customer's
/// credit (negative) or debit (positive) towards future invoices.
fn customer_write(req: &RequestView<'_>, operation: &str) -> Classification {
    match read_form(req) {
        Err(e) => unknown(operation, e),
        Ok(form) if form.has_root("balance") => unknown(
            operation,
            "sets `balance`, which credits or debits the customer's future invoices".to_owned(),
        ),
        Ok(_) => safe(operation),
    }
}

/// Invoice items: `amount`, or `unit_amount` × `quantity`, or
/// `price_data[unit_amount]` × `quantity`; exactly one of them.
fn invoice_item(req: &RequestView<'_>, op: Op) -> Classification {
    let form = match read_form(req) {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    match invoice_item_amount(&form, op) {
        Ok(Some(money)) => {
            let who = beneficiary(&form, INVOICEITEM_BENEFICIARY);
            Classification::spend(op.name, vec![draft(req, op, money, who)])
        }
        Ok(None) => safe(op.name),
        Err(e) => unreadable(op, e),
    }
}

/// `Ok(None)` only for an update that changes no amount.
fn invoice_item_amount(form: &Form, op: Op) -> Result<Option<Money>, String> {
    let is_update = op.name == INVOICEITEM_UPDATE.name;
    for (field, why) in [
        (
            "unit_amount_decimal",
            "is a fractional count of minor units that Stripe rounds",
        ),
        (
            "price_data[unit_amount_decimal]",
            "is a fractional count of minor units that Stripe rounds",
        ),
        ("quantity_decimal", "is a fractional quantity"),
        (
            "price",
            "references a Price whose amount is not in the request",
        ),
        (
            "pricing",
            "references a Price whose amount is not in the request",
        ),
    ] {
        if form.has_root(field) {
            return Err(format!("`{field}` {why}"));
        }
    }
    let sources: Vec<&str> = ["amount", "unit_amount", "price_data"]
        .into_iter()
        .filter(|f| form.has_root(f))
        .collect();
    match sources.as_slice() {
        [] if is_update => {
            if let Some(field) = form
                .roots()
                .into_iter()
                .find(|r| !INVOICEITEM_UPDATE_HARMLESS.contains(r))
            {
                return Err(format!(
                    "changes `{}` of an invoice item without stating its amount",
                    shown_field(field)
                ));
            }
            Ok(None)
        }
        [] => {
            Err("no amount: needs `amount`, `unit_amount` or `price_data[unit_amount]`".to_owned())
        }
        ["amount"] => {
            if is_update {
                return Err(
                    "`amount` is changed, but an invoice item update carries no \
                            currency (Stripe keeps the item's), so the amount cannot be scaled"
                        .to_owned(),
                );
            }
            if form.has_root("quantity") {
                return Err(
                    "both `amount` and `quantity` are given; the total is ambiguous".to_owned(),
                );
            }
            amount_currency(form, op).map(Some)
        }
        ["unit_amount"] if is_update => Err(
            "`unit_amount` is changed, but an invoice item update carries no currency \
             (Stripe keeps the item's), so the amount cannot be scaled"
                .to_owned(),
        ),
        ["unit_amount"] => unit_times_quantity(form, "unit_amount", "currency", false).map(Some),
        ["price_data"] => {
            // An update that omits `quantity` keeps the item's current one,
            // which is not in the request.
            let money = unit_times_quantity(
                form,
                "price_data[unit_amount]",
                "price_data[currency]",
                is_update,
            )?;
            if let Some(top) = scalar(form, "currency")? {
                let (top, _) = stripe_currency("currency", top)?;
                if top != money.currency {
                    return Err(format!(
                        "`currency` ({top}) differs from `price_data[currency]` ({})",
                        money.currency
                    ));
                }
            }
            Ok(Some(money))
        }
        several => Err(format!(
            "several amount sources are given ({}); the amount is ambiguous",
            several.join(", ")
        )),
    }
}

/// `unit × quantity` in minor units, scaled once, exactly. A missing
/// quantity is 1 on create (Stripe's default for invoice items) and
/// unreadable when `quantity_required` (an update keeps the old quantity).
fn unit_times_quantity(
    form: &Form,
    unit_field: &str,
    currency_field: &str,
    quantity_required: bool,
) -> Result<Money, String> {
    let unit = scalar(form, unit_field)?.ok_or_else(|| format!("no `{unit_field}`"))?;
    let unit = integer(unit_field, unit)?;
    let quantity = match scalar(form, "quantity")? {
        Some(q) => integer("quantity", q)?,
        None if quantity_required => {
            return Err(format!(
                "`{unit_field}` is changed without `quantity`; the item keeps its current \
                 quantity, which is not in the request"
            ))
        }
        None => 1,
    };
    let currency = scalar(form, currency_field)?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("no `{currency_field}`"))?;
    let (currency, exp) = stripe_currency(currency_field, currency)?;
    let total = unit
        .checked_mul(quantity)
        .ok_or_else(|| format!("`{unit_field}` × `quantity` is too large to represent"))?;
    to_money(unit_field, total, currency, exp)
}

/// Fields of one checkout line item that leash understands, by their path
/// after `line_items[i]`. `[price_data][product_data]...`, `[metadata]...`,
/// `[tax_rates]...` and `[dynamic_tax_rates]...` are allowed as prefixes.
const LINE_ITEM_FIELDS: &[&str] = &[
    "[quantity]",
    "[price_data][currency]",
    "[price_data][unit_amount]",
    "[price_data][product]",
    "[price_data][tax_behavior]",
    "[adjustable_quantity][enabled]",
    "[adjustable_quantity][minimum]",
    "[adjustable_quantity][maximum]",
];
const LINE_ITEM_PREFIXES: &[&str] = &[
    "[price_data][product_data][",
    "[metadata][",
    "[tax_rates][",
    "[dynamic_tax_rates][",
];

fn checkout_session_create(req: &RequestView<'_>) -> Classification {
    let op = CHECKOUT_CREATE;
    let form = match read_form(req) {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    let mode = match scalar(&form, "mode") {
        Ok(m) => m,
        Err(e) => return unreadable(op, e),
    };
    match mode {
        Some("payment") => {}
        Some("setup") if !form.has_root("line_items") && !form.has_root("optional_items") => {
            // Setup mode saves a payment method and charges nothing.
            return safe(op.name);
        }
        Some("setup") => {
            return unreadable(
                op,
                "`mode=setup` with line items is contradictory".to_owned(),
            )
        }
        Some("subscription") => {
            return unreadable(
                op,
                "`mode=subscription` commits recurring charges; leash reads one-off amounts only"
                    .to_owned(),
            )
        }
        Some(other) => {
            return unreadable(
                op,
                format!("`mode` is {}, not payment or setup", shown(other)),
            )
        }
        None => return unreadable(op, "no `mode`".to_owned()),
    }
    match checkout_total(&form) {
        Ok(money) => {
            let who = beneficiary(&form, CHECKOUT_BENEFICIARY);
            Classification::spend(op.name, vec![draft(req, op, money, who)])
        }
        Err(e) => unreadable(op, e),
    }
}

fn checkout_total(form: &Form) -> Result<Money, String> {
    for (field, why) in [
        (
            "optional_items",
            "lets the customer add items, so the total is not fixed",
        ),
        (
            "shipping_options",
            "adds the shipping rate the customer picks, which leash cannot know",
        ),
    ] {
        if form.has_root(field) {
            return Err(format!("`{field}` {why}"));
        }
    }
    if form.get("line_items").is_some() {
        return Err("`line_items` is given as a plain value, not as a list".to_owned());
    }
    // Group `line_items[i]...` fields by index.
    let mut items: std::collections::BTreeMap<u32, Vec<(&str, &str)>> = Default::default();
    for (name, value) in form.with_prefix("line_items[") {
        let rest = name.get("line_items[".len()..).unwrap_or("");
        let close = rest.find(']').unwrap_or(rest.len());
        let index = rest.get(..close).unwrap_or("");
        let sub = rest.get(close + 1..).unwrap_or("");
        let i = line_item_index(index)?;
        items.entry(i).or_default().push((sub, value));
    }
    if items.is_empty() {
        return Err("no `line_items`".to_owned());
    }
    let mut total: u128 = 0;
    let mut session_currency: Option<(Currency, u32)> = None;
    for (i, fields) in &items {
        let field = |sub: &str| fields.iter().find(|(s, _)| *s == sub).map(|(_, v)| *v);
        for (sub, value) in fields {
            let known = LINE_ITEM_FIELDS.contains(sub)
                || LINE_ITEM_PREFIXES.iter().any(|p| sub.starts_with(p));
            if *sub == "[price]" {
                return Err(format!(
                    "`line_items[{i}][price]` references a Price whose amount is not in the request"
                ));
            }
            if *sub == "[price_data][unit_amount_decimal]" {
                return Err(format!(
                    "`line_items[{i}][price_data][unit_amount_decimal]` is a fractional count \
                     of minor units that Stripe rounds"
                ));
            }
            if sub.starts_with("[price_data][recurring]") {
                return Err(format!(
                    "`line_items[{i}]` has a recurring price; leash reads one-off amounts only"
                ));
            }
            if *sub == "[adjustable_quantity][enabled]" && *value != "false" {
                return Err(format!(
                    "`line_items[{i}][adjustable_quantity]` lets the customer change the \
                     quantity, so the total is not fixed"
                ));
            }
            if !known {
                return Err(format!(
                    "`line_items[{i}]{}` is not a line-item field leash understands",
                    shown_field(sub)
                ));
            }
        }
        let unit_field = format!("line_items[{i}][price_data][unit_amount]");
        let unit =
            field("[price_data][unit_amount]").ok_or_else(|| format!("no `{unit_field}`"))?;
        let unit = integer(&unit_field, unit)?;
        let qty_field = format!("line_items[{i}][quantity]");
        let quantity = field("[quantity]").ok_or_else(|| format!("no `{qty_field}`"))?;
        let quantity = integer(&qty_field, quantity)?;
        let cur_field = format!("line_items[{i}][price_data][currency]");
        let currency = field("[price_data][currency]")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("no `{cur_field}`"))?;
        let (currency, exp) = stripe_currency(&cur_field, currency)?;
        match session_currency {
            None => session_currency = Some((currency, exp)),
            Some((c, _)) if c != currency => {
                return Err(format!(
                    "line items mix currencies ({c} and {currency}); a session has one"
                ))
            }
            Some(_) => {}
        }
        total = unit
            .checked_mul(quantity)
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| "the line items' total is too large to represent".to_owned())?;
    }
    let (currency, exp) = session_currency.ok_or_else(|| "no `line_items`".to_owned())?;
    if let Some(top) = scalar(form, "currency")? {
        let (top, _) = stripe_currency("currency", top)?;
        if top != currency {
            return Err(format!(
                "`currency` ({top}) differs from the line items' currency ({currency})"
            ));
        }
    }
    to_money("line_items", total, currency, exp)
}

/// A line-item index: a plain decimal without leading zeros, so that
/// `[0]` and `[00]` cannot be two spellings of one item.
fn line_item_index(index: &str) -> Result<u32, String> {
    let bad = || format!("line item index {} is not a plain number", shown(index));
    let n = parse_minor_digits(index).map_err(|_| bad())?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n < 10_000)
        .ok_or_else(bad)
}

fn checkout_session_update(req: &RequestView<'_>) -> Classification {
    let op = CHECKOUT_UPDATE;
    let form = match read_form(req) {
        Ok(f) => f,
        Err(e) => return unknown(op.name, e),
    };
    for field in ["line_items", "shipping_options", "optional_items"] {
        if form.has_root(field) {
            return unreadable(
                op,
                format!(
                    "changes `{field}` of an existing session, whose other items are not in \
                     the request"
                ),
            );
        }
    }
    match form
        .roots()
        .into_iter()
        .find(|r| !["expand", "metadata"].contains(r))
    {
        None => safe(op.name),
        Some(field) => unknown(
            op.name,
            format!(
                "checkout_session.update sets `{}`, which leash does not know to be harmless",
                shown_field(field)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::NO_FACTS;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn view<'a>(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        body: &'a [u8],
    ) -> RequestView<'a> {
        RequestView {
            method,
            host: "api.stripe.com",
            path,
            query,
            content_type: FORM,
            idempotency_key: Some("idem-1"),
            account: None,
            body,
            facts: &NO_FACTS,
        }
    }

    fn post(path: &str, body: &str) -> Classification {
        classify(&view("POST", path, None, body.as_bytes()))
    }

    fn one(c: &Classification) -> &IntentDraft {
        match c {
            Classification::Spend(d) if d.len() == 1 => &d[0],
            other => panic!("expected one spend intent, got {other:?}"),
        }
    }

    fn amount(c: &Classification) -> String {
        one(c).amount.as_ref().unwrap().to_string()
    }

    fn reason(c: &Classification) -> &str {
        match c {
            Classification::Unreadable { reason, .. }
            | Classification::Unknown { reason, .. }
            | Classification::Ambiguous { reason, .. } => reason,
            other => panic!("expected unreadable/unknown/ambiguous, got {other:?}"),
        }
    }

    fn assert_ambiguous(c: &Classification, needle: &str) {
        assert_eq!(c.kind(), "ambiguous", "{c:?}");
        assert!(
            reason(c).contains(needle),
            "{needle:?} not in {:?}",
            reason(c)
        );
    }

    fn assert_unreadable(c: &Classification, needle: &str) {
        assert_eq!(c.kind(), "unreadable", "{c:?}");
        assert!(
            reason(c).contains(needle),
            "{needle:?} not in {:?}",
            reason(c)
        );
    }

    #[test]
    fn reads_are_safe_whatever_the_path() {
        for m in ["GET", "HEAD", "OPTIONS"] {
            for p in ["/v1/charges", "/v1/refunds", "/nonsense/..%2F", ""] {
                let c = classify(&view(m, p, Some("amount=5"), b"amount=1&amount=2"));
                assert_eq!(c, safe("read"), "{m} {p}");
            }
        }
    }

    #[test]
    fn methods_are_case_sensitive() {
        for m in ["get", "post", "Post", "PUT", "PATCH", "CONNECT", ""] {
            let c = classify(&view(m, "/v1/customers", None, b""));
            assert_eq!(c.kind(), "unknown", "{m}");
        }
    }

    #[test]
    fn payment_intent_eur() {
        let c = post(
            "/v1/payment_intents",
            "amount=12345&currency=eur&customer=cus_1&metadata[order]=A-42",
        );
        let d = one(&c);
        assert_eq!(amount(&c), "123.45 EUR");
        assert_eq!(d.amount.unwrap().amount, Decimal::new(12345, 2));
        assert_eq!(d.operation, "payment_intent.create");
        assert_eq!(d.category, "payment");
        assert_eq!(d.vendor, "stripe");
        assert_eq!(d.beneficiary.as_deref(), Some("cus_1"));
        assert_eq!(d.idempotency_key.as_deref(), Some("idem-1"));
    }

    #[test]
    fn destination_beats_customer() {
        let c = post(
            "/v1/payment_intents",
            "amount=100&currency=usd&customer=cus_1&transfer_data%5Bdestination%5D=acct_9&on_behalf_of=acct_8",
        );
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_9"));
        let c = post(
            "/v1/payment_intents",
            "amount=100&currency=usd&customer=cus_1&on_behalf_of=acct_8",
        );
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_8"));
        let c = post(
            "/v1/payment_intents",
            "amount=100&currency=usd&customer=&on_behalf_of=",
        );
        assert_eq!(one(&c).beneficiary, None);
    }

    #[test]
    fn zero_decimal_jpy() {
        let c = post("/v1/payment_intents", "amount=1500&currency=jpy");
        assert_eq!(amount(&c), "1500 JPY");
        assert_eq!(one(&c).amount.unwrap().amount, Decimal::from(1500));
    }

    #[test]
    fn three_decimal_kwd() {
        let c = post("/v1/charges", "amount=1250&currency=kwd&customer=cus_1");
        assert_eq!(amount(&c), "1.250 KWD");
        assert_eq!(one(&c).operation, "charge.create");
    }

    #[test]
    fn stripe_exponents_differ_from_iso_where_documented() {
        for (cur, minor, want) in [
            ("isk", "500", "5.00 ISK"),
            ("ugx", "500", "5.00 UGX"),
            ("huf", "1000", "10.00 HUF"),
            ("twd", "80000", "800.00 TWD"),
            // Stripe: zero-decimal. Display pads to the ISO exponent (2).
            ("mga", "500", "500.00 MGA"),
            ("krw", "500", "500 KRW"),
            ("xof", "500", "500 XOF"),
            ("bhd", "5120", "5.120 BHD"),
            ("omr", "10", "0.010 OMR"),
            ("USD", "1", "0.01 USD"),
        ] {
            let c = post("/v1/charges", &format!("amount={minor}&currency={cur}"));
            assert_eq!(amount(&c), want, "{cur}");
        }
        for cur in ["iqd", "lyd", "clf", "uyw", "uyi"] {
            let c = post("/v1/charges", &format!("amount=100&currency={cur}"));
            assert_unreadable(&c, "no minor-unit exponent");
        }
    }

    #[test]
    fn refunds() {
        let c = post("/v1/refunds", "charge=ch_1");
        assert_unreadable(&c, "whole remaining charge");
        assert_eq!(c.operation(), "refund.create");
        let c = post("/v1/refunds", "charge=ch_1&amount=500");
        assert_unreadable(&c, "without `currency`");
        assert!(reason(&c).contains("charge's currency"));
        let c = post("/v1/refunds", "payment_intent=pi_1&amount=500&currency=gbp");
        assert_eq!(amount(&c), "5.00 GBP");
        assert_eq!(one(&c).category, "refund");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("pi_1"));
        let c = post(
            "/v1/refunds",
            "charge=ch_1&payment_intent=pi_1&amount=500&currency=gbp",
        );
        assert_eq!(one(&c).beneficiary.as_deref(), Some("ch_1"));
    }

    /// What stripe-python's `stripe.Refund.create(...)` sends, classified
    /// with `facts` (the looked-up objects by path).
    fn refund_with(path: &str, body: &str, facts: &[(&str, &str)]) -> Classification {
        let mut known = Facts::default();
        for (at, json) in facts {
            let got = match json.strip_prefix('!') {
                Some(failure) => Err(failure.to_string()),
                None => Ok(crate::adapters::json::parse(json.as_bytes()).unwrap()),
            };
            known.insert(at.to_string(), got);
        }
        let mut v = view("POST", path, None, body.as_bytes());
        v.facts = &known;
        // Borrow of `known` ends here.
        classify(&v)
    }

    fn lookups_of(path: &str, body: &str, facts: &[(&str, &str)]) -> Vec<String> {
        let mut known = Facts::default();
        for (at, json) in facts {
            known.insert(
                at.to_string(),
                Ok(crate::adapters::json::parse(json.as_bytes()).unwrap()),
            );
        }
        let mut v = view("POST", path, None, body.as_bytes());
        v.facts = &known;
        StripeAdapter
            .lookups(&v)
            .into_iter()
            .map(|l| l.path)
            .collect()
    }

    const CHARGE: &str =
        r#"{"id":"ch_1","object":"charge","amount":10000,"amount_refunded":2500,"currency":"eur"}"#;

    #[test]
    fn a_refund_takes_its_charges_currency_and_remaining_amount() {
        // What to look up.
        assert_eq!(
            lookups_of("/v1/refunds", "charge=ch_1&amount=5000", &[]),
            ["/v1/charges/ch_1"]
        );
        assert_eq!(
            lookups_of("/v1/charges/ch_7/refunds", "", &[]),
            ["/v1/charges/ch_7"]
        );
        assert_eq!(
            lookups_of("/v1/refunds", "payment_intent=pi_1", &[]),
            ["/v1/payment_intents/pi_1"]
        );
        assert_eq!(
            lookups_of(
                "/v1/refunds",
                "payment_intent=pi_1",
                &[("/v1/payment_intents/pi_1", r#"{"latest_charge":"ch_9"}"#)]
            ),
            ["/v1/charges/ch_9"]
        );
        // Nothing for other requests, or ids that are no Stripe ids.
        assert!(lookups_of("/v1/payouts", "amount=1&currency=eur", &[]).is_empty());
        assert!(lookups_of("/v1/refunds", "charge=..%2Fpayouts", &[]).is_empty());
        assert!(lookups_of("/v1/refunds", "customer=cus_1&amount=5", &[]).is_empty());

        // stripe.Refund.create(charge="ch_1", amount=5000): EUR from the charge.
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1&amount=5000",
            &[("/v1/charges/ch_1", CHARGE)],
        );
        assert_eq!(amount(&c), "50.00 EUR");
        assert_eq!(one(&c).sources["currency"], "eur (GET /v1/charges/ch_1)");
        assert!(!one(&c).sources.contains_key("amount"));
        // A full refund: 100.00 - 25.00 already refunded.
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1",
            &[("/v1/charges/ch_1", CHARGE)],
        );
        assert_eq!(amount(&c), "75.00 EUR");
        assert!(
            one(&c).sources["amount"].contains("7500 minor units left"),
            "{:?}",
            one(&c).sources
        );
        // Through a PaymentIntent's latest charge.
        let c = refund_with(
            "/v1/refunds",
            "payment_intent=pi_1",
            &[
                ("/v1/payment_intents/pi_1", r#"{"latest_charge":"ch_1"}"#),
                ("/v1/charges/ch_1", CHARGE),
            ],
        );
        assert_eq!(amount(&c), "75.00 EUR");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("pi_1"));
        // Zero-decimal and three-decimal charges scale by Stripe's table.
        let jpy = r#"{"amount":5000,"amount_refunded":0,"currency":"jpy"}"#;
        let c = refund_with(
            "/v1/charges/ch_2/refunds",
            "amount=1200",
            &[("/v1/charges/ch_2", jpy)],
        );
        assert_eq!(amount(&c), "1200 JPY");
        let kwd = r#"{"amount":5000,"amount_refunded":0,"currency":"kwd"}"#;
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_3&amount=1250",
            &[("/v1/charges/ch_3", kwd)],
        );
        assert_eq!(amount(&c), "1.250 KWD");
        // A currency that matches is fine; one that differs reads two ways.
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1&amount=500&currency=EUR",
            &[("/v1/charges/ch_1", CHARGE)],
        );
        assert_eq!(amount(&c), "5.00 EUR");
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1&amount=500&currency=usd",
            &[("/v1/charges/ch_1", CHARGE)],
        );
        assert!(matches!(c, Classification::Ambiguous { .. }), "{c:?}");
        assert!(reason(&c).contains("EUR"), "{}", reason(&c));
    }

    #[test]
    fn a_refund_whose_lookup_failed_is_unreadable_unless_it_says_everything() {
        let failed = [(
            "/v1/charges/ch_1",
            "!the lookup GET /v1/charges/ch_1 failed: stripe answered 404 Not Found",
        )];
        let c = refund_with("/v1/refunds", "charge=ch_1&amount=5000", &failed);
        assert_unreadable(&c, "without `currency`");
        assert!(reason(&c).contains("404"), "{}", reason(&c));
        let c = refund_with("/v1/refunds", "charge=ch_1", &failed);
        assert_unreadable(&c, "whole remaining charge");
        // Everything in the request: decided on it.
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1&amount=500&currency=gbp",
            &failed,
        );
        assert_eq!(amount(&c), "5.00 GBP");
        // A charge without the fields is unreadable, never guessed.
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1",
            &[("/v1/charges/ch_1", r#"{"currency":"eur","amount":"x"}"#)],
        );
        assert_unreadable(&c, "amount_refunded");
        let c = refund_with(
            "/v1/refunds",
            "charge=ch_1&amount=5",
            &[("/v1/charges/ch_1", r#"{"amount":1}"#)],
        );
        assert_unreadable(&c, "no `currency`");
    }

    #[test]
    fn legacy_charge_refunds() {
        let c = post("/v1/charges/ch_7/refunds", "amount=250&currency=eur");
        assert_eq!(amount(&c), "2.50 EUR");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("ch_7"));
        assert_eq!(one(&c).operation, "refund.create");
        assert_unreadable(&post("/v1/charges/ch_7/refunds", ""), "refund");
        assert_unreadable(&post("/v1/charges/ch_7/refund", "amount=5"), "currency");
    }

    #[test]
    fn transfers_payouts_topups() {
        let c = post(
            "/v1/transfers",
            "amount=1000&currency=eur&destination=acct_1&transfer_group=ORDER_1",
        );
        assert_eq!(amount(&c), "10.00 EUR");
        assert_eq!(one(&c).category, "transfer");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_1"));
        let c = post("/v1/payouts", "amount=1000&currency=huf");
        assert_eq!(amount(&c), "10.00 HUF");
        assert_eq!(one(&c).category, "payout");
        assert_eq!(one(&c).beneficiary, None);
        let c = post("/v1/topups", "amount=2000&currency=usd&source=src_1");
        assert_eq!(one(&c).operation, "topup.create");
        assert_eq!(one(&c).category, "topup");
        assert_eq!(one(&c).beneficiary, None);
    }

    #[test]
    fn charge_legacy_destination() {
        let c = post(
            "/v1/charges",
            "amount=100&currency=usd&destination[account]=acct_5&customer=cus_1",
        );
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_5"));
        let c = post("/v1/charges", "amount=100&currency=usd&destination=acct_6");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_6"));
    }

    #[test]
    fn bad_amounts_are_unreadable() {
        for (amt, needle) in [
            ("-100", "digits"),
            ("12.50", "digits"),
            ("1e5", "digits"),
            ("+100", "digits"),
            ("%20100", "digits"),
            ("100%20", "digits"),
            ("0x10", "digits"),
            ("0100", "leading zero"),
            ("", "empty"),
            ("99999999999999999999999999999999999999999", "too large"),
        ] {
            let c = post("/v1/payment_intents", &format!("amount={amt}&currency=usd"));
            assert_unreadable(&c, needle);
            assert!(reason(&c).contains("`amount`"), "{:?}", reason(&c));
        }
    }

    #[test]
    fn currency_problems_are_unreadable() {
        assert_unreadable(&post("/v1/payment_intents", "amount=100"), "no `currency`");
        assert_unreadable(
            &post("/v1/payment_intents", "amount=100&currency="),
            "no `currency`",
        );
        for cur in ["xyz", "euro", "e", "%20eur", "btc", "usdc", "xau"] {
            let c = post("/v1/payment_intents", &format!("amount=100&currency={cur}"));
            assert_unreadable(&c, "`currency`");
        }
        assert_unreadable(&post("/v1/payment_intents", "currency=usd"), "no `amount`");
        assert_unreadable(
            &post("/v1/payment_intents", "amount[value]=100&currency=usd"),
            "nested",
        );
    }

    #[test]
    fn duplicates_are_ambiguous() {
        let c = post("/v1/payment_intents", "amount=1&amount=99999&currency=usd");
        assert_ambiguous(&c, "more than once");
        assert_eq!(c.operation(), "payment_intent.create");
        let c = post("/v1/payment_intents", "amount=1&currency=usd&currency=jpy");
        assert_ambiguous(&c, "more than once");
        let c = post(
            "/v1/transfers",
            "amount=1&currency=usd&destination=acct_1&destination=acct_2",
        );
        assert_ambiguous(&c, "more than once");
        let c = classify(&view(
            "POST",
            "/v1/payment_intents",
            Some("amount=99999"),
            b"amount=1&currency=usd",
        ));
        assert_ambiguous(&c, "more than once");
        // Even on a write leash knows to be harmless: Stripe may read it as
        // another one.
        let c = post("/v1/products", "name=a&name=b");
        assert_ambiguous(&c, "more than once");
        assert_eq!(c.operation(), "product.create");
        // A body Stripe does not read as a form is not looked at as one.
        let mut v = view("POST", "/v1/products", None, b"name=a&name=b");
        v.content_type = Some("application/json");
        assert_eq!(classify(&v).kind(), "safe");
        // Query parameters alone are read too.
        let c = classify(&view(
            "POST",
            "/v1/payment_intents",
            Some("amount=700&currency=eur"),
            b"",
        ));
        assert_eq!(amount(&c), "7.00 EUR");
    }

    #[test]
    fn spelling_tricks_are_ambiguous_and_bad_escapes_unreadable() {
        for body in [
            "amount=1&currency=usd&[amount]=99999",
            "amount=1&currency=usd&amount]=99999",
            "amount=1&currency=usd;amount=99999",
            "amount=1&currency=usd&amount[]=99999",
        ] {
            let c = post("/v1/payment_intents", body);
            assert_eq!(c.kind(), "ambiguous", "{body}");
        }
        let c = post("/v1/payment_intents", "amount=1&currency=usd&a=%ZZ");
        assert_unreadable(&c, "percent-escape");
        let c = classify(&view(
            "POST",
            "/v1/payment_intents",
            None,
            b"amount=1&currency=usd&description=\xff",
        ));
        assert_unreadable(&c, "UTF-8");
    }

    #[test]
    fn json_and_other_bodies_are_unreadable_on_spend_paths() {
        let json = br#"{"amount":100,"currency":"usd"}"#;
        let mut v = view("POST", "/v1/payment_intents", None, json);
        v.content_type = Some("application/json");
        assert_unreadable(&classify(&v), "application/json");
        v.content_type = None;
        assert_unreadable(&classify(&v), "JSON");
        v.content_type = Some("multipart/form-data; boundary=x");
        assert_eq!(classify(&v).kind(), "unreadable");
        let mut v = view(
            "POST",
            "/v1/payment_intents",
            None,
            b"amount=100&currency=usd",
        );
        v.content_type = Some("Application/X-WWW-Form-Urlencoded; charset=utf-8");
        assert_eq!(amount(&classify(&v)), "1.00 USD");
        v.content_type = None;
        assert_eq!(amount(&classify(&v)), "1.00 USD");
    }

    #[test]
    fn payment_intent_updates() {
        let p = "/v1/payment_intents/pi_1";
        assert_eq!(
            post(p, "metadata[order]=42&description=x"),
            safe("payment_intent.update")
        );
        assert_eq!(post(p, ""), safe("payment_intent.update"));
        let c = post(p, "amount=5000&currency=eur&metadata[order]=42");
        assert_eq!(amount(&c), "50.00 EUR");
        assert_eq!(one(&c).operation, "payment_intent.update");
        assert_unreadable(&post(p, "amount=5000"), "PaymentIntent's currency");
        assert_unreadable(&post(p, "currency=jpy"), "`currency`");
        assert_unreadable(
            &post(p, "transfer_data[destination]=acct_2"),
            "`transfer_data`",
        );
        assert_unreadable(
            &post(p, "application_fee_amount=1"),
            "application_fee_amount",
        );
        // A raw ';' in the query cannot smuggle an amount past the allowlist.
        let c = classify(&view("POST", p, Some("metadata[a]=1;amount=99999"), b""));
        assert_ambiguous(&c, "';'");
    }

    #[test]
    fn confirm_and_capture_are_unreadable() {
        assert_unreadable(&post("/v1/payment_intents/pi_1/confirm", ""), "confirm");
        assert_unreadable(
            &post("/v1/payment_intents/pi_1/capture", "amount_to_capture=500"),
            "no `currency`",
        );
        assert_unreadable(
            &post("/v1/payment_intents/pi_1/capture", ""),
            "whole authorized amount",
        );
        assert_unreadable(
            &post("/v1/charges/ch_1/capture", "amount=500"),
            "no `currency`",
        );
        assert_unreadable(&post("/v1/charges/ch_1/capture", ""), "whole authorized");
        assert_unreadable(
            &post(
                "/v1/payment_intents/pi_1/increment_authorization",
                "amount=900",
            ),
            "currency",
        );
        assert_eq!(
            post("/v1/payment_intents/pi_1/capture", "").operation(),
            "payment_intent.capture"
        );
    }

    #[test]
    fn invoice_items() {
        let c = post(
            "/v1/invoiceitems",
            "customer=cus_1&amount=2500&currency=usd&description=Setup",
        );
        assert_eq!(amount(&c), "25.00 USD");
        assert_eq!(one(&c).category, "invoice");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_1"));
        let c = post(
            "/v1/invoiceitems",
            "customer=cus_1&unit_amount=1250&quantity=3&currency=jpy",
        );
        assert_eq!(amount(&c), "3750 JPY");
        let c = post(
            "/v1/invoiceitems",
            "customer=cus_1&unit_amount=1250&currency=eur",
        );
        assert_eq!(amount(&c), "12.50 EUR");
        let c = post(
            "/v1/invoiceitems",
            "customer=cus_1&price_data[unit_amount]=333&price_data[currency]=kwd&price_data[product]=prod_1&quantity=3",
        );
        assert_eq!(amount(&c), "0.999 KWD");
        assert_unreadable(
            &post("/v1/invoiceitems", "customer=cus_1&price=price_1"),
            "Price",
        );
        assert_unreadable(
            &post("/v1/invoiceitems", "customer=cus_1&pricing[price]=price_1"),
            "Price",
        );
        assert_unreadable(
            &post(
                "/v1/invoiceitems",
                "customer=cus_1&amount=-500&currency=usd",
            ),
            "digits",
        );
        assert_unreadable(
            &post(
                "/v1/invoiceitems",
                "customer=cus_1&unit_amount_decimal=1.5&currency=usd",
            ),
            "fractional",
        );
        assert_unreadable(&post("/v1/invoiceitems", "customer=cus_1"), "no amount");
        assert_unreadable(
            &post(
                "/v1/invoiceitems",
                "customer=cus_1&amount=1&unit_amount=2&currency=usd",
            ),
            "several amount sources",
        );
        assert_unreadable(
            &post(
                "/v1/invoiceitems",
                "customer=cus_1&amount=100&quantity=2&currency=usd",
            ),
            "quantity",
        );
        assert_unreadable(
            &post(
                "/v1/invoiceitems",
                "customer=cus_1&price_data[unit_amount]=1&price_data[currency]=eur&currency=usd",
            ),
            "differs",
        );
        assert_unreadable(
            &post(
                "/v1/invoiceitems",
                "customer=cus_1&unit_amount=79228162514264337593543950335&quantity=2&currency=usd",
            ),
            "too large",
        );
        // Updates.
        let p = "/v1/invoiceitems/ii_1";
        assert_eq!(
            post(p, "metadata[x]=1&description=y"),
            safe("invoiceitem.update")
        );
        assert_unreadable(&post(p, "amount=100"), "currency");
        assert_unreadable(&post(p, "amount=100&currency=usd"), "carries no currency");
        assert_unreadable(
            &post(p, "unit_amount=100&quantity=1"),
            "carries no currency",
        );
        assert_unreadable(&post(p, "quantity=5"), "`quantity`");
        assert_unreadable(
            &post(p, "price_data[unit_amount]=100&price_data[currency]=eur"),
            "current quantity",
        );
        let c = post(
            p,
            "price_data[unit_amount]=100&price_data[currency]=eur&quantity=2",
        );
        assert_eq!(amount(&c), "2.00 EUR");
        assert_eq!(one(&c).operation, "invoiceitem.update");
    }

    const CHECKOUT: &str = "/v1/checkout/sessions";

    #[test]
    fn checkout_session_sums_line_items() {
        let body = "mode=payment&success_url=https%3A%2F%2Fexample.com%2Fok\
            &line_items[0][price_data][currency]=eur\
            &line_items[0][price_data][unit_amount]=500\
            &line_items[0][price_data][product_data][name]=T-shirt\
            &line_items[0][quantity]=2\
            &line_items[1][price_data][currency]=eur\
            &line_items[1][price_data][unit_amount]=1250\
            &line_items[1][quantity]=1\
            &line_items[1][tax_rates][0]=txr_1\
            &customer=cus_1&metadata[cart]=9";
        let c = post(CHECKOUT, body);
        assert_eq!(amount(&c), "22.50 EUR");
        let d = one(&c);
        assert_eq!(d.operation, "checkout_session.create");
        assert_eq!(d.category, "payment");
        assert_eq!(d.beneficiary.as_deref(), Some("cus_1"));
        let c = post(
            CHECKOUT,
            "mode=payment&line_items[0][price_data][currency]=jpy&line_items[0][price_data][unit_amount]=700&line_items[0][quantity]=3&payment_intent_data[transfer_data][destination]=acct_3&customer=cus_1&currency=jpy",
        );
        assert_eq!(amount(&c), "2100 JPY");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_3"));
    }

    #[test]
    fn checkout_session_refusals() {
        let item = |i: usize, cur: &str, unit: &str, qty: &str| {
            format!(
                "&line_items[{i}][price_data][currency]={cur}&line_items[{i}][price_data][unit_amount]={unit}&line_items[{i}][quantity]={qty}"
            )
        };
        let ok = item(0, "usd", "100", "1");
        let cases = [
            ("mode=payment&line_items[0][price]=price_1&line_items[0][quantity]=1".to_owned(), "Price"),
            (format!("mode=payment{ok}{}", item(1, "eur", "100", "1")), "mix currencies"),
            (format!("mode=payment{ok}&line_items[0][adjustable_quantity][enabled]=true"), "adjustable_quantity"),
            (format!("mode=payment{ok}&shipping_options[0][shipping_rate]=shr_1"), "shipping_options"),
            (format!("mode=payment{ok}&optional_items[0][price]=price_1"), "optional_items"),
            (format!("mode=payment{ok}&line_items[0][price_data][recurring][interval]=month"), "recurring"),
            (format!("mode=payment{ok}&line_items[0][price_data][unit_amount_decimal]=1.5"), "fractional"),
            (format!("mode=payment{ok}&line_items[0][frobnicate]=1"), "not a line-item field"),
            (format!("mode=subscription{ok}"), "subscription"),
            (ok.clone(), "no `mode`"),
            (format!("mode=bogus{ok}"), "`mode`"),
            ("mode=payment".to_owned(), "no `line_items`"),
            ("mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100".to_owned(), "quantity"),
            ("mode=payment&line_items[0][price_data][currency]=usd&line_items[0][quantity]=1".to_owned(), "unit_amount"),
            ("mode=payment&line_items[0][price_data][unit_amount]=1&line_items[0][quantity]=1".to_owned(), "currency"),
            (format!("mode=payment{}", item(0, "usd", "-1", "1")), "digits"),
            (format!("mode=payment{}", item(0, "usd", "1", "1.5")), "quantity"),
            (format!("mode=payment{}", item(0, "zzz", "1", "1")), "ISO 4217"),
            (format!("mode=payment&line_items[00][quantity]=1{}", item(0, "usd", "1", "1").replace("[quantity]", "[x]")), "not a plain number"),
            (format!("mode=payment{ok}&currency=eur"), "differs"),
            (format!("mode=payment{ok}&line_items=x"), "both as a value"),
            (format!("mode=payment{ok}{ok}"), "more than once"),
        ];
        for (body, needle) in cases {
            let c = post(CHECKOUT, &body);
            if needle == "both as a value" || needle == "more than once" {
                assert_ambiguous(&c, needle);
            } else {
                assert_unreadable(&c, needle);
            }
            assert_eq!(c.operation(), "checkout_session.create", "{body}");
        }
        // adjustable_quantity explicitly disabled is fine.
        let c = post(
            CHECKOUT,
            &format!("mode=payment{ok}&line_items[0][adjustable_quantity][enabled]=false"),
        );
        assert_eq!(amount(&c), "1.00 USD");
        // Setup mode charges nothing.
        assert_eq!(
            post(CHECKOUT, "mode=setup&currency=eur&customer=cus_1"),
            safe("checkout_session.create")
        );
        assert_unreadable(&post(CHECKOUT, &format!("mode=setup{ok}")), "setup");
    }

    #[test]
    fn checkout_session_updates() {
        let p = "/v1/checkout/sessions/cs_1";
        assert_eq!(post(p, "metadata[a]=1"), safe("checkout_session.update"));
        assert_unreadable(&post(p, "line_items[0][quantity]=9"), "line_items");
        assert_eq!(post(p, "collected_information[x]=1").kind(), "unknown");
        assert_eq!(
            post("/v1/checkout/sessions/cs_1/expire", ""),
            safe("checkout_session.expire")
        );
    }

    #[test]
    fn safe_writes() {
        for (path, op) in [
            ("/v1/customers", "customer.create"),
            ("/v1/customers/cus_1", "customer.update"),
            ("/v1/products", "product.create"),
            ("/v1/prices", "price.create"),
            ("/v1/payment_methods/pm_1/attach", "payment_method.attach"),
            ("/v1/payment_methods/pm_1/detach", "payment_method.detach"),
            ("/v1/setup_intents", "setup_intent.create"),
            ("/v1/setup_intents/seti_1/confirm", "setup_intent.confirm"),
            ("/v1/payment_intents/pi_1/cancel", "payment_intent.cancel"),
            ("/v1/webhook_endpoints", "webhook_endpoint.create"),
        ] {
            assert_eq!(
                post(path, "email=a%40b.example&metadata[x]=1"),
                safe(op),
                "{path}"
            );
        }
        let c = post("/v1/customers", "email=a%40b.example&balance=-50000");
        assert_eq!(c.kind(), "unknown");
        assert!(reason(&c).contains("balance"));
        assert_eq!(post("/v1/customers", "a=1&a=2").kind(), "ambiguous");
    }

    #[test]
    fn metadata_updates_of_money_objects() {
        assert_eq!(
            post("/v1/charges/ch_1", "metadata[a]=1"),
            safe("charge.update")
        );
        assert_eq!(
            post("/v1/refunds/re_1", "metadata[a]=1"),
            safe("refund.update")
        );
        assert_eq!(
            post("/v1/transfers/tr_1", "description=x"),
            safe("transfer.update")
        );
        assert_eq!(
            post("/v1/payouts/po_1", "metadata[a]=1"),
            safe("payout.update")
        );
        assert_eq!(
            post("/v1/topups/tu_1", "metadata[a]=1"),
            safe("topup.update")
        );
        let c = post("/v1/charges/ch_1", "amount=1");
        assert_eq!(c.kind(), "unknown");
        assert_eq!(c.operation(), "charge.update");
    }

    #[test]
    fn deletes() {
        let del = |p| classify(&view("DELETE", p, None, b""));
        assert_eq!(del("/v1/customers/cus_1"), safe("customer.delete"));
        assert_eq!(del("/v1/products/prod_1"), safe("product.delete"));
        assert_eq!(
            del("/v1/webhook_endpoints/we_1"),
            safe("webhook_endpoint.delete")
        );
        assert_eq!(del("/v1/subscriptions/sub_1").kind(), "unknown");
        assert_eq!(del("/v1/invoiceitems/ii_1").kind(), "unknown");
        assert_eq!(del("/v1/customers/cus_1/discount").kind(), "unknown");
    }

    #[test]
    fn unknown_paths_name_the_path() {
        let c = post(
            "/v1/subscriptions",
            "customer=cus_1&items[0][price]=price_1",
        );
        assert_eq!(c.kind(), "unknown");
        assert!(reason(&c).contains("/v1/subscriptions"));
        for p in [
            "/v1/invoices/in_1/pay",
            "/v2/core/accounts",
            "/v1/transfers/tr_1/reversals",
        ] {
            assert_eq!(post(p, "").kind(), "unknown", "{p}");
        }
    }

    #[test]
    fn non_canonical_paths_are_unknown() {
        for p in [
            "/v1/refunds/",
            "//v1/refunds",
            "/v1//refunds",
            "/v1/customers/..%2Frefunds",
            "/v1/customers/../refunds",
            "/v1/customers/./x",
            "/V1/Refunds",
            "/v1/refunds?amount=1",
            "v1/refunds",
            "",
            "/v1/customers/cus 1",
        ] {
            let c = post(p, "amount=1&currency=usd");
            assert_eq!(c.kind(), "unknown", "{p:?}");
        }
        // Case matters: "/V1/Refunds" is unknown, never safe.
        assert!(reason(&post("/V1/Refunds", "")).contains("/V1/Refunds"));
        assert!(reason(&post("/v1/refunds/", "")).contains("canonical"));
    }

    #[test]
    fn reasons_are_bounded() {
        let long_path = format!("/v1/{}", "x".repeat(10_000));
        let c = post(&long_path, "");
        assert!(reason(&c).len() < 400);
        let long_amount = format!("amount={}&currency=usd", "1".repeat(10_000));
        let c = post("/v1/charges", &long_amount);
        assert!(reason(&c).len() < 400, "{}", reason(&c));
    }

    #[test]
    fn adapter_trait() {
        let a = StripeAdapter;
        assert_eq!(a.name(), "stripe");
        assert!(a.claims_host("api.stripe.com"));
        assert!(a.claims_host("API.STRIPE.COM.:443"));
        assert!(a.claims_host("files.stripe.com") && a.claims_host("connect.stripe.com"));
        assert!(!a.claims_host("stripe.com") && !a.claims_host("dashboard.stripe.com"));
        let on = |host: &'static str, path: &'static str| {
            let mut v = view("POST", path, None, b"--x\r\n");
            v.host = host;
            classify(&v)
        };
        assert_eq!(on("files.stripe.com", "/v1/files").kind(), "safe");
        assert_eq!(on("files.stripe.com", "/v1/files/x").kind(), "unknown");
        assert_eq!(on("connect.stripe.com", "/oauth/token").kind(), "safe");
        assert_eq!(on("connect.stripe.com", "/v1/payouts").kind(), "unknown");
        assert_eq!(
            on("meter-events.stripe.com", "/v2/billing/meter_event_stream").kind(),
            "unknown"
        );
        let vendors = crate::adapters::Registry::builtin();
        let adapter = vendors.for_host("api.stripe.com:443").unwrap();
        let c = adapter.classify(&view("POST", "/v1/payouts", None, b"amount=1&currency=eur"));
        assert_eq!(amount(&c), "0.01 EUR");
    }

    // --- Properties -----------------------------------------------------

    /// Paths where a POST must be read as a spend (or found unreadable).
    const SIMPLE_SPEND_PATHS: &[&str] = &[
        "/v1/payment_intents",
        "/v1/payment_intents/pi_1",
        "/v1/charges",
        "/v1/refunds",
        "/v1/charges/ch_1/refunds",
        "/v1/charges/ch_1/refund",
        "/v1/transfers",
        "/v1/payouts",
        "/v1/topups",
        "/v1/invoiceitems",
    ];
    const ALWAYS_UNREADABLE_PATHS: &[&str] = &[
        "/v1/payment_intents/pi_1/confirm",
        "/v1/payment_intents/pi_1/capture",
        "/v1/payment_intents/pi_1/increment_authorization",
        "/v1/charges/ch_1/capture",
    ];

    /// The test's own model of Stripe exponents, independent of the code.
    fn model_exponent(cur: &str) -> Option<u32> {
        match cur.to_ascii_lowercase().as_str() {
            "jpy" | "krw" | "mga" | "xof" => Some(0),
            "eur" | "usd" | "gbp" | "isk" | "ugx" | "huf" | "twd" => Some(2),
            "kwd" | "bhd" | "tnd" => Some(3),
            _ => None,
        }
    }

    fn model_minor(s: &str) -> Option<i128> {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let canonical = s.len() == 1 || !s.starts_with('0');
        if !(digits && canonical) {
            return None;
        }
        s.parse::<u128>()
            .ok()
            .filter(|v| *v < (1u128 << 96))
            .and_then(|v| i128::try_from(v).ok())
    }

    fn encode(pairs: &[(String, String)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    fn amount_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            "[0-9]{1,32}",
            "[-+ .e0-9]{0,6}",
            ".{0,8}",
        ]
    }

    fn currency_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "jpy", "krw", "mga", "xof", "eur", "usd", "gbp", "isk", "ugx", "huf", "twd", "kwd",
                "bhd", "tnd", "EUR", "Jpy",
            ])
            .prop_map(str::to_owned),
            prop::sample::select(vec!["iqd", "xyz", "", "euro", "btc", "xau"])
                .prop_map(str::to_owned),
            ".{0,4}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn classify_never_panics(
            method in prop_oneof![
                prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "HEAD"]).prop_map(str::to_owned),
                ".{0,8}",
            ],
            path in prop_oneof![
                prop::sample::select(SIMPLE_SPEND_PATHS.iter().chain(ALWAYS_UNREADABLE_PATHS).copied().chain(["/v1/checkout/sessions", "/v1/customers", "/v1/charges/ch_1"]).collect::<Vec<_>>()).prop_map(str::to_owned),
                "/v1/[a-z_/]{0,30}",
                ".{0,40}",
            ],
            query in prop::option::of(".{0,40}"),
            content_type in prop::option::of(prop_oneof![
                Just("application/x-www-form-urlencoded".to_owned()),
                Just("application/json".to_owned()),
                ".{0,20}",
            ]),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let v = RequestView {
                method: &method,
                host: "api.stripe.com",
                path: &path,
                query: query.as_deref(),
                content_type: content_type.as_deref(),
                idempotency_key: None,
                account: None,
                body: &body,
                facts: &NO_FACTS,
            };
            let c = classify(&v);
            if let Classification::Spend(d) = &c {
                prop_assert!(!d.is_empty());
                for i in d {
                    prop_assert!(i.amount.is_some());
                    prop_assert!(i.amount.unwrap().amount >= Decimal::ZERO);
                }
            }
        }

        /// Whatever the looked-up charge says, a refund is never safe, and a
        /// spend read from it is non-negative.
        #[test]
        fn refunds_with_any_looked_up_charge_are_never_safe(
            body in "(charge=ch_1|payment_intent=pi_1)(&amount=[0-9]{0,6})?(&currency=[a-z]{0,4})?",
            amount in prop_oneof![Just("10000".to_owned()), Just("-5".to_owned()), Just("\"7\"".to_owned()), Just("1e3".to_owned())],
            refunded in prop_oneof![Just("0".to_owned()), Just("20000".to_owned()), Just("null".to_owned())],
            currency in prop_oneof![Just("\"eur\"".to_owned()), Just("\"jpy\"".to_owned()), Just("\"zzz\"".to_owned()), Just("3".to_owned())],
        ) {
            let charge = format!(r#"{{"amount":{amount},"amount_refunded":{refunded},"currency":{currency}}}"#);
            let mut facts = Facts::default();
            facts.insert("/v1/charges/ch_1".into(), crate::adapters::json::parse(charge.as_bytes()).map_err(|e| e.to_string()));
            facts.insert("/v1/payment_intents/pi_1".into(), crate::adapters::json::parse(br#"{"latest_charge":"ch_1"}"#).map_err(|e| e.to_string()));
            let mut v = view("POST", "/v1/refunds", None, body.as_bytes());
            v.facts = &facts;
            let c = classify(&v);
            prop_assert_ne!(c.kind(), "safe");
            if let Classification::Spend(d) = &c {
                prop_assert!(d[0].amount.as_ref().unwrap().amount >= Decimal::ZERO);
            }
        }

        #[test]
        fn spend_paths_never_safe_or_unknown_on_arbitrary_bytes(
            path in prop::sample::select(SIMPLE_SPEND_PATHS.iter().chain(ALWAYS_UNREADABLE_PATHS).copied().collect::<Vec<_>>()),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let c = classify(&view("POST", path, None, &body));
            // A PaymentIntent update without `amount` and with harmless
            // fields only is safe by design; arbitrary bytes almost never
            // form one, but the property is stated for what can happen.
            let pi_update_safe = path == "/v1/payment_intents/pi_1" && c.kind() == "safe";
            let spend_or_unreadable = matches!(c.kind(), "spend" | "unreadable" | "ambiguous");
            prop_assert!(spend_or_unreadable || pi_update_safe, "{path}: {c:?}");
        }

        #[test]
        fn spend_amount_is_exactly_the_form_amount(
            path in prop::sample::select(SIMPLE_SPEND_PATHS.iter().chain(ALWAYS_UNREADABLE_PATHS).copied().collect::<Vec<_>>()),
            amt in amount_strategy(),
            cur in currency_strategy(),
            meta in prop::collection::btree_map("[a-z]{1,6}", ".{0,6}", 0..4),
            duplicate_amount in prop::option::weighted(0.1, amount_strategy()),
        ) {
            let mut pairs = vec![
                ("amount".to_owned(), amt.clone()),
                ("currency".to_owned(), cur.clone()),
                ("customer".to_owned(), "cus_1".to_owned()),
            ];
            for (k, v) in &meta {
                pairs.push((format!("metadata[{k}]"), v.clone()));
            }
            if let Some(d) = &duplicate_amount {
                pairs.push(("amount".to_owned(), d.clone()));
            }
            let body = encode(&pairs);
            let c = classify(&view("POST", path, None, body.as_bytes()));

            let expected = match (model_minor(&amt), model_exponent(&cur)) {
                (Some(minor), Some(exp)) if duplicate_amount.is_none()
                    && !ALWAYS_UNREADABLE_PATHS.contains(&path) =>
                    Some(Decimal::from_i128_with_scale(minor, exp)),
                _ => None,
            };
            match (&c, expected) {
                (Classification::Spend(d), Some(want)) => {
                    prop_assert_eq!(d.len(), 1);
                    let m = d[0].amount.unwrap();
                    prop_assert_eq!(m.amount, want);
                    prop_assert_eq!(m.amount.scale(), model_exponent(&cur).unwrap());
                    prop_assert_eq!(m.currency.code(), cur.to_ascii_uppercase());
                }
                (Classification::Ambiguous { .. }, None) if duplicate_amount.is_some() => {}
                (Classification::Unreadable { .. }, None) if duplicate_amount.is_none() => {}
                (other, want) => prop_assert!(false, "{path} {body}: got {other:?}, model {want:?}"),
            }
        }

        #[test]
        fn checkout_total_matches_model(
            items in prop::collection::vec((0u64..1_000_000, 1u64..100), 1..6),
            cur in prop::sample::select(vec!["eur", "jpy", "kwd"]),
        ) {
            let mut pairs = vec![("mode".to_owned(), "payment".to_owned())];
            let mut total: u128 = 0;
            for (i, (unit, qty)) in items.iter().enumerate() {
                pairs.push((format!("line_items[{i}][price_data][currency]"), cur.to_owned()));
                pairs.push((format!("line_items[{i}][price_data][unit_amount]"), unit.to_string()));
                pairs.push((format!("line_items[{i}][quantity]"), qty.to_string()));
                total += u128::from(*unit) * u128::from(*qty);
            }
            let body = encode(&pairs);
            let c = post(CHECKOUT, &body);
            let exp = model_exponent(cur).unwrap();
            let want = Decimal::from_i128_with_scale(i128::try_from(total).unwrap(), exp);
            prop_assert_eq!(one(&c).amount.unwrap().amount, want);
        }
    }
}
