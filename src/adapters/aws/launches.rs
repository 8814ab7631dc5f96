//! Capacity billed by the hour (research §7.3): launches, spot requests,
//! fleets, dedicated hosts, type changes and capacity reservations. Each is
//! an hourly price × a count × a length of time: `vendors.aws.horizon` for
//! what runs until stopped, the hours until `EndDate` for a reservation
//! that ends.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{category, hours_text, over_seconds, positive_count, price, snippet, AwsAdapter, Call};
use crate::intent::Classification;
use crate::money::Money;

/// One instance type a request may launch, and at what hourly price.
struct Candidate {
    instance_type: String,
    /// The spot ceiling the request states for it, if any.
    spot_price: Option<(String, String)>,
    /// Capacity units one instance provides (`WeightedCapacity`, `Weight`).
    weight: Option<(String, String)>,
}

/// Whether the spot ceilings in the request bound the price: only when
/// all the capacity is spot (on-demand capacity is billed at the type's
/// on-demand price whatever the spot ceiling says).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Market {
    Spot,
    OnDemand,
}

impl AwsAdapter {
    /// The hourly price of one `instance_type` instance, and where it came
    /// from. A spot ceiling counts only for all-spot capacity.
    fn hourly(
        &self,
        instance_type: &str,
        spot: Option<(&str, &str)>,
        market: Market,
    ) -> Result<(Decimal, String), String> {
        let currency = self.currency()?;
        if let (Market::Spot, Some((name, text))) = (market, spot) {
            let ceiling = price(name, text)?;
            return Ok((
                ceiling,
                format!("{ceiling} {currency}/h for {instance_type} (the spot ceiling {name})"),
            ));
        }
        let configured = self.configured_price(instance_type)?;
        if let Some((name, text)) = spot {
            // Mixed capacity: the dearer of the two.
            let ceiling = price(name, text)?;
            if ceiling > configured {
                return Ok((
                    ceiling,
                    format!("{ceiling} {currency}/h for {instance_type} (the spot ceiling {name}, above vendors.aws.prices)"),
                ));
            }
        }
        Ok((
            configured,
            format!("{configured} {currency}/h for {instance_type} (vendors.aws.prices)"),
        ))
    }

    /// `hourly × count × seconds` as a spend of `call`.
    fn priced(
        &self,
        call: &Call<'_, '_>,
        hourly: Decimal,
        count: u64,
        seconds: u64,
        why: String,
        category: &str,
    ) -> Classification {
        let currency = match self.currency() {
            Ok(c) => c,
            Err(reason) => return call.unreadable(reason),
        };
        let Some(amount) = over_seconds(hourly, count, seconds) else {
            return call.unreadable(format!("{why}: the amount is too large to compute exactly"));
        };
        let sources = BTreeMap::from([("amount".to_owned(), why)]);
        let draft = self.draft(call, Money::new(amount, currency), category, sources);
        Classification::spend(&call.action, vec![draft])
    }

    fn horizon(&self) -> (u64, String) {
        let secs = self.settings.horizon_secs;
        (secs, format!("{} (vendors.aws.horizon)", hours_text(secs)))
    }

