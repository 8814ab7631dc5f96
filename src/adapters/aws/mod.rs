//! The AWS EC2 adapter: reads the EC2 Query API (`ec2.{region}.amazonaws.com`,
//! `ec2.amazonaws.com`) as intents (research §7, traps 32–34).
//!
//! # What EC2 requests look like
//!
//! botocore sends `POST /` with a form body `Action=<Op>&Version=2016-11-15&…`
//! (`Content-Type: application/x-www-form-urlencoded; charset=utf-8`), signed
//! with SigV4 over the method, path, query, signed headers and the body's
//! SHA-256 — so the body is forwarded byte for byte, never changed. EC2
//! also takes the whole call as a `GET` query string: a `GET
//! ?Action=RunInstances` launches instances, so the method says nothing and
//! the parameters are read from the query string ∪ the body (`query.rs`).
//! Lists are `Name.N`, 1-based, possibly sparse; wire names differ from the
//! model's member names (`InstanceId.N`, `TagSpecification.N` on
//! RunInstances but `TagSpecifications.N` on CreateCapacityReservation).
//!
//! # What is read how
//!
//! | action | amount | category |
//! |---|---|---|
//! | `Describe*`, `Get*`, `List*`, any call with `DryRun=true` | safe (reads; a dry run only checks permissions) | — |
//! | `Terminate*`, `Cancel*`, `Stop*` | safe (they reduce spend) | — |
//! | `RunInstances` | hourly price × `MaxCount` × horizon | `gpu_compute` / `compute` |
//! | `StartInstances` | each instance's hourly price × horizon (types learned from `RunInstances` / `DescribeInstances` answers) | same |
//! | `RequestSpotInstances` | `SpotPrice` (else the type's price) × `InstanceCount` × horizon | same |
//! | `RequestSpotFleet`, `CreateFleet` | the dearest candidate type × the instances it needs for the target capacity × horizon | same |
//! | `AllocateHosts` | the type's price × `Quantity` × horizon | same |
//! | `ModifyInstanceAttribute` (type change) | the new type's price × horizon | same |
//! | `CreateCapacityReservation`, `CreateCapacityReservationFleet` | price × count × hours until `EndDate` (else × horizon) | `gpu_reserved_capacity` / `reserved_capacity` |
//! | `PurchaseReservedInstancesOffering` | learned offering: `InstanceCount` × (`fixedPrice` + hourly × `duration`); else `LimitPrice.Amount` | same |
//! | `PurchaseHostReservation` | learned preview: `totalUpfrontPrice` + `totalHourlyPrice` × duration (or the offering × hosts); else `LimitPrice` | same |
//! | `PurchaseCapacityBlock` | learned offering's `upfrontFee` | same |
//! | `AcceptReservedInstancesExchangeQuote` | learned quote's `paymentDue` | same |
//! | every other write | unknown | — |
//!
//! The hourly price of an instance type is `vendors.aws.prices` (leash.yaml),
//! or the spot ceiling the request states (`InstanceMarketOptions.SpotOptions.MaxPrice`,
//! `SpotPrice`) when the capacity is all spot; the horizon is
//! `vendors.aws.horizon` (24h by default); the currency `vendors.aws.currency`
//! (USD). A type with no price, a launch whose type lives in a launch
//! template, or attribute-based selection (`InstanceRequirements`) is
//! unreadable. Every amount is exact decimal arithmetic; a horizon that is
//! not a whole number of hours is rounded up at 8 decimal places, never
//! down. The intent's `sources` says where each number came from.
//!
//! # Learned, never looked up
//!
//! leash cannot make EC2 requests itself (each is signed with the agent's
//! secret key, which leash never holds), so `lookups` are answered only
//! from what passed through: the agent's own `DescribeReservedInstancesOfferings`,
//! `DescribeHostReservationOfferings`, `GetHostReservationPurchasePreview`,
//! `DescribeCapacityBlockOfferings`, `GetReservedInstancesExchangeQuote`,
//! `DescribeInstances` and `RunInstances` answers (XML, `learn.rs`), kept
//! for the same agent, host and access key id. A purchase whose offering
//! was not seen falls back to the request's `LimitPrice` ceiling, else is
//! unreadable. A purchase whose instance family leash cannot see (read at
//! its `LimitPrice`) is counted as `gpu_reserved_capacity`, the category
//! policies restrict most.
//!
//! # Signed requests
//!
//! The acting account is the access key id of the `Credential=` in
//! `Authorization` (`account_of`): part of the fingerprint and the intent,
//! never the signature or `X-Amz-Date`. The fingerprint is the call's
//! parameters without `ClientToken` (botocore draws a new uuid per call), so
//! the agent's retry of a held launch is recognised; holds are released by
//! that retry, freshly signed (`short_lived_signatures`).
//!
//! # Refusals
//!
//! EC2's XML error, `<Response><Errors><Error><Code>UnauthorizedOperation</Code>…`,
//! which botocore raises as `ClientError` (research §7.4). Always a 4xx
//! botocore does not retry: a 429 or 5xx of leash's own is sent as 403,
//! since botocore retries those up to five times.

