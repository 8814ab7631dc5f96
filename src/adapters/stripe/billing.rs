//! Billing: invoice items, invoices, checkout sessions, subscriptions, and
//! the Prices they name.
//!
//! # Prices
//!
//! A line that names a Price (`line_items[i][price]`, `items[i][price]`,
//! `pricing[price]`) costs what the Price says: leash looks it up
//! (`GET /v1/prices/{id}`) and reads `unit_amount` (or a whole-number
//! `unit_amount_decimal`) in the Price's `currency`. A Price leash cannot
//! turn into one exact amount per unit is unreadable: tiered
//! (`billing_scheme=tiered`), metered (`recurring.usage_type=metered`),
//! customer-chosen (`custom_unit_amount`), quantity-transforming
//! (`transform_quantity`), or with a fractional `unit_amount_decimal` (which
//! Stripe rounds).
//!
//! # Subscriptions: recurring amounts count once
//!
//! A subscription commits the customer to a charge every period, for as
//! long as it runs; an intent has one amount. leash reads one period of
//! every item (unit price × quantity) plus the one-off `add_invoice_items`:
//! what the first invoice charges before tax, discounts and proration. A
//! policy cap therefore sees a subscription once, when it is created or its
//! items change, not at each renewal (renewals are Stripe's doing, not the
//! agent's). Anything that charges more than that first period
//! (`backdate_start_date`, resetting `billing_cycle_anchor` on an update)
//! is unreadable.
//!
//! An update counts the whole new amount of every item it sets (not the
//! difference from the old one, which is not in the request): an
//! over-count a human can release rather than an under-count.

use std::collections::BTreeMap;

use super::lookups::{
    found, invoice_path, plain_id, price_path, spend_from_object, subscription_item_path, too_many,
    Fallback, Found, FromObject,
};
use super::{
    amount_currency, beneficiary, draft, first_not_in, integer, object_id, parse_minor_digits,
    safe, scalar, shown, shown_field, stripe_currency, to_money, unknown, unreadable, Call, Op,
};
use crate::adapters::json::Json;
use crate::adapters::Form;
use crate::intent::{Classification, Facts, Lookup};
use crate::money::{Currency, Money};

const INVOICEITEM_UPDATE: Op = Op {
    name: "invoiceitem.update",
    category: "invoice",
};
const INVOICEITEM_CREATE: Op = Op {
    name: "invoiceitem.create",
    category: "invoice",
};
const INVOICE_PAY: Op = Op {
    name: "invoice.pay",
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
const SUBSCRIPTION_CREATE: Op = Op {
    name: "subscription.create",
    category: "subscription",
};
const SUBSCRIPTION_UPDATE: Op = Op {
    name: "subscription.update",
    category: "subscription",
};
const SUBSCRIPTION_ITEM_CREATE: Op = Op {
    name: "subscription_item.create",
    category: "subscription",
};
const SUBSCRIPTION_ITEM_UPDATE: Op = Op {
    name: "subscription_item.update",
    category: "subscription",
};

const INVOICEITEM_BENEFICIARY: &[&str] = &["customer", "customer_account"];
const CHECKOUT_BENEFICIARY: &[&str] = &[
    "payment_intent_data[transfer_data][destination]",
    "payment_intent_data[on_behalf_of]",
    "customer",
];
const SUBSCRIPTION_BENEFICIARY: &[&str] =
    &["transfer_data[destination]", "on_behalf_of", "customer"];

/// Invoice-item update fields that change no amount.
const INVOICEITEM_UPDATE_HARMLESS: &[&str] = &["description", "expand", "metadata", "period"];

/// Subscription update fields that change no amount: which card or source
/// is charged, and descriptions. Changing whether or when a subscription
/// ends (`cancel_at_period_end=false` resumes one) is not harmless.
const SUBSCRIPTION_UPDATE_HARMLESS: &[&str] = &[
    "default_payment_method",
    "default_source",
    "description",
    "expand",
    "metadata",
];

/// Fields an update that changes items may also carry: how the change is
/// prorated and paid. Anything else next to items is unreadable.
const SUBSCRIPTION_UPDATE_WITH_ITEMS: &[&str] = &[
    "add_invoice_items",
    "default_payment_method",
    "default_source",
    "description",
    "expand",
    "items",
    "metadata",
    "off_session",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
];

/// Subscription fields that make it charge more than one period of its
/// items, or that leash does not price.
const SUBSCRIPTION_REFUSED: &[(&str, &str)] = &[
    (
        "backdate_start_date",
        "charges for the time since the backdated start, which leash does not compute",
    ),
    (
        "plan",
        "is a legacy Plan, whose amount leash does not look up",
    ),
    (
        "prebilling",
        "bills several periods in advance, which leash does not compute",
    ),
];

/// Subscription-item fields besides its price and quantity that change no
/// amount (taxes and discounts only lower or add tax to it).
const SUBSCRIPTION_ITEM_OTHER: &[&str] = &[
    "billing_thresholds",
    "discounts",
    "expand",
    "metadata",
    "off_session",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "subscription",
    "tax_rates",
];

/// How to read a list of priced lines.
struct LineSpec {
    /// The field the lines are under (`line_items`), with its `[`; empty
    /// for one line made of top-level fields (a subscription item).
    prefix: &'static str,
    /// Sub-fields after `root[i]` leash reads or knows to be harmless, in
    /// groups shared between specs.
    fields: &'static [&'static [&'static str]],
    /// Sub-field prefixes known to be harmless (`[metadata][`).
    prefixes: &'static [&'static str],
    /// Whether `[quantity]` must be given (Checkout) or defaults to 1.
    quantity_required: bool,
    /// Whether recurring prices are counted (once) or refused.
    recurring: bool,
    /// Whether a line may change an existing subscription item (`[id]`,
    /// `[deleted]`), whose price and quantity are looked up.
    existing: bool,
}

/// A line's price and quantity, as every line-item field of Stripe's
/// billing objects writes them (after `root[i]`).
const PRICED_LINE: &[&str] = &[
    "[price]",
    "[quantity]",
    "[price_data][currency]",
    "[price_data][unit_amount]",
    "[price_data][product]",
    "[price_data][tax_behavior]",
];
/// A recurring `price_data`'s period.
const RECURRING_PRICE: &[&str] = &[
    "[price_data][recurring][interval]",
    "[price_data][recurring][interval_count]",
];

/// Checkout line items: what leash understands, by their path after
/// `line_items[i]`.
const CHECKOUT_LINES: LineSpec = LineSpec {
    prefix: "line_items[",
    fields: &[
        PRICED_LINE,
        &[
            "[adjustable_quantity][enabled]",
            "[adjustable_quantity][minimum]",
            "[adjustable_quantity][maximum]",
        ],
    ],
    prefixes: &[
        "[price_data][product_data][",
        "[metadata][",
        "[tax_rates][",
        "[dynamic_tax_rates][",
    ],
    quantity_required: true,
    recurring: false,
    existing: false,
};

const ITEM_PREFIXES: &[&str] = &[
    "[metadata][",
    "[tax_rates][",
    "[discounts][",
    "[billing_thresholds][",
];

/// `items[i]` of a subscription create.
const SUBSCRIPTION_ITEMS: LineSpec = LineSpec {
    prefix: "items[",
    fields: &[PRICED_LINE, RECURRING_PRICE],
    prefixes: ITEM_PREFIXES,
    quantity_required: false,
    recurring: true,
    existing: false,
};

/// `items[i]` of a subscription update: new items, or existing ones by id.
const SUBSCRIPTION_UPDATE_ITEMS: LineSpec = LineSpec {
    prefix: "items[",
    fields: &[
        PRICED_LINE,
        RECURRING_PRICE,
        &["[id]", "[deleted]", "[clear_usage]"],
    ],
    prefixes: ITEM_PREFIXES,
    quantity_required: false,
    recurring: true,
    existing: true,
};

/// `add_invoice_items[i]`: one-off items on the first invoice.
const ADD_INVOICE_ITEMS: LineSpec = LineSpec {
    prefix: "add_invoice_items[",
    fields: &[PRICED_LINE],
    prefixes: &["[metadata][", "[tax_rates][", "[discounts][", "[period]["],
    quantity_required: false,
    recurring: false,
    existing: false,
};

/// A subscription item's own price and quantity, at the top level
/// (`price`, `price_data[...]`, `quantity`), read as one line.
const SUBSCRIPTION_ITEM_LINE: LineSpec = LineSpec {
    prefix: "",
    fields: &[PRICED_LINE, RECURRING_PRICE, &["[id]"]],
    prefixes: &[],
    quantity_required: false,
    recurring: true,
    existing: true,
};

/// The roots a subscription item's line is made of.
const ITEM_LINE_ROOTS: &[&str] = &["price", "price_data", "quantity"];

// --- Invoices and quotes ----------------------------------------------

/// `paid_out_of_band=true`: the invoice is marked paid, nothing is charged
/// through Stripe. Only exactly `true` counts: any other spelling is read as
/// a payment, so a value Stripe might also take as true errs towards
/// holding, never towards letting a charge through.
pub(super) fn paid_out_of_band(form: &Form) -> bool {
    form.get("paid_out_of_band") == Some("true")
}

/// `POST /v1/invoices/{id}/pay`: what is left of the invoice
/// (`amount_remaining`, else `amount_due`) in its currency, to its
/// customer; safe when paid out of band.
pub(super) fn invoice_pay(c: &Call<'_>, invoice: &str) -> Classification {
    if let Ok(form) = c.form() {
        if paid_out_of_band(form) {
            return safe(INVOICE_PAY.name);
        }
    }
    spend_from_object(
        c,
        &FromObject {
            op: INVOICE_PAY,
            object: "invoice",
            kind: "invoice",
            path: invoice_path(invoice),
            amount_field: None,
            fallback: Fallback::First(&["amount_remaining", "amount_due"]),
            need_given: "",
            need_missing: "paying an invoice charges what is left of it (`amount_remaining`) in \
                           its currency, which the request does not carry",
            request_beneficiary: &[],
            object_beneficiary: &["/customer"],
            fixed_beneficiary: None,
            splits: false,
        },
    )
}

/// `POST /v1/invoices/{id}/finalize`: unknown. Finalizing moves no money by
/// itself, but with `collection_method=charge_automatically` and
/// `auto_advance` Stripe then charges the customer on its own schedule,
/// without a request leash would see; sending an invoice
/// (`send_invoice`) lets the customer pay later. Which one applies, and
/// when, is not in the request, so a person decides (never safe).
pub(super) fn invoice_finalize() -> Classification {
    unknown(
        "invoice.finalize",
        "finalizing an invoice lets Stripe collect it automatically \
         (`collection_method=charge_automatically` with `auto_advance`) at a time leash does \
         not see, so leash cannot say what it charges"
            .to_owned(),
    )
}

/// `POST /v1/quotes/{id}/accept`: unreadable. Accepting commits the
/// customer to the quote's invoice or subscription, a spend whose amount
/// lives in the quote (and may recur); leash does not read quotes.
pub(super) fn quote_accept() -> Classification {
    Classification::Unreadable {
        operation: "quote.accept".to_owned(),
        reason: "accepting a quote commits the customer to its invoice or subscription; the \
                 amount is in the quote, which leash does not read"
            .to_owned(),
    }
}

// --- Prices -------------------------------------------------------------

/// One unit of a price, in minor units of its currency.
#[derive(Debug, Clone, Copy)]
struct Unit {
    minor: u128,
    currency: Currency,
    exp: u32,
    recurring: bool,
}

impl Unit {
    fn money(&self) -> Result<Money, String> {
        to_money("unit_amount", self.minor, self.currency, self.exp)
    }
}

/// Whether `value` is absent or `null`.
fn is_null(value: Option<&Json>) -> bool {
    matches!(value, None | Some(Json::Null))
}

/// A whole count of minor units written as a decimal (`"1999"`,
/// `"1999.000"`); `None` for a fraction or anything else.
fn whole_minor(text: &str) -> Option<u128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b == b'0') || (text.contains('.') && fraction.is_empty()) {
        return None;
    }
    parse_minor_digits(whole).ok()
}

