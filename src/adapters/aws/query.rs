//! The EC2 Query API reader: the parameters of one request, from its query
//! string and its form body together (research §7.1, traps 1, 2, 32).
//!
//! EC2 reads `Action` and every parameter from either place ("Query
//! requests are HTTP or HTTPS requests that use the HTTP verb GET or POST
//! and a Query parameter named `Action`"), so both are one set here: a name
//! in both, or twice in one, is read two ways and refused as ambiguous. So
//! are two names that differ only in letter case (`MaxCount`/`maxcount`:
//! leash cannot tell which one EC2 takes) and any name that is not an EC2
//! wire name — `Segment(.Segment)*`, each segment a capitalised word
//! (`InstanceType`) or a list index without leading zero (`1`, botocore's
//! lists are 1-based) — since some parser may read `Max%20Count` or
//! `InstanceId.01` as a name leash did not see.
//!
//! The SigV4 query parameters of a presigned request (`X-Amz-Signature`
//! and kin) are kept apart: they authenticate the request, they are not
//! part of the call.

use std::collections::{BTreeMap, BTreeSet};

use crate::adapters::{pairs, FormError};
use crate::intent::RequestView;

/// SigV4 parameters of a presigned request: authentication, not the call.
const AUTH_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Longest name echoed in an error.
const NAME_SNIPPET: usize = 60;

/// Why a request's parameters could not be read exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Bad escapes, non-UTF-8 text or a raw `;` (see [`FormError`]).
    #[error("{0}")]
    Form(FormError),
    /// The same name twice (in the query, the body, or one in each), or
    /// two names equal but for letter case.
    #[error("the parameter {0:?} is given more than once (query string and body count as one)")]
    Duplicate(String),
    /// A name that is not an EC2 wire name.
    #[error("the parameter name {0:?} is not an EC2 wire name like InstanceId.1")]
    OddName(String),
    /// A body that is not a form.
    #[error("the body is {0}, not application/x-www-form-urlencoded")]
    NotForm(String),
}

impl QueryError {
    /// Whether the request can be read two ways (refused outright), rather
    /// than not at all.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            QueryError::Form(e) => e.is_ambiguous(),
            QueryError::Duplicate(_) | QueryError::OddName(_) => true,
            QueryError::NotForm(_) => false,
        }
    }
}

