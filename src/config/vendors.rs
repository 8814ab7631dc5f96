//! `vendors:` in `leash.yaml`: what the built-in adapters need to know that
//! their requests do not say (SPEC §4.5) — an ad account's currency, a
//! bank's host, an instance type's price.
//!
//! Every setting is optional; an adapter without it looks the fact up
//! (where the vendor allows) or leaves the request unreadable. Nothing here
//! is a secret.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::{base_currency, host_names, nonzero_duration, required, Currency, PositiveDecimal};

/// The whole `vendors:` key, one entry per built-in vendor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Vendors {
    pub meta: MetaSettings,
    pub google_ads: GoogleAdsSettings,
    pub sepa: SepaSettings,
    pub wise: WiseSettings,
    pub fireblocks: FireblocksSettings,
    pub aws: AwsSettings,
}

/// `vendors.meta`: ad account → the currency its budgets are in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaSettings {
    /// Keyed `act_<digits>`; a bare number is read as `act_<number>`.
    #[serde(deserialize_with = "meta_accounts")]
    pub accounts: BTreeMap<String, String>,
}

/// `vendors.google_ads`: customer id → the currency its budgets are in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleAdsSettings {
    /// Keyed by the customer id, digits only (`123-456-7890` is read as
    /// `1234567890`, the form the API uses).
    #[serde(deserialize_with = "google_accounts")]
    pub accounts: BTreeMap<String, String>,
}

/// `vendors.sepa`: the banks' API hosts, which no built-in list can know.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SepaSettings {
    #[serde(deserialize_with = "opt_hosts")]
    pub hosts: Vec<String>,
    /// The category of every transfer read on these hosts.
    #[serde(deserialize_with = "super::identifier")]
    pub category: String,
}

impl Default for SepaSettings {
    fn default() -> Self {
        SepaSettings {
            hosts: Vec::new(),
            category: "payout".to_string(),
        }
    }
}

/// `vendors.wise`: its hosts (add the sandbox's to govern it too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WiseSettings {
    #[serde(deserialize_with = "host_names")]
    pub hosts: Vec<String>,
}

impl Default for WiseSettings {
    fn default() -> Self {
        WiseSettings {
            hosts: vec![
                "api.wise.com".to_string(),
                "api.transferwise.com".to_string(),
            ],
        }
    }
}

/// `vendors.fireblocks`: its API hosts, and asset id → the fx currency it
/// is counted in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FireblocksSettings {
    /// Production, sandbox and the EU regions by default (research §6.1):
    /// a workspace on any of them is governed without configuration.
    #[serde(deserialize_with = "host_names")]
    pub hosts: Vec<String>,
    #[serde(deserialize_with = "assets")]
    pub assets: BTreeMap<String, String>,
}

/// Fireblocks' API hosts (research §6.1).
pub const FIREBLOCKS_HOSTS: &[&str] = &[
    "api.fireblocks.io",
    "sandbox-api.fireblocks.io",
    "eu-api.fireblocks.io",
    "eu2-api.fireblocks.io",
];

impl Default for FireblocksSettings {
    fn default() -> Self {
        FireblocksSettings {
            hosts: FIREBLOCKS_HOSTS.iter().map(|h| h.to_string()).collect(),
            assets: BTreeMap::new(),
        }
    }
}

/// `vendors.aws`: what EC2 capacity costs, since its requests never say.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// The currency of `prices` and of every EC2 intent.
    #[serde(deserialize_with = "base_currency")]
    pub currency: String,
    /// How long a launch is assumed to run: a launch's amount is its
    /// hourly price × count × this.
    #[serde(deserialize_with = "nonzero_duration")]
    pub horizon: Duration,
    /// Instance type → price per hour, exact decimals.
    #[serde(deserialize_with = "prices")]
    pub prices: BTreeMap<String, Decimal>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            currency: "USD".to_string(),
            horizon: Duration::from_secs(24 * 60 * 60),
            prices: BTreeMap::new(),
        }
    }
}

fn opt_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let hosts = Vec::<super::HostName>::deserialize(d)?;
    Ok(hosts.into_iter().map(|h| h.0).collect())
}

/// A map whose keys are normalised by `key` and must stay distinct after.
fn keyed_currencies<'de, D: Deserializer<'de>>(
    d: D,
    key: fn(&str) -> Result<String, String>,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Currency>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, currency) in raw {
        let k = key(&k).map_err(de::Error::custom)?;
        if out.insert(k.clone(), currency.0).is_some() {
            return Err(de::Error::custom(format!("{k} is listed twice")));
        }
    }
    Ok(out)
}

fn meta_accounts<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    keyed_currencies(d, |k| {
        let digits = k.strip_prefix("act_").unwrap_or(k);
        if !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(format!("act_{digits}"))
        } else {
            Err(format!("`{k}` is not an ad account id like act_1001"))
        }
    })
}

fn google_accounts<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    keyed_currencies(d, |k| {
        let digits: String = k.chars().filter(|c| *c != '-').collect();
        if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(digits)
        } else {
            Err(format!(
                "`{k}` is not a customer id: ten digits like \"1234567890\" or \"123-456-7890\""
            ))
        }
    })
}

fn assets<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    keyed_currencies(d, |k| {
        let ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(k.to_string())
        } else {
            Err(format!(
                "`{k}` is not a Fireblocks asset id like BTC or USDC_ETH"
            ))
        }
    })
}

