//! `leash.yaml`: where leash listens, where it keeps its state, who may
//! approve, and how to compare currencies (SPEC §1).
//!
//! Every key is optional: `leash run` in a fresh clone works with no file at
//! all. Every key that *is* written is checked before anything starts, and a
//! mistake stops start-up with `file:line:column: what is wrong` — a proxy
//! that guards money must not run on a half-understood config.
//!
//! Secrets never appear in the file: tokens are given as their SHA-256, and
//! signing secrets by the name of the environment variable that holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::egress::{DeniedNetworks, HostPattern};
use crate::yaml::{self, YamlError};

// `ledger:` and `instance_id` (SPEC §11), in their own file.
mod ledger;
pub use ledger::{default_instance_id, LedgerConfig, LedgerKind};
mod vendors;
pub use vendors::{
    AwsSettings, FireblocksSettings, GoogleAdsSettings, MetaSettings, SepaSettings, Vendors,
    WiseSettings,
};

/// The file read when no `--config` is given, from the working directory.
pub const DEFAULT_FILE: &str = "leash.yaml";

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config FILE` names a file that does not exist. A missing explicit
    /// file is an error, never a silent fall-back to the defaults: running
    /// with defaults the operator did not ask for is how policies get skipped.
    #[error("{}: no such config file", path.display())]
    Missing { path: PathBuf },
    /// The file could not be read, is not YAML, or says something wrong.
    /// Displays as `file:line:column: what is wrong`.
    #[error(transparent)]
    Yaml(#[from] YamlError),
}

/// The whole of `leash.yaml`, every key filled in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The proxy agents send their traffic to.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// The admin API (approvals, health, metrics). Never reachable through
    /// the proxy.
    #[serde(deserialize_with = "socket_addr")]
    pub admin: SocketAddr,
    /// Where the sled database lives: audit chain, holds, spend counters.
    #[serde(deserialize_with = "path")]
    pub data_dir: PathBuf,
    /// leash's own CA, created on first run.
    pub ca: CaPaths,
    /// Directory of policy stacks: every `*.yaml` in it.
    #[serde(deserialize_with = "path")]
    pub policies: PathBuf,
    /// The agent a request without proxy credentials speaks for (SPEC §2).
    #[serde(deserialize_with = "opt_name")]
    pub default_agent: Option<String>,
    /// Credentials agents present as the proxy password.
    #[serde(deserialize_with = "agents")]
    pub agents: BTreeMap<String, AgentCredential>,
    /// What happens to CONNECTs to hosts no adapter claims.
    pub passthrough: Passthrough,
    pub upstream: UpstreamConfig,
    pub limits: Limits,
    pub fx: Fx,
    pub holds: Holds,
    pub approvers: Approvers,
    /// Where a new hold is announced; all targets are notified at once.
    pub notify: Vec<NotifyTarget>,
    /// APIs described in YAML instead of code (SPEC §4.4).
    pub custom_vendors: Vec<CustomVendor>,
    /// How often the audit chain's head is signed (SPEC §8).
    pub audit: AuditConfig,
    /// What the built-in adapters need to know that requests do not say
    /// (SPEC §4.5).
    pub vendors: Vendors,
    /// Where caps' spend counters live (SPEC §11).
    pub ledger: LedgerConfig,
    /// This leash's name among the instances sharing a ledger: in its
    /// audit entries and its reservations. `None`: [`Config::instance_id`]
    /// derives one.
    #[serde(deserialize_with = "ledger::instance_id")]
    pub instance_id: Option<String>,
    /// The file this was read from; `None` when running on defaults.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    /// The defaults of SPEC §1: what `leash run` uses with no `leash.yaml`.
    fn default() -> Self {
        Config {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            admin: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8081),
            data_dir: PathBuf::from("./data"),
            ca: CaPaths::default(),
            policies: PathBuf::from("./policies"),
            default_agent: None,
            agents: BTreeMap::new(),
            passthrough: Passthrough::default(),
            upstream: UpstreamConfig::default(),
            limits: Limits::default(),
            fx: Fx::default(),
            holds: Holds::default(),
            approvers: Approvers::default(),
            notify: Vec::new(),
            custom_vendors: Vec::new(),
            audit: AuditConfig::default(),
            vendors: Vendors::default(),
            ledger: LedgerConfig::default(),
            instance_id: None,
            source: None,
        }
    }
}

/// Signed checkpoints of the audit chain: after `checkpoint_every` entries or
/// `checkpoint_interval`, whichever comes first (when there is anything new
/// to sign). The signing key lives beside the CA key (`leash-audit.key`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub checkpoint_every: u64,
    #[serde(deserialize_with = "nonzero_duration")]
    pub checkpoint_interval: Duration,
    /// The audit log stops writing (and leash forwarding) while less than
    /// this is free on `data_dir`'s file system, and writes again once
    /// there is: sled cannot recover from a disk that filled up under it
    /// without a restart (its next write hangs), so leash never lets it
    /// get there. `0` turns the floor off.
    #[serde(deserialize_with = "byte_size_or_off")]
    pub min_free_space: u64,
    /// Entries per sealed segment of the chain: once this many (and 64
    /// more) are unsealed, the oldest this many move to a JSON Lines file in
    /// `data_dir/audit-archive`, so memory does not grow with the chain.
    /// `0` keeps the whole chain in the database.
    pub segment_entries: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(10),
            min_free_space: 128 * 1024 * 1024,
            segment_entries: crate::audit::DEFAULT_SEGMENT_ENTRIES,
        }
    }
}

/// Where leash's CA certificate and key live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaPaths {
    #[serde(deserialize_with = "path")]
    pub cert: PathBuf,
    /// Created with mode 0600 and never overwritten.
    #[serde(deserialize_with = "path")]
    pub key: PathBuf,
}

impl Default for CaPaths {
    fn default() -> Self {
        CaPaths {
            cert: PathBuf::from("certs/leash-ca.pem"),
            key: PathBuf::from("certs/leash-ca.key"),
        }
    }
}

/// An agent's proxy credential.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentCredential {
    /// SHA-256 of the token the agent sends as its proxy password. `None`:
    /// the agent is known but needs no password.
    #[serde(deserialize_with = "opt_sha256")]
    pub token_sha256: Option<[u8; 32]>,
}

/// What to do with a CONNECT to a host that no vendor adapter claims.
///
/// YAML takes the short form `passthrough: tunnel | deny`, or a map
/// `{ mode, allow, deny_networks, idle_timeout }` (SPEC §1, §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passthrough {
    pub mode: PassthroughMode,
    /// When set, only host names matching one of these are tunnelled.
    pub allow: Option<Vec<HostPattern>>,
    /// Addresses a tunnel never dials, checked on the address dialled.
    pub deny_networks: DeniedNetworks,
    /// A blind tunnel with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Passthrough {
    fn default() -> Self {
        Passthrough {
            mode: PassthroughMode::Tunnel,
            allow: None,
            deny_networks: DeniedNetworks::builtin(),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl Passthrough {
    /// `passthrough: deny`.
    pub fn deny() -> Self {
        Passthrough {
            mode: PassthroughMode::Deny,
            ..Passthrough::default()
        }
    }

    /// Whether `allow` lets `host` (normalised) be tunnelled.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(host)))
    }
}

/// Whether hosts no adapter reads are tunnelled or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassthroughMode {
    /// Relay the bytes untouched: agents keep working with every other API.
    #[default]
    Tunnel,
    /// Refuse with 403: the agent may only reach APIs leash understands.
    Deny,
}

/// The map form of `passthrough:`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPassthrough {
    mode: PassthroughMode,
    allow: Option<Vec<HostPatternValue>>,
    deny_networks: DenyNetworksValue,
    #[serde(deserialize_with = "nonzero_duration")]
    idle_timeout: Duration,
}

impl Default for RawPassthrough {
    fn default() -> Self {
        let d = Passthrough::default();
        RawPassthrough {
            mode: d.mode,
            allow: None,
            deny_networks: DenyNetworksValue(d.deny_networks),
            idle_timeout: d.idle_timeout,
        }
    }
}

impl<'de> Deserialize<'de> for Passthrough {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = Passthrough;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`tunnel`, `deny`, or a map with mode, allow, deny_networks, idle_timeout",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Passthrough, E> {
                match v {
                    "tunnel" => Ok(Passthrough::default()),
                    "deny" => Ok(Passthrough::deny()),
                    other => Err(E::custom(format!(
                        "`{other}` is not a passthrough mode: write tunnel or deny"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Passthrough, A::Error> {
                let raw = RawPassthrough::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Passthrough {
                    mode: raw.mode,
                    allow: raw.allow.map(|v| v.into_iter().map(|p| p.0).collect()),
                    deny_networks: raw.deny_networks.0,
                    idle_timeout: raw.idle_timeout,
                })
            }
        }
        d.deserialize_any(Form)
    }
}

/// `deny_networks`: `default`, `none`, or a list of CIDRs, addresses and
/// the word `default`.
struct DenyNetworksValue(DeniedNetworks);

impl<'de> Deserialize<'de> for DenyNetworksValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Nets;
        impl<'de> Visitor<'de> for Nets {
            type Value = DeniedNetworks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`default`, `none`, or a list of networks like [default, 203.0.113.0/24]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeniedNetworks, E> {
                match v {
                    "default" => Ok(DeniedNetworks::builtin()),
                    "none" => Ok(DeniedNetworks::none()),
                    other => Err(E::custom(format!(
                        "`{other}` is not a deny_networks value: write default, none, or a list of CIDRs"
                    ))),
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DeniedNetworks, A::Error> {
                let mut entries = Vec::new();
                while let Some(NetEntry(entry)) = seq.next_element()? {
                    entries.push(entry);
                }
                DeniedNetworks::from_entries(entries.iter().map(String::as_str))
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(Nets).map(DenyNetworksValue)
    }
}

/// One `deny_networks` entry, validated where it is written.
struct NetEntry(String);

impl<'de> Deserialize<'de> for NetEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        required(d, "a network", |s| {
            DeniedNetworks::from_entries([s]).map(|_| s.to_string())
        })
        .map(NetEntry)
    }
}

/// How leash reaches the real vendor APIs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Vendor host (lower case) → the address to connect to instead, for
    /// tests and staging. TLS still verifies the vendor's host name.
    #[serde(deserialize_with = "overrides")]
    pub overrides: BTreeMap<String, HostPort>,
    /// A CA trusted for upstream TLS in addition to the system roots.
    #[serde(deserialize_with = "opt_path")]
    pub extra_ca: Option<PathBuf>,
    /// How long to wait for an upstream answer.
    #[serde(deserialize_with = "nonzero_duration")]
    pub timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            overrides: BTreeMap::new(),
            extra_ca: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A host and port to connect to: `127.0.0.1:12111`, `[::1]:443`,
/// `vendor-mock:12111`. The port is required: guessing 443 for a test double
/// that listens on plain HTTP is a confusing failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// A host name (lower case) or IP address, without brackets.
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains("://") || s.contains('/') {
            return Err(format!(
                "`{s}` is not host:port: write only the address, like 127.0.0.1:12111 (no scheme or path)"
            ));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (ip, port) = rest.split_once("]:").ok_or_else(|| {
                format!("`{s}` is not host:port: write an IPv6 address like [::1]:443")
            })?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| format!("`{ip}` in `{s}` is not an IPv6 address"))?;
            (ip.to_string(), port)
        } else {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("`{s}` has no port: write it like {s}:443"))?;
            if host.contains(':') {
                return Err(format!(
                    "`{s}` is not host:port: put an IPv6 address in brackets, like [::1]:443"
                ));
            }
            (host_name(host)?, port)
        };
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(format!("`{port}` in `{s}` is not a port (1 to 65535)"));
            }
            Ok(port) => port,
        };
        Ok(HostPort { host, port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Bounds on what leash reads into memory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body read on an intercepted host, in bytes; larger is
    /// answered 413. YAML takes `1048576`, `512KiB`, `1MiB` or `1MB`.
    #[serde(deserialize_with = "byte_size")]
    pub max_body: u64,
    /// How long a client has, from connecting, to send a whole request head
    /// (on the proxy port, and inside an intercepted tunnel for its first
    /// request), and to finish a TLS handshake with leash. A connection that
    /// sends nothing is closed then, so idle sockets cannot pile up.
    #[serde(deserialize_with = "nonzero_duration")]
    pub header_read_timeout: Duration,
    /// An admin connection with no bytes either way for this long is
    /// closed (keep-alive included).
    #[serde(deserialize_with = "nonzero_duration")]
    pub idle_timeout: Duration,
    /// At most this many admin connections at once; more are closed on
    /// accept, so the admin port can never use up the descriptors agent
    /// traffic needs.
    pub max_admin_connections: NonZeroUsize,
    /// Memory the database (sled) may use to cache its pages. sled's own
    /// default is 1 GiB, which a sidecar would grow into over a long run;
    /// the chain is written sequentially and read rarely, so a small cache
    /// costs little.
    #[serde(deserialize_with = "byte_size")]
    pub db_cache: u64,
}

/// [`Limits::db_cache`]'s default.
pub const DEFAULT_DB_CACHE: u64 = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_admin_connections: NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN),
            db_cache: DEFAULT_DB_CACHE,
        }
    }
}

/// How amounts in different currencies are compared.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fx {
    /// The currency everything is converted to (ISO 4217, like EUR).
    #[serde(deserialize_with = "base_currency")]
    pub base: String,
    /// Currency code → how many `base` one unit is worth. Exact decimals:
    /// money never goes through floating point.
    #[serde(deserialize_with = "rates")]
    pub rates: BTreeMap<String, Decimal>,
}

impl Default for Fx {
    fn default() -> Self {
        Fx {
            base: "EUR".to_string(),
            rates: BTreeMap::new(),
        }
    }
}

/// How long a held request waits for a human.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Holds {
    /// How long the agent's connection is kept open waiting for a decision
    /// before it gets the "held" answer. `0s` answers at once.
    #[serde(deserialize_with = "duration")]
    pub wait: Duration,
    /// How long a hold stays open before it expires.
    #[serde(deserialize_with = "nonzero_duration")]
    pub ttl: Duration,
    /// At most this many open (pending or approved) holds per agent; a
    /// request that would open one more is refused 429
    /// `leash_too_many_holds`. One agent must not be able to fill
    /// `data_dir` and stop audit writes for everyone.
    pub max_open_per_agent: u64,
    /// At most this many bytes of sealed held requests per agent.
    #[serde(deserialize_with = "byte_size")]
    pub max_bytes_per_agent: u64,
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            wait: Duration::from_secs(25),
            ttl: Duration::from_secs(24 * 60 * 60),
            max_open_per_agent: 100,
            max_bytes_per_agent: 64 * 1024 * 1024,
        }
    }
}

/// The humans who can release a hold, and named groups of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Approvers {
    #[serde(deserialize_with = "people")]
    pub people: BTreeMap<String, Person>,
    /// Group name → its members, each a person. Policies name people and
    /// groups alike, so a group may not share a name with a person.
    #[serde(deserialize_with = "groups")]
    pub groups: BTreeMap<String, Vec<String>>,
    /// People who may read the audit API (`GET /v1/audit`) and approve
    /// nothing: an internal audit team, a compliance tool.
    #[serde(deserialize_with = "auditors")]
    pub auditors: BTreeMap<String, Auditor>,
}

/// A reader of the audit chain, identified by a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auditor {
    /// SHA-256 of the bearer token the auditor sends to the admin API.
    #[serde(deserialize_with = "sha256")]
    pub token_sha256: [u8; 32],
}

/// One approver and the ways they prove who they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Person {
    /// SHA-256 of the bearer token this person uses on the admin API.
    #[serde(deserialize_with = "opt_sha256")]
    pub token_sha256: Option<[u8; 32]>,
    /// Slack member ID (like U024BE7LH). Button clicks are matched on it,
    /// never on a display name or e-mail, which anyone can change.
    #[serde(deserialize_with = "opt_slack_id")]
    pub slack: Option<String>,
}

/// Where a new hold is announced (SPEC §6). Written as a mapping tagged by
/// `kind`: `{ kind: slack, url: ..., signing_secret_env: ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawNotify")]
pub enum NotifyTarget {
    /// A Slack incoming webhook. Approve / Reject clicks come back to
    /// `POST /slack/actions`, checked with the signing secret read from the
    /// environment variable named here; without it the buttons are refused.
    Slack {
        url: String,
        signing_secret_env: Option<String>,
    },
    /// Any HTTP receiver, sent a JSON event signed the Standard Webhooks way
    /// with the secret read from the environment variable named here.
    Webhook {
        url: String,
        secret_env: Option<String>,
    },
}

/// `notify` items as written: one flat mapping whose allowed keys depend on
/// `kind`. Read flat (instead of with serde's internally tagged enums) so
/// that an unknown key or a wrong type is reported at its own position.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    kind: NotifyKind,
    #[serde(deserialize_with = "http_url")]
    url: String,
    #[serde(default, deserialize_with = "opt_env_name")]
    signing_secret_env: Option<String>,
    #[serde(default, deserialize_with = "opt_env_name")]
    secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum NotifyKind {
    Slack,
    Webhook,
}

impl TryFrom<RawNotify> for NotifyTarget {
    type Error = String;

    fn try_from(raw: RawNotify) -> Result<Self, String> {
        match raw.kind {
            NotifyKind::Slack => match raw.secret_env {
                Some(_) => Err("`secret_env` is for webhook targets: a slack target names its signing secret's variable with `signing_secret_env`".to_string()),
                None => Ok(NotifyTarget::Slack {
                    url: raw.url,
                    signing_secret_env: raw.signing_secret_env,
                }),
            },
            NotifyKind::Webhook => match raw.signing_secret_env {
                Some(_) => Err("`signing_secret_env` is for slack targets: a webhook target names its secret's variable with `secret_env`".to_string()),
                None => Ok(NotifyTarget::Webhook {
                    url: raw.url,
                    secret_env: raw.secret_env,
                }),
            },
        }
    }
}

/// An API described in YAML (SPEC §4.4). Only its shape is checked here; the
/// adapter built from it decides what each request is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomVendor {
    /// Lower-case identifier, used in audit entries and policy filters.
    #[serde(deserialize_with = "identifier")]
    pub name: String,
    /// Host names (lower case) this vendor's adapter claims.
    #[serde(deserialize_with = "host_names")]
    pub hosts: Vec<String>,
    #[serde(deserialize_with = "non_empty")]
    pub operations: Vec<CustomOperation>,
    /// The vendor signs each request with a short lifetime (a timestamped
    /// HMAC header): a held request is released by forwarding the agent's
    /// retry, which carries a fresh signature, instead of the stored copy
    /// (SPEC §6). Off by default: the stored copy is what was approved,
    /// byte for byte.
    #[serde(default)]
    pub short_lived_signatures: bool,
}

