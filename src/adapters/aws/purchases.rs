//! Purchases whose price is never in the request (research §7.3, trap 33):
//! reserved instances, host reservations, capacity blocks, reserved
//! instance exchanges. The price is the offering's, learned from the
//! agent's own answers (`learn.rs`); else the request's `LimitPrice`, a
//! ceiling the agent states; else the purchase is unreadable. Trap 34:
//! several of these have no `ClientToken`, so a refusal must be clean —
//! it is (403, not retried).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::learn::{self, field, origin};
use super::{category, over_seconds, price, snippet, AwsAdapter, Call};
use crate::adapters::json::Json;
use crate::intent::Classification;
use crate::money::{Currency, Money};

/// The category of a purchase whose instance family leash cannot see:
/// the one policies restrict most (see the module docs of `aws`).
const UNSEEN_FAMILY: &str = "gpu_reserved_capacity";

impl AwsAdapter {
    /// A purchase of `amount` in `currency` (as stated by `why`).
    fn purchase(
        &self,
        call: &Call<'_, '_>,
        amount: Decimal,
        currency: &str,
        category: &str,
        why: String,
    ) -> Classification {
        let currency = match Currency::parse(currency) {
            Ok(c) => c,
            Err(_) => {
                return call.unreadable(format!(
                    "the currency {:?} of the price is not one leash knows",
                    snippet(currency)
                ))
            }
        };
        let sources = BTreeMap::from([("amount".to_owned(), why)]);
        let draft = self.draft(
            call,
            Money::new(amount.normalize(), currency),
            category,
            sources,
        );
        Classification::spend(&call.action, vec![draft])
    }

    /// The request's own ceiling, `amount_name` in `currency_name` (USD,
    /// the only currency EC2 takes, when absent), as the amount.
    fn limit_price(
        &self,
        call: &Call<'_, '_>,
        amount_name: &str,
        currency_name: &str,
        unseen: &str,
    ) -> Classification {
        let Some(text) = call.get(amount_name) else {
            return call.unreadable(format!(
                "{unseen} was not seen in an answer that passed through leash, and the request states no {amount_name} ceiling"
            ));
        };
        let limit = match price(amount_name, text) {
            Ok(p) => p,
            Err(reason) => return call.unreadable(reason),
        };
        let currency = call.get(currency_name).unwrap_or("USD");
        let why = format!(
            "{limit} {currency}: the {amount_name} ceiling stated in the request ({unseen} was not seen in an answer that passed through leash; instance family unknown, counted as {UNSEEN_FAMILY})"
        );
        self.purchase(call, limit, currency, UNSEEN_FAMILY, why)
    }