/// Prices are exact decimals, like fx rates: quoted, or whole numbers.
fn prices<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Decimal>, D::Error> {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct InstanceType(String);
    impl<'de> Deserialize<'de> for InstanceType {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            required(d, "an instance type like p5.48xlarge", |s| {
                let ok = s.contains('.')
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-')
                    });
                if ok {
                    Ok(InstanceType(s.to_string()))
                } else {
                    Err(format!("`{s}` is not an instance type like p5.48xlarge"))
                }
            })
        }
    }
    let map = BTreeMap::<InstanceType, PositiveDecimal>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k.0, v.0)).collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError};
    use super::*;

    fn vendors(text: &str) -> Vendors {
        match Config::parse(Path::new("leash.yaml"), text) {
            Ok(c) => c.vendors,
            Err(e) => panic!("{e}"),
        }
    }

    fn fails(text: &str) -> String {
        match Config::parse(Path::new("leash.yaml"), text) {
            Err(ConfigError::Yaml(e)) => e.to_string(),
            other => panic!("expected an error for {text:?}, got {other:?}"),
        }
    }

    /// The SPEC §4.5 example, read key for key.
    #[test]
    fn spec_example() {
        let v = vendors(
            r#"
vendors:
  meta:       { accounts: { act_1001: EUR, act_2002: USD } }
  google_ads: { accounts: { "1234567890": EUR, "987-654-3210": JPY } }
  sepa:       { hosts: [API.Bank.example], category: payout }
  wise:       { hosts: [api.wise.com, api.sandbox.transferwise.tech] }
  fireblocks: { assets: { BTC_TEST: BTC, USDC_ETH: USDC } }
  aws:        { currency: USD, horizon: 24h, prices: { p5.48xlarge: "98.32", t3.micro: "0.0104", m5.large: 1 } }
"#,
        );
        assert_eq!(v.meta.accounts["act_1001"], "EUR");
        assert_eq!(v.google_ads.accounts["9876543210"], "JPY");
        assert_eq!(v.sepa.hosts, ["api.bank.example"]);
        assert_eq!(v.sepa.category, "payout");
        assert_eq!(v.wise.hosts[1], "api.sandbox.transferwise.tech");
        assert_eq!(v.fireblocks.assets["USDC_ETH"], "USDC");
        assert_eq!(v.aws.prices["p5.48xlarge"], Decimal::new(9832, 2));
        assert_eq!(v.aws.prices["m5.large"], Decimal::ONE);
        assert_eq!(v.aws.horizon, Duration::from_secs(86_400));
    }

    #[test]
    fn defaults() {
        let v = Vendors::default();
        assert_eq!(v.wise.hosts, ["api.wise.com", "api.transferwise.com"]);
        assert_eq!(v.fireblocks.hosts, FIREBLOCKS_HOSTS);
        assert!(v.fireblocks.assets.is_empty());
        let only = vendors("vendors: { fireblocks: { hosts: [Sandbox-API.fireblocks.io] } }");
        assert_eq!(only.fireblocks.hosts, ["sandbox-api.fireblocks.io"]);
        assert_eq!(v.sepa.category, "payout");
        assert!(v.sepa.hosts.is_empty());
        assert_eq!(v.aws.currency, "USD");
        assert_eq!(v.aws.horizon, Duration::from_secs(86_400));
        assert_eq!(
            vendors("vendors: { meta: { accounts: { \"42\": EUR } } }")
                .meta
                .accounts["act_42"],
            "EUR"
        );
    }

    /// Every mistake names the place it is written.
    #[test]
    fn mistakes_are_placed() {
        let cases = [
            (
                "vendors:\n  meta: { accounts: { act_x: EUR } }\n",
                "leash.yaml:2:",
                "act_x",
            ),
            (
                "vendors:\n  meta: { accounts: { act_1: eur } }\n",
                "leash.yaml:2:",
                "upper case",
            ),
            (
                "vendors:\n  meta: { accounts: { act_1: EUR, \"1\": USD } }\n",
                "leash.yaml:2:",
                "act_1 is listed twice",
            ),
            (
                "vendors:\n  google_ads: { accounts: { \"12345\": EUR } }\n",
                "leash.yaml:2:",
                "ten digits",
            ),
            (
                "vendors:\n  aws: { prices: { p5.48xlarge: 98.32 } }\n",
                "leash.yaml:2:",
                "YAML float",
            ),
            (
                "vendors:\n  aws: { prices: { p5.48xlarge: \"-1\" } }\n",
                "leash.yaml:2:",
                "greater than 0",
            ),
            (
                "vendors:\n  aws: { prices: { P5: \"1\" } }\n",
                "leash.yaml:2:",
                "instance type",
            ),
            (
                "vendors:\n  aws: { horizon: 0s }\n",
                "leash.yaml:2:",
                "longer than 0s",
            ),
            (
                "vendors:\n  sepa: { hosts: [\"https://bank.example\"] }\n",
                "leash.yaml:2:",
                "host name",
            ),
            (
                "vendors:\n  wise: { hosts: [] }\n",
                "leash.yaml:2:",
                "at least one",
            ),
            (
                "vendors:\n  fireblocks: { hosts: [] }\n",
                "leash.yaml:2:",
                "at least one",
            ),
            (
                "vendors:\n  fireblocks:\n    hosts: [\"api.fireblocks.io/v1\"]\n",
                "leash.yaml:3:",
                "host name",
            ),
            (
                "vendors:\n  fireblocks: { assets: { \"BTC TEST\": BTC } }\n",
                "leash.yaml:2:",
                "asset id",
            ),
            ("vendors:\n  stripe: {}\n", "leash.yaml:2:", "stripe"),
        ];
        for (text, place, says) in cases {
            let e = fails(text);
            assert!(e.starts_with(place) && e.contains(says), "{text:?}: {e}");
        }
    }
}