mod launches;
mod learn;
mod purchases;
mod query;
#[cfg(test)]
mod testing;
mod xml;

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::adapters::{normalize_host, Adapter, Refusal, Shaped, ShapedBody};
use crate::config::AwsSettings;
use crate::intent::{Classification, Fingerprint, IntentDraft, Lookup, RequestView};
use crate::money::{Currency, Money};
use query::Params;

pub use query::QueryError;

/// Vendor name in intents and policies.
pub const VENDOR: &str = "aws";

/// The beneficiary of every EC2 intent: AWS is paid.
const BENEFICIARY: &str = "aws";

/// Hosts compared against an IP-literal CONNECT (every `ec2.*` host is
/// claimed, see [`claims`]; these are the common ones).
const KNOWN_HOSTS: &[&str] = &[
    "ec2.amazonaws.com",
    "ec2.us-east-1.amazonaws.com",
    "ec2.us-east-2.amazonaws.com",
    "ec2.us-west-1.amazonaws.com",
    "ec2.us-west-2.amazonaws.com",
    "ec2.eu-west-1.amazonaws.com",
    "ec2.eu-central-1.amazonaws.com",
    "ec2.ap-northeast-1.amazonaws.com",
    "ec2.ap-southeast-1.amazonaws.com",
    "ec2.ap-southeast-2.amazonaws.com",
];

/// The actions that commit money, and are read (every other write is unknown).
const SPENDS: &[&str] = &[
    "RunInstances",
    "StartInstances",
    "RequestSpotInstances",
    "RequestSpotFleet",
    "CreateFleet",
    "AllocateHosts",
    "ModifyInstanceAttribute",
    "CreateCapacityReservation",
    "CreateCapacityReservationFleet",
    "PurchaseReservedInstancesOffering",
    "PurchaseHostReservation",
    "PurchaseCapacityBlock",
    "AcceptReservedInstancesExchangeQuote",
];

/// Whether `host` (normalised) is an EC2 endpoint: `ec2.amazonaws.com`,
/// `ec2.{region}.amazonaws.com` (and `.amazonaws.com.cn`), FIPS
/// `ec2-fips.{region}.amazonaws.com`, dual-stack `ec2.{region}.api.aws`
/// (research §7.1). Matching leans towards claiming: a host not claimed
/// is tunnelled blind.
fn claims(host: &str) -> bool {
    if host == "ec2.amazonaws.com" {
        return true;
    }
    let Some(rest) = host
        .strip_prefix("ec2.")
        .or_else(|| host.strip_prefix("ec2-fips."))
    else {
        return false;
    };
    let region = [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix));
    region.is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The EC2 adapter, with `vendors.aws` from leash.yaml.
#[derive(Debug, Clone)]
pub struct AwsAdapter {
    settings: Settings,
}

/// `vendors.aws`, ready to compute with.
#[derive(Debug, Clone)]
struct Settings {
    /// `None` if the configured code is not a currency (the config loader
    /// refuses that; every spend is then unreadable rather than guessed).
    currency: Option<Currency>,
    horizon_secs: u64,
    prices: BTreeMap<String, Decimal>,
}

impl AwsAdapter {
    pub fn new(settings: &AwsSettings) -> AwsAdapter {
        AwsAdapter {
            settings: Settings {
                currency: Currency::parse(&settings.currency).ok(),
                horizon_secs: settings.horizon.as_secs().max(1),
                prices: settings.prices.clone(),
            },
        }
    }
}

