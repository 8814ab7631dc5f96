//! TEMPORARY stub: replaced by the real loader.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AgentCredential {
    pub token_sha256: Option<[u8; 32]>,
}
#[derive(Debug, Clone)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    Tunnel,
    Deny,
}
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub overrides: BTreeMap<String, HostPort>,
    pub extra_ca: Option<PathBuf>,
    pub timeout: Duration,
}
#[derive(Debug, Clone)]
pub struct CaPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body: u64,
}
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    pub ca: CaPaths,
    pub policies: PathBuf,
    pub default_agent: Option<String>,
    pub agents: BTreeMap<String, AgentCredential>,
    pub passthrough: Passthrough,
    pub upstream: UpstreamConfig,
    pub limits: Limits,
    pub source: Option<PathBuf>,
}
#[derive(Debug, thiserror::Error)]
#[error("config")]
pub struct ConfigError;
impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().unwrap(),
            admin: "127.0.0.1:8081".parse().unwrap(),
            data_dir: "data".into(),
            ca: CaPaths {
                cert: "certs/leash-ca.pem".into(),
                key: "certs/leash-ca.key".into(),
            },
            policies: "policies".into(),
            default_agent: None,
            agents: Default::default(),
            passthrough: Passthrough::Tunnel,
            upstream: UpstreamConfig {
                overrides: Default::default(),
                extra_ca: None,
                timeout: Duration::from_secs(60),
            },
            limits: Limits { max_body: 1 << 20 },
            source: None,
        }
    }
}
impl Config {
    pub fn load(_p: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        Ok(Self::default())
    }
}
