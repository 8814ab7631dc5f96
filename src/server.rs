//! Starting a leash: bind the listeners, load the CA, wire the data path.
//!
//! `leash run` and the integration tests both come through [`start`], so the
//! tests exercise exactly what users run, on ephemeral loopback ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use serde_json::json;

use crate::adapters::Registry;
use crate::admin::{Admin, Health};
use crate::audit::{AuditError, AuditLog, CheckpointPolicy, Kind, NewEntry};
use crate::ca::{CaError, CertificateAuthority};
use crate::config::LedgerKind;
use crate::config::{Config, NotifyTarget};
use crate::desk::{DeskParts, HoldDesk};
use crate::gate::Gate;
use crate::holds::{hold_key_path, ApproverTokens, HoldKey, HoldStore};
use crate::identity::Identities;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::notify::send::{AdminUrl, Notifier, RetryPolicy};
use crate::policy::live::LivePolicies;
use crate::policy::live::Reload;
use crate::proxy::Proxy;
use crate::spend::postgres::StartError as PgStartError;
use crate::spend::{PostgresLedger, SledLedger, SpendLedger};
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
    #[error("ledger: {0}")]
    Ledger(#[from] PgStartError),
    #[error("{0}")]
    Spend(#[from] crate::spend::LedgerError),
    #[error("upstream.overrides sends {host} to {target}, which is leash's own {what} listener")]
    OverrideLoop {
        host: String,
        target: SocketAddr,
        what: &'static str,
    },
}

/// Releases the embedded ledger's reservations whose request never left
/// (reserved just before a crash, named by no durable entry of the chain:
/// [`crate::spend::recover`]), and returns their ids.
async fn release_unrecorded(ledger: &SledLedger, store: &Store) -> Result<Vec<u64>, StartError> {
    let reserved = ledger.reserved_at_open();
    let Some(since) = crate::spend::recover::read_back_to(reserved) else {
        return Ok(Vec::new());
    };
    let tail = crate::audit::reservations_named_since(store, since)?;
    let ids = crate::spend::recover::unrecorded(reserved, &tail);
    if ids.is_empty() {
        return Ok(ids);
    }
    let reservation = crate::spend::Reservation { ids };
    ledger.release(&reservation).await?;
    tracing::warn!(
        ids = ?reservation.ids,
        "released reservations whose decision never reached the disk (leash stopped before forwarding them)"
    );
    Ok(reservation.ids)
}

/// A running leash. Dropping it stops accepting connections;
/// [`Running::shutdown`] stops it gracefully.
pub struct Running {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub health: Arc<Health>,
    /// The proxy's and the admin API's accept loops.
    listeners: Vec<JoinHandle<()>>,
    /// The expiry sweep and the policy watcher.
    background: Vec<JoinHandle<()>>,
    lifecycle: Arc<Lifecycle>,
    desk: Arc<HoldDesk>,
    audit: AuditLog,
    store: Store,
    policies: Arc<LivePolicies>,
}

/// How a graceful stop went ([`Running::shutdown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Every connection finished within the grace period.
    pub drained: bool,
    /// Connections still open when the grace period ran out (cut at exit).
    pub cut: usize,
    /// The `stopped` entry was written, and the chain signed and flushed.
    pub recorded: bool,
}

impl Running {
    /// Waits until the listeners stop: when [`Running::shutdown`] runs, or
    /// if one of them ended on its own (which it does not otherwise do).
    pub async fn wait(mut self) {
        for task in self.listeners.drain(..) {
            let _ = task.await;
        }
    }

    /// Resolves if a listener ended without a stop (a panic in its task):
    /// leash then serves nothing on that port and should exit.
    pub async fn listener_ended(&mut self) {
        if self.listeners.is_empty() {
            return std::future::pending().await;
        }
        let index = first_finished(&mut self.listeners).await;
        self.listeners.remove(index);
    }

    /// The policy set in force.
    pub fn policies(&self) -> Arc<crate::policy::model::PolicySet> {
        self.policies.current()
    }