impl Default for AwsAdapter {
    fn default() -> Self {
        AwsAdapter::new(&AwsSettings::default())
    }
}

/// One read request: its parameters, its action, and what the proxy knows.
struct Call<'r, 'a> {
    req: &'r RequestView<'a>,
    params: Params,
    action: String,
}

impl Call<'_, '_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    fn unreadable(&self, reason: impl Into<String>) -> Classification {
        Classification::Unreadable {
            operation: self.action.clone(),
            reason: reason.into(),
        }
    }

    /// A required positive whole count (`MaxCount`, `InstanceCount`).
    fn count(&self, name: &str) -> Result<u64, String> {
        let text = self
            .get(name)
            .ok_or_else(|| format!("{} has no {name}", self.action))?;
        positive_count(text).ok_or_else(|| {
            format!(
                "{name} {:?} is not a whole number of at least 1",
                snippet(text)
            )
        })
    }
}

/// `1`, `24`: digits, no sign, no leading zero, at least 1.
fn positive_count(text: &str) -> Option<u64> {
    let digits = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0')
        && text.len() <= 12;
    digits.then(|| text.parse().ok()).flatten()
}

fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// The family of an instance type: what comes before the first `.`
/// (`p5` of `p5.48xlarge`, `p6-b200` of `p6-b200.48xlarge`).
pub(crate) fn family(instance_type: &str) -> &str {
    instance_type.split('.').next().unwrap_or(instance_type)
}

/// GPU / accelerator families (research §7.3): p*, g*, trn*, inf*, dl*, f*
/// (FPGA) and vt* (video), each followed by its generation digit — so `p5`
/// and `g6e` are, `c7g`, `m6g` (Graviton) and `d3` are not.
pub(crate) fn is_gpu_family(family: &str) -> bool {
    ["p", "g", "trn", "inf", "dl", "f", "vt"]
        .iter()
        .any(|prefix| {
            family
                .strip_prefix(prefix)
                .and_then(|rest| rest.bytes().next())
                .is_some_and(|b| b.is_ascii_digit())
        })
}

/// The category of spend on `types`: GPU if any is of a GPU family.
fn category(types: &[&str], reserved: bool) -> &'static str {
    let gpu = types.iter().any(|t| is_gpu_family(family(t)));
    match (reserved, gpu) {
        (false, true) => "gpu_compute",
        (false, false) => "compute",
        (true, true) => "gpu_reserved_capacity",
        (true, false) => "reserved_capacity",
    }
}

/// `hourly × count × seconds / 3600`, exactly; when the division does not
/// end, rounded up (towards more spend) at 8 decimal places. `None` on
/// overflow.
fn over_seconds(hourly: Decimal, count: u64, seconds: u64) -> Option<Decimal> {
    let total = hourly
        .checked_mul(Decimal::from(count))?
        .checked_mul(Decimal::from(seconds))?;
    let hour = Decimal::from(3600u32);
    let exact = total.checked_div(hour)?;
    if exact.checked_mul(hour)? == total {
        return Some(exact.normalize());
    }
    let step = Decimal::new(1, 8);
    let mut up = exact.round_dp_with_strategy(8, RoundingStrategy::ToPositiveInfinity);
    if up.checked_mul(hour)? < total {
        up = up.checked_add(step)?;
    }
    Some(up.normalize())
}

/// `86400` s as `24h`, else seconds.
fn hours_text(seconds: u64) -> String {
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else {
        format!("{seconds}s")
    }
}

/// An exact decimal price from the wire or an answer (`98.32`, `12.5`),
/// or why not.
fn price(name: &str, text: &str) -> Result<Decimal, String> {
    crate::money::parse_decimal_amount(text)
        .map_err(|e| format!("{name} {:?} is not an exact price: {e}", snippet(text)))
}

impl AwsAdapter {
    fn currency(&self) -> Result<Currency, String> {
        self.settings
            .currency
            .ok_or_else(|| "vendors.aws.currency is not a currency leash knows".to_owned())
    }

    /// The configured hourly price of `instance_type`, or why there is none.
    fn configured_price(&self, instance_type: &str) -> Result<Decimal, String> {
        self.settings.prices.get(instance_type).copied().ok_or_else(|| {
            format!(
                "{instance_type} has no price in vendors.aws.prices (leash.yaml), so its cost cannot be read"
            )
        })
    }