    /// `PurchaseReservedInstancesOffering`: `InstanceCount` × (`fixedPrice`
    /// + (`usagePrice` + hourly recurring charges) × `duration` hours).
    pub(super) fn purchase_reserved_instances(&self, call: &Call<'_, '_>) -> Classification {
        let Some(id) = call.get("ReservedInstancesOfferingId") else {
            return call.unreadable(
                "PurchaseReservedInstancesOffering has no ReservedInstancesOfferingId",
            );
        };
        let count = match call.count("InstanceCount") {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let unseen = format!("the price of reserved instances offering {}", snippet(id));
        let Some(offering) = learned(call, learn::ri_offering_path(id)) else {
            return self.limit_price(
                call,
                "LimitPrice.Amount",
                "LimitPrice.CurrencyCode",
                &unseen,
            );
        };
        let total = ri_total(offering, count);
        let (Ok(total), Some(currency), Some(ty)) = (
            total,
            field(offering, "currencyCode"),
            field(offering, "instanceType"),
        ) else {
            return call.unreadable(format!(
                "{unseen} could not be read from the learned offering"
            ));
        };
        let why = format!(
            "{total} {currency}: {count} × (fixedPrice + hourly × duration) of {ty} offering, from {}",
            origin(offering, id)
        );
        self.purchase(call, total, currency, category(&[ty], true), why)
    }

    /// `PurchaseHostReservation`: the preview of these hosts
    /// (`totalUpfrontPrice` + `totalHourlyPrice` × duration), else the
    /// offering × the hosts, else `LimitPrice`.
    pub(super) fn purchase_host_reservation(&self, call: &Call<'_, '_>) -> Classification {
        let Some(id) = call.get("OfferingId") else {
            return call.unreadable("PurchaseHostReservation has no OfferingId");
        };
        let hosts = call.params.values("HostIdSet");
        if hosts.is_empty() {
            return call.unreadable("PurchaseHostReservation names no HostIdSet.N");
        }
        let unseen = format!("the price of host reservation offering {}", snippet(id));
        let read =
            |json: &Json, upfront: &str, hourly: &str, count: u64| -> Result<Decimal, String> {
                let text = |name: &str| field(json, name).ok_or_else(|| format!("no {name}"));
                let upfront = price(upfront, text(upfront)?)?;
                let hourly = price(hourly, text(hourly)?)?;
                let duration = seconds(text("duration")?)?;
                let over = over_seconds(hourly, 1, duration).ok_or("too large")?;
                upfront
                    .checked_add(over)
                    .and_then(|one| one.checked_mul(Decimal::from(count)))
                    .ok_or_else(|| "too large".to_owned())
            };
        let (json, amount, how) =
            if let Some(preview) = learned(call, learn::host_preview_path(id, &hosts)) {
                let amount = read(preview, "totalUpfrontPrice", "totalHourlyPrice", 1);
                (
                    preview,
                    amount,
                    "totalUpfrontPrice + totalHourlyPrice × duration".to_owned(),
                )
            } else if let Some(offering) = learned(call, learn::host_offering_path(id)) {
                let n = hosts.len() as u64;
                let amount = read(offering, "upfrontPrice", "hourlyPrice", n);
                (
                    offering,
                    amount,
                    format!("{n} host(s) × (upfrontPrice + hourlyPrice × duration)"),
                )
            } else {
                return self.limit_price(call, "LimitPrice", "CurrencyCode", &unseen);
            };
        let (Ok(amount), Some(currency), Some(family)) = (
            amount,
            field(json, "currencyCode"),
            field(json, "instanceFamily"),
        ) else {
            return call.unreadable(format!("{unseen} could not be read from what was learned"));
        };
        let why = format!(
            "{amount} {currency}: {how} of {family}, from {}",
            origin(json, id)
        );
        // A family has no size: `p5` reads like `p5.48xlarge`.
        self.purchase(call, amount, currency, category(&[family], true), why)
    }

    /// `PurchaseCapacityBlock`: the learned offering's `upfrontFee` ("the
    /// total price to be paid up front").
    pub(super) fn purchase_capacity_block(&self, call: &Call<'_, '_>) -> Classification {
        let Some(id) = call.get("CapacityBlockOfferingId") else {
            return call.unreadable("PurchaseCapacityBlock has no CapacityBlockOfferingId");
        };
        let Some(offering) = learned(call, learn::capacity_block_path(id)) else {
            return call.unreadable(format!(
                "the upfront fee of capacity block offering {} was not seen: leash reads it from the agent's own DescribeCapacityBlockOfferings answer, and this request has no price",
                snippet(id)
            ));
        };
        let fee = field(offering, "upfrontFee").map(|t| price("upfrontFee", t));
        let (Some(Ok(fee)), Some(currency), Some(ty)) = (
            fee,
            field(offering, "currencyCode"),
            field(offering, "instanceType"),
        ) else {
            return call.unreadable(
                "the learned capacity block offering's upfrontFee is not an exact price",
            );
        };
        let why = format!(
            "{fee} {currency}: the upfrontFee of {ty} capacity block, from {}",
            origin(offering, id)
        );
        self.purchase(call, fee, currency, category(&[ty], true), why)
    }

    /// `AcceptReservedInstancesExchangeQuote`: the learned quote's
    /// `paymentDue` for exactly these reserved instances and targets.
    pub(super) fn accept_exchange_quote(&self, call: &Call<'_, '_>) -> Classification {
        let Some(quote) = learned(call, learn::exchange_quote_path(call)) else {
            return call.unreadable(
                "the payment due for this exchange was not seen: leash reads it from the agent's own GetReservedInstancesExchangeQuote answer for the same reserved instances and target configurations",
            );
        };
        let due = field(quote, "paymentDue").map(|t| price("paymentDue", t));
        let (Some(Ok(due)), Some(currency)) = (due, field(quote, "currencyCode")) else {
            return call.unreadable("the learned quote's paymentDue is not an exact price");
        };
        // The targets' types, where their offerings were learned too.
        let mut types = Vec::new();
        let mut all_seen = true;
        for i in call.params.indices("TargetConfiguration") {
            let ty = call
                .get(&format!("TargetConfiguration.{i}.OfferingId"))
                .and_then(|id| learned(call, learn::ri_offering_path(id)))
                .and_then(|o| field(o, "instanceType"));
            match ty {
                Some(ty) => types.push(ty),
                None => all_seen = false,
            }
        }
        let category = if all_seen && !types.is_empty() {
            category(&types, true)
        } else {
            UNSEEN_FAMILY
        };
        let why = format!("{due} {currency}: the paymentDue of the agent's own GetReservedInstancesExchangeQuote answer");
        self.purchase(call, due, currency, category, why)
    }
}

/// The learned object at `path`, if any.
fn learned<'c>(call: &'c Call<'_, '_>, path: Option<String>) -> Option<&'c Json> {
    call.req.facts.get(&path?)
}

/// Whole seconds (`31536000`).
fn seconds(text: &str) -> Result<u64, String> {
    super::positive_count(text)
        .ok_or_else(|| format!("duration {:?} is not whole seconds", snippet(text)))
}