/// Reads a Price object (`price`, found at `at`: a looked-up Price, or the
/// `price` inside a looked-up subscription item).
fn price_unit(price: &Json, at: &Found<'_>) -> Result<Unit, String> {
    if !matches!(price, Json::Object(_)) {
        return Err(at.cite("the Price is not an object"));
    }
    if let Some(scheme) = price.pointer("/billing_scheme").and_then(Json::as_str) {
        if scheme != "per_unit" {
            return Err(at.cite(&format!(
                "the Price is billed {}, not per unit; leash does not price tiers",
                shown(scheme)
            )));
        }
    }
    for (field, why) in [
        ("custom_unit_amount", "lets the customer choose the amount"),
        ("transform_quantity", "divides and rounds the quantity"),
    ] {
        if !is_null(price.pointer(&format!("/{field}"))) {
            return Err(at.cite(&format!("the Price has `{field}`, which {why}")));
        }
    }
    let recurring = match price.pointer("/recurring") {
        None | Some(Json::Null) => false,
        Some(recurring) => {
            if recurring.pointer("/usage_type").and_then(Json::as_str) == Some("metered") {
                return Err(at.cite("the Price is metered: it bills usage reported later"));
            }
            true
        }
    };
    let recurring = recurring || price.pointer("/type").and_then(Json::as_str) == Some("recurring");
    let minor = match price.pointer("/unit_amount") {
        Some(value) if !matches!(value, Json::Null) => value
            .as_i64()
            .and_then(|n| u128::try_from(n).ok())
            .ok_or_else(|| at.cite("the Price's `unit_amount` is not a non-negative integer"))?,
        _ => {
            let Some(text) = price
                .pointer("/unit_amount_decimal")
                .and_then(Json::scalar_text)
            else {
                return Err(
                    at.cite("the Price has neither `unit_amount` nor `unit_amount_decimal`")
                );
            };
            whole_minor(text).ok_or_else(|| {
                at.cite(&format!(
                    "the Price's `unit_amount_decimal` {} is a fractional count of minor units \
                     that Stripe rounds",
                    shown(text)
                ))
            })?
        }
    };
    let currency = price
        .pointer("/currency")
        .and_then(Json::as_str)
        .ok_or_else(|| at.cite("the Price has no `currency`"))?;
    let (currency, exp) = stripe_currency("currency", currency).map_err(|e| at.cite(&e))?;
    Ok(Unit {
        minor,
        currency,
        exp,
        recurring,
    })
}

/// The Price `id` named by `field`, looked up.
fn looked_up_price<'f>(
    facts: &'f Facts,
    field: &str,
    id: &str,
    path: &'f str,
) -> Result<(Unit, Found<'f>), String> {
    plain_id(field, id)?;
    let need = format!("`{field}` references a Price whose amount is not in the request");
    let price = found(facts, path, "price", &need)?;
    Ok((price_unit(price.json, &price)?, price))
}

/// A lookup of the Price `id`, when it is a plain id.
fn price_lookup(field: &str, id: &str) -> Option<Lookup> {
    object_id(id).map(|id| Lookup {
        path: price_path(id),
        body: None,
        why: format!(
            "`{}` references a Price; its amount and currency are looked up",
            shown_field(field)
        ),
    })
}

// --- Lines --------------------------------------------------------------

