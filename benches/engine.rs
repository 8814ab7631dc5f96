//! How long one policy decision takes on a realistic merged stack.
//!
//! The engine runs on the proxy's request path, once per intent, so its cost
//! is latency every agent request pays. The stack here is deliberately on the
//! heavy side of what a team writes: 40 rules of all six types, most with
//! filters, amounts in three currencies so that fx conversion runs, and a
//! month of prior spend (1,000 events) that every cap scans.
//!
//! The `ledger decide` cases time what the spend ledger runs per decision
//! (the cap queries, their totals from the running sums per window, the
//! decision) with a fresh ledger and after 1,000,000 prior spend events:
//! the cost must not grow with the history.
//!
//! Run with `cargo bench --bench engine` (or `-- --quick` for a short run).

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use rust_decimal::Decimal;

use leash::intent::{Fingerprint, Intent};
use leash::money::{Currency, Money};
use leash::policy::engine::{
    cap_queries, decide, decide_rejects_only, decide_request, Context, Decision, SpendEvent,
    Subject,
};
use leash::policy::model::{
    Action, AmountRange, Beneficiary, BeneficiaryRegistry, CapScope, CapWindow, Filters, FxTable,
    MergedStack, Quorum, Rule, RuleKind, WindowWhen,
};
use leash::spend::{totals, Buckets};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}
fn cur(c: &str) -> Currency {
    Currency::parse(c).unwrap()
}
fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
fn gte(n: &str) -> AmountRange {
    AmountRange {
        gte: Some(d(n)),
        ..AmountRange::default()
    }
}
fn lt(n: &str) -> AmountRange {
    AmountRange {
        lt: Some(d(n)),
        ..AmountRange::default()
    }
}

const VENDORS: [&str; 4] = ["stripe", "meta", "google_ads", "wise"];
const CATEGORIES: [&str; 4] = ["payment", "ad_spend", "transfer", "refund"];
const AGENTS: [&str; 3] = ["growth-agent", "ops-agent", "billing-agent"];

/// 40 rules, priorities 10..=400, cycling through the six types with a mix
/// of filters and amounts in EUR, USD and GBP.
fn stack() -> MergedStack {
    let paris = chrono_tz::Europe::Paris;
    let mut rules = Vec::new();
    for i in 0..40u32 {
        let action = match i % 3 {
            0 => Action::Reject,
            1 => Action::RequireHuman,
            _ => Action::AutoApprove,
        };
        let j = usize::try_from(i).unwrap();
        let kind = match i % 6 {
            0 => RuleKind::DailyCap {
                limit: Decimal::from(5_000 + 1_000 * i),
                scope: [
                    CapScope::Agent,
                    CapScope::AllAgents,
                    CapScope::Beneficiary,
                    CapScope::Category,
                ][j % 4],
                window: [CapWindow::Day, CapWindow::Week, CapWindow::Month][j % 3],
            },
            1 => RuleKind::AmountThreshold {
                range: AmountRange {
                    currency: (i % 2 == 1).then(|| cur("GBP")),
                    ..gte(&(1_000 + 100 * i).to_string())
                },
            },
            2 => RuleKind::BeneficiaryWhitelist {
                beneficiaries: Some((0..200).map(|n| format!("cus_{n}")).collect()),
                require_tags: set(&["kyc_verified"]),
            },
            3 => RuleKind::TimeWindow {
                days: [true, true, true, true, true, false, false],
                from: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                to: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
                to_end_of_day: false,
                when: WindowWhen::Inside,
            },
            4 => RuleKind::AgentScope {
                allow_agents: Some(set(&AGENTS)),
                max_amount: Some(Decimal::from(20_000)),
                allow_vendors: Some(set(&VENDORS)),
                allow_categories: None,
            },
            _ => RuleKind::CategoryBlocklist {
                categories: set(&["gambling", "gpu_reserved_capacity"]),
            },
        };
        let mut filters = Filters::default();
        if i % 4 == 1 {
            filters.vendors = Some(set(&["stripe", "wise"]));
        }
        if i % 5 == 2 {
            filters.operations = Some(set(&["payment_intent.create", "charge.create"]));
        }
        if i % 7 == 3 && !matches!(kind, RuleKind::CategoryBlocklist { .. }) {
            filters.categories = Some(set(&["payment", "transfer"]));
        }
        if i % 6 == 3 {
            filters.amount = Some(lt("1500"));
        }
        rules.push(Arc::new(Rule {
            priority: 10 * (i + 1),
            action,
            description: Some(format!("bench rule {i}")),
            shadow: i % 13 == 12,
            filters,
            kind,
            approvers: vec!["maya".into()],
            quorum: Quorum::default(),
            currency: cur("EUR"),
            timezone: paris,
            origin: format!("policies/bench.yaml:{}", i * 8),
        }));
    }
    MergedStack {
        agent: "growth-agent".into(),
        rules,
        default: Action::RequireHuman,
        unknown: Action::RequireHuman,
        unreadable: Action::RequireHuman,
        level_approvers: vec!["maya".into()],
        level_quorum: Quorum::default(),
        shadow: false,
        covered: true,
    }
}

/// 1,000 approved intents spread over the month before `now`, in EUR and
/// USD, across agents, vendors, categories and beneficiaries.
fn spend(now: DateTime<Utc>) -> Vec<SpendEvent> {
    (0..1_000usize)
        .map(|n| spend_event(now - TimeDelta::minutes(i64::try_from(n).unwrap() * 40), n))
        .collect()
}