/// `count × (fixedPrice + (usagePrice + Σ hourly) × duration/3600)`.
fn ri_total(offering: &Json, count: u64) -> Result<Decimal, String> {
    let text = |name: &str| field(offering, name).ok_or_else(|| format!("no {name}"));
    let fixed = price("fixedPrice", text("fixedPrice")?)?;
    let mut hourly = price("usagePrice", text("usagePrice")?)?;
    if let Some(Json::Array(charges)) = offering.pointer("/recurringHourly") {
        for charge in charges {
            let amount = price("recurringCharges amount", charge.as_str().unwrap_or(""))?;
            hourly = hourly.checked_add(amount).ok_or("too large")?;
        }
    }
    let duration = seconds(text("duration")?)?;
    let over = over_seconds(hourly, 1, duration).ok_or("too large")?;
    fixed
        .checked_add(over)
        .and_then(|one| one.checked_mul(Decimal::from(count)))
        .ok_or_else(|| "too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn a_capacity_block_at_its_learned_upfront_fee() {
        let body = "Action=PurchaseCapacityBlock&Version=2016-11-15&CapacityBlockOfferingId=cb-0123&InstancePlatform=Linux%2FUNIX";
        let describe = "Action=DescribeCapacityBlockOfferings&Version=2016-11-15&CapacityDurationHours=24&InstanceType=p5.48xlarge&InstanceCount=1";
        let c = after(describe, CAPACITY_BLOCK_OFFERINGS, body);
        assert_eq!(amount(&c), "2359.68 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity");
        assert!(
            source(&c).contains("DescribeCapacityBlockOfferings answer for cb-0123"),
            "{}",
            source(&c)
        );
        // Another offering, or none seen: unreadable (no LimitPrice here).
        let c = after(
            describe,
            CAPACITY_BLOCK_OFFERINGS,
            &body.replace("cb-0123", "cb-9"),
        );
        assert_is(
            &c,
            "unreadable",
            &["cb-9", "DescribeCapacityBlockOfferings"],
        );
        assert_is(&classify_body(body), "unreadable", &["was not seen"]);
    }

    #[test]
    fn reserved_instances_learned_or_at_their_limit_price() {
        // research §7.2: 3 × off-1 with a 1200.5 ceiling.
        let body = "Action=PurchaseReservedInstancesOffering&Version=2016-11-15&ReservedInstancesOfferingId=off-1&InstanceCount=3&LimitPrice.Amount=1200.5&LimitPrice.CurrencyCode=USD";
        let c = classify_body(body);
        assert_eq!(amount(&c), "1200.50 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity", "family unseen");
        assert!(
            source(&c).contains("LimitPrice.Amount ceiling"),
            "{}",
            source(&c)
        );
        // Learned: 3 × (1200.5 + (0.0 + 0.5) × 8760 h) = 3 × 5580.5.
        let c = after(
            "Action=DescribeReservedInstancesOfferings&ReservedInstancesOfferingId.1=off-1",
            RI_OFFERINGS,
            body,
        );
        assert_eq!(amount(&c), "16741.50 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity");
        assert!(source(&c).contains("DescribeReservedInstancesOfferings"));
        assert_is(
            &classify_body("Action=PurchaseReservedInstancesOffering&ReservedInstancesOfferingId=off-1&InstanceCount=3"),
            "unreadable",
            &["no LimitPrice.Amount ceiling"],
        );
    }

    #[test]
    fn host_reservations_by_preview_offering_or_limit() {
        let body = "Action=PurchaseHostReservation&Version=2016-11-15&OfferingId=hro-1&HostIdSet.1=h-1&HostIdSet.2=h-2&LimitPrice=100.000&CurrencyCode=USD";
        let c = classify_body(body);
        assert_eq!(amount(&c), "100.00 USD");
        // The preview of these two hosts: 7453 + 0.85 × 8760.
        let c = after(
            "Action=GetHostReservationPurchasePreview&HostIdSet.1=h-2&HostIdSet.2=h-1&OfferingId=hro-1",
            HOST_PREVIEW,
            body,
        );
        assert_eq!(amount(&c), "14899.00 USD");
        assert_eq!(one(&c).category, "reserved_capacity", "family m4");
        // The offering alone: 2 hosts × (0 + 1.5 × 26280 h).
        let c = after(
            "Action=DescribeHostReservationOfferings",
            HOST_OFFERINGS,
            body,
        );
        assert_eq!(amount(&c), "78840.00 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity", "family p5");
        // A preview for other hosts does not price these.
        let c = after(
            "Action=GetHostReservationPurchasePreview&HostIdSet.1=h-1&OfferingId=hro-1",
            HOST_PREVIEW,
            body,
        );
        assert_eq!(amount(&c), "100.00 USD");
    }

    #[test]
    fn an_exchange_at_its_quoted_payment_due() {
        let body = "Action=AcceptReservedInstancesExchangeQuote&Version=2016-11-15&ReservedInstanceId.1=ri-1&TargetConfiguration.1.OfferingId=off-2&TargetConfiguration.1.InstanceCount=1";
        let c = after(EXCHANGE_QUOTE_REQUEST, EXCHANGE_QUOTE, body);
        assert_eq!(amount(&c), "311.07 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity");
        assert_is(
            &classify_body(body),
            "unreadable",
            &["GetReservedInstancesExchangeQuote"],
        );
        let other = body.replace("InstanceCount=1", "InstanceCount=2");
        assert_is(
            &after(EXCHANGE_QUOTE_REQUEST, EXCHANGE_QUOTE, &other),
            "unreadable",
            &["payment due"],
        );
    }
}