    /// One intent on EC2.
    fn draft(
        &self,
        call: &Call<'_, '_>,
        amount: Money,
        category: &str,
        sources: BTreeMap<String, String>,
    ) -> IntentDraft {
        IntentDraft {
            vendor: VENDOR.to_owned(),
            operation: call.action.clone(),
            amount: Some(amount),
            beneficiary: Some(BENEFICIARY.to_owned()),
            category: category.to_owned(),
            idempotency_key: call.get("ClientToken").map(str::to_owned),
            sources,
        }
    }

    fn read<'r, 'a>(&self, req: &'r RequestView<'a>) -> Result<Call<'r, 'a>, Classification> {
        let params = Params::read(req).map_err(|e| {
            let operation = "unknown".to_owned();
            let reason = format!("the EC2 request cannot be read exactly: {e}");
            if e.is_ambiguous() {
                Classification::Ambiguous { operation, reason }
            } else {
                Classification::Unreadable { operation, reason }
            }
        })?;
        let action = match params.get("Action") {
            Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                a.to_owned()
            }
            Some(a) => {
                return Err(Classification::Unknown {
                    operation: "unknown".into(),
                    reason: format!("Action {:?} is not an EC2 action name", snippet(a)),
                })
            }
            None => {
                return Err(Classification::Unknown {
                    operation: "unknown".into(),
                    reason: "the request names no Action".into(),
                })
            }
        };
        Ok(Call {
            req,
            params,
            action,
        })
    }
}

/// Whether `action` moves no money whatever its parameters.
fn safe_action(action: &str) -> bool {
    let starts = |p: &str| {
        action
            .strip_prefix(p)
            .and_then(|rest| rest.bytes().next())
            .is_some_and(|b| b.is_ascii_uppercase())
    };
    ["Describe", "Get", "List", "Terminate", "Cancel", "Stop"]
        .iter()
        .any(|p| starts(p))
}

impl Adapter for AwsAdapter {
    fn name(&self) -> &str {
        VENDOR
    }

    fn claims_host(&self, host: &str) -> bool {
        claims(&normalize_host(host))
    }

    fn hosts(&self) -> Vec<String> {
        KNOWN_HOSTS.iter().map(|h| h.to_string()).collect()
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        let call = match self.read(req) {
            Ok(call) => call,
            Err(classification) => return classification,
        };
        // DryRun only checks permissions: "the error response is
        // DryRunOperation" (research §7.1). Only botocore's exact `true`.
        if call.get("DryRun") == Some("true") || safe_action(&call.action) {
            return Classification::Safe {
                operation: call.action.clone(),
            };
        }
        let read = match call.action.as_str() {
            "RunInstances" => self.run_instances(&call),
            "StartInstances" => self.start_instances(&call),
            "RequestSpotInstances" => self.request_spot_instances(&call),
            "RequestSpotFleet" => self.request_spot_fleet(&call),
            "CreateFleet" => self.create_fleet(&call),
            "AllocateHosts" => self.allocate_hosts(&call),
            "ModifyInstanceAttribute" => self.modify_instance_attribute(&call),
            "CreateCapacityReservation" => self.create_capacity_reservation(&call),
            "CreateCapacityReservationFleet" => self.create_capacity_reservation_fleet(&call),
            "PurchaseReservedInstancesOffering" => self.purchase_reserved_instances(&call),
            "PurchaseHostReservation" => self.purchase_host_reservation(&call),
            "PurchaseCapacityBlock" => self.purchase_capacity_block(&call),
            "AcceptReservedInstancesExchangeQuote" => self.accept_exchange_quote(&call),
            other => {
                return Classification::Unknown {
                    operation: other.to_owned(),
                    reason: format!(
                        "leash does not read the EC2 action {other}, which may cost money"
                    ),
                }
            }
        };
        debug_assert!(SPENDS.contains(&call.action.as_str()));
        read
    }

    fn lookups(&self, req: &RequestView<'_>) -> Vec<Lookup> {
        match self.read(req) {
            Ok(call) if call.get("DryRun") != Some("true") => learn::wanted(&call),
            _ => Vec::new(),
        }
    }

