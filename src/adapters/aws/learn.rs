//! Learned facts (SPEC §4.2a, research §7.3): what the agent's own EC2
//! answers state about offerings, quotes and instances, kept by the proxy
//! under a lookup path for the same agent, host and access key id. A
//! purchase names an offering id and no price; the price is in the answer
//! to the `Describe*Offerings` / `Get*Preview` call the agent made first.
//!
//! | answer to | learned under | fields kept (as stated) |
//! |---|---|---|
//! | `DescribeReservedInstancesOfferings` | `ec2:reserved-instances-offering/{id}` | `instanceType`, `duration`, `fixedPrice`, `usagePrice`, `currencyCode`, hourly `recurringCharges` |
//! | `DescribeHostReservationOfferings` | `ec2:host-reservation-offering/{id}` | `instanceFamily`, `duration`, `upfrontPrice`, `hourlyPrice`, `currencyCode` |
//! | `GetHostReservationPurchasePreview` | `ec2:host-reservation-preview/{offering}/{hosts}` | `totalUpfrontPrice`, `totalHourlyPrice`, `currencyCode`, the purchase's `duration` and `instanceFamily` |
//! | `DescribeCapacityBlockOfferings` | `ec2:capacity-block-offering/{id}` | `instanceType`, `upfrontFee`, `currencyCode` |
//! | `GetReservedInstancesExchangeQuote` | `ec2:exchange-quote/{the quote's parameters}` | `paymentDue`, `currencyCode` (only a valid exchange) |
//! | `RunInstances`, `DescribeInstances` | `ec2:instance/{id}` | `instanceType` |
//!
//! Only what the answer states, only when it is unmistakable: the root is
//! `{Action}Response`, each item names a plain id, a field given twice is
//! not read, and an item missing a field the price needs is not kept.
//! Prices are kept as their exact text and read with leash's strict
//! decimal parser when a purchase needs them.

use std::collections::BTreeSet;

use super::xml::{self, Element};
use super::{snippet, Call};
use crate::adapters::json::Json;
use crate::intent::Lookup;

/// Most objects kept from one answer.
const MAX_LEARNED: usize = 1000;

/// The answers read, by the action they answer.
const LEARNED_FROM: &[&str] = &[
    "DescribeReservedInstancesOfferings",
    "DescribeHostReservationOfferings",
    "GetHostReservationPurchasePreview",
    "DescribeCapacityBlockOfferings",
    "GetReservedInstancesExchangeQuote",
    "RunInstances",
    "DescribeInstances",
];

pub(super) fn learns_from(call: &Call<'_, '_>) -> bool {
    call.get("DryRun") != Some("true") && LEARNED_FROM.contains(&call.action.as_str())
}

/// An id leash puts in a cache path: letters, digits and `-`.
fn plain_id(id: &str) -> Option<&str> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(id)
}

pub(super) fn instance_path(id: &str) -> Option<String> {
    plain_id(id).map(|id| format!("ec2:instance/{id}"))
}

pub(super) fn ri_offering_path(id: &str) -> Option<String> {
    plain_id(id).map(|id| format!("ec2:reserved-instances-offering/{id}"))
}

pub(super) fn host_offering_path(id: &str) -> Option<String> {
    plain_id(id).map(|id| format!("ec2:host-reservation-offering/{id}"))
}

/// The preview of buying `offering` for exactly `hosts` (in any order).
pub(super) fn host_preview_path(offering: &str, hosts: &[&str]) -> Option<String> {
    let offering = plain_id(offering)?;
    let hosts: BTreeSet<&str> = hosts.iter().map(|h| plain_id(h)).collect::<Option<_>>()?;
    if hosts.is_empty() {
        return None;
    }
    let hosts: Vec<&str> = hosts.into_iter().collect();
    Some(format!(
        "ec2:host-reservation-preview/{offering}/{}",
        hosts.join(",")
    ))
}

pub(super) fn capacity_block_path(id: &str) -> Option<String> {
    plain_id(id).map(|id| format!("ec2:capacity-block-offering/{id}"))
}

/// The quote for exactly these reserved instances and target
/// configurations: `GetReservedInstancesExchangeQuote` and
/// `AcceptReservedInstancesExchangeQuote` take the same parameters.
pub(super) fn exchange_quote_path(call: &Call<'_, '_>) -> Option<String> {
    let ris: BTreeSet<&str> = call
        .params
        .values("ReservedInstanceId")
        .into_iter()
        .map(plain_id)
        .collect::<Option<_>>()?;
    let mut targets = BTreeSet::new();
    for i in call.params.indices("TargetConfiguration") {
        let offering = plain_id(call.get(&format!("TargetConfiguration.{i}.OfferingId"))?)?;
        let count = call
            .get(&format!("TargetConfiguration.{i}.InstanceCount"))
            .unwrap_or("");
        if !count.bytes().all(|b| b.is_ascii_digit()) || count.len() > 9 {
            return None;
        }
        targets.insert(format!("{offering}*{count}"));
    }
    if ris.is_empty() {
        return None;
    }
    let ris: Vec<&str> = ris.into_iter().collect();
    let targets: Vec<String> = targets.into_iter().collect();
    Some(format!(
        "ec2:exchange-quote/{}|{}",
        ris.join(","),
        targets.join(",")
    ))
}

