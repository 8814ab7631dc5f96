//! Helpers for the EC2 adapter's unit tests: requests as botocore sends
//! them (research §7.2), EC2's XML answers, and the proxy's learning and
//! lookup rounds played in memory.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;

use super::AwsAdapter;
use crate::adapters::json::Json;
use crate::adapters::Adapter;
use crate::config::AwsSettings;
use crate::intent::{Classification, Facts, IntentDraft, RequestView};

pub(super) const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");

/// Prices as an ops team would write them.
pub(super) fn adapter() -> AwsAdapter {
    let prices: BTreeMap<String, Decimal> = [
        ("p5.48xlarge", "98.32"),
        ("p4d.24xlarge", "32.7726"),
        ("g5.xlarge", "1.006"),
        ("g6.xlarge", "0.8048"),
        ("t3.micro", "0.0104"),
        ("m5.large", "0.096"),
    ]
    .into_iter()
    .map(|(t, p)| (t.to_owned(), p.parse().unwrap()))
    .collect();
    AwsAdapter::new(&AwsSettings {
        currency: "USD".into(),
        horizon: Duration::from_secs(24 * 3600),
        prices,
    })
}

pub(super) fn view<'a>(body: &'a [u8], facts: &'a Facts) -> RequestView<'a> {
    RequestView {
        method: "POST",
        host: "ec2.us-east-1.amazonaws.com",
        path: "/",
        query: None,
        content_type: FORM,
        idempotency_key: None,
        account: Some("AKIAIOSFODNN7EXAMPLE"),
        headers: &[],
        body,
        facts,
    }
}

/// Facts as the proxy has them: read at 2026-11-24T10:00:00Z, plus `learned`.
pub(super) fn facts(learned: Vec<(String, Json)>) -> Facts {
    let mut facts = Facts::default();
    facts.set_read_at("2026-11-24T10:00:00Z".parse().unwrap());
    for (path, json) in learned {
        facts.insert_learned(path, json, "POST /".into());
    }
    facts
}

pub(super) fn classify_body(body: &str) -> Classification {
    let known = facts(Vec::new());
    adapter().classify(&view(body.as_bytes(), &known))
}

pub(super) fn classify_get(query: &str) -> Classification {
    let known = facts(Vec::new());
    let mut v = view(b"", &known);
    v.method = "GET";
    v.query = Some(query);
    v.content_type = None;
    adapter().classify(&v)
}

pub(super) fn classify_query_and_body(query: &str, body: &str) -> Classification {
    let known = facts(Vec::new());
    let mut v = view(body.as_bytes(), &known);
    v.query = Some(query);
    adapter().classify(&v)
}

pub(super) fn classify_typed(content_type: Option<&str>, body: &[u8]) -> Classification {
    let known = facts(Vec::new());
    let mut v = view(body, &known);
    v.content_type = content_type;
    adapter().classify(&v)
}

/// What the adapter learns from `answer` to the request `body`.
pub(super) fn learned(body: &str, answer: &str) -> Vec<(String, Json)> {
    let known = Facts::default();
    let v = view(body.as_bytes(), &known);
    let a = adapter();
    let reads = a.learns_from(&v);
    let got = a.learn_from_answer(&v, Some("text/xml;charset=UTF-8"), answer.as_bytes());
    assert!(reads || got.is_empty(), "learned without asking to");
    got
}

/// The proxy's flow: the agent's describe call answered with `answer`,
/// then `body` classified with what the adapter asks for, answered from
/// what was learned only (a miss is a failure, as `can_look_up` is false).
pub(super) fn after(describe: &str, answer: &str, body: &str) -> Classification {
    let taught = learned(describe, answer);
    let mut known = facts(Vec::new());
    let a = adapter();
    let wanted = a.lookups(&view(body.as_bytes(), &known));
    for lookup in wanted {
        match taught.iter().find(|(p, _)| *p == lookup.path) {
            Some((path, json)) => known.insert_learned(path.clone(), json.clone(), "POST /".into()),
            None => known.insert(lookup.path, Err("not learned".into())),
        }
    }
    a.classify(&view(body.as_bytes(), &known))
}

pub(super) fn paths(learned: &[(String, Json)]) -> Vec<&str> {
    learned.iter().map(|(p, _)| p.as_str()).collect()
}

