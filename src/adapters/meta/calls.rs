//! One Graph call — a request, or one item of a batch — read as what it
//! does with money (research §2.3).
//!
//! A call's reading and the lookups it needs come from one function,
//! [`read`]: it returns the classification it can give with the facts at
//! hand and records in `need` what it would have to look up to do better.
//! [`super::MetaAdapter::lookups`] asks it for `need`;
//! [`super::MetaAdapter::classify`] for the classification. A path cannot be
//! read one way for its lookups and another for its decision.

use std::collections::BTreeMap;

use crate::adapters::json::Json;
use crate::intent::{Classification, Facts, IntentDraft, Lookup};
use crate::money::{minor_value_to_major, parse_minor_digits, Currency, Money};

use super::params::{ParamError, Params};
use super::{field, safe, shown, units, VENDOR};

/// Fields that set an amount of money a campaign or ad set may spend, in
/// the account's currency at Meta's offset (research §2.3, [FB-CAMP]).
/// Budgets, caps and spend targets bound what the object spends; a bid
/// bounds what it pays per result. One write's intent is the largest of
/// those it sets (see the module docs of `super`).
pub(super) const MONEY_FIELDS: &[&str] = &[
    "daily_budget",
    "lifetime_budget",
    "spend_cap",
    "bid_amount",
    "daily_spend_cap",
    "lifetime_spend_cap",
    "daily_min_spend_target",
    "lifetime_min_spend_target",
];

/// Fields that commit money in a way leash does not read exactly:
/// scheduled budget changes (`budget_value` may be a multiplier, its unit
/// is not documented), reach-and-frequency reservations.
const UNREAD_MONEY_FIELDS: &[&str] = &["budget_schedule_specs", "rf_prediction_id"];

/// Parameters about the call itself, not the object: credentials, which
/// fields to answer with, output format.
const TRANSPORT: &[&str] = &[
    "access_token",
    "appsecret_proof",
    "method",
    "fields",
    "include_headers",
    "locale",
    "pretty",
    "suppress_http_code",
    "format",
    "debug",
    "date_format",
    "execution_options",
];

/// Campaign and ad set fields (facebook-python-business-sdk's
/// `Campaign`/`AdSet` create and update params, [FB-CAMP]) that set no
/// amount: targeting, scheduling, optimisation, labels, status. A field in
/// none of the lists makes the write unknown.
const OBJECT_FIELDS: &[&str] = &[
    "name",
    "objective",
    "status",
    "special_ad_categories",
    "special_ad_category",
    "special_ad_category_country",
    "bid_strategy",
    "bid_constraints",
    "bid_adjustments",
    "campaign_id",
    "campaign_optimization_type",
    "targeting",
    "billing_event",
    "optimization_goal",
    "optimization_sub_event",
    "promoted_object",
    "start_time",
    "end_time",
    "stop_time",
    "pacing_type",
    "destination_type",
    "attribution_spec",
    "adlabels",
    "adset_schedule",
    "frequency_control_specs",
    "daily_imps",
    "lifetime_imps",
    "is_adset_budget_sharing_enabled",
    "budget_rebalance_flag",
    "is_skadnetwork_attribution",
    "is_dynamic_creative",
    "smart_promotion_type",
    "source_campaign_id",
    "source_adset_id",
    "topline_id",
    "upstream_events",
    "dsa_beneficiary",
    "dsa_payor",
    "creative_sequence",
    "multi_optimization_goal_weight",
    "tune_for_category",
    "regional_regulated_categories",
    "regional_regulation_identities",
    "iterative_split_test_configs",
    "time_based_ad_rotation_id_blocks",
    "time_based_ad_rotation_intervals",
    "existing_customer_budget_percentage",
    "min_budget_spend_percentage",
    "buying_type",
    // Ads (`POST /{ad_id}`): what they show, not what they spend.
    "creative",
    "adset_id",
    "tracking_specs",
    "conversion_domain",
    "display_sequence",
    "source_ad_id",
];

/// Ad account fields that change no money (`POST /act_{id}`).
const ACCOUNT_FIELDS: &[&str] = &[
    "name",
    "end_advertiser",
    "media_agency",
    "partner",
    "agency_client_declaration",
    "business_info",
    "is_notifications_enabled",
];