/// What a request needs from learned facts (the proxy answers these from
/// its cache only: `can_look_up` is false).
pub(super) fn wanted(call: &Call<'_, '_>) -> Vec<Lookup> {
    let mut out = Vec::new();
    let mut want = |path: Option<String>, why: String| {
        if let Some(path) = path {
            if !call.req.facts.has(&path) {
                out.push(Lookup {
                    path,
                    body: None,
                    why,
                });
            }
        }
    };
    match call.action.as_str() {
        "StartInstances" => {
            for id in call.params.values("InstanceId") {
                want(instance_path(id), "the instance's type".into());
            }
        }
        "PurchaseReservedInstancesOffering" => {
            if let Some(id) = call.get("ReservedInstancesOfferingId") {
                want(ri_offering_path(id), "the offering's price".into());
            }
        }
        "PurchaseHostReservation" => {
            if let Some(id) = call.get("OfferingId") {
                let hosts = call.params.values("HostIdSet");
                want(host_preview_path(id, &hosts), "the purchase preview".into());
                want(host_offering_path(id), "the offering's price".into());
            }
        }
        "PurchaseCapacityBlock" => {
            if let Some(id) = call.get("CapacityBlockOfferingId") {
                want(capacity_block_path(id), "the offering's upfront fee".into());
            }
        }
        "AcceptReservedInstancesExchangeQuote" => {
            want(exchange_quote_path(call), "the exchange quote".into());
            for i in call.params.indices("TargetConfiguration") {
                if let Some(id) = call.get(&format!("TargetConfiguration.{i}.OfferingId")) {
                    want(
                        ri_offering_path(id),
                        "the target offering's instance type".into(),
                    );
                }
            }
        }
        _ => {}
    }
    out
}