/// One spend operation of a custom vendor.
///
/// `amount`, `currency`, `beneficiary` and `category` say where a value comes
/// from. One starting with `/` is read from the body: a JSON pointer for
/// `body: json`, and for `body: form` the form field of that name (`/amount`
/// is the field `amount`; `amount` may also be written as a bare field name).
/// Anything else is a literal: a currency code for `currency`, a fixed name
/// for `beneficiary` and `category`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomOperation {
    #[serde(deserialize_with = "identifier")]
    pub name: String,
    /// `POST`, `PUT`, `PATCH` or `DELETE`: requests that carry a body.
    #[serde(deserialize_with = "method")]
    pub method: String,
    /// Request path, with `{name}` standing for one whole segment:
    /// `/v2/orders/{id}/confirm`.
    #[serde(deserialize_with = "path_template")]
    pub path: String,
    pub body: BodyFormat,
    pub amount: String,
    /// The amount is in minor units (cents), converted with the ISO 4217
    /// exponent of the currency.
    #[serde(default)]
    pub minor_units: bool,
    pub currency: String,
    #[serde(default)]
    pub beneficiary: Option<String>,
    /// Defaults to the operation's name.
    #[serde(default)]
    pub category: Option<String>,
    /// Where the idempotency key is: `{ header: Idempotency-Key }` or
    /// `{ body: /order_ref }`. Without it, the `Idempotency-Key` header.
    #[serde(default)]
    pub idempotency_key: Option<KeySource>,
}