/// A line's total in minor units of one currency, and where its parts
/// came from.
#[derive(Debug, Clone)]
struct Priced {
    minor: u128,
    currency: Currency,
    exp: u32,
    /// Where the currency came from when it is not the request's.
    currency_source: Option<String>,
    /// Looked-up values by field, for `sources`.
    sources: Vec<(String, String)>,
}

type Fields<'f> = Vec<(&'f str, &'f str)>;

/// The lines under `spec.prefix` (`line_items[0][price]` …), by index.
fn lines<'f>(form: &'f Form, spec: &LineSpec) -> Result<BTreeMap<u32, Fields<'f>>, String> {
    let root = spec.prefix.trim_end_matches('[');
    if form.get(root).is_some() {
        return Err(format!("`{root}` is given as a plain value, not as a list"));
    }
    let mut items: BTreeMap<u32, Fields<'f>> = BTreeMap::new();
    for (name, value) in form.with_prefix(spec.prefix) {
        let rest = name.get(spec.prefix.len()..).unwrap_or("");
        let close = rest.find(']').unwrap_or(rest.len());
        let index = rest.get(..close).unwrap_or("");
        let sub = rest.get(close + 1..).unwrap_or("");
        let i = line_item_index(index)?;
        items.entry(i).or_default().push((sub, value));
    }
    Ok(items)
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

/// The field name of `sub` in line `label` (`line_items[0]` + `[price]`);
/// for a top-level line (empty label) the sub-field itself (`price_data[currency]`).
fn field_name(label: &str, sub: &str) -> String {
    if !label.is_empty() {
        return format!("{label}{sub}");
    }
    match sub.strip_prefix('[').and_then(|s| s.split_once(']')) {
        Some((root, rest)) => format!("{root}{rest}"),
        None => sub.to_owned(),
    }
}

/// A line for reasons: `` `line_items[0]` ``, or "the subscription item".
fn line_label(label: &str) -> String {
    if label.is_empty() {
        "the subscription item".to_owned()
    } else {
        format!("`{label}`")
    }
}

fn value_of<'f>(fields: &[(&str, &'f str)], sub: &str) -> Option<&'f str> {
    fields.iter().find(|(s, _)| *s == sub).map(|(_, v)| *v)
}

/// The existing subscription item a line changes, if it names one and is
/// not a deletion.
fn existing_item<'f>(fields: &[(&str, &'f str)], spec: &LineSpec) -> Option<&'f str> {
    if !spec.existing {
        return None;
    }
    value_of(fields, "[id]").filter(|v| !v.is_empty())
}

fn has_price_data(fields: &[(&str, &str)]) -> bool {
    fields.iter().any(|(s, _)| s.starts_with("[price_data]"))
}

/// What a line needs looked up: its Price, and the existing item whose
/// price or quantity it keeps.
fn line_lookups(label: &str, fields: &[(&str, &str)], spec: &LineSpec, out: &mut Vec<Lookup>) {
    let price = value_of(fields, "[price]").filter(|v| !v.is_empty());
    if let Some(lookup) = price.and_then(|id| price_lookup(&field_name(label, "[price]"), id)) {
        out.push(lookup);
    }
    if let Some(item) = existing_item(fields, spec) {
        let deleted = value_of(fields, "[deleted]") == Some("true");
        let keeps_price = price.is_none() && !has_price_data(fields);
        let keeps_quantity = value_of(fields, "[quantity]").is_none();
        if !deleted && (keeps_price || keeps_quantity) {
            if let Some(item) = object_id(item) {
                out.push(Lookup {
                    path: subscription_item_path(item),
                    body: None,
                    why: "a changed subscription item keeps its current price or quantity".into(),
                });
            }
        }
    }
}

/// Every lookup the lines under `specs` need, each path once.
fn lines_lookups(form: &Form, specs: &[&LineSpec]) -> Vec<Lookup> {
    let mut out = Vec::new();
    for spec in specs {
        let Ok(items) = lines(form, spec) else {
            continue;
        };
        let root = spec.prefix.trim_end_matches('[');
        for (i, fields) in &items {
            line_lookups(&format!("{root}[{i}]"), fields, spec, &mut out);
        }
    }
    dedup(out)
}

fn dedup(mut lookups: Vec<Lookup>) -> Vec<Lookup> {
    let mut seen = std::collections::BTreeSet::new();
    lookups.retain(|l| seen.insert(l.path.clone()));
    lookups
}

/// Reads one line: `[price]` (looked up) or `[price_data]`, times
/// `[quantity]`. `None` for a line that deletes an existing item.
fn read_line(
    label: &str,
    fields: &[(&str, &str)],
    spec: &LineSpec,
    facts: &Facts,
) -> Result<Option<Priced>, String> {
    let name = |sub: &str| field_name(label, sub);
    let line = line_label(label);
    for (sub, value) in fields {
        if *sub == "[price_data][unit_amount_decimal]" {
            return Err(format!(
                "`{}` is a fractional count of minor units that Stripe rounds",
                name(sub)
            ));
        }
        if sub.starts_with("[price_data][recurring]") && !spec.recurring {
            return Err(format!(
                "{line} has a recurring price; leash reads one-off amounts only"
            ));
        }
        if *sub == "[adjustable_quantity][enabled]" && *value != "false" {
            return Err(format!(
                "`{}` lets the customer change the quantity, so the total is not fixed",
                name("[adjustable_quantity]")
            ));
        }
        let known = spec.fields.iter().any(|group| group.contains(sub))
            || spec.prefixes.iter().any(|p| sub.starts_with(p));
        if !known {
            return Err(format!(
                "`{}` is not a line-item field leash understands",
                shown_field(&name(sub))
            ));
        }
    }
    let existing = existing_item(fields, spec);
    match value_of(fields, "[deleted]") {
        None | Some("false") => {}
        Some("true") if existing.is_some() => return Ok(None),
        Some("true") => {
            return Err(format!(
                "`{}` is given without `{}`",
                name("[deleted]"),
                name("[id]")
            ))
        }
        Some(other) => {
            return Err(format!(
                "`{}` is {}, not true or false",
                name("[deleted]"),
                shown(other)
            ))
        }
    }
    let item_at = existing.and_then(object_id).map(subscription_item_path);
    let mut sources = Vec::new();
    let mut currency_source = None;
    let price_id = value_of(fields, "[price]").filter(|v| !v.is_empty());
    let price_at = price_id.and_then(object_id).map(price_path);
    let unit = match (price_id, has_price_data(fields)) {
        (Some(_), true) => {
            return Err(format!(
                "`{}` and `{}` are both given; the price is ambiguous",
                name("[price]"),
                name("[price_data]")
            ))
        }
        (Some(id), false) => {
            let field = name("[price]");
            let (unit, price) =
                looked_up_price(facts, &field, id, price_at.as_deref().unwrap_or(""))?;
            sources.push((field, price.cite(&format!("{} per unit", unit.money()?))));
            currency_source = Some(price.cite(&unit.currency.code().to_ascii_lowercase()));
            unit
        }
        (None, true) => {
            let unit_field = name("[price_data][unit_amount]");
            let minor = value_of(fields, "[price_data][unit_amount]")
                .ok_or_else(|| format!("no `{unit_field}`"))?;
            let minor = integer(&unit_field, minor)?;
            let cur_field = name("[price_data][currency]");
            let currency = value_of(fields, "[price_data][currency]")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| format!("no `{cur_field}`"))?;
            let (currency, exp) = stripe_currency(&cur_field, currency)?;
            Unit {
                minor,
                currency,
                exp,
                recurring: fields
                    .iter()
                    .any(|(s, _)| s.starts_with("[price_data][recurring]")),
            }
        }
        (None, false) if existing.is_some() => {
            let item = existing_found(facts, item_at.as_deref(), &line, "price")?;
            let price = item.json.pointer("/price").unwrap_or(&Json::Null);
            let unit = price_unit(price, &item)?;
            sources.push((
                name("[price]"),
                item.cite(&format!(
                    "{} per unit, the item's current price",
                    unit.money()?
                )),
            ));
            currency_source = Some(item.cite(&unit.currency.code().to_ascii_lowercase()));
            unit
        }
        (None, false) => {
            return Err(format!(
                "no `{}` or `{}`",
                name("[price]"),
                name("[price_data][unit_amount]")
            ))
        }
    };
    if unit.recurring && !spec.recurring {
        return Err(format!(
            "{line} has a recurring price; leash reads one-off amounts only"
        ));
    }
    let quantity = match value_of(fields, "[quantity]") {
        Some(q) => integer(&name("[quantity]"), q)?,
        None if existing.is_some() => {
            let item = existing_found(facts, item_at.as_deref(), &line, "quantity")?;
            let quantity = item
                .count("quantity")
                .ok_or_else(|| item.cite("the subscription item has no integer `quantity`"))?;
            sources.push((
                name("[quantity]"),
                item.cite(&format!("{quantity}, the item's current quantity")),
            ));
            quantity
        }
        None if spec.quantity_required => return Err(format!("no `{}`", name("[quantity]"))),
        None => 1,
    };
    let minor = unit
        .minor
        .checked_mul(quantity)
        .ok_or_else(|| "the line items' total is too large to represent".to_owned())?;
    Ok(Some(Priced {
        minor,
        currency: unit.currency,
        exp: unit.exp,
        currency_source,
        sources,
    }))
}

