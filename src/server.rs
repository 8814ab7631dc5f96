//! Starting a leash: bind the listeners, load the CA, wire the data path.
//!
//! `leash run` and the integration tests both come through [`start`], so the
//! tests exercise exactly what users run, on ephemeral loopback ports.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use serde_json::json;

use crate::adapters::Registry;
use crate::admin::{Admin, Health};
use crate::audit::{AuditError, AuditLog, CheckpointPolicy, Kind, NewEntry};
use crate::ca::{CaError, CertificateAuthority};
use crate::config::{Config, NotifyTarget};
use crate::desk::{DeskParts, HoldDesk};
use crate::gate::Gate;
use crate::holds::{hold_key_path, ApproverTokens, HoldKey, HoldStore};
use crate::identity::Identities;
use crate::metrics::Metrics;
use crate::notify::send::{AdminUrl, Notifier, RetryPolicy};
use crate::policy::live::LivePolicies;
use crate::policy::live::Reload;
use crate::proxy::Proxy;
use crate::spend::SpendLedger;
use crate::store::Store;
use crate::upstream::{UpstreamClient, UpstreamSetupError};

/// How often due holds are expired. Every hold operation also expires the
/// hold it touches when due, so this bounds only how long an overdue hold is
/// listed as pending.
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the policies directory is checked for changes.
const POLICY_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Why leash could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("CA: {0}")]
    Ca(#[from] CaError),
    #[error("upstream.extra_ca: {0}")]
    Upstream(#[from] UpstreamSetupError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("audit chain: {0}")]
    Audit(#[from] AuditError),
    #[error("policies do not load:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Policies(Vec<crate::yaml::YamlError>),
    #[error("holds: {0}")]
    Holds(String),
    #[error("notify: {0}")]
    Notify(String),
    #[error("upstream.overrides sends {host} to {target}, which is leash's own {what} listener")]
    OverrideLoop {
        host: String,
        target: SocketAddr,
        what: &'static str,
    },
}

/// A running leash. Dropping it stops accepting connections.
pub struct Running {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub health: Arc<Health>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until the listeners stop (they run until the process ends).
    pub async fn wait(mut self) {
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds both listeners and starts serving. Returns once leash accepts
/// connections, with the addresses actually bound (ports may be 0 in config).
/// Secrets named by the config (`secret_env`, `signing_secret_env`) are read
/// from the process environment.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    start_with_env(config, &|name: &str| std::env::var(name).ok()).await
}

/// [`start`], reading the secrets the config names through `env` (tests
/// pass a map instead of changing the process environment).
pub async fn start_with_env(
    config: &Config,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Running, StartError> {
    let (ca, origin) = CertificateAuthority::load_or_create(&config.ca.cert, &config.ca.key)?;
    tracing::info!(cert = %config.ca.cert.display(), ?origin, "CA ready");
    let upstream = UpstreamClient::new(&config.upstream)?;
    let policies =
        Arc::new(LivePolicies::load(&config.policies, config).map_err(StartError::Policies)?);
    {
        let set = policies.current();
        tracing::info!(dir = %config.policies.display(), hash = %set.hash, files = ?set.files, "policies loaded");
    }
    let store = Store::open(&config.data_dir)?;
    let ledger = Arc::new(SpendLedger::open(&store, chrono::Utc::now())?);
    let audit = AuditLog::open(
        &store,
        &audit_key_path(config),
        CheckpointPolicy {
            every_entries: config.audit.checkpoint_every,
            every: config.audit.checkpoint_interval,
        },
        config.data_dir.join("checkpoint"),
    )?;
    audit.set_min_free_space(config.audit.min_free_space);
    audit
        .append(NewEntry::started(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "listen": config.listen.to_string(),
            "admin": config.admin.to_string(),
            "policies": config.policies.display().to_string(),
        })))
        .await?;
    {
        let set = policies.current();
        audit
            .append(NewEntry::policy_loaded(
                set.hash.clone(),
                json!({ "files": set.files }),
            ))
            .await?;
    }

    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, what, source })
    };
    let proxy_listener = bind(config.listen, "listen").await?;
    let admin_listener = bind(config.admin, "admin").await?;
    let proxy_addr = local_addr(&proxy_listener, config.listen, "listen")?;
    let admin_addr = local_addr(&admin_listener, config.admin, "admin")?;

    for (host, target) in &config.upstream.overrides {
        for (own, what) in [(proxy_addr, "proxy"), (admin_addr, "admin")] {
            let same_port = target.port == own.port();
            let same_ip = target
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip == own.ip() || (own.ip().is_unspecified() && ip.is_loopback()));
            if same_port && (same_ip || target.host.eq_ignore_ascii_case("localhost")) {
                return Err(StartError::OverrideLoop {
                    host: host.clone(),
                    target: own,
                    what,
                });
            }
        }
    }

    // Agents are label values only when the configuration names them.
    let metrics = Arc::new(Metrics::new(
        config
            .agents
            .keys()
            .cloned()
            .chain(config.default_agent.clone()),
    ));
    let desk = Arc::new(open_desk(
        config,
        &store,
        &audit,
        admin_addr,
        env,
        Arc::clone(&metrics),
    )?);
    {
        let interrupted = desk
            .settle_interrupted_releases(chrono::Utc::now())
            .await
            .map_err(|e| StartError::Holds(format!("settling interrupted releases: {e}")))?;
        let pending = desk.store.pending().map(|p| p.len()).unwrap_or(0);
        tracing::info!(pending, interrupted, "holds ready");
    }

    let health = Arc::new(Health::default());
    let proxy = Arc::new(Proxy {
        identities: Identities::new(config.agents.clone(), config.default_agent.clone()),
        ca: Arc::new(ca),
        vendors: Registry::from_config(config),
        lookups: Default::default(),
        upstream,
        audit: audit.clone(),
        gate: Gate {
            policies: Arc::clone(&policies),
            ledger,
        },
        desk: Arc::clone(&desk),
        upstream_timeout: config.upstream.timeout,
        passthrough: config.passthrough.clone(),
        overrides: config.upstream.overrides.clone(),
        max_body: usize::try_from(config.limits.max_body).unwrap_or(usize::MAX),
        header_read_timeout: config.limits.header_read_timeout,
        own_listeners: vec![proxy_addr, admin_addr],
        metrics: Arc::clone(&metrics),
    });
    let admin = Arc::new(Admin {
        desk: Some(Arc::clone(&desk)),
        health: Arc::clone(&health),
        audit: Some(audit.clone()),
        store: Some(store.clone()),
        metrics,
        audit_readers: crate::admin::AuditReaders::from_config(&config.approvers),
        limits: crate::admin::ConnectionLimits {
            header_read_timeout: config.limits.header_read_timeout,
            idle_timeout: config.limits.idle_timeout,
            max_connections: config.limits.max_admin_connections.get(),
        },
    });
    let expiry = {
        let desk = Arc::clone(&desk);
        async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                desk.expire_due(chrono::Utc::now()).await;
            }
        }
    };
    let tasks = vec![
        tokio::spawn(expiry),
        tokio::spawn(proxy.serve(proxy_listener)),
        tokio::spawn(admin.serve(admin_listener)),
        tokio::spawn(policies.watch(POLICY_POLL, move |change| {
            let entry = match change {
                Reload::Swapped(set) => {
                    NewEntry::policy_loaded(set.hash.clone(), json!({ "files": set.files }))
                }
                Reload::Refused(errors) => NewEntry::new(Kind::PolicyLoaded).with_details(json!({
                    "refused": true,
                    "errors": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                })),
                Reload::DropsAgents(agents) => NewEntry::new(Kind::PolicyLoaded).with_details(json!({
                    "refused": true,
                    "errors": [format!(
                        "the new policy set has no stack for {}, listed under agents:; the previous policies stay in force",
                        agents.join(", ")
                    )],
                    "drops_agents": agents,
                })),
                Reload::Unchanged | Reload::Settling => return,
            };
            let audit = audit.clone();
            tokio::spawn(async move {
                if let Err(error) = audit.append(entry).await {
                    tracing::error!(%error, "could not record a policy reload in the audit chain");
                }
            });
        })),
    ];
    tracing::info!(%proxy_addr, %admin_addr, "leash is listening");
    Ok(Running {
        proxy_addr,
        admin_addr,
        health,
        tasks,
    })
}