    fn read_headers(&self) -> Vec<&str> {
        vec!["authorization"]
    }

    fn idempotency_header(&self) -> Option<&str> {
        // EC2's idempotency key is the body's `ClientToken`, set on intents.
        None
    }

    fn resume_hint(&self) -> String {
        "Retry the same request (same ClientToken) after approval".to_string()
    }

    fn account_header(&self) -> Option<&str> {
        Some("authorization")
    }

    /// The access key id of `Credential=AKID/date/region/ec2/aws4_request`.
    fn account_of<'v>(&self, header_value: &'v str) -> Option<&'v str> {
        access_key_id(header_value)
    }

    /// The call's parameters without `ClientToken`, framed, with the
    /// method, host, path and account: the same call retried (with a new
    /// signature, date and botocore's new ClientToken) is the same request.
    fn fingerprint(&self, req: &RequestView<'_>) -> Fingerprint {
        let Ok(params) = Params::read(req) else {
            return req.fingerprint();
        };
        let mut call = Vec::new();
        for (name, value) in params.call() {
            for part in [name.as_bytes(), value.as_bytes()] {
                call.extend_from_slice(&(part.len() as u64).to_be_bytes());
                call.extend_from_slice(part);
            }
        }
        Fingerprint::acting_as(req.method, req.host, req.path, req.account, &call)
    }

    fn learns_from(&self, req: &RequestView<'_>) -> bool {
        self.read(req).is_ok_and(|call| learn::learns_from(&call))
    }

    fn learn_from_answer(
        &self,
        req: &RequestView<'_>,
        _content_type: Option<&str>,
        answer: &[u8],
    ) -> Vec<(String, crate::adapters::json::Json)> {
        match self.read(req) {
            Ok(call) => learn::learn(&call, answer),
            Err(_) => Vec::new(),
        }
    }

    fn can_look_up(&self) -> bool {
        false
    }

    fn short_lived_signatures(&self) -> bool {
        true
    }

    fn lookup_headers(&self) -> Vec<&str> {
        // Never sent (no lookups); the cache scope is agent, host and
        // access key id.
        Vec::new()
    }

    fn stays_fresh(&self, path: &str) -> bool {
        learn::stays_fresh(path)
    }

    fn amount_field(&self, name: &str) -> bool {
        const READ: &[&str] = &[
            "Action",
            "InstanceType",
            "Count",
            "Capacity",
            "Price",
            "OfferingId",
            "Date",
            "Duration",
            "Quantity",
            "LaunchTemplate",
            "Currency",
            "Amount",
            "Weight",
            "MarketType",
            "InstanceFamily",
            "DryRun",
            "InstanceId",
        ];
        READ.iter().any(|part| name.contains(part))
    }

    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        let status = refusal.status;
        let retried = status == http::StatusCode::TOO_MANY_REQUESTS || !status.is_client_error();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{}</Message></Error></Errors><RequestID>leash-{}</RequestID></Response>",
            quick_xml::escape::escape(format!("{}: {}", refusal.code, refusal.message).as_str()),
            quick_xml::escape::escape(refusal.code),
        );
        Shaped {
            status: retried.then_some(http::StatusCode::FORBIDDEN),
            body: ShapedBody::Raw {
                content_type: "text/xml;charset=UTF-8",
                bytes: body.into_bytes(),
            },
            headers: Vec::new(),
        }
    }
}