/// Ad account fields that do: the account's spend cap (a float in the SDK,
/// its unit not documented, research §2.4) and its currency.
const ACCOUNT_MONEY_FIELDS: &[&str] = &["spend_cap", "spend_cap_action", "currency"];

/// Edges of an ad account whose creates commit no money of their own
/// (creatives, media, audiences, labels, pixels). Ads spend their ad set's
/// budget, which leash counted when it was set; an ad that sets a bid is
/// read like an ad set.
const ACCOUNT_SAFE_EDGES: &[&str] = &[
    "adcreatives",
    "adimages",
    "advideos",
    "customaudiences",
    "adlabels",
    "adspixels",
    "saved_audiences",
];

/// Lookups per request at most (a batch of updates names many objects).
pub(super) const MAX_LOOKUPS: usize = 20;

/// What a call's reading needs besides itself.
pub(super) struct Ctx<'a> {
    /// `vendors.meta.accounts`.
    pub accounts: &'a BTreeMap<String, Currency>,
    pub facts: &'a Facts,
    /// The request's version prefix (`/v25.0`), or empty: lookups are made
    /// in the version the agent speaks.
    pub version: &'a str,
}

/// One call: its method (the HTTP method, or a batch item's), its path,
/// its parameters.
pub(super) struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub params: &'a Params,
}

/// What a call does, by Graph's own rule for methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Read,
    Post,
    Delete,
}

/// The verb Graph applies. Graph takes the method from a `method`
/// parameter too ([FB-METHOD], research §2.2: "second-hand"); leash reads
/// the more dangerous of the two, so `GET …?method=post` is a write and a
/// `POST` with `method=get` is still one.
fn verb(method: &str, param: Option<&str>) -> Result<Verb, String> {
    let one = |m: &str| match m.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" | "OPTIONS" => Ok(Verb::Read),
        "POST" => Ok(Verb::Post),
        "DELETE" => Ok(Verb::Delete),
        _ => Err(format!(
            "method {} is not one Graph's API uses for known operations",
            shown(m)
        )),
    };
    let http = one(method)?;
    let param = param.map(one).transpose()?;
    Ok(match (http, param) {
        (Verb::Post, _) | (_, Some(Verb::Post)) => Verb::Post,
        (Verb::Delete, _) | (_, Some(Verb::Delete)) => Verb::Delete,
        _ => Verb::Read,
    })
}