fn spend_event(at: DateTime<Utc>, n: usize) -> SpendEvent {
    let currency = if n.is_multiple_of(3) { "USD" } else { "EUR" };
    SpendEvent {
        at,
        agent: AGENTS[n % AGENTS.len()].into(),
        vendor: VENDORS[n % VENDORS.len()].into(),
        operation: "payment_intent.create".into(),
        category: CATEGORIES[n % CATEGORIES.len()].into(),
        beneficiary: Some(format!("cus_{}", n % 50)),
        amount: Money::new(
            Decimal::new(1_000 + (n as i64 % 90) * 137, 2),
            cur(currency),
        ),
    }
}

/// Running sums per cap window in the stack's zone, holding `events` spend
/// events spread over the 40 days before `now` (one every 3.5 seconds for
/// a million).
fn ledger(now: DateTime<Utc>, events: usize) -> Buckets {
    let mut buckets = Buckets::new();
    buckets.advance(now);
    buckets.track(chrono_tz::Europe::Paris, std::iter::empty::<SpendEvent>());
    let step = if events == 0 {
        0
    } else {
        40 * 86_400_000 / i64::try_from(events).unwrap()
    };
    for n in 0..events {
        let at = now - TimeDelta::milliseconds(step * i64::try_from(n).unwrap());
        buckets.add(&spend_event(at, n));
    }
    buckets
}

/// What the ledger runs for one decision: the cap queries, their totals,
/// the decision.
fn ledger_decide(
    stack: &MergedStack,
    buckets: &Buckets,
    intent: &Intent,
    fx: &FxTable,
    registry: &BeneficiaryRegistry,
    now: DateTime<Utc>,
) -> Decision {
    let subjects = [Subject::Spend(intent)];
    let queries = cap_queries(stack, &subjects, now);
    let spent = totals(buckets, &queries);
    let ctx = Context {
        now,
        spent: &spent,
        fx,
        registry,
    };
    decide(stack, Subject::Spend(intent), &ctx)
}

fn fx() -> FxTable {
    let mut rates = BTreeMap::new();
    rates.insert(cur("USD"), d("0.92"));
    rates.insert(cur("GBP"), d("1.17"));
    rates.insert(cur("JPY"), d("0.0062"));
    FxTable {
        base: cur("EUR"),
        rates,
    }
}

fn registry() -> BeneficiaryRegistry {
    let mut entries = BTreeMap::new();
    for n in 0..100 {
        entries.insert(
            format!("cus_{n}"),
            Beneficiary {
                tags: set(&["kyc_verified"]),
            },
        );
    }
    BeneficiaryRegistry { entries }
}

fn intent(now: DateTime<Utc>, amount: &str) -> Intent {
    Intent {
        agent: "growth-agent".into(),
        vendor: "stripe".into(),
        operation: "payment_intent.create".into(),
        amount: Some(Money::new(d(amount), cur("USD"))),
        beneficiary: Some("cus_7".into()),
        category: "payment".into(),
        idempotency_key: Some("k-1".into()),
        sources: Default::default(),
        account: None,
        fingerprint: Fingerprint::of(
            "POST",
            "api.stripe.com",
            "/v1/payment_intents",
            b"amount=120000&currency=usd",
        ),
        at: now,
    }
}

fn bench(c: &mut Criterion) {
    // A Tuesday afternoon in Paris, mid-month.
    let now = chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 6, 16, 15, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    let stack = stack();
    let spent = spend(now);
    let fx = fx();
    let registry = registry();
    let ctx = Context {
        now,
        spent: &spent,
        fx: &fx,
        registry: &registry,
    };
    let one = intent(now, "1200.00");
    let decision = decide(&stack, Subject::Spend(&one), &ctx);
    assert_eq!(decision.verdicts.len(), 40);
    assert!(!decision.fx.is_empty());

    c.bench_function("decide: 40 rules, 1,000 spend events, USD intent", |b| {
        b.iter(|| {
            decide(
                black_box(&stack),
                Subject::Spend(black_box(&one)),
                black_box(&ctx),
            )
        })
    });
    c.bench_function("decide_rejects_only: same stack", |b| {
        b.iter(|| decide_rejects_only(black_box(&stack), black_box(&one), black_box(&ctx)))
    });
    let batch: Vec<Intent> = (0..10)
        .map(|n| intent(now, &format!("{}.00", 100 + n)))
        .collect();
    let subjects: Vec<Subject<'_>> = batch.iter().map(Subject::Spend).collect();
    c.bench_function("decide_request: 10 intents", |b| {
        b.iter(|| decide_request(black_box(&stack), black_box(&subjects), black_box(&ctx)))
    });

    // The same decision from the ledger's running sums: it sees the same
    // 1,000 events as the scan above, then none, then a million.
    let mut thousand = ledger(now, 0);
    for event in &spent {
        thousand.add(event);
    }
    let from_sums = ledger_decide(&stack, &thousand, &one, &fx, &registry, now);
    assert_eq!(from_sums.verdicts, decision.verdicts);
    for (label, buckets) in [
        ("ledger decide: 40 rules, fresh ledger", ledger(now, 0)),
        (
            "ledger decide: 40 rules, 1,000 prior spend events",
            thousand,
        ),
        (
            "ledger decide: 40 rules, 1,000,000 prior spend events",
            ledger(now, 1_000_000),
        ),
    ] {
        c.bench_function(label, |b| {
            b.iter(|| {
                ledger_decide(
                    black_box(&stack),
                    black_box(&buckets),
                    black_box(&one),
                    &fx,
                    &registry,
                    now,
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