#[track_caller]
pub(super) fn one(c: &Classification) -> &IntentDraft {
    match c {
        Classification::Spend(d) if d.len() == 1 => &d[0],
        other => panic!("expected one spend intent, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn amount(c: &Classification) -> String {
    one(c)
        .amount
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[track_caller]
pub(super) fn source(c: &Classification) -> &str {
    one(c)
        .sources
        .get("amount")
        .map(String::as_str)
        .unwrap_or("")
}

pub(super) fn reason(c: &Classification) -> &str {
    match c {
        Classification::Unreadable { reason, .. }
        | Classification::Unknown { reason, .. }
        | Classification::Ambiguous { reason, .. } => reason,
        other => panic!("expected unreadable/unknown/ambiguous, got {other:?}"),
    }
}

/// `c` is of `kind` and its reason mentions every one of `needles`.
#[track_caller]
pub(super) fn assert_is(c: &Classification, kind: &str, needles: &[&str]) {
    assert_eq!(c.kind(), kind, "{c:?}");
    for needle in needles {
        assert!(
            reason(c).contains(needle),
            "{needle:?} not in {:?}",
            reason(c)
        );
    }
}

pub(super) const CAPACITY_BLOCK_OFFERINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeCapacityBlockOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
    <capacityBlockOfferingSet>
        <item>
            <capacityBlockOfferingId>cb-0123</capacityBlockOfferingId>
            <instanceType>p5.48xlarge</instanceType>
            <availabilityZone>us-east-1a</availabilityZone>
            <instanceCount>1</instanceCount>
            <startDate>2026-12-01T11:30:00.000Z</startDate>
            <endDate>2026-12-02T11:30:00.000Z</endDate>
            <capacityBlockDurationHours>24</capacityBlockDurationHours>
            <upfrontFee>2359.68</upfrontFee>
            <currencyCode>USD</currencyCode>
            <tenancy>default</tenancy>
        </item>
    </capacityBlockOfferingSet>
</DescribeCapacityBlockOfferingsResponse>"#;

pub(super) const RI_OFFERINGS: &str = r#"<DescribeReservedInstancesOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>1</requestId>
  <reservedInstancesOfferingsSet>
    <item>
      <reservedInstancesOfferingId>off-1</reservedInstancesOfferingId>
      <instanceType>p4d.24xlarge</instanceType>
      <availabilityZone>us-east-1a</availabilityZone>
      <duration>31536000</duration>
      <fixedPrice>1200.5</fixedPrice>
      <usagePrice>0.0</usagePrice>
      <productDescription>Linux/UNIX</productDescription>
      <instanceTenancy>default</instanceTenancy>
      <currencyCode>USD</currencyCode>
      <offeringType>Partial Upfront</offeringType>
      <recurringCharges><item><frequency>Hourly</frequency><amount>0.5</amount></item></recurringCharges>
      <marketplace>false</marketplace>
      <offeringClass>standard</offeringClass>
    </item>
  </reservedInstancesOfferingsSet>
</DescribeReservedInstancesOfferingsResponse>"#;

pub(super) const HOST_PREVIEW: &str = r#"<GetHostReservationPurchasePreviewResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>d4904fd9</requestId>
    <purchase>
        <item>
            <duration>31536000</duration>
            <upfrontPrice>7453.000</upfrontPrice>
            <paymentOption>PartialUpfront</paymentOption>
            <instanceFamily>m4</instanceFamily>
            <hourlyPrice>0.850</hourlyPrice>
            <hostIdSet><item>h-1</item><item>h-2</item></hostIdSet>
        </item>
    </purchase>
    <currencyCode>USD</currencyCode>
    <totalHourlyPrice>0.850</totalHourlyPrice>
    <totalUpfrontPrice>7453.000</totalUpfrontPrice>
</GetHostReservationPurchasePreviewResponse>"#;

pub(super) const HOST_OFFERINGS: &str = r#"<DescribeHostReservationOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <offeringSet>
    <item>
      <offeringId>hro-1</offeringId><instanceFamily>p5</instanceFamily><duration>94608000</duration>
      <upfrontPrice>0</upfrontPrice><hourlyPrice>1.5</hourlyPrice><currencyCode>USD</currencyCode>
      <paymentOption>NoUpfront</paymentOption>
    </item>
  </offeringSet>
</DescribeHostReservationOfferingsResponse>"#;

pub(super) const EXCHANGE_QUOTE_REQUEST: &str = "Action=GetReservedInstancesExchangeQuote&Version=2016-11-15&ReservedInstanceId.1=ri-1&TargetConfiguration.1.OfferingId=off-2&TargetConfiguration.1.InstanceCount=1";

pub(super) const EXCHANGE_QUOTE: &str = r#"<GetReservedInstancesExchangeQuoteResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <currencyCode>USD</currencyCode>
  <isValidExchange>true</isValidExchange>
  <paymentDue>311.07</paymentDue>
</GetReservedInstancesExchangeQuoteResponse>"#;

pub(super) const RUN_ANSWER: &str = r#"<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <reservationId>r-1</reservationId>
  <instancesSet>
    <item><instanceId>i-1</instanceId><instanceType>g5.xlarge</instanceType></item>
    <item><instanceId>i-2</instanceId><instanceType>g5.xlarge</instanceType></item>
  </instancesSet>
</RunInstancesResponse>"#;

pub(super) const DESCRIBE_INSTANCES: &str = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <reservationSet>
    <item>
      <reservationId>r-9</reservationId>
      <instancesSet><item><instanceId>i-9</instanceId><instanceType>p4d.24xlarge</instanceType></item></instancesSet>
    </item>
  </reservationSet>
</DescribeInstancesResponse>"#;