/// Where a custom operation's idempotency key is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "KeySourceMap")]
pub enum KeySource {
    /// A request header.
    Header(String),
    /// A body reference, like `amount`'s.
    Body(String),
}

/// `{ header: Name }` or `{ body: /pointer }`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySourceMap {
    header: Option<String>,
    body: Option<String>,
}

impl TryFrom<KeySourceMap> for KeySource {
    type Error = String;

    fn try_from(map: KeySourceMap) -> Result<Self, String> {
        match (map.header, map.body) {
            (Some(header), None) => Ok(KeySource::Header(header)),
            (None, Some(body)) => Ok(KeySource::Body(body)),
            _ => Err("write either { header: Idempotency-Key } or { body: /order_ref }".into()),
        }
    }
}

/// How a custom operation's request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Json,
    Form,
}

impl Config {
    /// Loads the config for a command.
    ///
    /// With `explicit` (from `--config`) that file must exist. Without it,
    /// `./leash.yaml` is read when present, and otherwise every default is
    /// used. Relative paths written in the file are taken from the file's
    /// directory; defaults, and paths when there is no file, stay relative to
    /// the working directory, as given.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_or(explicit, Path::new(DEFAULT_FILE))
    }

    /// The instance id: `instance_id`, else the host name and a hash of
    /// `data_dir` ([`default_instance_id`]).
    pub fn instance_id(&self) -> String {
        self.instance_id
            .clone()
            .unwrap_or_else(|| default_instance_id(&self.data_dir))
    }

    /// [`Config::load`], with `implicit` read instead of `./leash.yaml`.
    fn load_or(explicit: Option<&Path>, implicit: &Path) -> Result<Config, ConfigError> {
        let file = match explicit {
            Some(path) if !path.exists() => {
                return Err(ConfigError::Missing {
                    path: path.to_path_buf(),
                })
            }
            Some(path) => path,
            None if implicit.exists() => implicit,
            None => return Ok(Config::default()),
        };
        let text = yaml::read(file)?;
        Config::parse(file, &text)
    }

    /// Reads a config from `text`, which was read from `file`: deserializes,
    /// checks cross-references, resolves relative paths against `file`'s
    /// directory, and records `file` as the source.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = yaml::from_str(file, text).map_err(secret_hint)?;
        config.check(file, text)?;
        config.resolve_paths(file, text);
        config.source = Some(file.to_path_buf());
        Ok(config)
    }

    /// Checks what no single value can: references between keys.
    fn check(&self, file: &Path, text: &str) -> Result<(), YamlError> {
        let err = |path: &[&str], needle: Option<&str>, msg: String| {
            YamlError::at(file, text, path, needle, msg)
        };
        let value_err = |path: &[&str], msg: String| YamlError::at_value(file, text, path, msg);

        // Port 0 asks the OS for a free port each, so equal is fine there.
        if self.listen == self.admin && self.listen.port() != 0 {
            let key = if yaml::has_key(text, &["admin"]) {
                "admin"
            } else {
                "listen"
            };
            return Err(value_err(
                &[key],
                format!(
                    "admin and listen are both {}: the admin API needs its own address",
                    self.admin
                ),
            ));
        }

        // default_agent is a development identity: naming an agent that has
        // a token would hand that agent's identity (and policies) to every
        // client that sends no credentials.
        if let Some(agent) = &self.default_agent {
            if self
                .agents
                .get(agent)
                .is_some_and(|credential| credential.token_sha256.is_some())
            {
                return Err(value_err(
                    &["default_agent"],
                    format!(
                        "default_agent `{agent}` is listed under agents: with a token: a request without credentials would speak as `{agent}` without its token; name an agent listed without a token (e.g. `dev-agent: {{}}`) or remove default_agent"
                    ),
                ));
            }
        }

        // Approvers: groups are made of people, and names are unambiguous.
        let people = &self.approvers.people;
        for (group, members) in &self.approvers.groups {
            let at = ["approvers", "groups", group.as_str()];
            if people.contains_key(group) {
                return Err(err(&at, None, format!(
                    "`{group}` is both a person and a group: policies name either, so the names must differ"
                )));
            }
            if members.is_empty() {
                return Err(err(&at, None, format!("group `{group}` has no members")));
            }
            let mut seen = BTreeSet::new();
            for member in members {
                if !people.contains_key(member) {
                    return Err(err(
                        &at,
                        Some(member),
                        format!(
                            "group `{group}` names `{member}`, who is not in approvers.people{}",
                            known(people.keys())
                        ),
                    ));
                }
                if !seen.insert(member) {
                    return Err(err(
                        &at,
                        Some(member),
                        format!("group `{group}` names `{member}` twice"),
                    ));
                }
            }
        }
        for name in self.approvers.auditors.keys() {
            if people.contains_key(name) || self.approvers.groups.contains_key(name) {
                return Err(err(&["approvers", "auditors", name.as_str()], None, format!(
                    "`{name}` is both an auditor and an approver: an auditor reads the audit chain and approves nothing, so the names must differ"
                )));
            }
        }
        let mut slack_ids: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, person) in people {
            if let Some(id) = &person.slack {
                if let Some(other) = slack_ids.insert(id, name) {
                    return Err(value_err(
                        &["approvers", "people", name, "slack"],
                        format!("Slack ID {id} is already `{other}`'s: a click must map to exactly one approver"),
                    ));
                }
            }
        }

        // Tokens: each identity has its own. An agent holding an approver's
        // token could approve its own requests.
        let agent_tokens = self.agents.iter().map(|(name, agent)| {
            let path = vec!["agents", name.as_str(), "token_sha256"];
            (format!("agent `{name}`"), agent.token_sha256, path)
        });
        let approver_tokens = people.iter().map(|(name, person)| {
            let path = vec!["approvers", "people", name.as_str(), "token_sha256"];
            (format!("approver `{name}`"), person.token_sha256, path)
        });
        let auditor_tokens = self.approvers.auditors.iter().map(|(name, auditor)| {
            let path = vec!["approvers", "auditors", name.as_str(), "token_sha256"];
            (
                format!("auditor `{name}`"),
                Some(auditor.token_sha256),
                path,
            )
        });
        let mut tokens: BTreeMap<[u8; 32], String> = BTreeMap::new();
        for (who, token, path) in agent_tokens.chain(approver_tokens).chain(auditor_tokens) {
            let Some(token) = token else { continue };
            if let Some(other) = tokens.insert(token, who) {
                return Err(value_err(&path, format!(
                    "this token hash is already {other}'s: every agent and approver needs its own token"
                )));
            }
        }

        // Currencies.
        if let Some(rate) = self.fx.rates.get(&self.fx.base) {
            if *rate != Decimal::ONE {
                return Err(err(
                    &["fx", "rates", self.fx.base.as_str()],
                    None,
                    format!(
                        "{} is the base currency, so its rate is 1 by definition (found {rate})",
                        self.fx.base
                    ),
                ));
            }
        }

        if self.holds.wait > self.holds.ttl {
            return Err(value_err(&["holds", "wait"], format!(
                "wait ({}) is longer than ttl ({}): a hold would expire while the agent still waits",
                humantime::format_duration(self.holds.wait),
                humantime::format_duration(self.holds.ttl)
            )));
        }

        self.check_custom_vendors(file, text)
    }

    fn check_custom_vendors(&self, file: &Path, text: &str) -> Result<(), YamlError> {
        // Positions: the value at `custom_vendors[i].rest...`, or `needle`
        // inside it.
        let fail = |i: usize, rest: &[&str], needle: Option<&str>, msg: String| {
            let index = i.to_string();
            let mut path = vec!["custom_vendors", index.as_str()];
            path.extend_from_slice(rest);
            match needle {
                Some(_) => YamlError::at(file, text, &path, needle, msg),
                None => YamlError::at_value(file, text, &path, msg),
            }
        };
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let mut hosts: BTreeMap<&str, &str> = BTreeMap::new();
        for (i, vendor) in self.custom_vendors.iter().enumerate() {
            let name = vendor.name.as_str();
            if crate::adapters::BUILTIN_NAMES.contains(&name) {
                return Err(fail(
                    i,
                    &["name"],
                    None,
                    format!("`{name}` is a built-in vendor; give the custom vendor another name"),
                ));
            }
            if !names.insert(name) {
                return Err(fail(
                    i,
                    &["name"],
                    None,
                    format!("a custom vendor named `{name}` is already defined"),
                ));
            }
            for host in &vendor.hosts {
                // A bank host of `vendors.sepa` is read by the SEPA adapter.
                let builtin = crate::adapters::is_builtin_host(host)
                    || self.vendors.sepa.hosts.iter().any(|h| {
                        crate::adapters::normalize_host(h) == crate::adapters::normalize_host(host)
                    });
                if builtin {
                    return Err(fail(
                        i,
                        &["hosts"],
                        Some(host),
                        format!("{host} is read by a built-in adapter already"),
                    ));
                }
                if let Some(other) = hosts.insert(host, name) {
                    return Err(fail(
                        i,
                        &["hosts"],
                        Some(host),
                        format!("{host} is already claimed by custom vendor `{other}`"),
                    ));
                }
            }
            let mut ops = BTreeSet::new();
            let mut key_header: Option<String> = None;
            for (j, op) in vendor.operations.iter().enumerate() {
                let j = j.to_string();
                let at =
                    |key: &'static str, msg: String| fail(i, &["operations", &j, key], None, msg);
                if !ops.insert(op.name.as_str()) {
                    return Err(at(
                        "name",
                        format!(
                            "vendor `{name}` already has an operation named `{}`",
                            op.name
                        ),
                    ));
                }
                source_shape(op.body, &op.amount, Source::Amount).map_err(|m| at("amount", m))?;
                source_shape(op.body, &op.currency, Source::Currency)
                    .map_err(|m| at("currency", m))?;
                if let Some(b) = &op.beneficiary {
                    source_shape(op.body, b, Source::Literal).map_err(|m| at("beneficiary", m))?;
                }
                if let Some(c) = &op.category {
                    source_shape(op.body, c, Source::Category).map_err(|m| at("category", m))?;
                }
                match &op.idempotency_key {
                    Some(KeySource::Body(reference)) => {
                        source_shape(op.body, reference, Source::Amount)
                            .map_err(|m| at("idempotency_key", m))?;
                    }
                    Some(KeySource::Header(header)) => {
                        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                            return Err(at(
                                "idempotency_key",
                                format!("`{header}` is not a header name"),
                            ));
                        }
                        let lower = header.to_ascii_lowercase();
                        if let Some(other) = key_header.replace(lower.clone()) {
                            if other != lower {
                                return Err(at("idempotency_key", format!(
                                    "vendor `{name}` already reads its idempotency key from {other}: one header per vendor (it is read before the operation is known)"
                                )));
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Takes relative paths written in the file from the file's directory, so
    /// `leash run --config deploy/leash.yaml` finds `deploy/policies` wherever
    /// it is started from.
    fn resolve_paths(&mut self, file: &Path, text: &str) {
        let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
            return;
        };
        let written = |path: &[&str]| yaml::has_key(text, path);
        if written(&["data_dir"]) {
            self.data_dir = under(dir, &self.data_dir);
        }
        if written(&["policies"]) {
            self.policies = under(dir, &self.policies);
        }
        if written(&["ca", "cert"]) {
            self.ca.cert = under(dir, &self.ca.cert);
        }
        if written(&["ca", "key"]) {
            self.ca.key = under(dir, &self.ca.key);
        }
        if let Some(extra) = &self.upstream.extra_ca {
            self.upstream.extra_ca = Some(under(dir, extra));
        }
    }
}

/// `path` taken from `dir` when relative, without a `./` in the middle.
fn under(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let rest: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    dir.join(rest)
}

/// ", known: a, b" for messages about a name that is not defined.
fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", names.join(", "))
    }
}

/// Adds the reason to unknown-key errors for keys that would hold a secret.
fn secret_hint(mut err: YamlError) -> YamlError {
    let hint = if ["token", "password", "token_hash", "sha256"]
        .iter()
        .any(|k| err.message.contains(&format!("unknown field `{k}`")))
    {
        Some("tokens are never written in leash.yaml: give the token's SHA-256 as `token_sha256` (printf %s TOKEN | sha256sum)")
    } else if ["secret", "signing_secret", "webhook_secret"]
        .iter()
        .any(|k| err.message.contains(&format!("unknown field `{k}`")))
    {
        Some("secrets are never written in leash.yaml: name the environment variable that holds it, with `signing_secret_env` (slack) or `secret_env` (webhook)")
    } else {
        None
    };
    if let Some(hint) = hint {
        err.message = format!("{}; {hint}", err.message);
    }
    err
}

#[derive(Clone, Copy)]
enum Source {
    Amount,
    Currency,
    Category,
    Literal,
}

/// Checks a custom operation's value source (see [`CustomOperation`]).
fn source_shape(body: BodyFormat, value: &str, what: Source) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty: write a body reference like /total/value, or a literal".to_string());
    }
    if let Some(reference) = value.strip_prefix('/') {
        return match body {
            BodyFormat::Json => json_pointer(value),
            BodyFormat::Form if reference.is_empty() || reference.contains('/') => Err(format!(
                "`{value}` is not a form field: a form body is flat, write `/field`"
            )),
            BodyFormat::Form => Ok(()),
        };
    }
    match (what, body) {
        (Source::Amount, BodyFormat::Form) => Ok(()),
        (Source::Amount, BodyFormat::Json) => Err(format!(
            "`{value}` is not a JSON pointer: the amount is read from the body, like /total/value"
        )),
        (Source::Currency, _) => currency_code(value).map(|_| ()).map_err(|_| {
            format!("`{value}` is neither a body reference (starting with /) nor a currency code like EUR")
        }),
        (Source::Category, _) => identifier_str(value).map(|_| ()),
        (Source::Literal, _) => Ok(()),
    }
}

