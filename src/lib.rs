//! leash: a sidecar proxy that puts AI agents on a leash when they spend money.
//!
//! The modules follow the data path of a request:
//!
//! 1. [`proxy`] accepts the agent's connection, identifies the agent
//!    ([`identity`]), and terminates TLS for vendor hosts with leash's own CA
//!    ([`ca`]);
//! 2. [`adapters`] read each request into [`intent`]s with exact
//!    [`money`] amounts (after [`body`] decoding);
//! 3. the gate in [`proxy::intercept`] decides (the policy engine plugs in there);
//! 4. [`upstream`] forwards what was allowed, and [`answer`] shapes what leash
//!    says itself.
//!
//! Every decision is written first to the tamper-evident [`audit`] chain.
//!
//! A `REQUIRE_HUMAN` decision opens a hold in [`holds`], which counts the
//! approvals and releases the request exactly once; [`desk`] connects holds
//! to the audit chain, the approvers' notifications and the waiting agent
//! (the release itself runs on the agent's connection, in the proxy).
//!
//! [`config`] and [`yaml`] load `leash.yaml`; [`server`] wires it all up
//! (and [`lifecycle`] stops it gracefully, [`startup`] says what started) and
//! [`admin`] serves the admin API, [`metrics`] included. [`notify`] signs the webhooks and builds
//! the Slack messages that tell approvers about holds, and verifies Slack's
//! button clicks.

pub mod adapters;
pub mod admin;
pub mod agent_env;
pub mod answer;
pub mod audit;
pub mod body;
pub mod ca;
pub mod config;
pub mod desk;
pub mod egress;
pub mod explain;
pub mod gate;
pub mod holds;
pub mod identity;
pub mod idle;
pub mod intent;
pub mod keyfile;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod policy;
pub mod proxy;
pub mod replay;
pub mod server;
pub mod spend;
pub mod startup;
pub mod store;
pub mod upstream;
pub mod yaml;

/// Installs ring as the process-wide rustls crypto provider.
///
/// Every TLS configuration leash builds uses the process default, so this
/// must run once before any of them (in `main`, and at the top of tests).
/// Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
