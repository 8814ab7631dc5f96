//! The EC2 stand-in: `ec2.us-east-1.amazonaws.com` and `ec2.amazonaws.com`,
//! answering the Query API in EC2's XML (the shapes botocore's `ec2`
//! parser reads: `{Action}Response` in EC2's namespace, lists as
//! `<…Set><item>`; errors as `<Response><Errors><Error>`).
//!
//! What it does (one account, in memory):
//!
//! - any SigV4 `Authorization` (`AWS4-HMAC-SHA256 Credential=AKID/…`) is
//!   accepted — signatures are not checked, they cannot be without the
//!   secret key; none → 401 `AuthFailure`;
//! - parameters from the query string and the form body (a repeated name
//!   keeps its last value, as a lax server would);
//! - `DryRun=true` → 412 `DryRunOperation`, as EC2 answers;
//! - `RunInstances` (`ClientToken` replays the same instances),
//!   `DescribeInstances`, `StartInstances`, `StopInstances`,
//!   `TerminateInstances`;
//! - `DescribeCapacityBlockOfferings` (one offering per request, priced at
//!   [`P5_HOURLY`] × hours × count) and `PurchaseCapacityBlock`;
//! - `DescribeReservedInstancesOfferings` (offering `off-demo`) and
//!   `PurchaseReservedInstancesOffering`;
//! - `CreateCapacityReservation`;
//! - anything else → 400 `InvalidAction`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::{json, Value};

use super::{lock, new_id, Call, Reply, Vendor};

pub const HOSTS: &[&str] = &["ec2.us-east-1.amazonaws.com", "ec2.amazonaws.com"];

/// What a p5.48xlarge costs per hour in the stand-in's offerings.
pub const P5_HOURLY: &str = "98.32";

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The in-memory EC2 account.
pub struct Ec2 {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Instance id → (type, state).
    instances: BTreeMap<String, (String, &'static str)>,
    /// ClientToken → the instance ids it launched.
    tokens: BTreeMap<String, Vec<String>>,
    /// Capacity block offering id → (type, count, hours, fee).
    offerings: BTreeMap<String, (String, u32, u32, String)>,
    /// What was bought: offering ids, in order.
    purchases: Vec<String>,
}

impl Ec2 {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
        }
    }
}

impl Default for Ec2 {
    fn default() -> Self {
        Self::new()
    }
}

fn xml(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: vec![(
            "content-type",
            HeaderValue::from_static("text/xml;charset=UTF-8"),
        )],
        body: Bytes::from(body),
        trailers: None,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// EC2's error document.
fn error(status: u16, code: &str, message: &str) -> Reply {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            escape(message),
            request_id()
        ),
    )
}

/// `<{action}Response xmlns=…><requestId>…</requestId>{inner}</…>`.
fn ok(action: &str, inner: &str) -> Reply {
    xml(
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\"><requestId>{}</requestId>{inner}</{action}Response>",
            request_id()
        ),
    )
}