    /// Stops gracefully, in this order:
    ///
    /// 1. both listeners close: no new connection is accepted;
    /// 2. every agent connection waiting on a hold is answered as if
    ///    `holds.wait` had run out (403 `leash_held` in the vendor's shape,
    ///    with the hold id; the hold stays open for a retry after restart);
    /// 3. requests in flight (forwards, releases, admin calls) get up to
    ///    `grace` to finish; keep-alive connections close after their
    ///    current request, HTTP/2 ones get GOAWAY;
    /// 4. the expiry sweep and the policy watcher stop;
    /// 5. a `stopped` entry is appended (`reason`, whether everything
    ///    drained, how many connections were cut), a checkpoint signs the
    ///    head, and the database is flushed.
    ///
    /// An audit chain that refuses writes is logged, not fatal: the entries
    /// it took are durable already (write-ahead).
    pub async fn shutdown(mut self, grace: Duration, reason: &str) -> Stopped {
        self.lifecycle.stop();
        self.desk.waiters.stop_waiting();
        for task in self.listeners.drain(..) {
            // They return at once on the stop; bounded all the same.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        tracing::info!(
            connections = self.lifecycle.active(),
            grace = %humantime::format_duration(grace),
            "listeners closed; answering held requests and finishing those in flight"
        );
        let drained = tokio::time::timeout(grace, self.lifecycle.drained())
            .await
            .is_ok();
        let cut = self.lifecycle.active();
        if !drained {
            tracing::warn!(
                connections = cut,
                "grace period over: cutting the connections still open; a forward cut here has its decision but no outcome in the audit chain"
            );
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        let recorded = self.record_stop(reason, drained, cut).await;
        Stopped {
            drained,
            cut,
            recorded,
        }
    }

    /// The last entry, a checkpoint over it, and a flush.
    async fn record_stop(&self, reason: &str, drained: bool, cut: usize) -> bool {
        let entry = NewEntry::stopped(json!({
            "reason": reason,
            "drained": drained,
            "connections_cut": cut,
            "holds_pending": self.desk.store.pending().map(|p| p.len()).unwrap_or(0),
        }));
        let mut recorded = true;
        if let Err(error) = self.audit.append(entry).await {
            tracing::error!(%error, "could not record the stop in the audit chain");
            recorded = false;
        }
        if let Err(error) = self.audit.checkpoint_now().await {
            tracing::error!(%error, "could not sign a final checkpoint");
            recorded = false;
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "could not flush the database");
                recorded = false;
            }
            Err(error) => {
                tracing::error!(%error, "could not flush the database");
                recorded = false;
            }
        }
        recorded
    }
}

