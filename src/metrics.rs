//! leash's own metrics, served on the admin listener as `GET /metrics`
//! (SPEC §9) in the OpenMetrics text format, encoded by `prometheus-client`.
//!
//! | metric                                | type      | labels                          |
//! |---------------------------------------|-----------|---------------------------------|
//! | `leash_requests_total`                | counter   | `vendor`, `class`               |
//! | `leash_answers_total`                 | counter   | `code`                          |
//! | `leash_decisions_total`               | counter   | `agent`, `action`, `rule`, `shadow` |
//! | `leash_hold_events_total`             | counter   | `event`                         |
//! | `leash_holds_pending`                 | gauge     |                                 |
//! | `leash_upstream_latency_seconds`      | histogram | `vendor`                        |
//! | `leash_upstream_errors_total`         | counter   | `vendor`                        |
//! | `leash_lookups_total`                 | counter   | `vendor`, `outcome`             |
//! | `leash_audit_entries`                 | gauge     |                                 |
//! | `leash_audit_healthy`                 | gauge     |                                 |
//! | `leash_ledger_available`              | gauge     |                                 |
//!
//! `/metrics` answers without authentication, like `/healthz`, so every
//! label value comes from a closed set leash or its configuration defines:
//! vendor names, classes, answer codes and actions are leash's own
//! constants, rules are the priorities of configured rules, and an agent is
//! named only when the configuration lists it (an agent name the request
//! picked, accepted while `agents:` is empty, is counted as `unlisted`).
//! Nothing an agent sends (amounts, beneficiaries, keys, paths) is a label,
//! and no amount of money is a metric.
//!
//! The hold and audit gauges are read when scraped ([`Metrics::encode`]):
//! the hold store and the audit chain are their source of truth.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::policy::model::Action;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The agent label of an agent the configuration does not list.
pub const UNLISTED_AGENT: &str = "unlisted";

/// Upper bounds of the upstream latency buckets, in seconds: vendor HTTPS
/// APIs answer in tens to hundreds of milliseconds, slow ones in seconds,
/// and `upstream.timeout` (60 s by default) ends the wait.
const UPSTREAM_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
];

/// What happened to a hold, for `leash_hold_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEvent {
    Created,
    Approved,
    Rejected,
    Expired,
    Released,
    /// leash stopped while forwarding a released hold (SPEC §6).
    OutcomeUnknown,
}