/// RFC 6901: `~` only as `~0` or `~1`.
fn json_pointer(pointer: &str) -> Result<(), String> {
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "`{pointer}` is not a JSON pointer: `~` must be written ~0, and `/` inside a key ~1"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scalar parsers. Each runs inside serde_yaml's read of the scalar (through
// `yaml::parse_scalar`), so its message is reported at the value itself.

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    Err(if s.starts_with(':') {
        format!("`{s}` has no IP address: write 127.0.0.1{s} for this machine only, or 0.0.0.0{s} for every interface")
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        format!(
            "`{s}` has no port: write it like {}",
            SocketAddr::new(ip, 8080)
        )
    } else if s.contains("::") && !s.starts_with('[') {
        format!("`{s}` is ambiguous: put an IPv6 address in brackets, like [::1]:8080")
    } else {
        format!("`{s}` is not an IP address and port like 127.0.0.1:8080 (names are not resolved for listening)")
    })
}

fn parse_path(s: &str) -> Result<PathBuf, String> {
    if s.starts_with('~') {
        // A shell would expand it; leash would make a directory named `~`.
        return Err(format!(
            "`{s}`: leash does not expand `~`; write the full path, or one relative to this file"
        ));
    }
    Ok(PathBuf::from(s))
}

/// Agent, person and group names: they travel in proxy URLs
/// (`http://NAME:TOKEN@...`) and policy files, so they stay plain.
/// Agent, person and group names: 1 to 64 letters, digits, `.`, `_` or `-`
/// (they travel in proxy URLs and policy files).
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn name(s: &str) -> Result<String, String> {
    if s == "*" {
        return Err("`*` means every agent in policy files; it cannot be a name".to_string());
    }
    if is_valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a valid name: use 1 to 64 letters, digits, `.`, `_` or `-`"
        ))
    }
}

fn sha256_hex(s: &str) -> Result<[u8; 32], String> {
    const HOW: &str = "compute it with `printf %s TOKEN | sha256sum`";
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "token_sha256 must be the 64 hex digits of a SHA-256 digest, and `{c}` is not a hex digit ({HOW}; the token itself never goes in this file)"
        ));
    }
    if s.len() != 64 {
        return Err(format!(
            "token_sha256 must be the 64 hex digits of a SHA-256 digest, this has {} ({HOW})",
            s.len()
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| format!("token_sha256: {e}"))?;
    Ok(out)
}

fn slack_id(s: &str) -> Result<String, String> {
    let ok = s.len() >= 2
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a Slack member ID: use the ID like U024BE7LH (profile → ⋮ → Copy member ID), never a display name or e-mail"
        ))
    }
}

/// A host name or IP address, returned in lower case.
fn host_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !s.starts_with(['.', '-'])
        && !s.ends_with('-');
    if !ok {
        return Err(format!(
            "`{s}` is not a host name like api.example.com (no scheme, port or path)"
        ));
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') && s.parse::<Ipv4Addr>().is_err() {
        return Err(format!("`{s}` is not an IPv4 address"));
    }
    Ok(s.to_ascii_lowercase())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{s}` has no unit: write it like {s}s"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}): write it like 25s, 24h or 1h30m"))
}

fn parse_byte_size(s: &str) -> Result<u64, String> {
    let bytes = match s.parse::<u64>() {
        Ok(n) => n,
        Err(_) if s.starts_with(|c: char| c.is_ascii_digit()) => s
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|_| {
                format!(
                    "`{s}` is not a size: write bytes (1048576) or a size like 512KiB, 1MiB or 1MB"
                )
            })?,
        Err(_) => {
            return Err(format!(
                "`{s}` is not a size: write bytes (1048576) or a size like 512KiB, 1MiB or 1MB"
            ))
        }
    };
    if bytes == 0 {
        return Err("a size of 0 would refuse every request body".to_string());
    }
    Ok(bytes)
}

/// ISO 4217 style: three upper-case letters.
fn iso_currency(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s.to_string())
    } else if s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()) {
        Err(format!(
            "write currency codes in upper case: {}",
            s.to_ascii_uppercase()
        ))
    } else {
        Err(format!(
            "`{s}` is not a currency code: three letters like EUR"
        ))
    }
}

/// Any currency leash can convert: ISO codes and crypto assets like USDC —
/// 3 to 5 upper-case letters or digits.
fn currency_code(s: &str) -> Result<String, String> {
    let fits = (3..=5).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric());
    if fits
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        Ok(s.to_string())
    } else if fits {
        Err(format!(
            "write currency codes in upper case: {}",
            s.to_ascii_uppercase()
        ))
    } else {
        Err(format!(
            "`{s}` is not a currency code: 3 to 5 upper-case letters or digits, like USD or USDC"
        ))
    }
}

fn parse_rate(s: &str) -> Result<Decimal, String> {
    let rate = Decimal::from_str_exact(s)
        .map_err(|_| format!("`{s}` is not a decimal number like \"0.92\""))?;
    if rate <= Decimal::ZERO {
        return Err(format!("a rate must be greater than 0, found {s}"));
    }
    Ok(rate)
}

fn identifier_str(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an identifier: lower-case letters, digits and `_`, starting with a letter"
        ))
    }
}

fn http_method(s: &str) -> Result<String, String> {
    match s {
        "POST" | "PUT" | "PATCH" | "DELETE" => Ok(s.to_string()),
        "post" | "put" | "patch" | "delete" => Ok(s.to_ascii_uppercase()),
        _ => Err(format!(
            "`{s}` is not a method that carries an amount: POST, PUT, PATCH or DELETE"
        )),
    }
}

fn parse_path_template(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "`{s}` is not a path: it starts with /, like /v2/orders"
        ));
    }
    if s.contains(['?', '#']) || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{s}` is not a path: no query, fragment or spaces (requests are matched on the path alone)"
        ));
    }
    for segment in s.split('/') {
        let has_brace = segment.contains(['{', '}']);
        let placeholder = segment
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if has_brace && placeholder.is_none() {
            return Err(format!(
                "`{segment}` in `{s}`: a placeholder is a whole segment like {{id}}"
            ));
        }
    }
    Ok(s.to_string())
}