/// The access key id in a SigV4 `Authorization` value: `AKIA…` in
/// `AWS4-HMAC-SHA256 Credential=AKIA…/20261203/us-east-1/ec2/aws4_request, …`.
fn access_key_id(authorization: &str) -> Option<&str> {
    let rest = authorization
        .trim_start()
        .strip_prefix("AWS4-HMAC-SHA256")?;
    let at = rest.find("Credential=")?;
    let credential = rest.get(at + "Credential=".len()..)?;
    let id = credential.split('/').next()?;
    let plausible = (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn hosts_claimed() {
        let a = AwsAdapter::default();
        for h in [
            "ec2.amazonaws.com",
            "ec2.us-east-1.amazonaws.com",
            "EC2.eu-west-3.amazonaws.com.:443",
            "ec2-fips.us-gov-west-1.amazonaws.com",
            "ec2.cn-north-1.amazonaws.com.cn",
            "ec2.us-east-1.api.aws",
        ] {
            assert!(a.claims_host(h), "{h}");
        }
        for h in [
            "ec2.us-east-1.amazonaws.com.evil.example",
            "s3.amazonaws.com",
            "ec2..amazonaws.com",
            "xec2.us-east-1.amazonaws.com",
            "ec2.us_east.amazonaws.com",
        ] {
            assert!(!a.claims_host(h), "{h}");
        }
        assert!(a.hosts().iter().all(|h| a.claims_host(h)));
    }

    #[test]
    fn reads_and_spend_reducing_writes_are_safe() {
        for body in [
            "Action=DescribeInstances&Version=2016-11-15",
            "Action=DescribeCapacityBlockOfferings&Version=2016-11-15&CapacityDurationHours=24&InstanceType=p5.48xlarge&InstanceCount=1",
            "Action=GetHostReservationPurchasePreview&Version=2016-11-15&HostIdSet.1=h-1&OfferingId=hro-1",
            "Action=TerminateInstances&InstanceId.1=i-1",
            "Action=StopInstances&InstanceId.1=i-1",
            "Action=CancelSpotFleetRequests&SpotFleetRequestId.1=sfr-1&TerminateInstances=true",
            "Action=RunInstances&DryRun=true&MaxCount=100&MinCount=1&InstanceType=p5.48xlarge",
            "Action=PurchaseCapacityBlock&DryRun=true&CapacityBlockOfferingId=cb-1",
        ] {
            assert_eq!(classify_body(body).kind(), "safe", "{body}");
        }
        // GET works the same way: the method says nothing.
        let c = classify_get("Action=DescribeRegions&Version=2016-11-15");
        assert_eq!(c.kind(), "safe");
    }

    #[test]
    fn other_writes_are_unknown_and_a_get_can_spend() {
        for body in [
            "Action=CreateVolume&Size=100",
            "Action=AllocateAddress",
            "Action=PurchaseScheduledInstances&PurchaseRequest.1.InstanceCount=1&PurchaseRequest.1.PurchaseToken=tok",
            "Action=ModifyInstanceAttribute&InstanceId=i-1&SourceDestCheck.Value=false",
            "Action=RunInstances&DryRun=false&MaxCount=1&MinCount=1&InstanceType=x1.nope",
            "Version=2016-11-15",
            "Action=Describe-Instances",
            "Action=describeinstances",
            "Action=Describe",
        ] {
            let kind = classify_body(body).kind();
            assert!(kind == "unknown" || kind == "unreadable", "{body}: {kind}");
        }
        let c = classify_get(
            "Action=RunInstances&Version=2016-11-15&InstanceType=t3.micro&MinCount=1&MaxCount=1",
        );
        assert_eq!(amount(&c), "0.2496 USD");
    }

    #[test]
    fn ambiguous_and_unreadable_requests() {
        assert_is(
            &classify_query_and_body(
                "Action=DescribeInstances",
                "Action=RunInstances&InstanceType=p5.48xlarge&MinCount=1&MaxCount=1",
            ),
            "ambiguous",
            &["Action"],
        );
        assert_is(
            &classify_body(
                "Action=RunInstances&InstanceType=t3.micro&MinCount=1&MaxCount=1&MaxCount=50",
            ),
            "ambiguous",
            &["MaxCount"],
        );
        assert_is(
            &classify_body(
                "Action=RunInstances&InstanceType=t3.micro&MinCount=1&MaxCount=1&maxCount=50",
            ),
            "ambiguous",
            &["maxCount"],
        );
        let c = classify_typed(Some("application/json"), br#"{"Action":"RunInstances"}"#);
        assert_is(&c, "unreadable", &["not application/x-www-form-urlencoded"]);
    }

    #[test]
    fn the_access_key_id_is_the_account() {
        let a = AwsAdapter::default();
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261203/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";
        assert_eq!(a.account_of(auth), Some("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(a.account_of("Bearer sk_test_1"), None);
        assert_eq!(a.account_of("AWS4-HMAC-SHA256 Credential=/x"), None);
        assert_eq!(
            a.account_of("AWS4-HMAC-SHA256 Credential=AKIA..EXAMPLE12345/x"),
            None
        );
        assert!(a.read_headers().contains(&"authorization"));
    }

    #[test]
    fn a_retry_with_a_new_client_token_is_the_same_request() {
        let a = AwsAdapter::default();
        let first = "Action=RunInstances&Version=2016-11-15&InstanceType=t3.micro&MinCount=1&MaxCount=1&ClientToken=a1";
        let retry = "Version=2016-11-15&Action=RunInstances&MaxCount=1&MinCount=1&InstanceType=t3.micro&ClientToken=b2";
        let other = "Action=RunInstances&Version=2016-11-15&InstanceType=t3.micro&MinCount=1&MaxCount=2&ClientToken=a1";
        let fp = |body: &str, account: Option<&'static str>| {
            let facts = crate::intent::Facts::default();
            let mut v = view(body.as_bytes(), &facts);
            v.account = account;
            a.fingerprint(&v)
        };
        assert_eq!(fp(first, Some("AKIA1")), fp(retry, Some("AKIA1")));
        assert_ne!(fp(first, Some("AKIA1")), fp(other, Some("AKIA1")));
        assert_ne!(fp(first, Some("AKIA1")), fp(first, Some("AKIA2")));
        assert_ne!(fp(first, Some("AKIA1")), fp(first, None));
    }

    #[test]
    fn refusals_are_ec2_xml_errors_botocore_does_not_retry() {
        let a = AwsAdapter::default();
        for (status, sent) in [
            (403, 403),
            (409, 409),
            (413, 413),
            (429, 403),
            (502, 403),
            (503, 403),
        ] {
            let shaped = a.shape_refusal(&Refusal {
                status: http::StatusCode::from_u16(status).unwrap(),
                code: "leash_held",
                message: "held as h_1 for <cto> & co",
            });
            let sent_status = shaped.status.map_or(status, |s| s.as_u16());
            assert_eq!(sent_status, sent, "{status}");
            let ShapedBody::Raw {
                content_type,
                bytes,
            } = &shaped.body
            else {
                panic!("xml expected");
            };
            assert_eq!(*content_type, "text/xml;charset=UTF-8");
            let root = xml::parse(bytes).unwrap();
            assert_eq!(root.name, "Response");
            let error = root.child("Errors").unwrap().child("Error").unwrap();
            assert_eq!(error.text_of("Code"), Some("UnauthorizedOperation"));
            assert_eq!(
                error.text_of("Message"),
                Some("leash_held: held as h_1 for <cto> & co")
            );
            assert_eq!(root.text_of("RequestID"), Some("leash-leash_held"));
        }
    }

    #[test]
    fn gpu_families() {
        for t in [
            "p5.48xlarge",
            "p4d.24xlarge",
            "p6-b200.48xlarge",
            "p6e-gb200.36xlarge",
            "g6e.xlarge",
            "g4dn.xlarge",
            "trn1n.32xlarge",
            "inf2.xlarge",
            "dl1.24xlarge",
            "dl2q.24xlarge",
            "f1.2xlarge",
            "vt1.3xlarge",
        ] {
            assert!(is_gpu_family(family(t)), "{t}");
        }
        for t in [
            "t3.micro",
            "m6g.large",
            "c7g.xlarge",
            "d3.xlarge",
            "i4i.large",
            "r7iz.large",
            "mac2.metal",
            "u-6tb1.metal",
            "x2gd.large",
            "hpc7g.4xlarge",
        ] {
            assert!(!is_gpu_family(family(t)), "{t}");
        }
    }

    #[test]
    fn hour_arithmetic_is_exact_or_rounds_up() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(over_seconds(d("98.32"), 2, 86_400), Some(d("4719.36")));
        assert_eq!(over_seconds(d("0.0104"), 1, 86_400), Some(d("0.2496")));
        assert_eq!(over_seconds(d("1"), 1, 1_800), Some(d("0.5")));
        // 1 s of 1/h is 1/3600 = 0.000277…: up at 8 places.
        assert_eq!(over_seconds(d("1"), 1, 1), Some(d("0.00027778")));
        assert_eq!(over_seconds(d("1"), 3, 1_200), Some(d("1")));
        assert_eq!(over_seconds(Decimal::MAX, 2, 3600), None);
    }
}
