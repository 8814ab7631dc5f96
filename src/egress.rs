//! Where a blind tunnel may go (SPEC §3, `passthrough:`).
//!
//! A tunnel leash does not read is a hole in the policy unless its far end
//! is something the operator meant to allow. Two checks bound it:
//!
//! - **host patterns** (`passthrough.allow`): when listed, only host names
//!   matching one of them are tunnelled at all;
//! - **denied networks** (`passthrough.deny_networks`): the address actually
//!   dialled must not lie in loopback, private, link-local (cloud metadata at
//!   169.254.169.254), CGNAT or unspecified space — checked after resolving,
//!   on the one address leash then connects to, so a DNS answer cannot change
//!   between the check and the dial.
//!
//! Both are plain values with no I/O, so they are tested exhaustively here.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The networks `deny_networks: default` stands for.
///
/// Written as text so the list reads like the documentation; parsed once
/// per config load.
pub const DEFAULT_DENIED: &[&str] = &[
    "127.0.0.0/8",    // loopback
    "::1/128",        // loopback
    "0.0.0.0/8",      // "this network", incl. the unspecified 0.0.0.0
    "::/128",         // unspecified
    "10.0.0.0/8",     // RFC 1918
    "172.16.0.0/12",  // RFC 1918
    "192.168.0.0/16", // RFC 1918
    "fc00::/7",       // unique local
    "169.254.0.0/16", // link-local, cloud metadata
    "fe80::/10",      // link-local
    "100.64.0.0/10",  // CGNAT (RFC 6598)
];

/// A set of networks a tunnel never dials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeniedNetworks {
    nets: Vec<IpNet>,
}

impl DeniedNetworks {
    /// The built-in set (`deny_networks: default`).
    pub fn builtin() -> Self {
        Self {
            nets: DEFAULT_DENIED
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
        }
    }

    /// No denied network at all (`deny_networks: none`).
    pub fn none() -> Self {
        Self::default()
    }

    /// From config entries: CIDRs, bare addresses, or the word `default`
    /// (which expands to [`DEFAULT_DENIED`]).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries {
            if entry == "default" {
                nets.extend(Self::builtin().nets);
                continue;
            }
            nets.push(parse_net(entry)?);
        }
        Ok(Self { nets })
    }

    /// Whether `ip` lies in a denied network. IPv4-mapped IPv6 addresses
    /// (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry: they
    /// reach the same host.
    pub fn denies(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn parse_net(entry: &str) -> Result<IpNet, String> {
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "`{entry}` is not a network: write a CIDR like 10.0.0.0/8 or fd00::/8, an address, or `default`"
    ))
}

/// One `passthrough.allow` entry: an exact host name, or `*.suffix` for any
/// name below `suffix` (at any depth; not `suffix` itself, which must be
/// listed on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Below(String),
}

impl HostPattern {
    /// `host` is already lower case without a trailing dot (see
    /// [`normalize`]).
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Below(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
        }
    }
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = normalize(s);
        let (below, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, lower.clone()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "`{s}` is not a host pattern: write a host name like api.openai.com, or *.anthropic.com for every name below it"
            ));
        }
        Ok(if below {
            HostPattern::Below(name)
        } else {
            HostPattern::Exact(name)
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Below(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// Lower case, without IPv6 brackets or a trailing dot: the one spelling
/// host names are compared in.
pub fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_set_denies_what_the_spec_lists() {
        let denied = DeniedNetworks::builtin();
        for addr in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "0.0.0.0",
            "::",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "fc00::1",
            "fd12:3456::1",
            "169.254.169.254",
            "fe80::1",
            "100.64.0.1",
            "100.127.255.254",
            // IPv4-mapped spellings of the same hosts
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(denied.denies(ip(addr)), "{addr} must be denied");
        }
        for addr in [
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(!denied.denies(ip(addr)), "{addr} must be allowed");
        }
    }

    #[test]
    fn entries_expand_default_and_take_cidrs_and_addresses() {
        let set =
            DeniedNetworks::from_entries(["default", "203.0.113.0/24", "2001:db8::7"]).unwrap();
        assert!(set.denies(ip("127.0.0.1")));
        assert!(set.denies(ip("203.0.113.9")));
        assert!(set.denies(ip("2001:db8::7")));
        assert!(!set.denies(ip("2001:db8::8")));
        let only = DeniedNetworks::from_entries(["203.0.113.0/24"]).unwrap();
        assert!(
            !only.denies(ip("127.0.0.1")),
            "a list without `default` is the whole set"
        );
        assert!(DeniedNetworks::from_entries(["10.0.0.0/33"]).is_err());
        assert!(DeniedNetworks::from_entries(["localhost"]).is_err());
        assert!(DeniedNetworks::none().is_empty());
    }

    #[test]
    fn host_patterns() {
        let exact: HostPattern = "API.OpenAI.com.".parse().unwrap();
        assert!(exact.matches("api.openai.com"));
        assert!(!exact.matches("x.api.openai.com"));
        let below: HostPattern = "*.anthropic.com".parse().unwrap();
        assert!(below.matches("api.anthropic.com"));
        assert!(below.matches("a.b.anthropic.com"));
        assert!(!below.matches("anthropic.com"));
        assert!(!below.matches("evilanthropic.com"));
        assert!(!below.matches(".anthropic.com"));
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "http://x.com",
            "x.com/path",
            "x.com:443",
            "*.*.x.com",
            "-a.com",
        ] {
            assert!(
                bad.parse::<HostPattern>().is_err(),
                "{bad:?} must be refused"
            );
        }
        assert_eq!(below.to_string(), "*.anthropic.com");
    }

    proptest! {
        #[test]
        fn a_mapped_address_is_judged_as_its_ipv4(a in any::<u32>()) {
            let v4 = std::net::Ipv4Addr::from(a);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let denied = DeniedNetworks::builtin();
            prop_assert_eq!(denied.denies(IpAddr::V4(v4)), denied.denies(mapped));
        }

        #[test]
        fn patterns_never_panic(s in ".*", host in "[a-z0-9.-]{0,40}") {
            if let Ok(p) = s.parse::<HostPattern>() {
                let _ = p.matches(&host);
            }
        }
    }
}