fn parse_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("`{s}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` is not a URL with a host"));
    }
    Ok(s.to_string())
}

fn env_name(s: &str) -> Result<String, String> {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an environment variable name like SLACK_SIGNING_SECRET (the secret itself never goes in this file)"
        ))
    }
}

// ---------------------------------------------------------------------------
// serde glue: `deserialize_with` helpers and the private newtypes they read.

/// Reads a scalar with `parse` (through `yaml::parse_scalar`, so errors are
/// placed at the value). An empty value or a null is refused first, with a
/// message that says so instead of "`` is not ...".
fn required<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    yaml::parse_scalar(d, expecting, |s| match s {
        "" | "~" | "null" => Err(format!(
            "no value: expected {expecting} (leave the key out to use the default)"
        )),
        s => parse(s),
    })
}

/// Declares a newtype read with [`required`] and a parser above.
macro_rules! scalar {
    ($name:ident($ty:ty), $expecting:literal, $parse:expr) => {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct $name($ty);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                required(d, $expecting, $parse).map($name)
            }
        }
    };
}

scalar!(Name(String), "a name", name);
scalar!(Sha256([u8; 32]), "64 hex digits", sha256_hex);
scalar!(SlackId(String), "a Slack member ID", slack_id);
scalar!(HostName(String), "a host name", host_name);
/// One `passthrough.allow` entry, validated where it is written.
struct HostPatternValue(HostPattern);

impl<'de> Deserialize<'de> for HostPatternValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        required(d, "a host pattern", |s| s.parse::<HostPattern>()).map(HostPatternValue)
    }
}
scalar!(Currency(String), "a currency code", currency_code);
scalar!(PathValue(PathBuf), "a path", parse_path);
scalar!(EnvName(String), "an environment variable name", env_name);
scalar!(HostPortValue(HostPort), "host:port", |s: &str| s
    .parse::<HostPort>());

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    required(d, "an IP address and port", parse_socket_addr)
}

fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    required(d, "a path", parse_path)
}

fn opt_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(Option::<PathValue>::deserialize(d)?.map(|p| p.0))
}

fn opt_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Name>::deserialize(d)?.map(|n| n.0))
}

fn opt_sha256<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
    Ok(Option::<Sha256>::deserialize(d)?.map(|h| h.0))
}

fn opt_slack_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<SlackId>::deserialize(d)?.map(|s| s.0))
}

fn opt_env_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<EnvName>::deserialize(d)?.map(|s| s.0))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    required(d, "a duration like 25s", parse_duration)
}

fn nonzero_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    required(d, "a duration like 60s", |s| match parse_duration(s)? {
        Duration::ZERO => Err("must be longer than 0s".to_string()),
        duration => Ok(duration),
    })
}

fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    required(d, "a size like 1MiB", parse_byte_size)
}

/// A size, or `0` for "no limit".
fn byte_size_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    required(d, "a size like 128MiB, or 0 for none", |s: &str| match s {
        "0" => Ok(0),
        s => parse_byte_size(s),
    })
}

fn base_currency<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    required(d, "a currency code like EUR", iso_currency)
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    required(d, "an http(s) URL", parse_url)
}

fn identifier<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    required(d, "an identifier", identifier_str)
}

fn method<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    required(d, "an HTTP method", http_method)
}

fn path_template<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    required(d, "a request path", parse_path_template)
}

fn agents<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, AgentCredential>, D::Error> {
    let map = BTreeMap::<Name, AgentCredential>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k.0, v)).collect())
}

fn people<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Person>, D::Error> {
    let map = BTreeMap::<Name, Person>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k.0, v)).collect())
}

fn auditors<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Auditor>, D::Error> {
    let map = BTreeMap::<Name, Auditor>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k.0, v)).collect())
}

fn sha256<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    Ok(Sha256::deserialize(d)?.0)
}

fn groups<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let map = BTreeMap::<Name, Vec<Name>>::deserialize(d)?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k.0, v.into_iter().map(|n| n.0).collect()))
        .collect())
}

fn host_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let hosts = non_empty::<D, HostName>(d)?;
    Ok(hosts.into_iter().map(|h| h.0).collect())
}

fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let items = Vec::<T>::deserialize(d)?;
    if items.is_empty() {
        return Err(de::Error::custom("must list at least one"));
    }
    Ok(items)
}

/// Override keys are compared in lower case, as host names are; two keys
/// that differ only in case are the same host listed twice.
fn overrides<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, HostPort>, D::Error> {
    struct Overrides;
    impl<'de> Visitor<'de> for Overrides {
        type Value = BTreeMap<String, HostPort>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of host name to host:port")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((host, to)) = map.next_entry::<HostName, HostPortValue>()? {
                if out.contains_key(&host.0) {
                    return Err(de::Error::custom(format!(
                        "{} is listed twice (host names are compared in lower case)",
                        host.0
                    )));
                }
                out.insert(host.0, to.0);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Overrides)
}

/// Rates are exact decimals: a quoted string (`"0.92"`) or an integer. An
/// unquoted `0.92` is a YAML float, already rounded to binary by the parser,
/// and is refused rather than trusted.
fn rates<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Decimal>, D::Error> {
    let map = BTreeMap::<Currency, PositiveDecimal>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k.0, v.0)).collect())
}

/// A decimal greater than 0 (an fx rate, a price): a quoted string
/// (`"0.92"`) or an integer. An unquoted `0.92` is a YAML float, already
/// rounded to binary by the parser, and is refused rather than trusted.
struct PositiveDecimal(Decimal);

impl<'de> Deserialize<'de> for PositiveDecimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PositiveDecimalVisitor)
    }
}

struct PositiveDecimalVisitor;

impl<'a> Visitor<'a> for PositiveDecimalVisitor {
    type Value = PositiveDecimal;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal in quotes, like \"0.92\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PositiveDecimal, E> {
        parse_rate(v).map(PositiveDecimal).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PositiveDecimal, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PositiveDecimal, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PositiveDecimal, E> {
        if !v.is_finite() {
            return Err(E::custom(format!(
                "{v} is not a decimal: write one like \"0.92\""
            )));
        }
        Err(E::custom(format!(
            "{v} is a YAML float, and money never goes through floats: quote it, like \"{v}\""
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROWTH_SHA: &str = "be4c0cc3d836c84bc61b39a5ce84cd2275023d98d67b689432a7dee8820c06a4";
    const MAYA_SHA: &str = "5c77da460df577588cb9790128afc4cee51af9ee52edaa8c902c8768777c6752";

    /// SPEC §1's example, with the `<hex>` placeholders filled in and the
    /// group members added as people (the spec's example names `alex` and
    /// `sam` without listing them).
    fn spec_example() -> String {
        format!(
            r#"listen: 127.0.0.1:8080
admin: 127.0.0.1:8081
data_dir: ./data
ca: {{ cert: certs/leash-ca.pem, key: certs/leash-ca.key }}
policies: ./policies
default_agent: dev-agent            # agent name when the request carries none; never an agent with a token
agents:                              # optional: credentials agents present
  growth-agent: {{ token_sha256: "{GROWTH_SHA}" }}
  dev-agent: {{}}                      # listed without a token: the default_agent above
passthrough: tunnel                  # hosts leash does not inspect: tunnel | deny
upstream:
  overrides:                         # send a vendor host to another address (tests, staging)
    api.stripe.com: 127.0.0.1:12111
  extra_ca: tests/fixtures/upstream-ca.pem   # also trust this CA for upstream TLS
  timeout: 60s
limits: {{ max_body: 1MiB }}
fx:                                  # how to compare amounts in different currencies
  base: EUR
  rates: {{ USD: "0.92", GBP: "1.17", BTC: "61000", ETH: "2300", USDC: "0.92" }}  # 1 unit = rate × base
holds: {{ wait: 25s, ttl: 24h }}
approvers:
  people:
    maya: {{ token_sha256: "{MAYA_SHA}", slack: U024BE7LH }}
    alex: {{ slack: U0ALEX01 }}
    sam: {{}}
  groups:
    partners: [alex, sam]
notify:
  - {{ kind: slack, url: "https://hooks.slack.com/services/...", signing_secret_env: SLACK_SIGNING_SECRET }}
  - {{ kind: webhook, url: "https://ops.example/leash", secret_env: LEASH_WEBHOOK_SECRET }}
custom_vendors: []                   # see §4.4
"#
        )
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("leash.yaml"), text)
    }

    /// The error for `text`, as `(line, column, message)`.
    fn fails(text: &str) -> (usize, usize, String) {
        match parse(text) {
            Err(ConfigError::Yaml(e)) => {
                assert_eq!(
                    e.to_string(),
                    format!("leash.yaml:{}:{}: {}", e.line, e.column, e.message)
                );
                (e.line, e.column, e.message)
            }
            other => panic!("expected a YAML error for {text:?}, got {other:?}"),
        }
    }

    fn hash(hex: &str) -> [u8; 32] {
        let mut out = [0; 32];
        hex::decode_to_slice(hex, &mut out).unwrap();
        out
    }

    #[test]
    fn defaults_are_the_spec_table() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.admin, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.ca.cert, PathBuf::from("certs/leash-ca.pem"));
        assert_eq!(c.ca.key, PathBuf::from("certs/leash-ca.key"));
        assert_eq!(c.policies, PathBuf::from("./policies"));
        assert_eq!(c.default_agent, None);
        assert!(c.agents.is_empty());
        assert_eq!(c.passthrough.mode, PassthroughMode::Tunnel);
        assert_eq!(c.passthrough.deny_networks, DeniedNetworks::builtin());
        assert_eq!(c.passthrough.allow, None);
        assert!(c.upstream.overrides.is_empty());
        assert_eq!(c.upstream.extra_ca, None);
        assert_eq!(c.upstream.timeout, Duration::from_secs(60));
        assert_eq!(c.limits.max_body, 1 << 20);
        assert_eq!(c.fx.base, "EUR");
        assert!(c.fx.rates.is_empty());
        assert_eq!(c.holds.wait, Duration::from_secs(25));
        assert_eq!(c.holds.ttl, Duration::from_secs(86_400));
        assert_eq!(c.approvers, Approvers::default());
        assert!(c.notify.is_empty() && c.custom_vendors.is_empty());
        assert_eq!(c.source, None);
    }

    #[test]
    fn empty_file_is_all_defaults() {
        for text in ["", "# nothing yet\n", "{}\n"] {
            let c = parse(text).unwrap();
            assert_eq!(c.source.as_deref(), Some(Path::new("leash.yaml")));
            assert_eq!(Config { source: None, ..c }, Config::default());
        }
    }

    #[test]
    fn spec_example_parses() {
        let c = parse(&spec_example()).unwrap();
        assert_eq!(c.default_agent.as_deref(), Some("dev-agent"));
        assert_eq!(c.agents["dev-agent"].token_sha256, None);
        assert_eq!(
            c.agents["growth-agent"].token_sha256,
            Some(hash(GROWTH_SHA))
        );
        assert_eq!(
            c.upstream.overrides["api.stripe.com"],
            HostPort {
                host: "127.0.0.1".into(),
                port: 12111
            }
        );
        assert_eq!(
            c.upstream.extra_ca,
            Some(PathBuf::from("tests/fixtures/upstream-ca.pem"))
        );
        assert_eq!(c.limits.max_body, 1_048_576);
        assert_eq!(c.fx.rates["USD"], Decimal::new(92, 2));
        assert_eq!(c.fx.rates["BTC"], Decimal::from(61_000));
        assert_eq!(c.fx.rates.len(), 5);
        assert_eq!(c.holds.ttl, Duration::from_secs(86_400));
        let maya = &c.approvers.people["maya"];
        assert_eq!(maya.token_sha256, Some(hash(MAYA_SHA)));
        assert_eq!(maya.slack.as_deref(), Some("U024BE7LH"));
        assert_eq!(c.approvers.groups["partners"], ["alex", "sam"]);
        assert_eq!(
            c.notify,
            [
                NotifyTarget::Slack {
                    url: "https://hooks.slack.com/services/...".into(),
                    signing_secret_env: Some("SLACK_SIGNING_SECRET".into()),
                },
                NotifyTarget::Webhook {
                    url: "https://ops.example/leash".into(),
                    secret_env: Some("LEASH_WEBHOOK_SECRET".into()),
                },
            ]
        );
    }

    #[test]
    fn example_file_loads() {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/leash.yaml"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("leash.yaml");
        std::fs::write(&file, text).unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.source.as_deref(), Some(file.as_path()));
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(
            c.agents["growth-agent"].token_sha256,
            Some(hash(GROWTH_SHA))
        );
        assert_eq!(c.approvers.groups["partners"], ["alex", "sam"]);
        assert_eq!(c.custom_vendors.len(), 1);
        let op = &c.custom_vendors[0].operations[0];
        assert_eq!((op.body, op.method.as_str()), (BodyFormat::Json, "POST"));
        assert_eq!(op.category.as_deref(), Some("procurement"));
    }