/// One request's parameters, every name unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Reads the query string and (when present) the form body of `req`.
    pub fn read(req: &RequestView<'_>) -> Result<Params, QueryError> {
        if !req.body.is_empty() && !is_form(req.content_type) {
            return Err(QueryError::NotForm(match req.content_type {
                Some(ct) => format!("{:?}", snippet(ct)),
                None => "without a Content-Type".to_owned(),
            }));
        }
        Params::parse(req.query, req.body)
    }

    /// Reads `query` and `body` as one set of parameters.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Params, QueryError> {
        let mut map = BTreeMap::new();
        let mut folded = BTreeSet::new();
        for source in [query.map(str::as_bytes).unwrap_or(b""), body] {
            for (name, value) in pairs(source).map_err(QueryError::Form)? {
                if !folded.insert(name.to_ascii_lowercase()) {
                    return Err(QueryError::Duplicate(snippet(&name)));
                }
                if AUTH_PARAMS.contains(&name.as_str()) {
                    continue;
                }
                if !wire_name(&name) {
                    return Err(QueryError::OddName(snippet(&name)));
                }
                map.insert(name, value);
            }
        }
        Ok(Params { map })
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Whether `name` or anything under it (`name.…`) is given.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name) || self.under(name).next().is_some()
    }

    /// Every `(name, value)` under `prefix.`, in name order.
    fn under<'s>(&'s self, prefix: &str) -> impl Iterator<Item = (&'s str, &'s str)> {
        let start = format!("{prefix}.");
        self.map
            .range(start.clone()..)
            .take_while(move |(k, _)| k.starts_with(&start))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The indices of the list `prefix` (`InstanceId` for `InstanceId.1`,
    /// `InstanceId.3`), in numeric order: lists are 1-based and may be
    /// sparse or out of order on the wire (trap 32).
    pub fn indices(&self, prefix: &str) -> Vec<u32> {
        let cut = prefix.len() + 1;
        let found: BTreeSet<u32> = self
            .under(prefix)
            .filter_map(|(name, _)| {
                let rest = name.get(cut..)?;
                let index = rest.split('.').next()?;
                index.parse().ok()
            })
            .collect();
        found.into_iter().collect()
    }

    /// The values of the scalar list `prefix` (`InstanceId.N`), by index.
    pub fn values(&self, prefix: &str) -> Vec<&str> {
        self.indices(prefix)
            .into_iter()
            .filter_map(|i| self.get(&format!("{prefix}.{i}")))
            .collect()
    }

    /// Every parameter but `ClientToken`, in name order: what makes two
    /// requests the same call (see `AwsAdapter::fingerprint`).
    pub fn call(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map
            .iter()
            .filter(|(k, _)| k.as_str() != "ClientToken")
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every parameter, in name order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// `application/x-www-form-urlencoded`, with any parameters (`; charset=utf-8`).
fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// `Segment(.Segment)*`: a capitalised word first, then words or list
/// indices without leading zeros.
fn wire_name(name: &str) -> bool {
    let mut segments = name.split('.');
    let word = |s: &str| {
        s.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
            && s.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let index = |s: &str| {
        s.as_bytes()
            .first()
            .is_some_and(|b| (b'1'..=b'9').contains(b))
            && s.len() <= 9
            && s.bytes().all(|b| b.is_ascii_digit())
    };
    segments.next().is_some_and(word) && segments.all(|s| word(s) || index(s))
}

fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(NAME_SNIPPET).collect();
    if s.chars().nth(NAME_SNIPPET).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(query: Option<&str>, body: &str) -> Result<Params, QueryError> {
        Params::parse(query, body.as_bytes())
    }

    /// research §7.2, the first botocore body.
    const RUN: &str = "Action=RunInstances&Version=2016-11-15&ImageId=ami-0123&InstanceType=p5.48xlarge&MinCount=1&MaxCount=2&InstanceMarketOptions.MarketType=spot&InstanceMarketOptions.SpotOptions.MaxPrice=12.5&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value=ml&ClientToken=7d4e0c4a-5b1f-4a51-9f0e-1c7c1f0a9b2e";

    #[test]
    fn botocore_bodies_are_read_name_for_name() {
        let p = parse(None, RUN).unwrap();
        assert_eq!(p.get("Action"), Some("RunInstances"));
        assert_eq!(
            p.get("InstanceMarketOptions.SpotOptions.MaxPrice"),
            Some("12.5")
        );
        assert_eq!(p.get("TagSpecification.1.Tag.1.Value"), Some("ml"));
        assert!(p.has("TagSpecification"));
        assert!(
            !p.has("TagSpecifications"),
            "the singular is not the plural"
        );
        assert_eq!(p.indices("TagSpecification"), [1]);
        assert_eq!(p.call().filter(|(k, _)| *k == "ClientToken").count(), 0);
        let p = parse(
            None,
            "Action=PurchaseCapacityBlock&Version=2016-11-15&CapacityBlockOfferingId=cb-0123&InstancePlatform=Linux%2FUNIX",
        )
        .unwrap();
        assert_eq!(p.get("InstancePlatform"), Some("Linux/UNIX"));
        let p = parse(
            None,
            "Action=CreateCapacityReservation&EndDate=2026-12-31T00%3A00%3A00Z&TagSpecifications.1.ResourceType=capacity-reservation",
        )
        .unwrap();
        assert_eq!(p.get("EndDate"), Some("2026-12-31T00:00:00Z"));
        assert!(p.has("TagSpecifications") && !p.has("TagSpecification"));
    }

    #[test]
    fn lists_are_one_based_sparse_and_numeric() {
        let p = parse(
            None,
            "Action=StartInstances&InstanceId.10=i-10&InstanceId.2=i-2&InstanceId.1=i-1&InstanceIdX.1=no",
        )
        .unwrap();
        assert_eq!(p.indices("InstanceId"), [1, 2, 10]);
        assert_eq!(p.values("InstanceId"), ["i-1", "i-2", "i-10"]);
        let p = parse(
            None,
            "LaunchTemplateConfigs.2.Overrides.1.InstanceType=g5.xlarge&LaunchTemplateConfigs.1.Overrides.3.InstanceType=p5.48xlarge",
        )
        .unwrap();
        assert_eq!(p.indices("LaunchTemplateConfigs"), [1, 2]);
        assert_eq!(p.indices("LaunchTemplateConfigs.1.Overrides"), [3]);
        // An empty list is `Name=` (§7.1): present, no index.
        let p = parse(None, "HostIdSet=").unwrap();
        assert!(p.has("HostIdSet"));
        assert!(p.indices("HostIdSet").is_empty());
    }

    #[test]
    fn query_and_body_are_one_set() {
        let p = parse(Some("Action=DescribeInstances"), "Version=2016-11-15").unwrap();
        assert_eq!(p.get("Action"), Some("DescribeInstances"));
        for (query, body, name) in [
            (
                Some("Action=DescribeInstances"),
                "Action=RunInstances",
                "Action",
            ),
            (None, "MaxCount=1&MaxCount=100", "MaxCount"),
            (Some("MAXCOUNT=100"), "MaxCount=1", "MaxCount"),
            (None, "X-Amz-Date=1&x-amz-date=2", "x-amz-date"),
        ] {
            let e = parse(query, body).unwrap_err();
            assert_eq!(e, QueryError::Duplicate(name.into()));
            assert!(e.is_ambiguous());
        }
    }

    #[test]
    fn odd_names_and_bad_bytes() {
        for body in [
            "maxCount=1",
            "Max%20Count=1",
            "InstanceId.01=i-1",
            "InstanceId.0=i-1",
            "InstanceId..1=i-1",
            "InstanceId.=i-1",
            "1=x",
            "=x",
            "Max-Count=1",
            "InstanceId.1234567890=i",
        ] {
            let e = parse(None, body).unwrap_err();
            assert!(matches!(e, QueryError::OddName(_)), "{body}: {e:?}");
            assert!(e.is_ambiguous());
        }
        assert!(parse(None, "A=1;MaxCount=9").unwrap_err().is_ambiguous());
        assert!(!parse(None, "A=%zz").unwrap_err().is_ambiguous());
        assert!(!parse(None, "A=%ff").unwrap_err().is_ambiguous());
        // Presigned requests: SigV4 query parameters are not the call.
        let p = parse(
            Some("Action=DescribeRegions&X-Amz-Signature=abc&X-Amz-Credential=AKIA%2Fx"),
            "",
        )
        .unwrap();
        assert_eq!(p.iter().count(), 1);
    }

    #[test]
    fn the_body_must_be_a_form() {
        let facts = crate::intent::Facts::default();
        let mut view = RequestView {
            method: "POST",
            host: "ec2.us-east-1.amazonaws.com",
            path: "/",
            query: None,
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            idempotency_key: None,
            account: None,
            headers: &[],
            body: b"Action=RunInstances",
            facts: &facts,
        };
        assert!(Params::read(&view).is_ok());
        view.content_type = Some("application/json");
        let e = Params::read(&view).unwrap_err();
        assert!(matches!(e, QueryError::NotForm(_)) && !e.is_ambiguous());
        view.content_type = None;
        assert!(Params::read(&view).is_err());
        view.body = b"";
        view.query = Some("Action=DescribeInstances");
        assert!(Params::read(&view).is_ok(), "a GET has no body to type");
    }

    fn name() -> impl Strategy<Value = String> {
        let word = "[A-Z][A-Za-z0-9]{0,6}";
        let seg = prop_oneof![
            word.prop_map(String::from),
            (1u32..30).prop_map(|i| i.to_string())
        ];
        (word, prop::collection::vec(seg, 0..4)).prop_map(|(first, rest)| {
            std::iter::once(first)
                .chain(rest)
                .collect::<Vec<_>>()
                .join(".")
        })
    }

    proptest! {
        #[test]
        fn never_panics(query in prop::option::of(".*"), body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Params::parse(query.as_deref(), &body);
        }

        /// What botocore's serializer writes (urlencoded names and values)
        /// reads back exactly, whether it came in the query or the body.
        #[test]
        fn encoded_parameters_round_trip(
            params in prop::collection::btree_map(name(), ".{0,12}", 0..8),
            in_query in any::<bool>(),
        ) {
            // Names unique up to letter case, as EC2 needs them.
            let mut seen = BTreeSet::new();
            let params: BTreeMap<String, String> = params
                .into_iter()
                .filter(|(k, _)| seen.insert(k.to_ascii_lowercase()))
                .collect();
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            let read = if in_query {
                Params::parse(Some(&encoded), b"")
            } else {
                Params::parse(None, encoded.as_bytes())
            };
            let read = read.unwrap();
            let got: BTreeMap<String, String> =
                read.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(got, params);
        }
    }
}
