//! Google Ads (`googleads.googleapis.com`, research §3): budgets moved
//! over gRPC, which every official client library but Perl's speaks, and
//! over REST.
//!
//! - gRPC (`content-type: application/grpc`, `:path`
//!   `/google.ads.googleads.vNN.services.<Service>/<Method>`): one
//!   length-prefixed protobuf message, maybe compressed
//!   ([`grpc::one_message`]), read with prost messages that declare only
//!   what leash reads ([`proto`]).
//! - REST (`POST /vNN/customers/{id}/<resource>:mutate`): the proto3 JSON
//!   of the same messages ([`rest`]).
//!
//! Read: `CampaignBudgetService/MutateCampaignBudgets` (a create, or an
//! update that sets `amount_micros` = 21 or `total_amount_micros` = 22, is
//! an intent for the new amount, counted whole like a cap),
//! `CampaignService/MutateCampaigns` (a campaign that starts spending a
//! budget this request does not carry is unreadable: its amount is the
//! budget's) and `GoogleAdsService/Mutate` (each `mutate_operations[]`
//! member as above, those known to move no money safe, the others
//! unknown). `validate_only` is safe; with `partial_failure` or without,
//! every operation is evaluated and the request gets the most severe
//! result. `Search`/`SearchStream` (`googleAds:search`) are safe reads;
//! every other method on the host is unknown.
//!
//! Amounts are micros ÷ 10^6, exactly, in the customer's currency:
//! `vendors.google_ads.accounts`, else looked up with `googleAds:search`
//! (`SELECT customer.currency_code FROM customer`) on the agent's own
//! `authorization`, `developer-token` and `login-customer-id`. The
//! beneficiary is the customer id, digits only; the category `ad_spend`.
//!
//! Refusals answer in the protocol asked: a gRPC trailers-only
//! `PERMISSION_DENIED` with a `GoogleAdsFailure` ([`grpc::shape`]), or
//! Google's JSON error envelope for REST.

use std::collections::BTreeMap;

use crate::adapters::json;
use crate::adapters::{Adapter, Asked, Refusal, Shaped};
use crate::config::GoogleAdsSettings;
use crate::intent::{Classification, Lookup, RequestView};
use crate::money::Currency;

pub mod grpc;
pub mod mutate;
pub mod proto;
pub mod rest;

use mutate::{Known, Problem, Service};

/// The vendor name in intents and policies.
pub const VENDOR: &str = "google_ads";

/// The one host the API and its libraries use (`DEFAULT_ENDPOINT`).
pub const HOST: &str = "googleads.googleapis.com";

/// The currency lookup's query (research §3.5).
pub const CURRENCY_QUERY: &str = r#"{"query":"SELECT customer.currency_code FROM customer"}"#;

/// Headers leash reads: the compression of a gRPC message (two copies, or
/// one `Connection` names, would let the vendor decompress otherwise).
const READ_HEADERS: &[&str] = &["grpc-encoding"];

/// What a lookup copies from the agent's request: its OAuth token, its
/// developer token, and the manager accounts it acts through (research
/// §0.3). Never logged: the lookup cache keeps a digest of them.
const LOOKUP_HEADERS: &[&str] = &[
    "authorization",
    "developer-token",
    "login-customer-id",
    "linked-customer-id",
];

/// The Google Ads adapter, with the customers' currencies from config.
#[derive(Debug, Clone, Default)]
pub struct GoogleAdsAdapter {
    /// Customer id (digits) → currency, from `vendors.google_ads.accounts`.
    accounts: BTreeMap<String, Currency>,
}

impl GoogleAdsAdapter {
    /// From `vendors.google_ads` (already checked by the config loader: a
    /// currency it could not parse is skipped, and then looked up).
    pub fn new(settings: &GoogleAdsSettings) -> GoogleAdsAdapter {
        let accounts = settings
            .accounts
            .iter()
            .filter_map(|(id, code)| Some((id.clone(), Currency::parse(code).ok()?)))
            .collect();
        GoogleAdsAdapter { accounts }
    }
}