impl HoldEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldEvent::Created => "created",
            HoldEvent::Approved => "approved",
            HoldEvent::Rejected => "rejected",
            HoldEvent::Expired => "expired",
            HoldEvent::Released => "released",
            HoldEvent::OutcomeUnknown => "outcome_unknown",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    vendor: String,
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    agent: String,
    action: &'static str,
    rule: String,
    shadow: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HoldEventLabels {
    event: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    vendor: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VendorLabels {
    vendor: String,
}

/// Every metric leash keeps, and the registry they are encoded from.
/// Shared (in an `Arc`) by the proxy, the hold desk and the admin API.
pub struct Metrics {
    registry: Registry,
    /// The agent names the configuration lists: the only ones used as
    /// label values.
    known_agents: BTreeSet<String>,
    requests: Family<RequestLabels, Counter>,
    answers: Family<AnswerLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    hold_events: Family<HoldEventLabels, Counter>,
    holds_pending: Gauge<u64, AtomicU64>,
    upstream_latency: Family<VendorLabels, Histogram>,
    upstream_errors: Family<VendorLabels, Counter>,
    lookups: Family<LookupLabels, Counter>,
    audit_entries: Gauge<u64, AtomicU64>,
    audit_healthy: Gauge,
    ledger_available: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("known_agents", &self.known_agents)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for a leash whose configuration lists `known_agents`
    /// (`agents:` and `default_agent`).
    pub fn new(known_agents: impl IntoIterator<Item = String>) -> Self {
        let mut registry = Registry::with_prefix("leash");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests read inside intercepted vendor tunnels, by vendor and class (spend, safe, unknown, unreadable)",
            requests.clone(),
        );
        let answers = Family::<AnswerLabels, Counter>::default();
        registry.register(
            "answers",
            "Answers leash gave itself instead of the vendor's, by code (leash_rejected, leash_held, ...)",
            answers.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Policy decisions written to the audit chain, by agent, action, deciding rule (priority, or default) and shadow mode",
            decisions.clone(),
        );
        let hold_events = Family::<HoldEventLabels, Counter>::default();
        registry.register(
            "hold_events",
            "Hold transitions: created, approved, rejected, expired, released",
            hold_events.clone(),
        );
        let holds_pending = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "holds_pending",
            "Holds waiting for approvers",
            holds_pending.clone(),
        );
        let upstream_latency = Family::<VendorLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(UPSTREAM_BUCKETS)) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "upstream_latency",
            "Time from sending a forwarded request to the vendor's response headers",
            Unit::Seconds,
            upstream_latency.clone(),
        );
        let upstream_errors = Family::<VendorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Forwarded requests the vendor did not answer (unreachable, TLS failure, timeout)",
            upstream_errors.clone(),
        );
        let lookups = Family::<LookupLabels, Counter>::default();
        registry.register(
            "lookups",
            "GETs leash made for what a request left out (outcome: ok, cached, failed)",
            lookups.clone(),
        );
        let audit_entries = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "audit_entries",
            "Entries in the audit hash chain, checkpoints included",
            audit_entries.clone(),
        );
        let audit_healthy = Gauge::default();
        registry.register(
            "audit_healthy",
            "1 while the audit chain accepts writes, 0 once it refuses them (nothing is forwarded then)",
            audit_healthy.clone(),
        );
        // Before the first scrape sets it: healthy, as the chain opened.
        audit_healthy.set(1);
        let ledger_available = Gauge::default();
        registry.register(
            "ledger_available",
            "1 while the spend ledger answers, 0 while it does not (spend is refused with leash_ledger_unavailable then)",
            ledger_available.clone(),
        );
        ledger_available.set(1);
        Self {
            registry,
            known_agents: known_agents.into_iter().collect(),
            requests,
            answers,
            decisions,
            hold_events,
            holds_pending,
            upstream_latency,
            upstream_errors,
            lookups,
            audit_entries,
            audit_healthy,
            ledger_available,
        }
    }

    /// A request read in a vendor tunnel; `class` is
    /// [`crate::intent::Classification::kind`].
    pub fn request(&self, vendor: &str, class: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                vendor: vendor.to_owned(),
                class,
            })
            .inc();
    }

    /// An answer leash gave itself, by its code ([`crate::answer::Answer`]).
    pub fn answer(&self, code: &'static str) {
        self.answers.get_or_create(&AnswerLabels { code }).inc();
    }

    /// A decision that was written to the audit chain.
    pub fn decision(&self, agent: &str, action: Action, rule: Option<u32>, shadow: bool) {
        let agent = if self.known_agents.contains(agent) {
            agent.to_string()
        } else {
            UNLISTED_AGENT.to_string()
        };
        let rule = rule.map_or_else(|| "default".to_string(), |p| p.to_string());
        self.decisions
            .get_or_create(&DecisionLabels {
                agent,
                action: action.as_str(),
                rule,
                shadow,
            })
            .inc();
    }

    pub fn hold_event(&self, event: HoldEvent) {
        self.hold_events
            .get_or_create(&HoldEventLabels {
                event: event.as_str(),
            })
            .inc();
    }

    /// The vendor answered a forwarded request after `elapsed`.
    pub fn upstream_answered(&self, vendor: &str, elapsed: Duration) {
        self.upstream_latency
            .get_or_create(&VendorLabels {
                vendor: vendor.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The vendor did not answer a forwarded request.
    pub fn upstream_failed(&self, vendor: &str) {
        self.upstream_errors
            .get_or_create(&VendorLabels {
                vendor: vendor.to_owned(),
            })
            .inc();
    }

    /// A lookup made for a request; `outcome` is `ok`, `cached` or `failed`.
    pub fn lookup(&self, vendor: &str, outcome: &'static str) {
        self.lookups
            .get_or_create(&LookupLabels {
                vendor: vendor.to_owned(),
                outcome,
            })
            .inc();
    }

    /// The gauges read at scrape time.
    pub fn set_holds_pending(&self, pending: u64) {
        self.holds_pending.set(pending);
    }

    pub fn set_audit(&self, entries: u64, healthy: bool) {
        self.audit_entries.set(entries);
        self.audit_healthy.set(i64::from(healthy));
    }

    pub fn set_ledger_available(&self, available: bool) {
        self.ledger_available.set(i64::from(available));
    }

    /// Every metric, as OpenMetrics text ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name{labels}` (labels as encoded, in
    /// order), if the text has it.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    fn metrics() -> Metrics {
        Metrics::new(["growth-agent".to_string()])
    }

    #[test]
    fn counters_encode_with_their_labels_and_total_suffix() {
        let m = metrics();
        m.request("acme", "spend");
        m.request("acme", "spend");
        m.request("acme", "safe");
        m.answer("leash_rejected");
        m.decision("growth-agent", Action::AutoApprove, None, false);
        m.decision("growth-agent", Action::Reject, Some(10), false);
        m.decision("growth-agent", Action::Reject, Some(10), false);
        m.decision("growth-agent", Action::RequireHuman, Some(20), true);
        m.hold_event(HoldEvent::Created);
        let text = m.encode().unwrap();
        assert_eq!(
            sample(
                &text,
                r#"leash_requests_total{vendor="acme",class="spend"}"#
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"leash_requests_total{vendor="acme",class="safe"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"leash_answers_total{code="leash_rejected"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"leash_decisions_total{agent="growth-agent",action="AUTO_APPROVE",rule="default",shadow="false"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"leash_decisions_total{agent="growth-agent",action="REJECT",rule="10",shadow="false"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"leash_decisions_total{agent="growth-agent",action="REQUIRE_HUMAN",rule="20",shadow="true"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"leash_hold_events_total{event="created"}"#),
            Some(1.0)
        );
        assert!(text.contains("# TYPE leash_decisions counter"), "{text}");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
    }

    #[test]
    fn an_agent_the_configuration_does_not_list_is_not_a_label() {
        let m = metrics();
        m.decision("growth-agent", Action::AutoApprove, None, false);
        m.decision("picked-by-the-request-1", Action::AutoApprove, None, false);
        m.decision("picked-by-the-request-2", Action::AutoApprove, None, false);
        let text = m.encode().unwrap();
        assert!(!text.contains("picked-by-the-request"), "{text}");
        assert_eq!(
            sample(
                &text,
                r#"leash_decisions_total{agent="unlisted",action="AUTO_APPROVE",rule="default",shadow="false"}"#
            ),
            Some(2.0)
        );
    }

    #[test]
    fn upstream_latency_is_a_histogram_in_seconds() {
        let m = metrics();
        m.upstream_answered("acme", Duration::from_millis(30));
        m.upstream_answered("acme", Duration::from_millis(700));
        m.upstream_failed("acme");
        let text = m.encode().unwrap();
        assert!(
            text.contains("# UNIT leash_upstream_latency_seconds seconds"),
            "{text}"
        );
        let series = |suffix: &str| {
            sample(
                &text,
                &format!("leash_upstream_latency_seconds_{suffix}{{vendor=\"acme\"}}"),
            )
        };
        assert_eq!(series("count"), Some(2.0));
        let sum = series("sum").unwrap();
        assert!((sum - 0.73).abs() < 1e-9, "{sum}");
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("leash_upstream_latency_seconds_bucket{{le=\"{le}\",vendor=\"acme\"}}"),
            )
        };
        assert_eq!(bucket("0.025"), Some(0.0), "{text}");
        assert_eq!(bucket("0.05"), Some(1.0));
        assert_eq!(bucket("1.0"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(2.0));
        assert_eq!(
            sample(&text, r#"leash_upstream_errors_total{vendor="acme"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn gauges_hold_what_the_scrape_read() {
        let m = metrics();
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, "leash_audit_healthy"), Some(1.0));
        assert_eq!(sample(&text, "leash_holds_pending"), Some(0.0));
        m.set_holds_pending(3);
        m.set_audit(42, false);
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, "leash_holds_pending"), Some(3.0));
        assert_eq!(sample(&text, "leash_audit_entries"), Some(42.0));
        assert_eq!(sample(&text, "leash_audit_healthy"), Some(0.0));
    }
}