/// The existing subscription item a line keeps `what` of, looked up at `at`.
fn existing_found<'f>(
    facts: &'f Facts,
    at: Option<&'f str>,
    line: &str,
    what: &str,
) -> Result<Found<'f>, String> {
    let at = at.ok_or_else(|| format!("{line} names an item id that is not a Stripe object id"))?;
    found(
        facts,
        at,
        "subscription_item",
        &format!("{line} keeps the existing item's {what}, which is not in the request"),
    )
}

/// Reads every line under `spec`. Lines that delete items are left out.
fn read_lines(form: &Form, spec: &LineSpec, facts: &Facts) -> Result<Vec<Priced>, String> {
    let root = spec.prefix.trim_end_matches('[');
    let mut out = Vec::new();
    for (i, fields) in &lines(form, spec)? {
        if let Some(priced) = read_line(&format!("{root}[{i}]"), fields, spec, facts)? {
            out.push(priced);
        }
    }
    Ok(out)
}

/// The sum of `lines`, in their one currency, checked against the
/// request's top-level `currency`; with what was looked up, for `sources`.
fn total(
    lines: &[Priced],
    whole: &str,
    top: Option<&str>,
) -> Result<(Money, BTreeMap<String, String>), String> {
    let mut sum: u128 = 0;
    let mut one: Option<(Currency, u32)> = None;
    for line in lines {
        match one {
            None => one = Some((line.currency, line.exp)),
            Some((c, _)) if c != line.currency => {
                return Err(format!(
                    "line items mix currencies ({c} and {}); {whole} has one",
                    line.currency
                ))
            }
            Some(_) => {}
        }
        sum = sum
            .checked_add(line.minor)
            .ok_or_else(|| "the line items' total is too large to represent".to_owned())?;
    }
    let (currency, exp) = one.ok_or_else(|| "no line items".to_owned())?;
    if let Some(top) = top {
        let (top, _) = stripe_currency("currency", top)?;
        if top != currency {
            return Err(format!(
                "`currency` ({top}) differs from the line items' currency ({currency})"
            ));
        }
    }
    let money = to_money("line_items", sum, currency, exp)?;
    let mut sources: BTreeMap<String, String> = lines
        .iter()
        .flat_map(|l| l.sources.iter().cloned())
        .collect();
    if top.is_none() {
        let looked_up: Option<Vec<&String>> =
            lines.iter().map(|l| l.currency_source.as_ref()).collect();
        if let Some(first) = looked_up.and_then(|all| all.first().copied().cloned()) {
            sources.insert("currency".to_owned(), first);
        }
    }
    Ok((money, sources))
}

fn spend_with(
    c: &Call<'_>,
    op: Op,
    money: Money,
    who: Option<String>,
    sources: BTreeMap<String, String>,
) -> Classification {
    let mut draft = draft(&c.req, op, money, who);
    draft.sources = sources;
    Classification::spend(op.name, vec![draft])
}

// --- Invoice items --------------------------------------------------------

pub(super) fn invoice_item_lookups(form: &Form) -> Vec<Lookup> {
    let mut out = Vec::new();
    for field in ["price", "pricing[price]"] {
        if let Some(id) = form.get(field).filter(|v| !v.is_empty()) {
            out.extend(price_lookup(field, id));
        }
    }
    out
}

/// Invoice items: `amount`, or `unit_amount` × `quantity`, or
/// `price_data[unit_amount]` × `quantity`, or a Price × `quantity`;
/// exactly one of them.
pub(super) fn invoice_item(c: &Call<'_>, update: bool) -> Classification {
    let op = if update {
        INVOICEITEM_UPDATE
    } else {
        INVOICEITEM_CREATE
    };
    let form = match c.form() {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    match invoice_item_amount(form, op, c.facts()) {
        Ok(Some((money, sources))) => {
            let who = beneficiary(form, INVOICEITEM_BENEFICIARY);
            spend_with(c, op, money, who, sources)
        }
        Ok(None) => safe(op.name),
        Err(e) => unreadable(op, e),
    }
}

type Read = (Money, BTreeMap<String, String>);

/// `Ok(None)` only for an update that changes no amount.
fn invoice_item_amount(form: &Form, op: Op, facts: &Facts) -> Result<Option<Read>, String> {
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
    ] {
        if form.has_root(field) {
            return Err(format!("`{field}` {why}"));
        }
    }
    let sources: Vec<&str> = ["amount", "unit_amount", "price_data", "price", "pricing"]
        .into_iter()
        .filter(|f| form.has_root(f))
        .collect();
    let plain = |money: Money| Ok(Some((money, BTreeMap::new())));
    match sources.as_slice() {
        [] if is_update => {
            if let Some(field) = first_not_in(form, INVOICEITEM_UPDATE_HARMLESS) {
                return Err(format!(
                    "changes `{}` of an invoice item without stating its amount",
                    shown_field(field)
                ));
            }
            Ok(None)
        }
        [] => Err(
            "no amount: needs `amount`, `unit_amount`, `price_data[unit_amount]` or a `price`"
                .to_owned(),
        ),
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
            plain(amount_currency(form, op)?)
        }
        ["unit_amount"] if is_update => Err(
            "`unit_amount` is changed, but an invoice item update carries no currency \
             (Stripe keeps the item's), so the amount cannot be scaled"
                .to_owned(),
        ),
        ["unit_amount"] => plain(unit_times_quantity(form, "unit_amount", "currency", false)?),
        ["price_data"] => {
            // An update that omits `quantity` keeps the item's current one,
            // which is not in the request.
            let money = unit_times_quantity(
                form,
                "price_data[unit_amount]",
                "price_data[currency]",
                is_update,
            )?;
            same_currency(form, money.currency, "`price_data[currency]`")?;
            plain(money)
        }
        ["price"] => priced_item(form, "price", is_update, facts).map(Some),
        ["pricing"] => {
            if let Some((other, _)) = form
                .with_prefix("pricing")
                .find(|(name, _)| *name != "pricing[price]")
            {
                return Err(format!(
                    "`{}` is not a pricing field leash understands",
                    shown_field(other)
                ));
            }
            priced_item(form, "pricing[price]", is_update, facts).map(Some)
        }
        several => Err(format!(
            "several amount sources are given ({}); the amount is ambiguous",
            several.join(", ")
        )),
    }
}