/// What a write leaves as it was: an instance's type is not changed by
/// starting it, and a reserved-instances or host offering is a catalogue
/// entry, bought as often as wanted. A capacity block offering, a host
/// preview and an exchange quote are used up by the purchase.
pub(super) fn stays_fresh(path: &str) -> bool {
    [
        "ec2:instance/",
        "ec2:reserved-instances-offering/",
        "ec2:host-reservation-offering/",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
}

/// The learned type of instance `id`.
pub(super) fn instance_type(call: &Call<'_, '_>, id: &str) -> Option<String> {
    let path = instance_path(id)?;
    call.req
        .facts
        .get(&path)?
        .pointer("/instanceType")?
        .as_str()
        .map(str::to_owned)
}

/// The objects a 2xx XML `answer` to `call` states.
pub(super) fn learn(call: &Call<'_, '_>, answer: &[u8]) -> Vec<(String, Json)> {
    if !learns_from(call) {
        return Vec::new();
    }
    let Some(root) = xml::parse(answer) else {
        return Vec::new();
    };
    if root.name != format!("{}Response", call.action) {
        return Vec::new();
    }
    let mut out = match call.action.as_str() {
        "DescribeReservedInstancesOfferings" => root
            .items("reservedInstancesOfferingsSet")
            .into_iter()
            .filter_map(ri_offering)
            .collect(),
        "DescribeHostReservationOfferings" => root
            .items("offeringSet")
            .into_iter()
            .filter_map(host_offering)
            .collect(),
        "GetHostReservationPurchasePreview" => host_preview(call, &root).into_iter().collect(),
        "DescribeCapacityBlockOfferings" => root
            .items("capacityBlockOfferingSet")
            .into_iter()
            .filter_map(capacity_block)
            .collect(),
        "GetReservedInstancesExchangeQuote" => exchange_quote(call, &root).into_iter().collect(),
        "RunInstances" => instances(root.items("instancesSet")),
        "DescribeInstances" => instances(
            root.items("reservationSet")
                .into_iter()
                .flat_map(|r| r.items("instancesSet"))
                .collect(),
        ),
        _ => Vec::new(),
    };
    out.truncate(MAX_LEARNED);
    out
}

/// `{"field": "text", …, "learned_from": action}`, every field present and
/// non-empty, or nothing.
fn object(item: &Element, fields: &[&str], from: &str) -> Option<Json> {
    let mut members = Vec::new();
    for field in fields {
        let text = item.text_of(field).filter(|t| !t.is_empty())?;
        members.push((field.to_string(), Json::String(text.to_owned())));
    }
    members.push(("learned_from".into(), Json::String(from.into())));
    Some(Json::Object(members))
}

fn with(mut json: Json, name: &str, value: Json) -> Json {
    if let Json::Object(members) = &mut json {
        members.push((name.to_owned(), value));
    }
    json
}

fn ri_offering(item: &Element) -> Option<(String, Json)> {
    let path = ri_offering_path(item.text_of("reservedInstancesOfferingId")?)?;
    let json = object(
        item,
        &[
            "instanceType",
            "duration",
            "fixedPrice",
            "usagePrice",
            "currencyCode",
        ],
        "DescribeReservedInstancesOfferings",
    )?;
    // Recurring charges: only hourly ones are understood; any other
    // frequency leaves the offering unlearned.
    let mut hourly = Vec::new();
    for charge in item.items("recurringCharges") {
        if charge.text_of("frequency") != Some("Hourly") {
            return None;
        }
        hourly.push(Json::String(charge.text_of("amount")?.to_owned()));
    }
    Some((path, with(json, "recurringHourly", Json::Array(hourly))))
}

fn host_offering(item: &Element) -> Option<(String, Json)> {
    let path = host_offering_path(item.text_of("offeringId")?)?;
    let json = object(
        item,
        &[
            "instanceFamily",
            "duration",
            "upfrontPrice",
            "hourlyPrice",
            "currencyCode",
        ],
        "DescribeHostReservationOfferings",
    )?;
    Some((path, json))
}

/// The preview for the request's own offering and hosts: its totals, and
/// the one duration and family all its purchase items share.
fn host_preview(call: &Call<'_, '_>, root: &Element) -> Option<(String, Json)> {
    let hosts = call.params.values("HostIdSet");
    let path = host_preview_path(call.get("OfferingId")?, &hosts)?;
    let json = object(
        root,
        &["totalUpfrontPrice", "totalHourlyPrice", "currencyCode"],
        "GetHostReservationPurchasePreview",
    )?;
    let items = root.items("purchase");
    let duration = one_of(items.iter().map(|i| i.text_of("duration")))?;
    let family = one_of(items.iter().map(|i| i.text_of("instanceFamily")))?;
    let json = with(json, "duration", Json::String(duration));
    Some((path, with(json, "instanceFamily", Json::String(family))))
}

/// The value every item agrees on (at least one item).
fn one_of<'t>(mut values: impl Iterator<Item = Option<&'t str>>) -> Option<String> {
    let first = values.next()??;
    for v in values {
        if v? != first {
            return None;
        }
    }
    Some(first.to_owned())
}

fn capacity_block(item: &Element) -> Option<(String, Json)> {
    let path = capacity_block_path(item.text_of("capacityBlockOfferingId")?)?;
    let json = object(
        item,
        &["instanceType", "upfrontFee", "currencyCode"],
        "DescribeCapacityBlockOfferings",
    )?;
    Some((path, json))
}

fn exchange_quote(call: &Call<'_, '_>, root: &Element) -> Option<(String, Json)> {
    if root.text_of("isValidExchange") != Some("true") {
        return None;
    }
    let path = exchange_quote_path(call)?;
    let json = object(
        root,
        &["paymentDue", "currencyCode"],
        "GetReservedInstancesExchangeQuote",
    )?;
    Some((path, json))
}

fn instances(items: Vec<&Element>) -> Vec<(String, Json)> {
    items
        .into_iter()
        .filter_map(|item| {
            let path = instance_path(item.text_of("instanceId")?)?;
            let json = object(item, &["instanceType"], "DescribeInstances")?;
            Some((path, json))
        })
        .collect()
}

/// The text of `field` of a learned object.
pub(super) fn field<'j>(json: &'j Json, field: &str) -> Option<&'j str> {
    json.pointer(&format!("/{field}"))?.as_str()
}