/// Where a request goes, read from its path and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route<'a> {
    /// A read (`Search`, a REST GET).
    Read(String),
    /// A mutate leash reads.
    Mutate {
        service: Service,
        version: &'a str,
        grpc: bool,
        /// REST only: the customer in the path.
        customer: Option<&'a str>,
    },
    Unknown(String, String),
    Unreadable(String, String),
    Ambiguous(String, String),
}

/// `v` and digits: an API version (`v25`).
fn version_ok(v: &str) -> bool {
    v.len() > 1 && v.starts_with('v') && v.bytes().skip(1).all(|b| b.is_ascii_digit())
}

fn is_grpc(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let ct = ct.trim().to_ascii_lowercase();
        ct == "application/grpc"
            || ct.starts_with("application/grpc+")
            || ct.starts_with("application/grpc;")
    })
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
    })
}

fn route<'a>(req: &RequestView<'a>) -> Route<'a> {
    let path = req.path;
    let grpc = is_grpc(req.content_type);
    if let Some(rest) = path.strip_prefix("/google.ads.googleads.") {
        let operation = "grpc".to_owned();
        if req.method != "POST" {
            return Route::Unknown(operation, format!("{} on a gRPC method", req.method));
        }
        if !grpc {
            return Route::Unreadable(
                operation,
                "a gRPC method without content-type application/grpc".to_owned(),
            );
        }
        let parsed = rest.split_once('.').and_then(|(version, rest)| {
            let rest = rest.strip_prefix("services.")?;
            let (service, method) = rest.split_once('/')?;
            version_ok(version).then_some((version, service, method))
        });
        let Some((version, service, method)) = parsed else {
            return Route::Unknown(operation, "a gRPC method leash does not know".to_owned());
        };
        let service = match (service, method) {
            ("CampaignBudgetService", "MutateCampaignBudgets") => Service::Budgets,
            ("CampaignService", "MutateCampaigns") => Service::Campaigns,
            ("GoogleAdsService", "Mutate") => Service::GoogleAds,
            ("GoogleAdsService", "Search" | "SearchStream") => {
                return Route::Read(format!("google_ads.{}", method.to_ascii_lowercase()))
            }
            _ => {
                return Route::Unknown(
                    format!("{}/{}", shown(service), shown(method)),
                    "a gRPC method leash does not read".to_owned(),
                )
            }
        };
        return Route::Mutate {
            service,
            version,
            grpc: true,
            customer: None,
        };
    }
    if grpc {
        return Route::Unknown(
            "grpc".to_owned(),
            format!("a gRPC call to {}, not a Google Ads service", shown(path)),
        );
    }
    if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
        return Route::Read("read".to_owned());
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
    let (version, customer, verb) = match segments.as_slice() {
        [version, "customers", customer, verb] if version_ok(version) => {
            (*version, *customer, *verb)
        }
        _ => return unknown_rest(req),
    };
    let service = match verb {
        "campaignBudgets:mutate" => Service::Budgets,
        "campaigns:mutate" => Service::Campaigns,
        "googleAds:mutate" => Service::GoogleAds,
        "googleAds:search" | "googleAds:searchStream" if req.method == "POST" => {
            return Route::Read("google_ads.search".to_owned())
        }
        _ => return unknown_rest(req),
    };
    if req.method != "POST" {
        return Route::Unknown(
            service.operation().to_owned(),
            format!("{} on a mutate method", req.method),
        );
    }
    Route::Mutate {
        service,
        version,
        grpc: false,
        customer: Some(customer),
    }
}

/// A REST path leash does not read: unknown, or ambiguous when a lenient
/// router could take it for a mutate leash reads (`campaignbudgets:mutate`,
/// `campaignBudgets%3Amutate`, `//`, a trailing `/`).
fn unknown_rest<'a>(req: &RequestView<'_>) -> Route<'a> {
    let operation = format!("{} {}", req.method, shown(req.path));
    let loose = percent_encoding::percent_decode_str(req.path)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    let last = loose.split('/').rfind(|s| !s.is_empty()).unwrap_or("");
    if matches!(
        last,
        "campaignbudgets:mutate" | "campaigns:mutate" | "googleads:mutate"
    ) {
        return Route::Ambiguous(
            operation,
            "the path is not one leash reads, but a lenient router may take it for a mutate"
                .to_owned(),
        );
    }
    Route::Unknown(
        operation,
        "a Google Ads REST method leash does not read".to_owned(),
    )
}