/// A top-level `currency`, if given, must be `currency` (what `what` says).
fn same_currency(form: &Form, currency: Currency, what: &str) -> Result<(), String> {
    if let Some(top) = scalar(form, "currency")? {
        let (top, _) = stripe_currency("currency", top)?;
        if top != currency {
            return Err(format!(
                "`currency` ({top}) differs from {what} ({currency})"
            ));
        }
    }
    Ok(())
}

/// An invoice item priced by a looked-up Price: its unit amount ×
/// `quantity` (1 by default on create; an update without one keeps the
/// item's quantity, which is not in the request).
fn priced_item(form: &Form, field: &str, is_update: bool, facts: &Facts) -> Result<Read, String> {
    let id = scalar(form, field)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("no `{field}`"))?;
    let path = object_id(id).map(price_path).unwrap_or_default();
    let (unit, price) = looked_up_price(facts, field, id, &path)?;
    let quantity = match scalar(form, "quantity")? {
        Some(q) => integer("quantity", q)?,
        None if is_update => {
            return Err(format!(
                "`{field}` is changed without `quantity`; the item keeps its current quantity, \
                 which is not in the request"
            ))
        }
        None => 1,
    };
    same_currency(form, unit.currency, "the Price's currency")?;
    let minor = unit
        .minor
        .checked_mul(quantity)
        .ok_or_else(|| format!("`{field}` × `quantity` is too large to represent"))?;
    let money = to_money(field, minor, unit.currency, unit.exp)?;
    let mut sources = BTreeMap::new();
    sources.insert(
        field.to_owned(),
        price.cite(&format!("{} per unit", unit.money()?)),
    );
    if form.get("currency").is_none() {
        sources.insert(
            "currency".to_owned(),
            price.cite(&unit.currency.code().to_ascii_lowercase()),
        );
    }
    Ok((money, sources))
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

// --- Checkout -------------------------------------------------------------

pub(super) fn checkout_lookups(form: &Form) -> Vec<Lookup> {
    lines_lookups(form, &[&CHECKOUT_LINES])
}