/// Opens the holds and everything that acts on them: the sealing key beside
/// the CA key, the approvers' tokens, the notification targets (a webhook
/// whose secret variable is unset stops start-up) and the Slack signing
/// secrets.
fn open_desk(
    config: &Config,
    store: &Store,
    audit: &AuditLog,
    admin_addr: SocketAddr,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    metrics: Arc<Metrics>,
) -> Result<HoldDesk, StartError> {
    let key = HoldKey::load_or_create(&hold_key_path(&config.ca.key))
        .map_err(|e| StartError::Holds(e.to_string()))?;
    let holds = HoldStore::open(store, key, config.holds.ttl)
        .map_err(|e| StartError::Holds(e.to_string()))?
        .with_quota(crate::holds::store::Quota {
            max_open: config.holds.max_open_per_agent,
            max_bytes: config.holds.max_bytes_per_agent,
        });
    let notifier = Notifier::new(&config.notify, env, RetryPolicy::default())
        .map_err(|e| StartError::Notify(e.to_string()))?;
    let admin_url =
        AdminUrl::from_listen(admin_addr).map_err(|e| StartError::Notify(e.to_string()))?;
    let mut slack_secrets = Vec::new();
    for target in &config.notify {
        if let NotifyTarget::Slack {
            signing_secret_env: Some(name),
            ..
        } = target
        {
            match env(name).filter(|s| !s.is_empty()) {
                Some(secret) => slack_secrets.push(secret.into_bytes()),
                None => {
                    return Err(StartError::Notify(format!(
                        "slack signing_secret_env names {name}, which is unset or empty; Slack buttons could not be verified"
                    )))
                }
            }
        }
    }
    Ok(HoldDesk::new(DeskParts {
        store: holds,
        audit: audit.clone(),
        tokens: ApproverTokens::new(&config.approvers),
        notifier,
        admin_url,
        wait: config.holds.wait,
        slack_secrets,
        metrics,
    }))
}

/// The audit signing key lives beside the CA key (SPEC §8).
pub fn audit_key_path(config: &Config) -> std::path::PathBuf {
    config
        .ca
        .key
        .parent()
        .map(|dir| dir.join("leash-audit.key"))
        .unwrap_or_else(|| std::path::PathBuf::from("leash-audit.key"))
}

fn local_addr(
    listener: &TcpListener,
    addr: SocketAddr,
    what: &'static str,
) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, what, source })
}