    #[test]
    fn unknown_keys() {
        let (l, c, m) = fails("listen: 127.0.0.1:9000\nlisten_on: 1\n");
        assert_eq!((l, c), (2, 1));
        assert!(
            m.starts_with("unknown field `listen_on`, expected one of `listen`, `admin`"),
            "{m}"
        );
        let (l, c, m) = fails("holds:\n  wait: 5s\n  timeout: 1h\n");
        assert_eq!((l, c), (3, 3));
        assert_eq!(
            m,
            "holds: unknown field `timeout`, expected one of `wait`, `ttl`, `max_open_per_agent`, `max_bytes_per_agent`"
        );
        let (l, c, m) = fails("limits: { max_body: 1MiB, max_header: 1 }\n");
        assert_eq!((l, c), (1, 27));
        assert!(m.starts_with("limits: unknown field `max_header`"), "{m}");
    }

    #[test]
    fn a_token_in_the_file_is_refused_with_a_hint() {
        let (l, c, m) = fails("agents:\n  bot: { token: hunter2 }\n");
        assert_eq!((l, c), (2, 10));
        assert!(
            m.contains("unknown field `token`, expected `token_sha256`"),
            "{m}"
        );
        assert!(
            m.contains("give the token's SHA-256 as `token_sha256`"),
            "{m}"
        );
        let (_, _, m) =
            fails("notify:\n  - { kind: webhook, url: \"https://x.example\", secret: abc }\n");
        assert!(m.contains("name the environment variable"), "{m}");
    }

    #[test]
    fn wrong_types() {
        let (l, c, m) = fails("admin: 127.0.0.1:9001\nlimits: [1]\n");
        assert_eq!((l, c), (2, 9));
        assert!(
            m.starts_with("limits: invalid type: sequence, expected struct Limits"),
            "{m}"
        );
        let (l, c, m) = fails("approvers:\n  groups:\n    partners: maya\n");
        assert_eq!((l, c), (3, 15));
        assert!(
            m.contains("invalid type: string \"maya\", expected a sequence"),
            "{m}"
        );
        let (l, c, _) = fails("passthrough: block\n");
        assert_eq!((l, c), (1, 14));
    }

    #[test]
    fn hold_quotas() {
        let c = parse("holds: { max_open_per_agent: 5, max_bytes_per_agent: 2MiB }\n").unwrap();
        assert_eq!(c.holds.max_open_per_agent, 5);
        assert_eq!(c.holds.max_bytes_per_agent, 2 * 1024 * 1024);
        let d = Config::default().holds;
        assert_eq!(
            (d.max_open_per_agent, d.max_bytes_per_agent),
            (100, 64 << 20)
        );
        let (l, _, m) = fails("holds:\n  max_bytes_per_agent: lots\n");
        assert_eq!(l, 2, "{m}");
    }