/// A path's segments after its optional version (`/v25.0/act_1/adsets` →
/// `["act_1", "adsets"]`), with one trailing `/` allowed (the Python SDK's
/// updates end in `/`), or `None` when it is not canonical: an empty
/// segment elsewhere, or a byte other than letters, digits and `_`.
pub(super) fn segments(path: &str) -> Option<(Option<&str>, Vec<&str>)> {
    let rest = path.strip_prefix('/')?;
    if rest.starts_with('/') {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut segs: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    let version = match segs.first() {
        Some(v) if is_version(v) => {
            let v = *v;
            segs.remove(0);
            Some(v)
        }
        _ => None,
    };
    let ok = segs
        .iter()
        .all(|s| !s.is_empty() && s.bytes().all(crate::adapters::path::id_byte));
    ok.then_some((version, segs))
}

/// `vNN.N`, as Graph spells versions.
pub(super) fn is_version(seg: &str) -> bool {
    let Some(rest) = seg.strip_prefix('v') else {
        return false;
    };
    match rest.split_once('.') {
        Some((major, minor)) => {
            !major.is_empty()
                && !minor.is_empty()
                && major.len() <= 3
                && minor.len() <= 3
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// `act_<digits>`.
fn ad_account(seg: &str) -> Option<&str> {
    let digits = seg.strip_prefix("act_")?;
    let ok = !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(seg)
}

/// A numeric Graph object id.
fn object_id(seg: &str) -> Option<&str> {
    let ok = !seg.is_empty() && seg.len() <= 30 && seg.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(seg)
}

fn unknown(operation: &str, reason: String) -> Classification {
    Classification::Unknown {
        operation: operation.to_owned(),
        reason,
    }
}

fn unreadable(operation: &str, reason: String) -> Classification {
    Classification::Unreadable {
        operation: operation.to_owned(),
        reason,
    }
}

fn from_param_error(operation: &str, e: ParamError) -> Classification {
    match e {
        ParamError::Ambiguous(reason) => Classification::Ambiguous {
            operation: operation.to_owned(),
            reason,
        },
        ParamError::Unreadable(reason) => unreadable(operation, reason),
    }
}

/// The operation a path names, before its parameters are read (for the
/// record of a call whose parameters cannot be read).
pub(super) fn operation_of(path: &str) -> &'static str {
    match segments(path).as_ref().map(|(_, s)| s.as_slice()) {
        Some([act, "campaigns"]) if ad_account(act).is_some() => "campaign.create",
        Some([act, "adsets"]) if ad_account(act).is_some() => "adset.create",
        Some([act]) if ad_account(act).is_some() => "ad_account.update",
        Some([id]) if object_id(id).is_some() => "object.update",
        Some([id, "copies"]) if object_id(id).is_some() => "object.copy",
        Some([]) => "batch",
        _ => "unknown",
    }
}

/// Reads one call. Never panics; `need` gets what is missing from
/// `ctx.facts`.
pub(super) fn read(call: &Call<'_>, ctx: &Ctx<'_>, need: &mut Vec<Lookup>) -> Classification {
    let op = operation_of(call.path);
    let method_param = match call.params.text("method") {
        Ok(m) => m,
        Err(e) => return from_param_error(op, e),
    };
    let verb = match verb(call.method, method_param.as_deref()) {
        Ok(v) => v,
        Err(reason) => return unknown(op, reason),
    };
    match verb {
        Verb::Read => return safe("read"),
        // Deleting a campaign, ad set or ad stops its delivery.
        Verb::Delete => return safe("object.delete"),
        Verb::Post => {}
    }
    let Some((_, segs)) = segments(call.path) else {
        return unknown(
            "unknown",
            format!(
                "POST {} is not a canonical Graph path (an optional vNN.N, then segments of letters, digits and '_')",
                shown(call.path)
            ),
        );
    };
    match segs.as_slice() {
        [] => unknown(
            "unknown",
            "a POST to the Graph root without `batch` is not an operation leash knows".to_owned(),
        ),
        [act, "campaigns"] if ad_account(act).is_some() => {
            create(call.params, ctx, need, "campaign.create", act, true)
        }
        [act, "adsets"] if ad_account(act).is_some() => {
            create(call.params, ctx, need, "adset.create", act, true)
        }
        [act, "ads"] if ad_account(act).is_some() => {
            create(call.params, ctx, need, "ad.create", act, false)
        }
        [act, edge] if ad_account(act).is_some() && ACCOUNT_SAFE_EDGES.contains(edge) => {
            safe(&format!("{}.create", edge.trim_end_matches('s')))
        }
        [act, "async_batch_requests"] if ad_account(act).is_some() => unreadable(
            "async_batch.create",
            "an asynchronous batch (`adbatch`) runs requests whose format Meta does not document; leash does not read it".to_owned(),
        ),
        [act] if ad_account(act).is_some() => account_update(call.params),
        [id] if object_id(id).is_some() => update(call.params, ctx, need, id),
        [id, "copies"] if object_id(id).is_some() => copy(call.params, ctx, need, id),
        _ => unknown(
            "unknown",
            format!(
                "POST {} is not a Graph endpoint leash knows to be safe or knows how to read",
                shown(call.path)
            ),
        ),
    }
}

/// The first parameter that is in none of `lists`.
fn first_unknown<'p>(params: &'p Params, lists: &[&[&str]]) -> Option<&'p str> {
    params.names().find(|name| {
        let root = crate::adapters::root_of(name);
        !lists.iter().any(|l| l.contains(&root))
    })
}

/// The money fields a call sets, as integers of Meta's unit; an unread
/// money field or a `buying_type` other than an auction is unreadable.
fn money_fields(params: &Params) -> Result<Vec<(&'static str, u128)>, ParamError> {
    if let Some(f) = UNREAD_MONEY_FIELDS.iter().find(|f| params.has(f)) {
        return Err(ParamError::Unreadable(format!(
            "`{f}` commits money in a way leash does not read exactly"
        )));
    }
    if let Some(kind) = params.text("buying_type")? {
        if kind != "AUCTION" {
            return Err(ParamError::Unreadable(format!(
                "`buying_type` is {}: a reserved buy's price is not in the request",
                shown(&kind)
            )));
        }
    }
    let mut out = Vec::new();
    for name in MONEY_FIELDS {
        if let Some(text) = params.text(name)? {
            out.push((*name, integer(name, &text)?));
        }
    }
    Ok(out)
}

/// A non-negative integer of Meta's unit: digits only, no sign, point,
/// exponent or leading zero (the SDK param type is unsigned int).
fn integer(name: &str, text: &str) -> Result<u128, ParamError> {
    parse_minor_digits(text).map_err(|e| {
        ParamError::Unreadable(format!(
            "`{}` is not a whole number of the currency's unit: {e}",
            field(name)
        ))
    })
}

/// One more intent per ad set a campaign write budgets (`adset_budgets`,
/// `adset_bid_amounts`, [FB-CAMP]): `(ad set id, field, value)`.
fn adset_money(params: &Params) -> Result<Vec<(String, &'static str, u128)>, ParamError> {
    let mut out = Vec::new();
    if let Some(list) = params.json("adset_budgets")? {
        let Json::Array(entries) = list else {
            return Err(ParamError::Unreadable(
                "`adset_budgets` is not a list".to_owned(),
            ));
        };
        for (i, entry) in entries.iter().enumerate() {
            let bad = |why: &str| {
                ParamError::Unreadable(format!("`adset_budgets` entry {}: {why}", i + 1))
            };
            let Json::Object(members) = entry else {
                return Err(bad("not an object"));
            };
            let mut id = None;
            let mut budgets = Vec::new();
            for (k, v) in members {
                match k.as_str() {
                    "adset_id" => id = v.scalar_text().and_then(object_id).map(str::to_owned),
                    "daily_budget" | "lifetime_budget" => {
                        let name = if k == "daily_budget" {
                            "daily_budget"
                        } else {
                            "lifetime_budget"
                        };
                        let text = v
                            .scalar_text()
                            .ok_or_else(|| bad("a budget is not a number"))?;
                        budgets.push((name, integer(name, text)?));
                    }
                    other => {
                        return Err(bad(&format!(
                            "has {}, which leash does not read",
                            shown(other)
                        )))
                    }
                }
            }
            let id = id.ok_or_else(|| bad("no readable `adset_id`"))?;
            if budgets.is_empty() {
                return Err(bad("sets no budget"));
            }
            for (name, value) in budgets {
                out.push((id.clone(), name, value));
            }
        }
    }
    if let Some(map) = params.json("adset_bid_amounts")? {
        let Json::Object(members) = map else {
            return Err(ParamError::Unreadable(
                "`adset_bid_amounts` is not a map of ad set ids to bids".to_owned(),
            ));
        };
        for (id, bid) in &members {
            let id = object_id(id).ok_or_else(|| {
                ParamError::Unreadable(format!(
                    "`adset_bid_amounts` names {}, not an ad set id",
                    shown(id)
                ))
            })?;
            let text = bid.scalar_text().ok_or_else(|| {
                ParamError::Unreadable(
                    "`adset_bid_amounts` holds a bid that is not a number".to_owned(),
                )
            })?;
            out.push((
                id.to_owned(),
                "bid_amount",
                integer("adset_bid_amounts", text)?,
            ));
        }
    }
    Ok(out)
}

/// A value of Meta's unit as money in `currency`.
fn to_money(name: &str, value: u128, currency: Currency) -> Result<Money, String> {
    let exp = units::offset_exponent(&currency).ok_or_else(|| {
        format!(
            "the ad account's currency is {currency}, for which Meta documents no offset; leash will not guess one"
        )
    })?;
    minor_value_to_major(value, exp)
        .map(|amount| Money::new(amount, currency))
        .map_err(|e| format!("`{}`: {e}", field(name)))
}

/// Where a value came from, the facts' way: `GET /v25.0/act_1?fields=currency`.
fn lookup_or_need(
    ctx: &Ctx<'_>,
    need: &mut Vec<Lookup>,
    path: String,
    why: &str,
    what: &str,
) -> Result<(Json, String), String> {
    if let Some(json) = ctx.facts.get(&path) {
        return Ok((json.clone(), ctx.facts.source(&path)));
    }
    if let Some(failure) = ctx.facts.failure(&path) {
        return Err(format!("{what} could not be looked up: {failure}"));
    }
    need.push(Lookup {
        path,
        body: None,
        why: why.to_owned(),
    });
    Err(format!("{what} was not looked up"))
}

/// The path at which an ad account's currency is looked up.
pub(super) fn currency_path(version: &str, act: &str) -> String {
    format!("{version}/{act}?fields=currency")
}

/// The path at which an object's ad account is looked up.
pub(super) fn account_path(version: &str, id: &str) -> String {
    format!("{version}/{id}?fields=account_id")
}

/// The path at which an object's own budget (and account) is looked up.
pub(super) fn budget_path(version: &str, id: &str) -> String {
    format!("{version}/{id}?fields=account_id,daily_budget,lifetime_budget")
}

/// The ad account's currency: `vendors.meta.accounts`, else looked up
/// (`GET /act_{id}?fields=currency`, [FB-CAMP]).
fn account_currency(
    ctx: &Ctx<'_>,
    need: &mut Vec<Lookup>,
    act: &str,
) -> Result<(Currency, String), String> {
    if let Some(currency) = ctx.accounts.get(act) {
        return Ok((*currency, format!("{currency} (vendors.meta.accounts)")));
    }
    let (json, source) = lookup_or_need(
        ctx,
        need,
        currency_path(ctx.version, act),
        "budgets are integers of the ad account's currency at Meta's offset",
        &format!("the currency of {act}"),
    )?;
    let text = json
        .pointer("/currency")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("the answer for {act} has no `currency`"))?;
    let currency =
        Currency::parse(text).map_err(|e| format!("the currency of {act} is not readable: {e}"))?;
    Ok((currency, format!("{currency} ({source})")))
}