/// A path or name fit for a reason: bounded, control characters escaped.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    cut.escape_debug().to_string()
}

/// The lookup path of `customer`'s currency, on the request's version.
fn currency_path(version: &str, customer: &str) -> String {
    format!("/{version}/customers/{customer}/googleAds:search")
}

/// A read mutate, or the classification that ends reading.
fn read_mutate(
    req: &RequestView<'_>,
    service: Service,
    grpc: bool,
    customer: Option<&str>,
) -> Result<mutate::Mutate, Classification> {
    let operation = service.operation().to_owned();
    let problem = |p: Problem| match p {
        Problem::Unreadable(reason) => Classification::Unreadable {
            operation: operation.clone(),
            reason,
        },
        Problem::Ambiguous(reason) => Classification::Ambiguous {
            operation: operation.clone(),
            reason,
        },
    };
    if grpc {
        let message = grpc::one_message(req.body, req.header("grpc-encoding"))
            .map_err(|e| problem(Problem::Unreadable(e.to_string())))?;
        return mutate::from_grpc(service, &message).map_err(problem);
    }
    if let Some(query) = req.query.filter(|q| !q.is_empty()) {
        // `body: "*"`: every field is in the body; only the response
        // format (`$alt`, which gax's REST transport sends) may be here.
        for (key, _) in form_urlencoded::parse(query.as_bytes()) {
            if key != "$alt" && key != "alt" {
                return Err(problem(Problem::Ambiguous(format!(
                    "the query carries {:?}; a mutate's fields belong in its body",
                    key.chars().take(40).collect::<String>()
                ))));
            }
        }
    }
    if !is_json(req.content_type) {
        return Err(problem(Problem::Unreadable(
            "a REST mutate whose body is not application/json".to_owned(),
        )));
    }
    let body = json::parse(req.body).map_err(|e| {
        problem(if e.is_ambiguous() {
            Problem::Ambiguous(e.to_string())
        } else {
            Problem::Unreadable(e.to_string())
        })
    })?;
    rest::from_json(service, customer.unwrap_or(""), &body).map_err(problem)
}

impl GoogleAdsAdapter {
    /// The customer's currency: from config, else from the lookup's
    /// answer in `req.facts`.
    fn currency(&self, req: &RequestView<'_>, version: &str, customer: &str) -> Known {
        if let Some(currency) = self.accounts.get(customer) {
            return Ok((*currency, "vendors.google_ads.accounts".to_owned()));
        }
        let path = currency_path(version, customer);
        if let Some(failure) = req.facts.failure(&path) {
            return Err(format!("the customer's currency is unknown: {failure}"));
        }
        let Some(answer) = req.facts.get(&path) else {
            return Err(format!(
                "the currency of customer {customer} is not in vendors.google_ads.accounts and was not looked up"
            ));
        };
        let code = match answer.pointer("/results") {
            Some(json::Json::Array(rows)) if rows.len() == 1 => rows
                .first()
                .and_then(|row| row.pointer("/customer/currencyCode"))
                .and_then(json::Json::as_str),
            _ => None,
        };
        let Some(code) = code else {
            return Err(format!(
                "the answer to POST {path} does not state one customer.currency_code"
            ));
        };
        match Currency::parse(code) {
            Ok(currency) => Ok((currency, format!("POST {path} (customer.currency_code)"))),
            Err(e) => Err(format!("the customer's currency: {e}")),
        }
    }
}

impl Adapter for GoogleAdsAdapter {
    fn name(&self) -> &str {
        VENDOR
    }

    fn claims_host(&self, host: &str) -> bool {
        host == HOST
    }