/// The index of the first of `tasks` to finish (each is polled only until
/// then: the caller removes it).
async fn first_finished(tasks: &mut [JoinHandle<()>]) -> usize {
    use std::future::Future;
    std::future::poll_fn(|cx| {
        for (index, task) in tasks.iter_mut().enumerate() {
            if std::pin::Pin::new(task).poll(cx).is_ready() {
                return std::task::Poll::Ready(index);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in self.listeners.iter().chain(&self.background) {
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
///
/// Everything that can refuse a start is checked before the first audit
/// entry: the CA, the policies, the database's lock (another leash on the
/// same `data_dir`), both listeners, every secret the config names
/// (`secret_env`, `signing_secret_env`) and the holds' key. So the chain
/// holds a `started` entry only for a leash that did start.
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
        if set.stacks.is_empty() {
            tracing::warn!(
                dir = %config.policies.display(),
                "{}",
                no_policies_warning(&config.policies)
            );
        }
    }
    // The lock first: a second leash with the same leash.yaml is told
    // about the other leash, not about its ports.
    let store = Store::open_with_cache(&config.data_dir, config.limits.db_cache)?;

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
    let desk_parts = desk_parts(config, &store, admin_addr, env)?;
    let instance = config.instance_id();
    let mut released_unrecorded = Vec::new();
    let ledger: Arc<dyn SpendLedger> = match config.ledger.kind {
        LedgerKind::Sled => {
            let ledger = SledLedger::open(
                &store,
                chrono::Utc::now(),
                policies.current().cap_timezones(),
            )?;
            // Before the chain is opened (which may append): its tail is
            // still the last run's.
            released_unrecorded = release_unrecorded(&ledger, &store).await?;
            Arc::new(ledger)
        }
        // SPEC §11: one PostgreSQL database shared by every instance. A
        // database that does not answer yet does not stop the start: spend
        // is refused (503 leash_ledger_unavailable) until it does.
        LedgerKind::Postgres => {
            let url = env(&config.ledger.url_env)
                .ok_or_else(|| PgStartError::NoUrl(config.ledger.url_env.clone()))?;
            PostgresLedger::start(&config.ledger, &url, &instance, &store).await?
        }
    };
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
    audit.set_segment_entries(config.audit.segment_entries);
    // Every entry names the instance that wrote it (several chains, one
    // shared ledger: SPEC §11).
    audit.set_instance(&instance);
    audit
        .append(NewEntry::started(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "listen": proxy_addr.to_string(),
            "admin": admin_addr.to_string(),
            "policies": config.policies.display().to_string(),
            "ledger": match config.ledger.kind {
                LedgerKind::Sled => "sled",
                LedgerKind::Postgres => "postgres",
            },
            "released_unrecorded": released_unrecorded,
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

    let desk = Arc::new(desk_parts.into_desk(&audit, Arc::clone(&metrics)));
    {
        let interrupted = desk
            .settle_interrupted_releases(chrono::Utc::now())
            .await
            .map_err(|e| StartError::Holds(format!("settling interrupted releases: {e}")))?;
        let pending = desk.store.pending().map(|p| p.len()).unwrap_or(0);
        tracing::info!(pending, interrupted, "holds ready");
    }

    let health = Arc::new(Health::default());
    let lifecycle = Arc::new(Lifecycle::new());
    let proxy = Arc::new(Proxy {
        identities: Identities::new(config.agents.clone(), config.default_agent.clone()),
        ca: Arc::new(ca),
        vendors: Registry::from_config(config),
        lookups: Default::default(),
        upstream,
        audit: audit.clone(),
        gate: Gate {
            policies: Arc::clone(&policies),
            ledger: Arc::clone(&ledger),
        },
        desk: Arc::clone(&desk),
        upstream_timeout: config.upstream.timeout,
        passthrough: config.passthrough.clone(),
        overrides: config.upstream.overrides.clone(),
        max_body: usize::try_from(config.limits.max_body).unwrap_or(usize::MAX),
        header_read_timeout: config.limits.header_read_timeout,
        own_listeners: vec![proxy_addr, admin_addr],
        metrics: Arc::clone(&metrics),
        lifecycle: Arc::clone(&lifecycle),
    });
    let admin = Arc::new(Admin {
        desk: Some(Arc::clone(&desk)),
        health: Arc::clone(&health),
        audit: Some(audit.clone()),
        store: Some(store.clone()),
        metrics,
        spend: Some(crate::admin::SpendView {
            policies: Arc::clone(&policies),
            ledger: Arc::clone(&proxy.gate.ledger),
            configured_agents: config
                .agents
                .keys()
                .cloned()
                .chain(config.default_agent.clone())
                .collect(),
        }),
        audit_readers: crate::admin::AuditReaders::from_config(&config.approvers),
        limits: crate::admin::ConnectionLimits {
            header_read_timeout: config.limits.header_read_timeout,
            idle_timeout: config.limits.idle_timeout,
            max_connections: config.limits.max_admin_connections.get(),
        },
        lifecycle: Arc::clone(&lifecycle),
        ledger: Some(ledger),
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
    let listeners = vec![
        tokio::spawn(proxy.serve(proxy_listener)),
        tokio::spawn(admin.serve(admin_listener)),
    ];
    let watcher = {
        let audit = audit.clone();
        Arc::clone(&policies).watch(POLICY_POLL, move |change| {
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
        })
    };
    let background = vec![tokio::spawn(expiry), tokio::spawn(watcher)];
    tracing::info!(%proxy_addr, %admin_addr, "leash is listening");
    Ok(Running {
        proxy_addr,
        admin_addr,
        health,
        listeners,
        background,
        lifecycle,
        desk,
        audit,
        store,
        policies,
    })
}

/// What `leash run` says when the policies directory has no stack: what
/// leash does with every request then (the loader makes an empty set, in
/// which every agent has the fail-closed defaults, see
/// [`crate::policy::load`]).
pub fn no_policies_warning(dir: &std::path::Path) -> String {
    let state = if dir.is_dir() {
        "has no policy files (*.yaml)"
    } else {
        "does not exist"
    };
    format!(
        "the policies directory {} {state}: leash runs with no policy stack, so every request that may move money (spend, unknown or unreadable) gets the built-in default REQUIRE_HUMAN, and with no stack naming approvers nobody could release it, so it is refused (403 leash_rejected); reads and other safe requests are forwarded. Add a stack there (leash policy check checks it); leash loads it within seconds, no restart",
        dir.display()
    )
}

/// The holds and everything that acts on them, before the audit chain is
/// open: the sealing key beside the CA key, the hold store, the
/// notification targets (a webhook whose secret variable is unset stops
/// start-up) and the Slack signing secrets (likewise).
struct DeskInputs {
    holds: HoldStore,
    tokens: ApproverTokens,
    notifier: Notifier,
    admin_url: AdminUrl,
    wait: std::time::Duration,
    slack_secrets: Vec<Vec<u8>>,
}

impl DeskInputs {
    fn into_desk(self, audit: &AuditLog, metrics: Arc<Metrics>) -> HoldDesk {
        HoldDesk::new(DeskParts {
            store: self.holds,
            audit: audit.clone(),
            tokens: self.tokens,
            notifier: self.notifier,
            admin_url: self.admin_url,
            wait: self.wait,
            slack_secrets: self.slack_secrets,
            metrics,
        })
    }
}

fn desk_parts(
    config: &Config,
    store: &Store,
    admin_addr: SocketAddr,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<DeskInputs, StartError> {
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
    let key = HoldKey::load_or_create(&hold_key_path(&config.ca.key))
        .map_err(|e| StartError::Holds(e.to_string()))?;
    let holds = HoldStore::open(store, key, config.holds.ttl)
        .map_err(|e| StartError::Holds(e.to_string()))?
        .with_quota(crate::holds::store::Quota {
            max_open: config.holds.max_open_per_agent,
            max_bytes: config.holds.max_bytes_per_agent,
        });
    Ok(DeskInputs {
        holds,
        tokens: ApproverTokens::new(&config.approvers),
        notifier,
        admin_url,
        wait: config.holds.wait,
        slack_secrets,
    })
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