/// `act_<account_id>` from a looked-up object.
fn account_of(json: &Json, id: &str) -> Result<String, String> {
    let digits = json
        .pointer("/account_id")
        .and_then(Json::scalar_text)
        .ok_or_else(|| format!("the answer for {id} has no `account_id`"))?;
    let act = format!("act_{digits}");
    ad_account(&act)
        .map(str::to_owned)
        .ok_or_else(|| format!("the answer for {id} names no readable ad account"))
}

/// Builds the intents of a call that sets money on an object of `act`
/// (and, for a campaign, on its ad sets).
#[allow(clippy::too_many_arguments)]
fn intents(
    ctx: &Ctx<'_>,
    need: &mut Vec<Lookup>,
    op: &str,
    act: &str,
    act_source: Option<String>,
    own: &[(&'static str, u128)],
    adsets: &[(String, &'static str, u128)],
) -> Classification {
    let (currency, currency_source) = match account_currency(ctx, need, act) {
        Ok(c) => c,
        Err(reason) => return unreadable(op, reason),
    };
    let base_sources = || {
        let mut s = BTreeMap::new();
        s.insert("currency".to_owned(), currency_source.clone());
        if let Some(from) = &act_source {
            s.insert("beneficiary".to_owned(), format!("{act} ({from})"));
        }
        s
    };
    let mut drafts = Vec::new();
    if let Some(&(largest_field, largest)) = own.iter().max_by_key(|(_, v)| *v) {
        let mut sources = base_sources();
        for (name, value) in own {
            match to_money(name, *value, currency) {
                Ok(m) => sources.insert((*name).to_owned(), m.to_string()),
                Err(reason) => return unreadable(op, reason),
            };
        }
        if own.len() > 1 {
            sources.insert(
                "amount".to_owned(),
                format!("the largest of the fields set: `{largest_field}`"),
            );
        }
        let amount = match to_money(largest_field, largest, currency) {
            Ok(m) => m,
            Err(reason) => return unreadable(op, reason),
        };
        drafts.push(draft(op, amount, act, sources));
    }
    for (adset, name, value) in adsets {
        let amount = match to_money(name, *value, currency) {
            Ok(m) => m,
            Err(reason) => return unreadable(op, reason),
        };
        let mut sources = base_sources();
        sources.insert(
            "adset".to_owned(),
            format!("{adset} (`{name}` in the campaign write)"),
        );
        drafts.push(draft("adset.update", amount, act, sources));
    }
    Classification::spend(op, drafts)
}

fn draft(op: &str, amount: Money, act: &str, sources: BTreeMap<String, String>) -> IntentDraft {
    IntentDraft {
        vendor: VENDOR.to_owned(),
        operation: op.to_owned(),
        amount: Some(amount),
        beneficiary: Some(act.to_owned()),
        category: "ad_spend".to_owned(),
        idempotency_key: None,
        sources,
    }
}

/// `POST /act_{id}/campaigns|adsets|ads`.
fn create(
    params: &Params,
    ctx: &Ctx<'_>,
    need: &mut Vec<Lookup>,
    op: &str,
    act: &str,
    strict: bool,
) -> Classification {
    if strict {
        if let Some(name) = first_unknown(
            params,
            &[
                TRANSPORT,
                OBJECT_FIELDS,
                MONEY_FIELDS,
                UNREAD_MONEY_FIELDS,
                &["adset_budgets", "adset_bid_amounts"],
            ],
        ) {
            return unknown(
                op,
                format!("{op} sets `{}`, which leash does not know", field(name)),
            );
        }
    }
    let (own, adsets) = match money_fields(params).and_then(|o| Ok((o, adset_money(params)?))) {
        Ok(m) => m,
        Err(e) => return from_param_error(op, e),
    };
    if params.validate_only() {
        return safe(&format!("{op}.validate_only"));
    }
    if own.is_empty() && adsets.is_empty() {
        // No budget of its own (an ad set under a campaign budget, a
        // campaign whose ad sets hold the budgets): it commits nothing new.
        return safe(op);
    }
    intents(ctx, need, op, act, None, &own, &adsets)
}

/// Whether the write sets `status` to ACTIVE (in any letter case).
fn activates(params: &Params) -> Result<bool, ParamError> {
    Ok(params
        .text("status")?
        .is_some_and(|s| s.eq_ignore_ascii_case("ACTIVE")))
}

/// `POST /{object_id}`: a campaign, ad set or ad, by id.
fn update(params: &Params, ctx: &Ctx<'_>, need: &mut Vec<Lookup>, id: &str) -> Classification {
    let op = "object.update";
    if let Some(name) = first_unknown(
        params,
        &[
            TRANSPORT,
            OBJECT_FIELDS,
            MONEY_FIELDS,
            UNREAD_MONEY_FIELDS,
            &["adset_budgets", "adset_bid_amounts"],
        ],
    ) {
        return unknown(
            op,
            format!(
                "an update of {id} sets `{}`, which leash does not know",
                field(name)
            ),
        );
    }
    let read = money_fields(params).and_then(|o| Ok((o, adset_money(params)?, activates(params)?)));
    let (own, adsets, active) = match read {
        Ok(m) => m,
        Err(e) => return from_param_error(op, e),
    };
    if params.validate_only() {
        return safe("object.update.validate_only");
    }
    if !own.is_empty() || !adsets.is_empty() {
        // The new budget, in the currency of the object's account.
        let path = account_path(ctx.version, id);
        let looked = lookup_or_need(
            ctx,
            need,
            path,
            "an update by object id is in the currency of the object's ad account",
            &format!("the ad account of {id}"),
        );
        let (act, source) =
            match looked.and_then(|(json, source)| Ok((account_of(&json, id)?, source))) {
                Ok(a) => a,
                Err(reason) => return unreadable(op, reason),
            };
        return intents(ctx, need, op, &act, Some(source), &own, &adsets);
    }
    if active {
        return own_budget(
            ctx,
            need,
            "object.activate",
            id,
            "activating it starts spending its budget",
        );
    }
    safe(op)
}

/// `POST /{id}/copies`: a duplicate of a budgeted object spends a budget
/// like the original's ([FB-CAMP], research §10 trap 18).
fn copy(params: &Params, ctx: &Ctx<'_>, need: &mut Vec<Lookup>, id: &str) -> Classification {
    let op = "object.copy";
    match money_fields(params) {
        Ok(own) if !own.is_empty() => {
            return unreadable(
                op,
                "a copy that sets its own budget fields is not read".to_owned(),
            )
        }
        Ok(_) => {}
        Err(e) => return from_param_error(op, e),
    }
    own_budget(ctx, need, op, id, "a copy has the original's budget")
}

/// An amountless spend of object `id`'s own budget, looked up
/// (`GET /{id}?fields=account_id,daily_budget,lifetime_budget`).
fn own_budget(
    ctx: &Ctx<'_>,
    need: &mut Vec<Lookup>,
    op: &str,
    id: &str,
    why: &str,
) -> Classification {
    let path = budget_path(ctx.version, id);
    let (json, source) = match lookup_or_need(ctx, need, path, why, &format!("the budget of {id}"))
    {
        Ok(got) => got,
        Err(reason) => return unreadable(op, reason),
    };
    let act = match account_of(&json, id) {
        Ok(act) => act,
        Err(reason) => return unreadable(op, reason),
    };
    let mut own = Vec::new();
    for name in ["daily_budget", "lifetime_budget"] {
        match json.pointer(&format!("/{name}")).map(|v| v.scalar_text()) {
            None => {}
            Some(Some(text)) => match parse_minor_digits(text) {
                Ok(0) => {}
                Ok(value) => own.push((name, value)),
                Err(e) => return unreadable(op, format!("the looked-up `{name}` of {id}: {e}")),
            },
            Some(None) => {
                return unreadable(
                    op,
                    format!("the looked-up `{name}` of {id} is not a number"),
                )
            }
        }
    }
    if own.is_empty() {
        return unreadable(
            op,
            format!(
                "{id} has no budget of its own (a campaign whose ad sets hold the budgets, or an ad): \
                 leash cannot read how much {} commits",
                if op == "object.copy" { "copying it" } else { "activating it" }
            ),
        );
    }
    let mut c = intents(ctx, need, op, &act, Some(source.clone()), &own, &[]);
    if let Classification::Spend(drafts) = &mut c {
        for d in drafts {
            d.sources
                .insert("object".to_owned(), format!("{id} ({source})"));
        }
    }
    c
}

/// `POST /act_{id}`: the account's own settings.
fn account_update(params: &Params) -> Classification {
    let op = "ad_account.update";
    if let Some(f) = ACCOUNT_MONEY_FIELDS.iter().find(|f| params.has(f)) {
        return unreadable(
            op,
            format!("an ad account's `{f}` changes what it may spend; Meta does not document its unit, so leash does not read it"),
        );
    }
    match first_unknown(params, &[TRANSPORT, ACCOUNT_FIELDS]) {
        Some(name) => unknown(
            op,
            format!("{op} sets `{}`, which leash does not know", field(name)),
        ),
        None => safe(op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_and_without_versions() {
        assert_eq!(
            segments("/v25.0/act_1/adsets"),
            Some((Some("v25.0"), vec!["act_1", "adsets"]))
        );
        assert_eq!(
            segments("/act_1/adsets"),
            Some((None, vec!["act_1", "adsets"]))
        );
        assert_eq!(
            segments("/v25.0/1202/"),
            Some((Some("v25.0"), vec!["1202"]))
        );
        assert_eq!(segments("/v25.0/"), Some((Some("v25.0"), vec![])));
        assert_eq!(segments("/"), Some((None, vec![])));
        for bad in [
            "",
            "act_1",
            "//",
            "/act_1//adsets",
            "/act_1/adsets//",
            "/act_1/ad%73ets",
            "/v25.0/../act_1",
            "/act_1/./adsets",
        ] {
            assert_eq!(segments(bad), None, "{bad}");
        }
        assert!(is_version("v25.0") && is_version("v3.10"));
        assert!(
            !is_version("v25")
                && !is_version("V25.0")
                && !is_version("v.0")
                && !is_version("v25.0.1")
        );
    }

    #[test]
    fn the_more_dangerous_method_wins() {
        assert_eq!(verb("GET", None), Ok(Verb::Read));
        assert_eq!(verb("GET", Some("post")), Ok(Verb::Post));
        assert_eq!(verb("POST", Some("GET")), Ok(Verb::Post));
        assert_eq!(verb("GET", Some("delete")), Ok(Verb::Delete));
        assert_eq!(verb("DELETE", None), Ok(Verb::Delete));
        assert!(verb("PUT", None).is_err());
        assert!(verb("POST", Some("patch")).is_err());
    }
}