    fn hosts(&self) -> Vec<String> {
        vec![HOST.to_owned()]
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        match route(req) {
            Route::Read(operation) => Classification::Safe { operation },
            Route::Unknown(operation, reason) => Classification::Unknown { operation, reason },
            Route::Unreadable(operation, reason) => {
                Classification::Unreadable { operation, reason }
            }
            Route::Ambiguous(operation, reason) => Classification::Ambiguous { operation, reason },
            Route::Mutate {
                service,
                version,
                grpc,
                customer,
            } => match read_mutate(req, service, grpc, customer) {
                Err(classification) => classification,
                Ok(m) => mutate::decide(VENDOR, service, &m, || {
                    self.currency(req, version, &m.customer_id)
                }),
            },
        }
    }

    /// The customer's currency, when a spend needs it and config does not
    /// say it.
    fn lookups(&self, req: &RequestView<'_>) -> Vec<Lookup> {
        let Route::Mutate {
            service,
            version,
            grpc,
            customer,
        } = route(req)
        else {
            return Vec::new();
        };
        let Ok(m) = read_mutate(req, service, grpc, customer) else {
            return Vec::new();
        };
        if self.accounts.contains_key(&m.customer_id) || !mutate::customer_id_ok(&m.customer_id) {
            return Vec::new();
        }
        let mut needed = false;
        let _ = mutate::decide(VENDOR, service, &m, || {
            needed = true;
            Err(String::new())
        });
        if !needed {
            return Vec::new();
        }
        vec![Lookup {
            path: currency_path(version, &m.customer_id),
            body: Some(CURRENCY_QUERY.as_bytes().to_vec()),
            why: format!("the currency of customer {}", m.customer_id),
        }]
    }

    fn read_headers(&self) -> Vec<&str> {
        READ_HEADERS.to_vec()
    }

    /// Google Ads has no idempotency key: a retry is recognised by its
    /// fingerprint (the same bytes).
    fn idempotency_header(&self) -> Option<&str> {
        None
    }

    fn lookup_headers(&self) -> Vec<&str> {
        LOOKUP_HEADERS.to_vec()
    }

    /// A customer's currency is immutable (`Customer.currency_code`).
    fn stays_fresh(&self, path: &str) -> bool {
        path.ends_with("/googleAds:search")
    }

    fn amount_field(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        name.contains("micros") || crate::adapters::names_an_amount(&name)
    }

    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        rest_refusal(refusal, "v25")
    }

    fn shape_refusal_to(&self, refusal: &Refusal<'_>, asked: &Asked<'_>) -> Shaped {
        if is_grpc(asked.content_type) || asked.path.starts_with("/google.ads.googleads.") {
            return grpc::shape(refusal);
        }
        let version = asked
            .path
            .strip_prefix('/')
            .and_then(|p| p.split('/').next())
            .filter(|v| version_ok(v))
            .unwrap_or("v25");
        rest_refusal(refusal, version)
    }
}

/// Google's JSON error envelope (research §3.5): the HTTP status, its
/// canonical name, and a `GoogleAdsFailure` detail with
/// `authorizationError: ACTION_NOT_PERMITTED`, plus a `google.rpc.ErrorInfo`
/// naming leash's code.
fn rest_refusal(refusal: &Refusal<'_>, version: &str) -> Shaped {
    let status = match grpc::status_for(refusal.status) {
        grpc::code::INVALID_ARGUMENT => "INVALID_ARGUMENT",
        grpc::code::RESOURCE_EXHAUSTED => "RESOURCE_EXHAUSTED",
        grpc::code::ABORTED => "ABORTED",
        grpc::code::INTERNAL => "INTERNAL",
        _ => "PERMISSION_DENIED",
    };
    let message = grpc::error_message(refusal);
    Shaped::json(serde_json::json!({
        "error": {
            "code": refusal.status.as_u16(),
            "message": message,
            "status": status,
            "details": [
                {
                    "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
                    "errors": [{
                        "errorCode": { "authorizationError": "ACTION_NOT_PERMITTED" },
                        "message": message,
                    }],
                    "requestId": grpc::request_id(refusal),
                },
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": refusal.code,
                    "domain": "leash",
                },
            ],
        }
    }))
}

#[cfg(test)]
mod tests;