/// Where a learned object came from, for an intent's `sources`.
pub(super) fn origin(json: &Json, id: &str) -> String {
    let from = field(json, "learned_from").unwrap_or("Describe");
    format!("the agent's own {from} answer for {}", snippet(id))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn only_answers_to_the_request_s_own_action_are_read() {
        let got = learned(
            "Action=DescribeCapacityBlockOfferings&Version=2016-11-15&CapacityDurationHours=24&InstanceType=p5.48xlarge&InstanceCount=1",
            CAPACITY_BLOCK_OFFERINGS,
        );
        assert_eq!(paths(&got), ["ec2:capacity-block-offering/cb-0123"]);
        assert_eq!(field(&got[0].1, "upfrontFee"), Some("2359.68"));
        // Another root, an error document, a dry run: nothing.
        assert!(learned(
            "Action=DescribeCapacityBlockOfferings&CapacityDurationHours=24",
            &CAPACITY_BLOCK_OFFERINGS.replace(
                "DescribeCapacityBlockOfferingsResponse",
                "DescribeInstancesResponse"
            ),
        )
        .is_empty());
        assert!(learned(
            "Action=DescribeCapacityBlockOfferings&CapacityDurationHours=24",
            "<Response><Errors><Error><Code>X</Code></Error></Errors></Response>",
        )
        .is_empty());
        assert!(learned(
            "Action=DescribeCapacityBlockOfferings&DryRun=true",
            CAPACITY_BLOCK_OFFERINGS,
        )
        .is_empty());
        assert!(learned(
            "Action=PurchaseCapacityBlock&CapacityBlockOfferingId=cb-0123",
            CAPACITY_BLOCK_OFFERINGS
        )
        .is_empty());
    }

    #[test]
    fn items_missing_a_price_or_with_odd_ids_are_not_kept() {
        let doc = r#"<DescribeCapacityBlockOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<capacityBlockOfferingSet>
<item><capacityBlockOfferingId>cb-1</capacityBlockOfferingId><instanceType>p5.48xlarge</instanceType><currencyCode>USD</currencyCode></item>
<item><capacityBlockOfferingId>../cb-2</capacityBlockOfferingId><instanceType>p5.48xlarge</instanceType><upfrontFee>1</upfrontFee><currencyCode>USD</currencyCode></item>
<item><capacityBlockOfferingId>cb-3</capacityBlockOfferingId><instanceType>p5.48xlarge</instanceType><upfrontFee>1</upfrontFee><upfrontFee>2</upfrontFee><currencyCode>USD</currencyCode></item>
<item><capacityBlockOfferingId>cb-4</capacityBlockOfferingId><instanceType>p5.48xlarge</instanceType><upfrontFee>4</upfrontFee><currencyCode>USD</currencyCode></item>
</capacityBlockOfferingSet></DescribeCapacityBlockOfferingsResponse>"#;
        let got = learned(
            "Action=DescribeCapacityBlockOfferings&CapacityDurationHours=24",
            doc,
        );
        assert_eq!(paths(&got), ["ec2:capacity-block-offering/cb-4"]);
    }

    #[test]
    fn every_offering_answer_is_learned_under_its_path() {
        let got = learned(
            "Action=DescribeReservedInstancesOfferings&ReservedInstancesOfferingId.1=off-1",
            RI_OFFERINGS,
        );
        assert_eq!(paths(&got), ["ec2:reserved-instances-offering/off-1"]);
        assert_eq!(
            got[0].1.pointer("/recurringHourly"),
            Some(&Json::Array(vec![Json::String("0.5".into())]))
        );
        let got = learned("Action=GetHostReservationPurchasePreview&HostIdSet.2=h-2&HostIdSet.1=h-1&OfferingId=hro-1", HOST_PREVIEW);
        assert_eq!(paths(&got), ["ec2:host-reservation-preview/hro-1/h-1,h-2"]);
        assert_eq!(field(&got[0].1, "duration"), Some("31536000"));
        let got = learned("Action=DescribeHostReservationOfferings", HOST_OFFERINGS);
        assert_eq!(paths(&got), ["ec2:host-reservation-offering/hro-1"]);
        let got = learned(EXCHANGE_QUOTE_REQUEST, EXCHANGE_QUOTE);
        assert_eq!(paths(&got), ["ec2:exchange-quote/ri-1|off-2*1"]);
        let invalid = EXCHANGE_QUOTE.replace(">true<", ">false<");
        assert!(learned(EXCHANGE_QUOTE_REQUEST, &invalid).is_empty());
        let got = learned(
            "Action=RunInstances&InstanceType=g5.xlarge&MinCount=1&MaxCount=2",
            RUN_ANSWER,
        );
        assert_eq!(paths(&got), ["ec2:instance/i-1", "ec2:instance/i-2"]);
        let got = learned("Action=DescribeInstances", DESCRIBE_INSTANCES);
        assert_eq!(paths(&got), ["ec2:instance/i-9"]);
        assert_eq!(field(&got[0].1, "instanceType"), Some("p4d.24xlarge"));
    }

    #[test]
    fn non_hourly_recurring_charges_are_not_understood() {
        let doc = RI_OFFERINGS.replace(
            "<frequency>Hourly</frequency>",
            "<frequency>Monthly</frequency>",
        );
        assert!(learned("Action=DescribeReservedInstancesOfferings", &doc).is_empty());
    }
}