pub(super) fn checkout_session_create(c: &Call<'_>) -> Classification {
    let op = CHECKOUT_CREATE;
    let form = match c.form() {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    let mode = match scalar(form, "mode") {
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
    match checkout_total(form, c.facts()) {
        Ok((money, sources)) => {
            let who = beneficiary(form, CHECKOUT_BENEFICIARY);
            spend_with(c, op, money, who, sources)
        }
        Err(e) => unreadable(op, e),
    }
}

fn checkout_total(form: &Form, facts: &Facts) -> Result<Read, String> {
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
    if lines(form, &CHECKOUT_LINES)?.is_empty() {
        return Err("no `line_items`".to_owned());
    }
    if let Some(reason) = too_many(checkout_lookups(form).len()) {
        return Err(reason);
    }
    let priced = read_lines(form, &CHECKOUT_LINES, facts)?;
    total(&priced, "a session", scalar(form, "currency")?)
}

pub(super) fn checkout_session_update(c: &Call<'_>) -> Classification {
    let op = CHECKOUT_UPDATE;
    let form = match c.form() {
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
    match first_not_in(form, &["expand", "metadata"]) {
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

// --- Subscriptions ----------------------------------------------------------

pub(super) fn subscription_lookups(form: &Form, update: bool) -> Vec<Lookup> {
    let items = if update {
        &SUBSCRIPTION_UPDATE_ITEMS
    } else {
        &SUBSCRIPTION_ITEMS
    };
    lines_lookups(form, &[items, &ADD_INVOICE_ITEMS])
}

/// One period of every item plus the one-off items; `Ok(None)` when no
/// line costs anything (an update that only deletes items).
fn subscription_total(form: &Form, facts: &Facts, update: bool) -> Result<Option<Read>, String> {
    let items = if update {
        &SUBSCRIPTION_UPDATE_ITEMS
    } else {
        &SUBSCRIPTION_ITEMS
    };
    if let Some(reason) = too_many(subscription_lookups(form, update).len()) {
        return Err(reason);
    }
    let mut priced = read_lines(form, items, facts)?;
    priced.extend(read_lines(form, &ADD_INVOICE_ITEMS, facts)?);
    if priced.is_empty() {
        return Ok(None);
    }
    total(&priced, "a subscription", scalar(form, "currency")?).map(Some)
}

/// `POST /v1/subscriptions`: one period of its `items` plus
/// `add_invoice_items` (see the module docs).
pub(super) fn subscription_create(c: &Call<'_>) -> Classification {
    let op = SUBSCRIPTION_CREATE;
    let form = match c.form() {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    for (field, why) in SUBSCRIPTION_REFUSED {
        if form.has_root(field) {
            return unreadable(op, format!("`{field}` {why}"));
        }
    }
    match lines(form, &SUBSCRIPTION_ITEMS) {
        Ok(items) if items.is_empty() => return unreadable(op, "no `items`".to_owned()),
        Ok(_) => {}
        Err(e) => return unreadable(op, e),
    }
    match subscription_total(form, c.facts(), false) {
        Ok(Some((money, sources))) => {
            let who = beneficiary(form, SUBSCRIPTION_BENEFICIARY);
            spend_with(c, op, money, who, sources)
        }
        Ok(None) => unreadable(op, "no `items`".to_owned()),
        Err(e) => unreadable(op, e),
    }
}

/// `POST /v1/subscriptions/{id}`: safe when it sets only harmless fields;
/// with `items` or `add_invoice_items`, the whole new amount of every
/// line it sets (see the module docs); otherwise unknown.
pub(super) fn subscription_update(c: &Call<'_>, subscription: &str) -> Classification {
    let op = SUBSCRIPTION_UPDATE;
    let form = match c.form() {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    if !form.has_root("items") && !form.has_root("add_invoice_items") {
        return match first_not_in(form, SUBSCRIPTION_UPDATE_HARMLESS) {
            None => safe(op.name),
            Some(field) => unknown(
                op.name,
                format!(
                    "subscription.update sets `{}`, which leash does not know to be harmless",
                    shown_field(field)
                ),
            ),
        };
    }
    for field in ["billing_cycle_anchor", "trial_end"] {
        if form.has_root(field) {
            return unreadable(
                op,
                format!(
                    "`{field}` together with items can charge every item of the subscription, \
                     including those not in the request"
                ),
            );
        }
    }
    if let Some(field) = first_not_in(form, SUBSCRIPTION_UPDATE_WITH_ITEMS) {
        return unreadable(
            op,
            format!(
                "sets `{}` together with items; leash does not know what it adds to the charge",
                shown_field(field)
            ),
        );
    }
    match subscription_total(form, c.facts(), true) {
        Ok(Some((money, sources))) => {
            spend_with(c, op, money, Some(subscription.to_owned()), sources)
        }
        Ok(None) => unknown(
            op.name,
            "removes items only; what Stripe credits or invoices for the change is not in the \
             request"
                .to_owned(),
        ),
        Err(e) => unreadable(op, e),
    }
}

/// A subscription item's top-level price and quantity fields as one line
/// (`price_data[currency]` becomes `[price_data][currency]`), with the
/// item's own id when it exists.
fn item_line<'f>(form: &'f Form, item: Option<&'f str>) -> (Vec<(String, &'f str)>, bool) {
    let mut fields: Vec<(String, &str)> = form
        .with_prefix("")
        .filter(|(name, _)| ITEM_LINE_ROOTS.contains(&crate::adapters::root_of(name)))
        .map(|(name, value)| {
            let root = crate::adapters::root_of(name);
            let rest = name.get(root.len()..).unwrap_or("");
            (format!("[{root}]{rest}"), value)
        })
        .collect();
    let touches = !fields.is_empty();
    if let Some(item) = item {
        fields.push(("[id]".to_owned(), item));
    }
    (fields, touches)
}

pub(super) fn subscription_item_lookups(form: &Form, item: Option<&str>) -> Vec<Lookup> {
    let (fields, touches) = item_line(form, item);
    if !touches {
        return Vec::new();
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let mut out = Vec::new();
    line_lookups("", &fields, &SUBSCRIPTION_ITEM_LINE, &mut out);
    dedup(out)
}

/// `POST /v1/subscription_items` (create) and `/v1/subscription_items/{id}`
/// (update): the item's price × quantity, one period (see the module docs).
/// An update without `price`, `price_data` or `quantity` is safe when it
/// sets only `metadata`; an update that sets only one of price and quantity
/// keeps the other, which is looked up on the item.
pub(super) fn subscription_item(c: &Call<'_>, item: Option<&str>) -> Classification {
    let op = if item.is_some() {
        SUBSCRIPTION_ITEM_UPDATE
    } else {
        SUBSCRIPTION_ITEM_CREATE
    };
    let form = match c.form() {
        Ok(f) => f,
        Err(e) => return unreadable(op, e),
    };
    let (fields, touches) = item_line(form, item);
    if !touches {
        if item.is_some() {
            return match first_not_in(form, &["expand", "metadata"]) {
                None => safe(op.name),
                Some(field) => unknown(
                    op.name,
                    format!(
                        "subscription_item.update sets `{}`, which leash does not know to be \
                         harmless",
                        shown_field(field)
                    ),
                ),
            };
        }
        return unreadable(op, "no `price` or `price_data`".to_owned());
    }
    let mut other_roots = ITEM_LINE_ROOTS.to_vec();
    other_roots.extend_from_slice(SUBSCRIPTION_ITEM_OTHER);
    if let Some(field) = first_not_in(form, &other_roots) {
        return unreadable(
            op,
            format!(
                "`{}` is not a subscription item field leash understands",
                shown_field(field)
            ),
        );
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let read = read_line("", &fields, &SUBSCRIPTION_ITEM_LINE, c.facts())
        .and_then(|line| line.ok_or_else(|| "the item costs nothing leash can read".to_owned()))
        .and_then(|line| total(&[line], "a subscription", scalar(form, "currency")?));
    match read {
        Ok((money, sources)) => {
            let who = match item {
                Some(item) => Some(item.to_owned()),
                None => beneficiary(form, &["subscription"]),
            };
            spend_with(c, op, money, who, sources)
        }
        Err(e) => unreadable(op, e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        amount, assert_is, decided, decided_as, lookups_for, one, post_with, source, FORM,
    };
    use crate::intent::Classification;

    const INVOICE: &str = "/v1/invoices/in_1";
    const PRICE: &str = "/v1/prices/price_1";

    fn invoice(due: &str, remaining: &str, currency: &str) -> String {
        format!(
            r#"{{"id":"in_1","object":"invoice","amount_due":{due},"amount_paid":0,"amount_remaining":{remaining},"currency":"{currency}","customer":"cus_1","status":"open","collection_method":"charge_automatically"}}"#
        )
    }

    /// A one-off (or, with `recurring`, monthly) per-unit Price.
    fn price(unit: u64, currency: &str, recurring: bool) -> String {
        let recurring = if recurring {
            r#"{"interval":"month","interval_count":1,"usage_type":"licensed"}"#
        } else {
            "null"
        };
        let kind = if recurring == "null" {
            "one_time"
        } else {
            "recurring"
        };
        format!(
            r#"{{"id":"price_1","object":"price","active":true,"billing_scheme":"per_unit","currency":"{currency}","custom_unit_amount":null,"recurring":{recurring},"transform_quantity":null,"type":"{kind}","unit_amount":{unit},"unit_amount_decimal":"{unit}"}}"#
        )
    }

    #[test]
    fn an_invoice_payment_is_what_is_left_of_it_kwd() {
        let path = "/v1/invoices/in_1/pay";
        // stripe.Invoice.pay("in_1"): an empty body.
        assert_eq!(lookups_for(path, "", &[]), [INVOICE]);
        // Three-decimal: 5120 is 5.120 KWD (Stripe wants the last digit 0).
        let c = decided(path, "", &[(INVOICE, &invoice("10000", "5120", "kwd"))]);
        assert_eq!(amount(&c), "5.120 KWD");
        let d = one(&c);
        assert_eq!(
            (d.operation.as_str(), d.category.as_str()),
            ("invoice.pay", "invoice")
        );
        assert_eq!(d.beneficiary.as_deref(), Some("cus_1"));
        assert_eq!(source(&c, "currency"), "kwd (GET /v1/invoices/in_1)");
        assert!(source(&c, "amount").contains("5120 minor units, the invoice's `amount_remaining`"));
        // `amount_remaining` missing or null: `amount_due`.
        let c = decided(path, "", &[(INVOICE, &invoice("10000", "null", "eur"))]);
        assert_eq!(amount(&c), "100.00 EUR");
        assert!(source(&c, "amount").contains("`amount_due`"));
        let c = decided(
            path,
            "payment_method=pm_1&forgive=true",
            &[(INVOICE, &invoice("500", "500", "jpy"))],
        );
        assert_eq!(amount(&c), "500 JPY");
        // Failed or missing lookups: unreadable with the reason.
        assert_is(
            &decided(path, "", &[]),
            "unreadable",
            &["amount_remaining", "404"],
        );
        assert_is(
            &decided(
                path,
                "",
                &[(INVOICE, r#"{"object":"invoice","currency":"eur"}"#)],
            ),
            "unreadable",
            &["`amount_remaining` or `amount_due`"],
        );
        assert_is(
            &decided(path, "", &[(INVOICE, &price(5, "eur", false))]),
            "unreadable",
            &[r#"not of kind "invoice""#],
        );
    }

    #[test]
    fn an_invoice_paid_out_of_band_is_safe_only_when_exactly_true() {
        let path = "/v1/invoices/in_1/pay";
        assert!(lookups_for(path, "paid_out_of_band=true", &[]).is_empty());
        assert_eq!(
            post_with(path, "paid_out_of_band=true", &[]),
            Classification::Safe {
                operation: "invoice.pay".into()
            }
        );
        for other in ["false", "True", "1", "yes", "", "true%20"] {
            let body = format!("paid_out_of_band={other}");
            assert_eq!(lookups_for(path, &body, &[]), [INVOICE], "{other}");
            let c = decided(path, &body, &[(INVOICE, &invoice("100", "100", "eur"))]);
            assert_eq!(amount(&c), "1.00 EUR", "{other}");
        }
        // Read two ways: refused, whatever it says.
        let c = post_with(path, "paid_out_of_band=true&paid_out_of_band=false", &[]);
        assert_eq!(c.kind(), "ambiguous");
    }

    #[test]
    fn finalize_and_quote_accept_are_never_safe() {
        let c = post_with("/v1/invoices/in_1/finalize", "auto_advance=true", &[]);
        assert_is(&c, "unknown", &["collect it automatically"]);
        assert_eq!(c.operation(), "invoice.finalize");
        let c = post_with("/v1/quotes/qt_1/accept", "", &[]);
        assert_is(&c, "unreadable", &["quote"]);
        assert_eq!(c.operation(), "quote.accept");
    }

    #[test]
    fn the_sdk_checkout_body_with_a_looked_up_price() {
        // stripe.checkout.Session.create(mode="payment", success_url=...,
        //   line_items=[{"price": "price_1", "quantity": 2},
        //     {"price_data": {"currency": "usd", "unit_amount": 1999,
        //      "product_data": {"name": "GPU hour"}}, "quantity": 3}]) (§1.2)
        let body = "mode=payment&success_url=https%3A%2F%2Fx.example%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D&line_items[0][price]=price_1&line_items[0][quantity]=2&line_items[1][price_data][currency]=usd&line_items[1][price_data][unit_amount]=1999&line_items[1][price_data][product_data][name]=GPU+hour&line_items[1][quantity]=3";
        let path = "/v1/checkout/sessions";
        let (c, asked) = decided_as(path, FORM, body, &[(PRICE, &price(500, "usd", false))]);
        assert_eq!(asked, [PRICE]);
        assert_eq!(amount(&c), "69.97 USD", "2 × 5.00 + 3 × 19.99");
        assert_eq!(
            source(&c, "line_items[0][price]"),
            "5.00 USD per unit (GET /v1/prices/price_1)"
        );
        assert!(!one(&c).sources.contains_key("currency"), "a line gives it");
        // Only looked-up prices: the currency is theirs.
        let c = decided(
            path,
            "mode=payment&line_items[0][price]=price_1&line_items[0][quantity]=3&line_items[1][price]=price_1&line_items[1][quantity]=1",
            &[(PRICE, &price(150000, "huf", false))],
        );
        assert_eq!(amount(&c), "6000.00 HUF", "HUF is two-decimal for charges");
        assert_eq!(source(&c, "currency"), "huf (GET /v1/prices/price_1)");
        assert_eq!(
            lookups_for(
                path,
                "mode=payment&line_items[0][price]=price_1&line_items[0][quantity]=3&line_items[1][price]=price_1&line_items[1][quantity]=1",
                &[]
            ),
            [PRICE],
            "one lookup per price"
        );
        // Mixed currencies: unreadable.
        assert_is(
            &decided(path, body, &[(PRICE, &price(500, "eur", false))]),
            "unreadable",
            &["mix currencies"],
        );
        // Not looked up, or failed: unreadable, naming the Price.
        assert_is(&post_with(path, body, &[]), "unreadable", &["Price"]);
        assert_is(&decided(path, body, &[]), "unreadable", &["Price", "404"]);
    }

    #[test]
    fn prices_leash_cannot_turn_into_one_amount_are_unreadable() {
        let path = "/v1/checkout/sessions";
        let body = "mode=payment&line_items[0][price]=price_1&line_items[0][quantity]=1";
        let with = |answer: &str| decided(path, body, &[(PRICE, answer)]);
        for (answer, needle) in [
            (price(500, "eur", true), "recurring"),
            (
                r#"{"object":"price","billing_scheme":"tiered","currency":"eur","unit_amount":null}"#.to_owned(),
                "tiers",
            ),
            (
                r#"{"object":"price","currency":"eur","unit_amount":null,"custom_unit_amount":{"preset":500}}"#.to_owned(),
                "custom_unit_amount",
            ),
            (
                r#"{"object":"price","currency":"eur","unit_amount":100,"transform_quantity":{"divide_by":10,"round":"up"}}"#.to_owned(),
                "transform_quantity",
            ),
            (
                r#"{"object":"price","currency":"eur","unit_amount":null,"unit_amount_decimal":"1999.5"}"#.to_owned(),
                "fractional",
            ),
            (
                r#"{"object":"price","currency":"eur","unit_amount":-1}"#.to_owned(),
                "non-negative",
            ),
            (r#"{"object":"price","currency":"eur"}"#.to_owned(), "neither"),
            (r#"{"object":"price","unit_amount":1}"#.to_owned(), "no `currency`"),
            (r#"{"object":"product","unit_amount":1,"currency":"eur"}"#.to_owned(), r#"not of kind "price""#),
        ] {
            let c = with(&answer);
            assert_is(&c, "unreadable", &[needle]);
            assert_eq!(c.operation(), "checkout_session.create");
        }
        // A whole `unit_amount_decimal` is read exactly.
        let c = with(
            r#"{"object":"price","currency":"eur","unit_amount":null,"unit_amount_decimal":"1999.000000000000"}"#,
        );
        assert_eq!(amount(&c), "19.99 EUR");
        // Price ids that are no ids, and both a price and price_data.
        assert_is(
            &post_with(
                path,
                "mode=payment&line_items[0][price]=..%2Fx&line_items[0][quantity]=1",
                &[],
            ),
            "unreadable",
            &["not a Stripe object id"],
        );
        assert_is(
            &post_with(
                path,
                "mode=payment&line_items[0][price]=price_1&line_items[0][price_data][currency]=eur&line_items[0][quantity]=1",
                &[],
            ),
            "unreadable",
            &["both given"],
        );
    }

    #[test]
    fn too_many_prices_are_not_looked_up() {
        let body: String =
            std::iter::once("mode=payment".to_owned())
                .chain((0..21).map(|i| {
                    format!("&line_items[{i}][price]=price_{i}&line_items[{i}][quantity]=1")
                }))
                .collect();
        assert!(lookups_for("/v1/checkout/sessions", &body, &[]).is_empty());
        assert_is(
            &post_with("/v1/checkout/sessions", &body, &[]),
            "unreadable",
            &["at most 20"],
        );
    }

    #[test]
    fn invoice_items_priced_by_a_looked_up_price() {
        let path = "/v1/invoiceitems";
        // stripe.InvoiceItem.create(customer="cus_1", pricing={"price": "price_1"}, quantity=3)
        let body = "customer=cus_1&pricing[price]=price_1&quantity=3";
        assert_eq!(lookups_for(path, body, &[]), [PRICE]);
        let c = decided(path, body, &[(PRICE, &price(1250, "jpy", false))]);
        assert_eq!(amount(&c), "3750 JPY");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_1"));
        assert_eq!(source(&c, "currency"), "jpy (GET /v1/prices/price_1)");
        assert_eq!(
            source(&c, "pricing[price]"),
            "1250 JPY per unit (GET /v1/prices/price_1)"
        );
        // The older `price`, one unit by default.
        let c = decided(
            path,
            "customer=cus_1&price=price_1",
            &[(PRICE, &price(999, "eur", false))],
        );
        assert_eq!(amount(&c), "9.99 EUR");
        // A currency the request states must be the Price's.
        assert_is(
            &decided(
                path,
                "customer=cus_1&price=price_1&currency=usd",
                &[(PRICE, &price(999, "eur", false))],
            ),
            "unreadable",
            &["differs"],
        );
        assert_is(
            &post_with(
                path,
                "customer=cus_1&price=price_1&pricing[price]=price_1",
                &[],
            ),
            "unreadable",
            &["several amount sources"],
        );
        assert_is(
            &post_with(
                path,
                "customer=cus_1&pricing[price]=price_1&pricing[x]=1",
                &[],
            ),
            "unreadable",
            &["pricing[x]"],
        );
        // An update keeps the item's quantity unless it states one.
        let update = "/v1/invoiceitems/ii_1";
        assert_is(
            &decided(
                update,
                "price=price_1",
                &[(PRICE, &price(999, "eur", false))],
            ),
            "unreadable",
            &["current quantity"],
        );
        let c = decided(
            update,
            "price=price_1&quantity=2",
            &[(PRICE, &price(999, "eur", false))],
        );
        assert_eq!(amount(&c), "19.98 EUR");
        assert_eq!(one(&c).operation, "invoiceitem.update");
    }

    /// stripe.Subscription.create(customer="cus_1",
    ///   items=[{"price": "price_1", "quantity": 2},
    ///     {"price_data": {"currency": "usd", "product": "prod_1",
    ///      "unit_amount": 500, "recurring": {"interval": "month"}}}],
    ///   add_invoice_items=[{"price_data": {"currency": "usd",
    ///     "product": "prod_1", "unit_amount": 2500}}])
    const SUBSCRIPTION: &str = "customer=cus_1&items[0][price]=price_1&items[0][quantity]=2&items[1][price_data][currency]=usd&items[1][price_data][product]=prod_1&items[1][price_data][unit_amount]=500&items[1][price_data][recurring][interval]=month&add_invoice_items[0][price_data][currency]=usd&add_invoice_items[0][price_data][product]=prod_1&add_invoice_items[0][price_data][unit_amount]=2500";

    #[test]
    fn a_subscription_counts_one_period_of_its_items_plus_one_off_items() {
        let path = "/v1/subscriptions";
        assert_eq!(lookups_for(path, SUBSCRIPTION, &[]), [PRICE]);
        let c = decided(path, SUBSCRIPTION, &[(PRICE, &price(1000, "usd", true))]);
        assert_eq!(amount(&c), "50.00 USD", "2 × 10.00 + 5.00 + 25.00");
        let d = one(&c);
        assert_eq!(
            (d.operation.as_str(), d.category.as_str()),
            ("subscription.create", "subscription")
        );
        assert_eq!(d.beneficiary.as_deref(), Some("cus_1"));
        assert!(source(&c, "items[0][price]").contains("10.00 USD per unit"));
        // A connected account that receives the money wins.
        let c = decided(
            path,
            &format!("{SUBSCRIPTION}&transfer_data[destination]=acct_1&currency=usd"),
            &[(PRICE, &price(1000, "usd", true))],
        );
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_1"));
        for (body, needle) in [
            ("customer=cus_1".to_owned(), "no `items`"),
            (format!("{SUBSCRIPTION}&backdate_start_date=1700000000"), "backdated"),
            (format!("{SUBSCRIPTION}&currency=eur"), "differs"),
            ("customer=cus_1&items[0][plan]=plan_1".to_owned(), "items[0][plan]"),
            (
                "customer=cus_1&items[0][price_data][currency]=usd&items[0][price_data][unit_amount_decimal]=1.5".to_owned(),
                "fractional",
            ),
            (
                "customer=cus_1&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=5&add_invoice_items[0][price_data][currency]=usd&add_invoice_items[0][price_data][unit_amount]=1&add_invoice_items[0][price_data][recurring][interval]=month".to_owned(),
                "recurring",
            ),
        ] {
            let c = decided(path, &body, &[(PRICE, &price(1000, "usd", true))]);
            assert_is(&c, "unreadable", &[needle]);
            assert_eq!(c.operation(), "subscription.create");
        }
        // A metered price bills usage later: unreadable.
        let metered = r#"{"object":"price","currency":"usd","unit_amount":5,"recurring":{"interval":"month","usage_type":"metered"}}"#;
        assert_is(
            &decided(
                path,
                "customer=cus_1&items[0][price]=price_1",
                &[(PRICE, metered)],
            ),
            "unreadable",
            &["metered"],
        );
        assert_is(
            &decided(path, SUBSCRIPTION, &[]),
            "unreadable",
            &["items[0][price]", "404"],
        );
    }

    #[test]
    fn subscription_updates() {
        let path = "/v1/subscriptions/sub_1";
        let safe = Classification::Safe {
            operation: "subscription.update".into(),
        };
        assert_eq!(post_with(path, "metadata[a]=1&description=x", &[]), safe);
        assert_eq!(post_with(path, "default_payment_method=pm_1", &[]), safe);
        for field in [
            "cancel_at_period_end=false",
            "trial_end=now",
            "coupon=c1",
            "billing_cycle_anchor=now",
        ] {
            let c = post_with(path, field, &[]);
            assert_eq!(c.kind(), "unknown", "{field}");
        }
        // A new item: its whole amount.
        let c = decided(
            path,
            "items[0][price]=price_1&items[0][quantity]=3&proration_behavior=always_invoice",
            &[(PRICE, &price(700, "eur", true))],
        );
        assert_eq!(amount(&c), "21.00 EUR");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("sub_1"));
        // An existing item keeps its price (or quantity): looked up on it.
        let item = r#"{"id":"si_1","object":"subscription_item","quantity":2,"subscription":"sub_1","price":{"id":"price_9","object":"price","billing_scheme":"per_unit","currency":"gbp","unit_amount":1200,"recurring":{"interval":"month","usage_type":"licensed"},"type":"recurring"}}"#;
        let body = "items[0][id]=si_1&items[0][quantity]=5";
        assert_eq!(
            lookups_for(path, body, &[]),
            ["/v1/subscription_items/si_1"]
        );
        let c = decided(path, body, &[("/v1/subscription_items/si_1", item)]);
        assert_eq!(amount(&c), "60.00 GBP");
        assert!(source(&c, "items[0][price]").contains("the item's current price"));
        assert_eq!(
            source(&c, "currency"),
            "gbp (GET /v1/subscription_items/si_1)"
        );
        let c = decided(
            path,
            "items[0][id]=si_1&items[0][price]=price_1",
            &[
                ("/v1/subscription_items/si_1", item),
                (PRICE, &price(100, "gbp", true)),
            ],
        );
        assert_eq!(amount(&c), "2.00 GBP");
        assert!(source(&c, "items[0][quantity]").contains("2, the item's current quantity"));
        // Removing items only: unknown, never safe.
        let c = post_with(path, "items[0][id]=si_1&items[0][deleted]=true", &[]);
        assert_is(&c, "unknown", &["removes items"]);
        assert!(lookups_for(path, "items[0][id]=si_1&items[0][deleted]=true", &[]).is_empty());
        // Resetting the cycle with items charges everything.
        assert_is(
            &post_with(
                path,
                "items[0][price]=price_1&billing_cycle_anchor=now",
                &[],
            ),
            "unreadable",
            &["billing_cycle_anchor"],
        );
        assert_is(
            &post_with(path, "items[0][price]=price_1&coupon=c1", &[]),
            "unreadable",
            &["coupon"],
        );
        assert_is(
            &decided(path, body, &[]),
            "unreadable",
            &["existing item", "404"],
        );
    }

    #[test]
    fn subscription_items() {
        let c = decided(
            "/v1/subscription_items",
            "subscription=sub_1&price=price_1&quantity=3&proration_behavior=none",
            &[(PRICE, &price(400, "eur", true))],
        );
        assert_eq!(amount(&c), "12.00 EUR");
        assert_eq!(one(&c).operation, "subscription_item.create");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("sub_1"));
        let c = post_with(
            "/v1/subscription_items",
            "subscription=sub_1&price_data[currency]=eur&price_data[product]=prod_1&price_data[unit_amount]=250&price_data[recurring][interval]=month",
            &[],
        );
        assert_eq!(amount(&c), "2.50 EUR");
        assert_is(
            &post_with("/v1/subscription_items", "subscription=sub_1", &[]),
            "unreadable",
            &["no `price`"],
        );
        assert_is(
            &post_with(
                "/v1/subscription_items",
                "subscription=sub_1&price=price_1&frob=1",
                &[],
            ),
            "unreadable",
            &["frob"],
        );
        // Updates: the item supplies what the request keeps.
        let path = "/v1/subscription_items/si_1";
        let item = r#"{"object":"subscription_item","quantity":1,"price":{"object":"price","currency":"usd","unit_amount":900,"recurring":{"interval":"month"}}}"#;
        assert_eq!(
            lookups_for(path, "quantity=4", &[]),
            ["/v1/subscription_items/si_1"]
        );
        let c = decided(path, "quantity=4", &[("/v1/subscription_items/si_1", item)]);
        assert_eq!(amount(&c), "36.00 USD");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("si_1"));
        assert_eq!(
            post_with(path, "metadata[a]=1", &[]),
            Classification::Safe {
                operation: "subscription_item.update".into()
            }
        );
        assert_eq!(post_with(path, "tax_rates[0]=txr_1", &[]).kind(), "unknown");
        assert!(lookups_for(path, "metadata[a]=1", &[]).is_empty());
    }
}