    #[test]
    fn admin_connection_limits() {
        let c = parse("limits: { idle_timeout: 90s, max_admin_connections: 8 }\n").unwrap();
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.limits.max_admin_connections.get(), 8);
        let (l, _, m) = fails("limits:\n  max_admin_connections: 0\n");
        assert_eq!(l, 2, "{m}");
        assert_eq!(Config::default().limits.max_admin_connections.get(), 256);
    }

    #[test]
    fn db_cache() {
        assert_eq!(Config::default().limits.db_cache, 16 * 1024 * 1024);
        let c = parse("limits: { db_cache: 64MiB }\n").unwrap();
        assert_eq!(c.limits.db_cache, 64 * 1024 * 1024);
        let (l, _, m) = fails("limits:\n  db_cache: 0\n");
        assert_eq!(l, 2, "{m}");
    }

    #[test]
    fn auditors_read_and_approve_nothing() {
        let text = format!(
            "approvers:\n  people:\n    maya: {{ token_sha256: \"{MAYA_SHA}\" }}\n  auditors:\n    internal-audit: {{ token_sha256: \"{GROWTH_SHA}\" }}\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.approvers.auditors["internal-audit"].token_sha256,
            hash(GROWTH_SHA)
        );
        let (l, _, m) = fails(&text.replace("internal-audit", "maya"));
        assert_eq!(l, 5, "{m}");
        assert!(m.contains("both an auditor and an approver"), "{m}");
        let (_, _, m) = fails(&text.replace(GROWTH_SHA, MAYA_SHA));
        assert!(m.contains("already approver `maya`'s"), "{m}");
        let (l, _, m) = fails("approvers:\n  auditors:\n    a: {}\n");
        assert_eq!(l, 3, "{m}");
    }

    #[test]
    fn default_agent_cannot_name_an_agent_with_a_token() {
        let text = format!(
            "agents:\n  growth-agent: {{ token_sha256: \"{GROWTH_SHA}\" }}\n  dev-agent: {{}}\ndefault_agent: growth-agent\n"
        );
        let (l, c, m) = fails(&text);
        assert_eq!((l, c), (4, 16), "{m}");
        assert!(m.contains("with a token"), "{m}");
        let ok = text.replace("default_agent: growth-agent", "default_agent: dev-agent");
        assert_eq!(
            parse(&ok).unwrap().default_agent.as_deref(),
            Some("dev-agent")
        );
        // Not listed at all is fine too (no agents: known yet, or a dev name).
        assert!(parse("default_agent: someone\n").is_ok());
    }

    #[test]
    fn passthrough_short_and_map_forms() {
        let c = parse("passthrough: deny\n").unwrap();
        assert_eq!(c.passthrough.mode, PassthroughMode::Deny);
        let c = parse(
            "passthrough:\n  mode: tunnel\n  allow: [api.openai.com, \"*.anthropic.com\"]\n  deny_networks: [default, 203.0.113.0/24]\n  idle_timeout: 2m\n",
        )
        .unwrap();
        let p = &c.passthrough;
        assert!(p.allows_host("api.openai.com"));
        assert!(p.allows_host("api.anthropic.com"));
        assert!(!p.allows_host("evil.example"));
        assert!(p.deny_networks.denies("169.254.169.254".parse().unwrap()));
        assert!(p.deny_networks.denies("203.0.113.5".parse().unwrap()));
        assert_eq!(p.idle_timeout, Duration::from_secs(120));
        let c = parse("passthrough: { deny_networks: none }\n").unwrap();
        assert!(c.passthrough.deny_networks.is_empty());
        assert_eq!(c.passthrough.mode, PassthroughMode::Tunnel);

        let (l, c, m) = fails("passthrough:\n  allow: [api.openai.com, \"http://x\"]\n");
        assert_eq!((l, c), (2, 27), "{m}");
        assert!(m.contains("is not a host pattern"), "{m}");
        let (l, c, m) = fails("passthrough:\n  deny_networks: [default, 10.0.0.0/33]\n");
        assert_eq!((l, c), (2, 28), "{m}");
        assert!(m.contains("is not a network"), "{m}");
        let (l, _, m) = fails("passthrough:\n  deny_networks: some\n");
        assert_eq!(l, 2, "{m}");
        assert!(m.contains("default, none"), "{m}");
        let (l, _, m) = fails("passthrough:\n  mode: tunnel\n  alow: [x.com]\n");
        assert_eq!(l, 3, "{m}");
        let (l, _, m) = fails("passthrough:\n  idle_timeout: 0s\n");
        assert_eq!(l, 2, "{m}");
    }

    #[test]
    fn bad_socket_addresses() {
        let (l, c, m) = fails("listen: 127.0.0.1:8080\nadmin: localhost:8081\n");
        assert_eq!((l, c), (2, 8));
        assert!(
            m.starts_with("admin: `localhost:8081` is not an IP address and port"),
            "{m}"
        );
        let (_, _, m) = fails("listen: :8080\n");
        assert!(m.contains("0.0.0.0:8080"), "{m}");
        let (_, _, m) = fails("listen: 10.0.0.1\n");
        assert!(m.contains("has no port"), "{m}");
        let (_, _, m) = fails("listen: 127.0.0.1:99999\n");
        assert!(m.contains("is not an IP address and port"), "{m}");
        assert_eq!(
            parse("listen: \"[::1]:8080\"\n").unwrap().listen,
            "[::1]:8080".parse().unwrap()
        );
        let (l, c, m) = fails("# same as admin\nlisten: 127.0.0.1:8081\n");
        assert_eq!((l, c), (2, 9));
        assert!(m.contains("admin API needs its own address"), "{m}");
    }

    #[test]
    fn durations() {
        let c = parse("holds: { wait: 1m30s, ttl: 2d }\nupstream: { timeout: 1500ms }\n").unwrap();
        assert_eq!(c.holds.wait, Duration::from_secs(90));
        assert_eq!(c.holds.ttl, Duration::from_secs(2 * 86_400));
        assert_eq!(c.upstream.timeout, Duration::from_millis(1500));
        assert_eq!(
            parse("holds: { wait: 0s }\n").unwrap().holds.wait,
            Duration::ZERO
        );

        let (l, c, m) = fails("holds:\n  wait: 25s\n  ttl: one day\n");
        assert_eq!((l, c), (3, 8));
        assert!(
            m.starts_with("holds.ttl: `one day` is not a duration"),
            "{m}"
        );
        let (l, c, m) = fails("upstream:\n  timeout: 60\n");
        assert_eq!((l, c), (2, 12));
        assert_eq!(m, "upstream.timeout: `60` has no unit: write it like 60s");
        let (_, _, m) = fails("upstream: { timeout: 0s }\n");
        assert!(m.contains("longer than 0s"), "{m}");
        let (l, c, m) = fails("holds: { wait: 2h, ttl: 1h }\n");
        assert_eq!((l, c), (1, 16));
        assert!(m.contains("wait (2h) is longer than ttl (1h)"), "{m}");
    }

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("1MiB", 1_048_576),
            ("512KiB", 524_288),
            ("1MB", 1_000_000),
            ("2048", 2048),
            ("\"1 MiB\"", 1_048_576),
        ] {
            let c = parse(&format!("limits: {{ max_body: {text} }}\n")).unwrap();
            assert_eq!(c.limits.max_body, bytes, "{text}");
        }
        let (l, c, m) = fails("limits:\n  max_body: lots\n");
        assert_eq!((l, c), (2, 13));
        assert!(
            m.starts_with("limits.max_body: `lots` is not a size"),
            "{m}"
        );
        let (_, _, m) = fails("limits: { max_body: 1XB }\n");
        assert!(m.contains("is not a size"), "{m}");
        let (_, _, m) = fails("limits: { max_body: 0 }\n");
        assert!(m.contains("size of 0"), "{m}");
        let (_, _, m) = fails("limits: { max_body: -1 }\n");
        assert!(m.contains("is not a size"), "{m}");
    }

    #[test]
    fn rates_are_exact_and_floats_refused() {
        let c = parse("fx:\n  rates:\n    USD: \"0.92\"\n    JPY: 1\n    EUR: \"1.00\"\n").unwrap();
        assert_eq!(c.fx.rates["USD"].to_string(), "0.92");
        assert_eq!(c.fx.rates["JPY"], Decimal::ONE);

        let (l, c, m) = fails("fx:\n  base: EUR\n  rates:\n    USD: \"0.92\"\n    GBP: 1.17\n");
        assert_eq!((l, c), (5, 10));
        assert_eq!(
            m,
            "fx.rates.GBP: 1.17 is a YAML float, and money never goes through floats: quote it, like \"1.17\""
        );
        let (l, c, m) = fails("fx: { rates: { USD: \"-1\" } }\n");
        assert_eq!((l, c), (1, 21));
        assert!(m.contains("greater than 0"), "{m}");
        let (_, _, m) = fails("fx: { rates: { USD: \"0.9.2\" } }\n");
        assert!(m.contains("not a decimal"), "{m}");
        let (l, c, m) = fails("fx:\n  rates:\n    usd: \"0.92\"\n");
        assert_eq!((l, c), (3, 5));
        assert_eq!(m, "fx.rates: write currency codes in upper case: USD");
        let (_, _, m) = fails("fx: { base: eur }\n");
        assert!(m.contains("upper case: EUR"), "{m}");
        let (_, _, m) = fails("fx: { base: USDC }\n");
        assert!(m.contains("three letters"), "{m}");
        let (l, c, m) = fails("fx:\n  base: EUR\n  rates: { USD: \"0.92\", EUR: \"0.5\" }\n");
        assert_eq!((l, c), (3, 25));
        assert!(m.contains("base currency"), "{m}");
    }

    #[test]
    fn token_hashes() {
        let (l, c, m) = fails("agents:\n  bot:\n    token_sha256: \"abc123\"\n");
        assert_eq!((l, c), (3, 19));
        assert!(m.contains("64 hex digits"), "{m}");
        assert!(m.contains("this has 6"), "{m}");
        assert!(m.contains("printf %s TOKEN | sha256sum"), "{m}");
        let long = "z".repeat(64);
        let (_, _, m) = fails(&format!("agents: {{ bot: {{ token_sha256: {long} }} }}\n"));
        assert!(m.contains("`z` is not a hex digit"), "{m}");
        // Upper-case hex is the same digest.
        let upper = GROWTH_SHA.to_uppercase();
        let c = parse(&format!("agents: {{ bot: {{ token_sha256: {upper} }} }}\n")).unwrap();
        assert_eq!(c.agents["bot"].token_sha256, Some(hash(GROWTH_SHA)));
        // Known agents without a token.
        let c = parse("agents: { bot: {} }\n").unwrap();
        assert_eq!(c.agents["bot"].token_sha256, None);
        // One token for two identities.
        let text = format!(
            "agents:\n  bot: {{ token_sha256: {GROWTH_SHA} }}\napprovers:\n  people:\n    maya: {{ token_sha256: {GROWTH_SHA} }}\n"
        );
        let (l, c, m) = fails(&text);
        assert_eq!((l, c), (5, 27));
        assert!(m.contains("already agent `bot`'s"), "{m}");
    }

    #[test]
    fn approver_references() {
        let (l, c, m) =
            fails("approvers:\n  people:\n    maya: {}\n  groups:\n    partners: [maya, bob]\n");
        assert_eq!((l, c), (5, 22));
        assert_eq!(
            m,
            "group `partners` names `bob`, who is not in approvers.people (known: maya)"
        );
        let (l, c, m) = fails(
            "approvers:\n  people:\n    maya: {}\n  groups:\n    leads:\n      - maya\n      - zoe\n",
        );
        assert_eq!((l, c), (7, 9));
        assert!(m.contains("`zoe`"), "{m}");
        let (l, c, m) = fails("approvers:\n  people: { maya: {} }\n  groups:\n    maya: [maya]\n");
        assert_eq!((l, c), (4, 5));
        assert!(m.contains("both a person and a group"), "{m}");
        let (l, c, _) = fails("approvers:\n  people: { maya: {} }\n  groups:\n    none: []\n");
        assert_eq!((l, c), (4, 5));
        let (l, c, m) =
            fails("approvers:\n  people:\n    a: { slack: U1 }\n    b: { slack: U1 }\n");
        assert_eq!((l, c), (4, 17));
        assert!(m.contains("already `a`'s"), "{m}");
        let (l, c, m) = fails("approvers:\n  people:\n    a: { slack: maya@example.com }\n");
        assert_eq!((l, c), (3, 17));
        assert!(m.contains("not a Slack member ID"), "{m}");
        let (l, c, m) = fails("approvers:\n  people:\n    maya: {}\n    maya: {}\n");
        assert_eq!((l, c), (4, 5));
        assert!(m.contains("duplicate key `maya`"), "{m}");
    }

    #[test]
    fn empty_values_and_home_paths() {
        let (l, c, m) = fails("listen:\n");
        assert_eq!((l, c), (1, 8));
        assert_eq!(
            m,
            "listen: no value: expected an IP address and port (leave the key out to use the default)"
        );
        let (_, _, m) = fails("holds: { ttl: ~ }\n");
        assert!(m.starts_with("holds.ttl: no value"), "{m}");
        let (_, _, m) = fails("data_dir: ~/leash\n");
        assert!(m.contains("does not expand `~`"), "{m}");
        // Optional keys may be empty: they are simply not set.
        let c = parse("default_agent:\nupstream: { extra_ca: ~ }\n").unwrap();
        assert_eq!((c.default_agent, c.upstream.extra_ca), (None, None));
    }

    #[test]
    fn names() {
        let (l, c, m) = fails("agents:\n  \"growth agent\": {}\n");
        assert_eq!((l, c), (2, 3));
        assert!(m.contains("not a valid name"), "{m}");
        let (_, _, m) = fails("default_agent: \"*\"\n");
        assert!(m.contains("every agent"), "{m}");
        assert_eq!(parse("default_agent: ~\n").unwrap().default_agent, None);
    }

    #[test]
    fn notify_targets() {
        let (l, c, m) = fails("notify:\n  - { kind: email, url: \"https://x.example\" }\n");
        assert_eq!((l, c), (2, 13));
        assert_eq!(
            m,
            "notify[0].kind: unknown variant `email`, expected `slack` or `webhook`"
        );
        let (l, c, m) = fails("notify:\n  - kind: webhook\n    url: ftp://x.example\n");
        assert_eq!((l, c), (3, 10));
        assert!(m.contains("not an http:// or https:// URL"), "{m}");
        let (l, c, m) = fails(
            "notify:\n  - { kind: slack, url: \"https://x.example\" }\n  - kind: slack\n    url: https://y.example\n    secret_env: S\n",
        );
        assert_eq!((l, c), (3, 5));
        assert!(
            m.starts_with("notify[1]: `secret_env` is for webhook targets"),
            "{m}"
        );
        let (l, c, m) = fails("notify:\n  - { kind: webhook }\n");
        assert_eq!((l, c), (2, 5));
        assert!(m.contains("missing field `url`"), "{m}");
        let (l, c, m) =
            fails("notify:\n  - { kind: webhook, url: \"http://a\", secret_env: \"my secret\" }\n");
        assert_eq!((l, c), (2, 51));
        assert!(m.contains("not an environment variable name"), "{m}");
    }

    #[test]
    fn upstream_overrides() {
        let c = parse(
            "upstream:\n  overrides:\n    API.Example.com: 127.0.0.1:12111\n    pay.example.net: \"[::1]:443\"\n    ads.example.org: Mock-Ads:8443\n",
        )
        .unwrap();
        let o = &c.upstream.overrides;
        assert_eq!(o["api.example.com"].to_string(), "127.0.0.1:12111");
        assert_eq!(o["pay.example.net"].host, "::1");
        assert_eq!(o["pay.example.net"].to_string(), "[::1]:443");
        assert_eq!(o["ads.example.org"].to_string(), "mock-ads:8443");

        let (l, c, m) = fails("upstream:\n  overrides:\n    api.example.com: 127.0.0.1\n");
        assert_eq!((l, c), (3, 22));
        assert!(m.contains("has no port"), "{m}");
        let (_, _, m) = fails("upstream: { overrides: { a.example: \"::1:443\" } }\n");
        assert!(m.contains("brackets"), "{m}");
        let (_, _, m) = fails("upstream: { overrides: { a.example: \"http://b:1\" } }\n");
        assert!(m.contains("no scheme"), "{m}");
        let (l, c, m) = fails("upstream:\n  overrides:\n    https://api.example.com: b:1\n");
        assert_eq!((l, c), (3, 5));
        assert!(m.contains("not a host name"), "{m}");
        let (l, c, m) =
            fails("upstream:\n  overrides:\n    api.example.com: a:1\n    API.example.com: b:2\n");
        assert_eq!((l, c), (4, 5));
        assert!(m.contains("listed twice"), "{m}");
        let (_, _, m) = fails("upstream: { overrides: { a.example: \"b:0\" } }\n");
        assert!(m.contains("not a port"), "{m}");
    }

    #[test]
    fn custom_vendors() {
        let vendor = |op: &str| {
            format!(
                "custom_vendors:\n  - name: acme\n    hosts: [api.acme.example]\n    operations:\n      - {{ name: po, method: POST, path: /v2/orders, {op} }}\n"
            )
        };
        let c = parse(&vendor("body: form, amount: total, currency: EUR")).unwrap();
        let op = &c.custom_vendors[0].operations[0];
        assert_eq!(
            (op.body, op.minor_units, op.beneficiary.as_ref()),
            (BodyFormat::Form, false, None)
        );

        let (l, c, m) = fails(&vendor("body: json, amount: total, currency: EUR"));
        assert_eq!((l, c), (5, 73));
        assert!(m.contains("not a JSON pointer"), "{m}");
        let (_, _, m) = fails(&vendor("body: xml, amount: /a, currency: EUR"));
        assert!(
            m.contains("unknown variant `xml`, expected `json` or `form`"),
            "{m}"
        );
        let (_, _, m) = fails(&vendor("body: json, amount: /a, currency: euro"));
        assert!(m.contains("neither a body reference"), "{m}");
        let (_, _, m) = fails(&vendor("body: json, amount: /a~2, currency: EUR"));
        assert!(m.contains("~0"), "{m}");
        let (_, _, m) = fails(&vendor("body: json, currency: EUR"));
        assert!(m.contains("missing field `amount`"), "{m}");
        let (_, _, m) = fails(&vendor("body: json, amount: /a, currency: EUR, fee: /f"));
        assert!(m.contains("unknown field `fee`"), "{m}");
        let c = parse(&vendor(
            "body: json, amount: /a, currency: EUR, idempotency_key: { body: /ref }",
        ))
        .unwrap();
        assert_eq!(
            c.custom_vendors[0].operations[0].idempotency_key,
            Some(KeySource::Body("/ref".into()))
        );
        let (_, _, m) = fails(&vendor(
            "body: json, amount: /a, currency: EUR, idempotency_key: { header: X-Key, body: /ref }",
        ));
        assert!(m.contains("either"), "{m}");
        let (_, _, m) = fails(&vendor(
            "body: json, amount: /a, currency: EUR, idempotency_key: { header: \"bad key\" }",
        ));
        assert!(m.contains("not a header name"), "{m}");
        let (_, _, m) = fails(&vendor(
            "body: json, amount: /a, currency: EUR, idempotency_key: { body: ref }",
        ));
        assert!(m.contains("not a JSON pointer"), "{m}");

        // A built-in vendor's name: the shape of the entry is checked first.
        let builtin = crate::adapters::BUILTIN_NAMES[0];
        let (l, c, m) = fails(&format!(
            "custom_vendors:\n  - name: {builtin}\n    hosts: [a.example]\n    operations: []\n"
        ));
        assert_eq!((l, c), (4, 17));
        assert!(m.contains("at least one"), "{m}");
        let ok_ops = "operations: [{ name: po, method: POST, path: /o, body: json, amount: /a, currency: EUR }]";
        for builtin in crate::adapters::BUILTIN_NAMES {
            let (l, c, m) = fails(&format!(
                "custom_vendors:\n  - name: {builtin}\n    hosts: [a.example]\n    {ok_ops}\n"
            ));
            assert_eq!((l, c), (2, 11), "{builtin}");
            assert!(m.contains("built-in vendor"), "{m}");
        }
        for host in crate::adapters::Registry::builtin().hosts() {
            let (l, c, m) = fails(&format!(
                "custom_vendors:\n  - name: acme\n    hosts: [a.example, {host}]\n    {ok_ops}\n"
            ));
            assert_eq!((l, c), (3, 24), "{host}");
            assert!(m.contains("built-in adapter"), "{m}");
        }
        let (l, c, m) = fails(&format!(
            "vendors:\n  sepa: {{ hosts: [api.bank.example] }}\ncustom_vendors:\n  - name: acme\n    hosts: [api.bank.example]\n    {ok_ops}\n"
        ));
        assert_eq!((l, c), (5, 13), "{m}");
        assert!(m.contains("built-in adapter"), "{m}");
        let (_, _, m) = fails(&format!(
            "custom_vendors:\n  - name: acme\n    hosts: [a.example]\n    {ok_ops}\n  - name: acme2\n    hosts: [A.example]\n    {ok_ops}\n"
        ));
        assert!(m.contains("already claimed by custom vendor `acme`"), "{m}");
        let bad_path = "operations: [{ name: po, method: GET, path: /o, body: json, amount: /a, currency: EUR }]";
        let (_, _, m) = fails(&format!(
            "custom_vendors:\n  - name: acme\n    hosts: [a.example]\n    {bad_path}\n"
        ));
        assert!(m.contains("POST, PUT, PATCH or DELETE"), "{m}");
        for (path, ok) in [
            ("/v2/orders/{id}/confirm", true),
            ("/v2/orders/{}/x", false),
            ("/v2/order{id}", false),
            ("v2/orders", false),
            ("/v2/orders?x=1", false),
        ] {
            assert_eq!(parse_path_template(path).is_ok(), ok, "{path}");
        }
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("deploy");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("leash.yaml");
        std::fs::write(
            &file,
            "data_dir: ./state\nca: { cert: certs/ca.pem }\npolicies: /etc/leash/policies\nupstream: { extra_ca: ../ca/extra.pem }\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.source.as_deref(), Some(file.as_path()));
        assert_eq!(c.data_dir, sub.join("state"));
        assert_eq!(c.ca.cert, sub.join("certs/ca.pem"));
        assert_eq!(c.upstream.extra_ca, Some(sub.join("../ca/extra.pem")));
        // Absolute paths stay; defaults stay relative to the working directory.
        assert_eq!(c.policies, PathBuf::from("/etc/leash/policies"));
        assert_eq!(c.ca.key, PathBuf::from("certs/leash-ca.key"));

        // A file given by a bare name is in the working directory: as given.
        let c = Config::parse(Path::new("leash.yaml"), "data_dir: ./state\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./state"));
    }

    #[test]
    fn implicit_file_or_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let implicit = dir.path().join("leash.yaml");
        assert_eq!(Config::load_or(None, &implicit).unwrap(), Config::default());
        std::fs::write(&implicit, "listen: 127.0.0.1:9999\n").unwrap();
        let c = Config::load_or(None, &implicit).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.source.as_deref(), Some(implicit.as_path()));
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nope.yaml");
        let err = Config::load(Some(&file)).unwrap_err();
        assert!(matches!(&err, ConfigError::Missing { path } if path == &file));
        assert_eq!(
            err.to_string(),
            format!("{}: no such config file", file.display())
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (l, c, m) = fails("listen: 127.0.0.1:8080\nholds: { wait: 25s\n");
        assert_eq!((l, c), (3, 1));
        assert!(m.contains("flow mapping"), "{m}");
    }
}