    /// `RunInstances`: `MaxCount` instances of `InstanceType` for the horizon.
    pub(super) fn run_instances(&self, call: &Call<'_, '_>) -> Classification {
        let count = match call.count("MaxCount") {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let Some(instance_type) = call.get("InstanceType") else {
            return call.unreadable(if call.params.has("LaunchTemplate") {
                "the instance type is in the launch template (LaunchTemplate.*), not in the request; send InstanceType too".to_owned()
            } else {
                "RunInstances has no InstanceType".to_owned()
            });
        };
        let spot = call.get("InstanceMarketOptions.MarketType") == Some("spot");
        let ceiling = call
            .get("InstanceMarketOptions.SpotOptions.MaxPrice")
            .map(|v| ("InstanceMarketOptions.SpotOptions.MaxPrice", v));
        let market = if spot { Market::Spot } else { Market::OnDemand };
        let (hourly, why) = match self.hourly(instance_type, ceiling.filter(|_| spot), market) {
            Ok(h) => h,
            Err(reason) => return call.unreadable(reason),
        };
        let (secs, horizon) = self.horizon();
        let why = format!("{why} × {count} instance(s) (MaxCount) × {horizon}");
        self.priced(
            call,
            hourly,
            count,
            secs,
            why,
            category(&[instance_type], false),
        )
    }

    /// `StartInstances`: each instance (its type learned from an answer)
    /// for the horizon.
    pub(super) fn start_instances(&self, call: &Call<'_, '_>) -> Classification {
        let ids = call.params.values("InstanceId");
        if ids.is_empty() {
            return call.unreadable("StartInstances names no InstanceId.N");
        }
        let mut hourly = Decimal::ZERO;
        let mut types = Vec::new();
        let mut parts = Vec::new();
        for id in &ids {
            let Some(instance_type) = super::learn::instance_type(call, id) else {
                return call.unreadable(format!(
                    "the instance type of {} is not in the request, and was not seen in a RunInstances or DescribeInstances answer that passed through leash",
                    snippet(id)
                ));
            };
            let (price, why) = match self.hourly(&instance_type, None, Market::OnDemand) {
                Ok(h) => h,
                Err(reason) => return call.unreadable(reason),
            };
            let Some(sum) = hourly.checked_add(price) else {
                return call.unreadable("the amount is too large to compute exactly");
            };
            hourly = sum;
            parts.push(format!("{} {why}", snippet(id)));
            types.push(instance_type);
        }
        let (secs, horizon) = self.horizon();
        let why = format!(
            "{} (types from the agent's own answers) × {horizon}",
            parts.join(" + ")
        );
        let types: Vec<&str> = types.iter().map(String::as_str).collect();
        self.priced(call, hourly, 1, secs, why, category(&types, false))
    }

    /// `RequestSpotInstances`: `InstanceCount` (default 1) spot instances.
    pub(super) fn request_spot_instances(&self, call: &Call<'_, '_>) -> Classification {
        let count = match call.get("InstanceCount") {
            None => 1,
            Some(_) => match call.count("InstanceCount") {
                Ok(n) => n,
                Err(reason) => return call.unreadable(reason),
            },
        };
        let Some(instance_type) = call.get("LaunchSpecification.InstanceType") else {
            return call.unreadable("RequestSpotInstances has no LaunchSpecification.InstanceType");
        };
        let ceiling = call.get("SpotPrice").map(|v| ("SpotPrice", v));
        let (hourly, why) = match self.hourly(instance_type, ceiling, Market::Spot) {
            Ok(h) => h,
            Err(reason) => return call.unreadable(reason),
        };
        let (secs, horizon) = self.horizon();
        let why = format!("{why} × {count} instance(s) (InstanceCount) × {horizon}");
        self.priced(
            call,
            hourly,
            count,
            secs,
            why,
            category(&[instance_type], false),
        )
    }

    /// `AllocateHosts`: `Quantity` hosts of `InstanceType`.
    pub(super) fn allocate_hosts(&self, call: &Call<'_, '_>) -> Classification {
        let count = match call.count("Quantity") {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let Some(instance_type) = call.get("InstanceType") else {
            return call.unreadable(
                "AllocateHosts names no InstanceType (a host of an InstanceFamily has no price in vendors.aws.prices, which is by instance type)",
            );
        };
        let (hourly, why) = match self.hourly(instance_type, None, Market::OnDemand) {
            Ok(h) => h,
            Err(reason) => return call.unreadable(reason),
        };
        let (secs, horizon) = self.horizon();
        let why = format!("{why} × {count} host(s) (Quantity) × {horizon}");
        self.priced(
            call,
            hourly,
            count,
            secs,
            why,
            category(&[instance_type], false),
        )
    }

    /// `ModifyInstanceAttribute` changing the type: one instance of the new
    /// type for the horizon. Any other attribute is unknown.
    pub(super) fn modify_instance_attribute(&self, call: &Call<'_, '_>) -> Classification {
        let nested = call.get("InstanceType.Value");
        let named = match call.get("Attribute") {
            Some("instanceType") => Some(call.get("Value")),
            Some(_) => None,
            None => None,
        };
        let instance_type = match (nested, named) {
            (Some(_), Some(_)) => {
                return Classification::Ambiguous {
                    operation: call.action.clone(),
                    reason: "the new instance type is given both as InstanceType.Value and as Attribute=instanceType".into(),
                }
            }
            (Some(t), None) | (None, Some(Some(t))) => t,
            (None, Some(None)) => return call.unreadable("Attribute=instanceType has no Value"),
            (None, None) => {
                return Classification::Unknown {
                    operation: call.action.clone(),
                    reason: "leash reads ModifyInstanceAttribute only when it changes the instance type; other attributes may cost money too".into(),
                }
            }
        };
        let (hourly, why) = match self.hourly(instance_type, None, Market::OnDemand) {
            Ok(h) => h,
            Err(reason) => return call.unreadable(reason),
        };
        let (secs, horizon) = self.horizon();
        let why = format!("{why} × 1 instance (the new type) × {horizon}");
        self.priced(
            call,
            hourly,
            1,
            secs,
            why,
            category(&[instance_type], false),
        )
    }

    /// `RequestSpotFleet` (everything under `SpotFleetRequestConfig.`).
    pub(super) fn request_spot_fleet(&self, call: &Call<'_, '_>) -> Classification {
        let config = "SpotFleetRequestConfig";
        let target = match call.count(&format!("{config}.TargetCapacity")) {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let on_demand = call.get(&format!("{config}.OnDemandTargetCapacity"));
        let market = if on_demand.is_none_or(|v| v == "0") {
            Market::Spot
        } else {
            Market::OnDemand
        };
        let fleet_price = format!("{config}.SpotPrice");
        let fleet_spot = call
            .get(&fleet_price)
            .map(|v| (fleet_price.clone(), v.to_owned()));
        let mut candidates = Vec::new();
        for i in call
            .params
            .indices(&format!("{config}.LaunchSpecifications"))
        {
            let at = format!("{config}.LaunchSpecifications.{i}");
            match candidate(call, &at, "SpotPrice", "WeightedCapacity") {
                Ok(c) => candidates.push(c),
                Err(reason) => return call.unreadable(reason),
            }
        }
        if let Err(reason) = overrides(
            call,
            &format!("{config}.LaunchTemplateConfigs"),
            "SpotPrice",
            &mut candidates,
        ) {
            return call.unreadable(reason);
        }
        for c in &mut candidates {
            if c.spot_price.is_none() {
                c.spot_price = fleet_spot.clone();
            }
        }
        self.fleet(
            call,
            target,
            "TargetCapacity",
            market,
            candidates,
            false,
            None,
        )
    }

    /// `CreateFleet`.
    pub(super) fn create_fleet(&self, call: &Call<'_, '_>) -> Classification {
        let spec = "TargetCapacitySpecification";
        let target = match call.count(&format!("{spec}.TotalTargetCapacity")) {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let spot_default = call.get(&format!("{spec}.DefaultTargetCapacityType")) == Some("spot");
        let no_on_demand = call
            .get(&format!("{spec}.OnDemandTargetCapacity"))
            .is_none_or(|v| v == "0");
        let market = if spot_default && no_on_demand {
            Market::Spot
        } else {
            Market::OnDemand
        };
        let mut candidates = Vec::new();
        if let Err(reason) = overrides(call, "LaunchTemplateConfigs", "MaxPrice", &mut candidates) {
            return call.unreadable(reason);
        }
        self.fleet(
            call,
            target,
            "TotalTargetCapacity",
            market,
            candidates,
            false,
            None,
        )
    }

    /// `CreateCapacityReservation`: `InstanceCount` × the type's price ×
    /// the hours until `EndDate` (`EndDateType=limited`) or the horizon
    /// (`unlimited`, the default), at least `CommitmentDuration`.
    pub(super) fn create_capacity_reservation(&self, call: &Call<'_, '_>) -> Classification {
        let count = match call.count("InstanceCount") {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let Some(instance_type) = call.get("InstanceType") else {
            return call.unreadable("CreateCapacityReservation has no InstanceType");
        };
        let (secs, length) = match self.reservation_length(call, true) {
            Ok(l) => l,
            Err(reason) => return call.unreadable(reason),
        };
        let (hourly, why) = match self.hourly(instance_type, None, Market::OnDemand) {
            Ok(h) => h,
            Err(reason) => return call.unreadable(reason),
        };
        let why = format!("{why} × {count} instance(s) (InstanceCount) × {length}");
        self.priced(
            call,
            hourly,
            count,
            secs,
            why,
            category(&[instance_type], true),
        )
    }

    /// `CreateCapacityReservationFleet`: the dearest type for
    /// `TotalTargetCapacity`, until `EndDate` or for the horizon.
    pub(super) fn create_capacity_reservation_fleet(&self, call: &Call<'_, '_>) -> Classification {
        let target = match call.count("TotalTargetCapacity") {
            Ok(n) => n,
            Err(reason) => return call.unreadable(reason),
        };
        let mut candidates = Vec::new();
        for i in call.params.indices("InstanceTypeSpecification") {
            match candidate(
                call,
                &format!("InstanceTypeSpecification.{i}"),
                "",
                "Weight",
            ) {
                Ok(c) => candidates.push(c),
                Err(reason) => return call.unreadable(reason),
            }
        }
        let length = match self.reservation_length(call, false) {
            Ok(l) => l,
            Err(reason) => return call.unreadable(reason),
        };
        self.fleet(
            call,
            target,
            "TotalTargetCapacity",
            Market::OnDemand,
            candidates,
            true,
            Some(length),
        )
    }

    /// How long a reservation bills: until `EndDate` (counted from its
    /// `StartDate` or the time leash read it, whichever is later), else the
    /// horizon; never less than `CommitmentDuration`.
    fn reservation_length(
        &self,
        call: &Call<'_, '_>,
        has_end_type: bool,
    ) -> Result<(u64, String), String> {
        let end = call.get("EndDate");
        let limited = if has_end_type {
            match (call.get("EndDateType"), end) {
                (Some("limited"), Some(_)) => true,
                (Some("limited"), None) => return Err("EndDateType=limited has no EndDate".into()),
                (Some("unlimited") | None, None) => false,
                (Some("unlimited") | None, Some(_)) => {
                    return Err("EndDate is given without EndDateType=limited".into())
                }
                (Some(other), _) => {
                    return Err(format!("EndDateType {:?} is not read", snippet(other)))
                }
            }
        } else {
            end.is_some()
        };
        let (mut secs, mut text) = if limited {
            let end_text = end.unwrap_or_default();
            let end = timestamp("EndDate", end_text)?;
            let now = call.req.facts.read_at().ok_or_else(|| {
                "leash did not say when it read the request, so the hours until EndDate are not known".to_owned()
            })?;
            let start = match call.get("StartDate") {
                Some(s) => timestamp("StartDate", s)?.max(now),
                None => now,
            };
            let secs = (end - start).num_seconds();
            if secs <= 0 {
                return Err(format!(
                    "EndDate {end_text} is not after the reservation starts"
                ));
            }
            let secs = u64::try_from(secs).unwrap_or(u64::MAX);
            (
                secs,
                format!("{} until EndDate {end_text}", hours_text(secs)),
            )
        } else {
            let (secs, horizon) = self.horizon();
            (secs, format!("{horizon}, no EndDate"))
        };
        if let Some(commitment) = call.get("CommitmentDuration") {
            let committed = positive_count(commitment).ok_or_else(|| {
                format!(
                    "CommitmentDuration {:?} is not whole seconds",
                    snippet(commitment)
                )
            })?;
            if committed > secs {
                secs = committed;
                text = format!("{} (CommitmentDuration)", hours_text(secs));
            }
        }
        Ok((secs, text))
    }

    /// A fleet: for each candidate type, the instances it takes to reach
    /// `target` capacity units (⌈target ÷ weight⌉) × its hourly price; the
    /// dearest candidate is the amount, × `length` (else the horizon).
    #[allow(clippy::too_many_arguments)]
    fn fleet(
        &self,
        call: &Call<'_, '_>,
        target: u64,
        target_name: &str,
        market: Market,
        candidates: Vec<Candidate>,
        reserved: bool,
        length: Option<(u64, String)>,
    ) -> Classification {
        if candidates.is_empty() {
            return call.unreadable(
                "the fleet names no instance type (it lives in a launch template, or is chosen by InstanceRequirements)",
            );
        }
        let mut dearest: Option<(Decimal, u64, String)> = None;
        for c in &candidates {
            let spot = c.spot_price.as_ref().map(|(n, v)| (n.as_str(), v.as_str()));
            let (hourly, why) = match self.hourly(&c.instance_type, spot, market) {
                Ok(h) => h,
                Err(reason) => return call.unreadable(reason),
            };
            let instances = match &c.weight {
                None => target,
                Some((name, text)) => match instances_for(target, name, text) {
                    Ok(n) => n,
                    Err(reason) => return call.unreadable(reason),
                },
            };
            let Some(cost) = hourly.checked_mul(Decimal::from(instances)) else {
                return call.unreadable("the amount is too large to compute exactly");
            };
            if dearest.as_ref().is_none_or(|(d, _, _)| cost > *d) {
                let weight = c
                    .weight
                    .as_ref()
                    .map(|(n, v)| format!(" ({target} {target_name} ÷ {n} {v})"))
                    .unwrap_or_else(|| format!(" ({target_name})"));
                dearest = Some((
                    cost,
                    instances,
                    format!("{why} × {instances} instance(s){weight}"),
                ));
            }
        }
        let Some((cost, _, why)) = dearest else {
            return call.unreadable("the fleet names no instance type");
        };
        let (secs, length) = length.unwrap_or_else(|| self.horizon());
        let types: Vec<&str> = candidates
            .iter()
            .map(|c| c.instance_type.as_str())
            .collect();
        let why = format!(
            "the dearest of the fleet's {} type(s): {why} × {length}",
            types.len()
        );
        self.priced(call, cost, 1, secs, why, category(&types, reserved))
    }
}

/// The candidate at `at` (`…LaunchSpecifications.1`): its `InstanceType`,
/// its spot ceiling (`at.price`) and its weight (`at.weight`).
fn candidate(
    call: &Call<'_, '_>,
    at: &str,
    price: &str,
    weight: &str,
) -> Result<Candidate, String> {
    let instance_type = call
        .get(&format!("{at}.InstanceType"))
        .ok_or_else(|| format!("{at} names no InstanceType"))?;
    let field = |name: &str| {
        if name.is_empty() {
            return None;
        }
        let full = format!("{at}.{name}");
        call.get(&full).map(|v| (full, v.to_owned()))
    };
    Ok(Candidate {
        instance_type: instance_type.to_owned(),
        spot_price: field(price),
        weight: field(weight),
    })
}

/// The types of `configs.N.Overrides.M` (CreateFleet, RequestSpotFleet). A
/// launch template config without overrides keeps its type in the
/// template: unreadable.
fn overrides(
    call: &Call<'_, '_>,
    configs: &str,
    price: &str,
    into: &mut Vec<Candidate>,
) -> Result<(), String> {
    for i in call.params.indices(configs) {
        let at = format!("{configs}.{i}.Overrides");
        let each = call.params.indices(&at);
        if each.is_empty() {
            return Err(format!(
                "{configs}.{i} has no Overrides.N.InstanceType: the instance type is in the launch template, not in the request"
            ));
        }
        for j in each {
            into.push(candidate(
                call,
                &format!("{at}.{j}"),
                price,
                "WeightedCapacity",
            )?);
        }
    }
    Ok(())
}

/// ⌈target ÷ weight⌉, exactly.
fn instances_for(target: u64, name: &str, text: &str) -> Result<u64, String> {
    let weight = price(name, text)?;
    if weight <= Decimal::ZERO {
        return Err(format!("{name} {text} is not above 0"));
    }
    let target = Decimal::from(target);
    let too_large = || format!("{name} {text}: the instance count is too large to compute");
    let mut n = target.checked_div(weight).ok_or_else(too_large)?.ceil();
    if n.checked_mul(weight).ok_or_else(too_large)? < target {
        n += Decimal::ONE;
    }
    u64::try_from(n).map_err(|_| too_large())
}

/// An ISO 8601 timestamp as botocore sends it (`2026-12-31T00:00:00Z`).
fn timestamp(name: &str, text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "{name} {:?} is not an ISO 8601 time like 2026-12-31T00:00:00Z",
                snippet(text)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// research §7.2, byte for byte (the ClientToken is botocore's uuid4).
    const RUN_SPOT: &str = "Action=RunInstances&Version=2016-11-15&ImageId=ami-0123&InstanceType=p5.48xlarge&MinCount=1&MaxCount=2&InstanceMarketOptions.MarketType=spot&InstanceMarketOptions.SpotOptions.MaxPrice=12.5&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value=ml&ClientToken=7d4e0c4a-5b1f-4a51-9f0e-1c7c1f0a9b2e";

    #[test]
    fn run_instances_on_demand_and_spot() {
        let c = classify_body(RUN_SPOT);
        // 12.5/h spot ceiling × 2 × 24h.
        assert_eq!(amount(&c), "600.00 USD");
        let d = one(&c);
        assert_eq!(d.operation, "RunInstances");
        assert_eq!(d.category, "gpu_compute");
        assert_eq!(d.beneficiary.as_deref(), Some("aws"));
        assert_eq!(
            d.idempotency_key.as_deref(),
            Some("7d4e0c4a-5b1f-4a51-9f0e-1c7c1f0a9b2e")
        );
        assert!(
            source(&c).contains("InstanceMarketOptions.SpotOptions.MaxPrice"),
            "{}",
            source(&c)
        );
        assert!(source(&c).contains("× 2 instance(s) (MaxCount) × 24h (vendors.aws.horizon)"));
        // The same launch on demand: the configured price.
        let on_demand = RUN_SPOT.replace("InstanceMarketOptions.MarketType=spot&", "");
        let c = classify_body(&on_demand);
        assert_eq!(amount(&c), "4719.36 USD");
        assert!(source(&c).contains("98.32 USD/h for p5.48xlarge (vendors.aws.prices)"));
        let c = classify_body("Action=RunInstances&Version=2016-11-15&ImageId=ami-1&InstanceType=t3.micro&MinCount=1&MaxCount=3");
        assert_eq!(amount(&c), "0.7488 USD");
        assert_eq!(one(&c).category, "compute");
    }

    #[test]
    fn launch_templates_unpriced_types_and_bad_counts_are_unreadable() {
        assert_is(
            &classify_body("Action=RunInstances&Version=2016-11-15&MinCount=1&MaxCount=1&LaunchTemplate.LaunchTemplateName=gpu&LaunchTemplate.Version=%24Latest&ClientToken=x"),
            "unreadable",
            &["launch template"],
        );
        assert_is(
            &classify_body("Action=RunInstances&InstanceType=p3.2xlarge&MinCount=1&MaxCount=1"),
            "unreadable",
            &["p3.2xlarge has no price in vendors.aws.prices"],
        );
        for count in ["0", "01", "-1", "1.5", "", "1e3", "99999999999999"] {
            let body =
                format!("Action=RunInstances&InstanceType=t3.micro&MinCount=1&MaxCount={count}");
            assert_is(&classify_body(&body), "unreadable", &["MaxCount"]);
        }
        assert_is(
            &classify_body("Action=RunInstances&InstanceType=t3.micro&MinCount=1"),
            "unreadable",
            &["no MaxCount"],
        );
        // A spot ceiling that is not an exact price.
        assert_is(
            &classify_body("Action=RunInstances&InstanceType=p5.48xlarge&MinCount=1&MaxCount=1&InstanceMarketOptions.MarketType=spot&InstanceMarketOptions.SpotOptions.MaxPrice=1e2"),
            "unreadable",
            &["MaxPrice"],
        );
    }

    #[test]
    fn start_instances_needs_the_types_learned_from_answers() {
        let body = "Action=StartInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2";
        assert_is(
            &classify_body(body),
            "unreadable",
            &["instance type of i-1"],
        );
        let c = after(
            "Action=RunInstances&InstanceType=g5.xlarge&MinCount=1&MaxCount=2",
            RUN_ANSWER,
            body,
        );
        // 2 × 1.006 × 24.
        assert_eq!(amount(&c), "48.288 USD");
        assert_eq!(one(&c).category, "gpu_compute");
        let c = after(
            "Action=DescribeInstances",
            DESCRIBE_INSTANCES,
            "Action=StartInstances&InstanceId.1=i-9",
        );
        assert_eq!(amount(&c), "786.5424 USD");
    }

    #[test]
    fn spot_requests_fleets_and_hosts() {
        let c = classify_body("Action=RequestSpotInstances&Version=2016-11-15&SpotPrice=2.0&InstanceCount=1&LaunchSpecification.ImageId=ami-1&LaunchSpecification.InstanceType=g6.xlarge");
        assert_eq!(amount(&c), "48.00 USD");
        assert_eq!(one(&c).category, "gpu_compute");
        // No SpotPrice: the on-demand price is the default ceiling.
        let c = classify_body(
            "Action=RequestSpotInstances&InstanceCount=2&LaunchSpecification.InstanceType=t3.micro",
        );
        assert_eq!(amount(&c), "0.4992 USD");

        // research §7.3, RequestSpotFleet: 4 × 3.5/h × 24h.
        let c = classify_body("Action=RequestSpotFleet&Version=2016-11-15&SpotFleetRequestConfig.IamFleetRole=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&SpotFleetRequestConfig.TargetCapacity=4&SpotFleetRequestConfig.SpotPrice=3.5&SpotFleetRequestConfig.LaunchSpecifications.1.ImageId=ami-1&SpotFleetRequestConfig.LaunchSpecifications.1.InstanceType=g5.xlarge&SpotFleetRequestConfig.TagSpecification.1.ResourceType=spot-fleet-request");
        assert_eq!(amount(&c), "336.00 USD");
        // Weighted: 10 units of weight 4 need 3 instances.
        let c = classify_body("Action=RequestSpotFleet&SpotFleetRequestConfig.TargetCapacity=10&SpotFleetRequestConfig.LaunchSpecifications.1.InstanceType=g5.xlarge&SpotFleetRequestConfig.LaunchSpecifications.1.WeightedCapacity=4");
        assert_eq!(amount(&c), "72.432 USD");

        // research §7.2 CreateFleet: all spot, MaxPrice 40 × 2 × 24h.
        let fleet = "Action=CreateFleet&Version=2016-11-15&LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId=lt-1&LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=1&LaunchTemplateConfigs.1.Overrides.1.InstanceType=p5.48xlarge&LaunchTemplateConfigs.1.Overrides.1.MaxPrice=40&TargetCapacitySpecification.TotalTargetCapacity=2&TargetCapacitySpecification.DefaultTargetCapacityType=spot&SpotOptions.MaxTotalPrice=80&Type=instant&ClientToken=c1";
        let c = classify_body(fleet);
        assert_eq!(amount(&c), "1920.00 USD");
        assert_eq!(one(&c).idempotency_key.as_deref(), Some("c1"));
        // On-demand capacity is billed on demand, whatever MaxPrice says.
        let c = classify_body(&fleet.replace(
            "DefaultTargetCapacityType=spot",
            "DefaultTargetCapacityType=on-demand",
        ));
        assert_eq!(amount(&c), "4719.36 USD");
        // The dearest of two candidates.
        let c = classify_body("Action=CreateFleet&LaunchTemplateConfigs.1.Overrides.1.InstanceType=t3.micro&LaunchTemplateConfigs.1.Overrides.2.InstanceType=m5.large&TargetCapacitySpecification.TotalTargetCapacity=1");
        assert_eq!(amount(&c), "2.304 USD");
        assert_is(
            &classify_body("Action=CreateFleet&LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId=lt-1&TargetCapacitySpecification.TotalTargetCapacity=2"),
            "unreadable",
            &["launch template"],
        );
        assert_is(
            &classify_body("Action=CreateFleet&LaunchTemplateConfigs.1.Overrides.1.InstanceRequirements.VCpuCount.Min=4&TargetCapacitySpecification.TotalTargetCapacity=2"),
            "unreadable",
            &["InstanceType"],
        );

        let c = classify_body("Action=AllocateHosts&Version=2016-11-15&InstanceType=p5.48xlarge&Quantity=1&AvailabilityZone=us-east-1a");
        assert_eq!(amount(&c), "2359.68 USD");
        assert_eq!(one(&c).category, "gpu_compute");
        assert_is(
            &classify_body("Action=AllocateHosts&InstanceFamily=p5&Quantity=1"),
            "unreadable",
            &["InstanceFamily"],
        );
    }

    #[test]
    fn a_type_change_is_read_either_way_it_is_written() {
        let c = classify_body("Action=ModifyInstanceAttribute&Version=2016-11-15&InstanceId=i-1&InstanceType.Value=p5.48xlarge");
        assert_eq!(amount(&c), "2359.68 USD");
        let c = classify_body(
            "Action=ModifyInstanceAttribute&InstanceId=i-1&Attribute=instanceType&Value=t3.micro",
        );
        assert_eq!(amount(&c), "0.2496 USD");
        assert_is(
            &classify_body("Action=ModifyInstanceAttribute&InstanceId=i-1&Attribute=instanceType&Value=t3.micro&InstanceType.Value=p5.48xlarge"),
            "ambiguous",
            &["both"],
        );
    }

    #[test]
    fn capacity_reservations_until_their_end_date() {
        // research §7.2: 2 × p4d until 2026-12-31, read at 2026-11-24T10:00Z
        // = 878 h → 2 × 32.7726 × 878.
        let c = classify_body("Action=CreateCapacityReservation&Version=2016-11-15&InstanceType=p4d.24xlarge&InstancePlatform=Linux%2FUNIX&InstanceCount=2&AvailabilityZone=us-east-1a&EndDateType=limited&EndDate=2026-12-31T00%3A00%3A00Z&TagSpecifications.1.ResourceType=capacity-reservation&TagSpecifications.1.Tag.1.Key=team&TagSpecifications.1.Tag.1.Value=ml");
        assert_eq!(amount(&c), "57548.6856 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity");
        assert!(
            source(&c).contains("878h until EndDate 2026-12-31T00:00:00Z"),
            "{}",
            source(&c)
        );
        // Unlimited (the default): the horizon.
        let c = classify_body("Action=CreateCapacityReservation&InstanceType=m5.large&InstancePlatform=Linux%2FUNIX&InstanceCount=10");
        assert_eq!(amount(&c), "23.04 USD");
        assert_eq!(one(&c).category, "reserved_capacity");
        // A future start: billed from StartDate.
        let c = classify_body("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDateType=limited&StartDate=2026-12-01T00%3A00%3A00Z&EndDate=2026-12-02T00%3A00%3A00Z");
        assert_eq!(amount(&c), "2.304 USD");
        // A commitment longer than the dates.
        let c = classify_body("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&CommitmentDuration=172800");
        assert_eq!(amount(&c), "4.608 USD");
        for (body, says) in [
            ("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDateType=limited", "no EndDate"),
            ("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDate=2026-12-31T00%3A00%3A00Z", "without EndDateType=limited"),
            ("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDateType=limited&EndDate=2026-01-01T00%3A00%3A00Z", "not after"),
            ("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDateType=limited&EndDate=tomorrow", "ISO 8601"),
            ("Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDateType=soon", "EndDateType"),
        ] {
            assert_is(&classify_body(body), "unreadable", &[says]);
        }
        // research §7.2 CreateCapacityReservationFleet, unlimited.
        let c = classify_body("Action=CreateCapacityReservationFleet&Version=2016-11-15&InstanceTypeSpecification.1.InstanceType=p5.48xlarge&InstanceTypeSpecification.1.InstancePlatform=Linux%2FUNIX&InstanceTypeSpecification.1.Weight=1.0&TotalTargetCapacity=2&ClientToken=c2");
        assert_eq!(amount(&c), "4719.36 USD");
        assert_eq!(one(&c).category, "gpu_reserved_capacity");
    }

    #[test]
    fn an_end_date_needs_the_time_leash_read_the_request() {
        let a = adapter();
        let none = crate::intent::Facts::default();
        let body = b"Action=CreateCapacityReservation&InstanceType=m5.large&InstanceCount=1&EndDateType=limited&EndDate=2026-12-31T00%3A00%3A00Z";
        let c = crate::adapters::Adapter::classify(&a, &view(body, &none));
        assert_is(&c, "unreadable", &["when it read the request"]);
    }
}