impl Vendor for Ec2 {
    fn hosts(&self) -> &'static [&'static str] {
        HOSTS
    }

    fn answer(&self, call: &Call<'_>) -> Reply {
        let signed = call
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
        if !signed {
            return error(
                401,
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            );
        }
        let mut p: BTreeMap<String, String> = BTreeMap::new();
        for source in [call.query.as_bytes(), call.body] {
            for (k, v) in form_urlencoded::parse(source) {
                p.insert(k.into_owned(), v.into_owned());
            }
        }
        let get = |name: &str| p.get(name).map(String::as_str);
        let Some(action) = get("Action").map(str::to_owned) else {
            return error(
                400,
                "MissingAction",
                "The request must contain the parameter Action",
            );
        };
        if get("DryRun") == Some("true") {
            return error(
                412,
                "DryRunOperation",
                "Request would have succeeded, but DryRun flag is set.",
            );
        }
        let list = |prefix: &str| -> Vec<String> {
            let mut found: Vec<(u32, String)> = p
                .iter()
                .filter_map(|(k, v)| {
                    let i = k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
                    Some((i, v.clone()))
                })
                .collect();
            found.sort();
            found.into_iter().map(|(_, v)| v).collect()
        };
        let mut state = lock(&self.state);
        match action.as_str() {
            "RunInstances" => {
                let (Some(ty), Some(count)) = (
                    get("InstanceType"),
                    get("MaxCount").and_then(|n| n.parse::<u32>().ok()),
                ) else {
                    return error(400, "MissingParameter", "InstanceType and MaxCount are required");
                };
                let token = get("ClientToken").map(str::to_owned);
                let ids = match token.as_ref().and_then(|t| state.tokens.get(t)) {
                    Some(ids) => ids.clone(),
                    None => {
                        let ids: Vec<String> = (0..count)
                            .map(|_| format!("i-{}", &new_id("x")[2..19]))
                            .collect();
                        for id in &ids {
                            state.instances.insert(id.clone(), (ty.to_owned(), "pending"));
                        }
                        if let Some(t) = token {
                            state.tokens.insert(t, ids.clone());
                        }
                        ids
                    }
                };
                let items: String = ids
                    .iter()
                    .map(|id| {
                        let (ty, st) = &state.instances[id];
                        format!("<item><instanceId>{id}</instanceId><instanceType>{}</instanceType><instanceState><name>{st}</name></instanceState></item>", escape(ty))
                    })
                    .collect();
                ok(
                    &action,
                    &format!("<reservationId>r-{}</reservationId><ownerId>123456789012</ownerId><instancesSet>{items}</instancesSet>", &new_id("x")[2..19]),
                )
            }
            "DescribeInstances" => {
                let items: String = state
                    .instances
                    .iter()
                    .map(|(id, (ty, st))| format!("<item><instanceId>{id}</instanceId><instanceType>{}</instanceType><instanceState><name>{st}</name></instanceState></item>", escape(ty)))
                    .collect();
                ok(
                    &action,
                    &format!("<reservationSet><item><reservationId>r-1</reservationId><instancesSet>{items}</instancesSet></item></reservationSet>"),
                )
            }
            "StartInstances" | "StopInstances" | "TerminateInstances" => {
                let to = match action.as_str() {
                    "StartInstances" => "running",
                    "StopInstances" => "stopped",
                    _ => "terminated",
                };
                let mut items = String::new();
                for id in list("InstanceId") {
                    let Some(entry) = state.instances.get_mut(&id) else {
                        return error(400, "InvalidInstanceID.NotFound", &format!("The instance ID '{id}' does not exist"));
                    };
                    let was = entry.1;
                    entry.1 = to;
                    items.push_str(&format!("<item><instanceId>{id}</instanceId><currentState><name>{to}</name></currentState><previousState><name>{was}</name></previousState></item>"));
                }
                ok(&action, &format!("<instancesSet>{items}</instancesSet>"))
            }
            "DescribeCapacityBlockOfferings" => {
                let hours = get("CapacityDurationHours").and_then(|h| h.parse::<u32>().ok());
                let Some(hours) = hours.filter(|h| *h > 0) else {
                    return error(400, "MissingParameter", "CapacityDurationHours is required");
                };
                let ty = get("InstanceType").unwrap_or("p5.48xlarge").to_owned();
                let count = get("InstanceCount").and_then(|c| c.parse::<u32>().ok()).unwrap_or(1);
                let hourly: rust_decimal::Decimal = P5_HOURLY.parse().unwrap_or_default();
                let fee = hourly * rust_decimal::Decimal::from(hours) * rust_decimal::Decimal::from(count);
                let id = format!("cb-{}", &new_id("x")[2..19]);
                state.offerings.insert(id.clone(), (ty.clone(), count, hours, fee.to_string()));
                ok(
                    &action,
                    &format!("<capacityBlockOfferingSet><item><capacityBlockOfferingId>{id}</capacityBlockOfferingId><instanceType>{}</instanceType><availabilityZone>us-east-1a</availabilityZone><instanceCount>{count}</instanceCount><startDate>2026-12-01T11:30:00.000Z</startDate><endDate>2026-12-02T11:30:00.000Z</endDate><capacityBlockDurationHours>{hours}</capacityBlockDurationHours><upfrontFee>{fee}</upfrontFee><currencyCode>USD</currencyCode><tenancy>default</tenancy></item></capacityBlockOfferingSet>", escape(&ty)),
                )
            }
            "PurchaseCapacityBlock" => {
                let id = get("CapacityBlockOfferingId").unwrap_or("").to_owned();
                let Some((ty, count, _, _)) = state.offerings.get(&id).cloned() else {
                    return error(400, "InvalidCapacityBlockOfferingId.NotFound", &format!("The capacity block offering '{id}' does not exist"));
                };
                state.purchases.push(id);
                ok(
                    &action,
                    &format!("<capacityReservation><capacityReservationId>cr-{}</capacityReservationId><instanceType>{}</instanceType><totalInstanceCount>{count}</totalInstanceCount><state>scheduled</state></capacityReservation>", &new_id("x")[2..19], escape(&ty)),
                )
            }
            "DescribeReservedInstancesOfferings" => ok(
                &action,
                "<reservedInstancesOfferingsSet><item><reservedInstancesOfferingId>off-demo</reservedInstancesOfferingId><instanceType>m5.large</instanceType><availabilityZone>us-east-1a</availabilityZone><duration>31536000</duration><fixedPrice>500.0</fixedPrice><usagePrice>0.0</usagePrice><productDescription>Linux/UNIX</productDescription><instanceTenancy>default</instanceTenancy><currencyCode>USD</currencyCode><offeringType>All Upfront</offeringType><recurringCharges/><marketplace>false</marketplace><offeringClass>standard</offeringClass></item></reservedInstancesOfferingsSet>",
            ),
            "PurchaseReservedInstancesOffering" => {
                let id = get("ReservedInstancesOfferingId").unwrap_or("").to_owned();
                state.purchases.push(id);
                ok(&action, &format!("<reservedInstancesId>ri-{}</reservedInstancesId>", &new_id("x")[2..19]))
            }
            "CreateCapacityReservation" => ok(
                &action,
                &format!("<capacityReservation><capacityReservationId>cr-{}</capacityReservationId><instanceType>{}</instanceType><state>active</state></capacityReservation>", &new_id("x")[2..19], escape(get("InstanceType").unwrap_or(""))),
            ),
            other => error(
                400,
                "InvalidAction",
                &format!("The action {} is not valid for this web service (the stand-in plays a few EC2 actions).", escape(other)),
            ),
        }
    }

    /// An instance (`i-…`) as `{"instanceId","instanceType","state"}`, or
    /// `ec2:purchases` → the offerings bought so far.
    fn object(&self, id: &str) -> Option<Value> {
        let state = lock(&self.state);
        if id == "ec2:purchases" {
            return Some(json!(state.purchases));
        }
        let (ty, st) = state.instances.get(id)?;
        Some(json!({ "instanceId": id, "instanceType": ty, "state": st }))
    }
}
