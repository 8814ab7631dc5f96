//! Tests of the policy loader: what a valid directory becomes, and where
//! each kind of mistake is reported.

use std::path::Path;

use chrono::NaiveTime;
use rust_decimal::Decimal;

use super::*;
use crate::policy::model::{AgentSelector, CapScope, CapWindow, Mode, Quorum, RuleKind};

const CONFIG: &str = r#"
default_agent: growth-agent
agents:
  growth-agent: {}
  ops-agent: {}
fx:
  base: EUR
  rates: { USD: "0.92", USDC: "0.92" }
approvers:
  people:
    maya: { slack: U1 }
    alex: { slack: U2 }
    sam: { slack: U3 }
  groups:
    partners: [alex, sam]
"#;

fn config() -> Config {
    Config::parse(Path::new("leash.yaml"), CONFIG).unwrap()
}

/// A policies directory with these files (paths may have subdirectories).
///
/// A stack that names no approvers of its own gets `approvers: [maya]`
/// appended (after every line, so positions in it stay put): most of these
/// tests are about something else, and a stack whose holds nobody could
/// release is an error of its own. Tests of that error write
/// `# no approvers` in the stack to keep it as written; broken YAML is kept
/// as written too.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let is_stack = text.lines().any(|l| l.starts_with("agent:"))
            && !name.starts_with("tests/")
            && !text.contains("\napprovers:")
            && !text.contains("# no approvers")
            && serde_yaml::from_str::<serde_yaml::Value>(text).is_ok();
        if is_stack {
            let sep = if text.ends_with('\n') { "" } else { "\n" };
            std::fs::write(path, format!("{text}{sep}approvers: [maya]\n")).unwrap();
        } else {
            std::fs::write(path, text).unwrap();
        }
    }
    dir
}

/// `(file relative to the dir, line, column, message)` of every error.
fn errors_of(files: &[(&str, &str)]) -> Vec<(String, usize, usize, String)> {
    let dir = dir_with(files);
    match load_policies(dir.path(), &config()) {
        Ok(_) => panic!("expected errors for {files:?}"),
        Err(errors) => errors
            .into_iter()
            .map(|e| {
                let rel = e
                    .file
                    .strip_prefix(dir.path())
                    .unwrap_or(&e.file)
                    .display()
                    .to_string();
                (rel, e.line, e.column, e.message)
            })
            .collect(),
    }
}

/// The only error of one stack file `p.yaml`.
fn one_error(text: &str) -> (usize, usize, String) {
    let errors = errors_of(&[("p.yaml", text)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (file, line, column, message) = errors.into_iter().next().unwrap();
    assert_eq!(file, "p.yaml");
    (line, column, message)
}

fn loaded(files: &[(&str, &str)]) -> (tempfile::TempDir, LoadedPolicies) {
    let dir = dir_with(files);
    let loaded = load_policies(dir.path(), &config())
        .unwrap_or_else(|e| panic!("{}", e.iter().map(|e| format!("{e}\n")).collect::<String>()));
    (dir, loaded)
}

const ALL: &str = r#"agent: "*"
currency: EUR
timezone: Europe/Paris
rules:
  - priority: 5
    type: CATEGORY_BLOCKLIST
    action: REJECT
    categories: [gambling, crypto_transfer]
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 5000
    scope: all_agents
    description: Cap at €5,000 / day across all agents
"#;

const GROWTH: &str = r#"# The growth agent buys ads.
agent: growth-agent
currency: EUR
timezone: Europe/Paris
registry: registry/beneficiaries.csv
rules:
  - priority: 40
    type: TIME_WINDOW
    action: AUTO_APPROVE
    days: [weekdays]
    from: "08:00"
    to: "22:00"
    when: inside
    amount: { lt: 1500 }
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: "1500.00" }
    approvers: [maya, partners]
    quorum: 2
  - priority: 30
    type: BENEFICIARY_WHITELIST
    action: REQUIRE_HUMAN
    beneficiaries: { file: lists/ad-accounts.txt }
    require_tags: [kyc_verified]
    vendors: [meta, google_ads]
  - priority: 50
    type: TIME_WINDOW
    action: REQUIRE_HUMAN
    timezone: America/New_York
    days: [sat, sun]
    from: "22:00"
    to: "24:00"
    when: inside
    shadow: true
"#;

const OPS: &str = r#"agent: ops-agent
mode: shadow
currency: USD
default: REJECT
rules:
  - priority: 20
    type: AGENT_SCOPE
    action: REJECT
    allow_vendors: [aws, stripe]
    max_amount: "250.50"
  - priority: 30
    type: DAILY_CAP
    action: REQUIRE_HUMAN
    limit: 1000
    window: month
    scope: category
    amount: { gt: 10, currency: USDC }
"#;

const REGISTRY_CSV: &str = "id,tags\nact_1001,kyc_verified;ads\n\"act_1002\",kyc_verified ads\n# retired: act_0999\n\nact_1003,\n";

const AD_ACCOUNTS: &str = "# ad accounts we pay\nact_1001\n  act_1002\n\nact_1003\n";

fn valid_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("all.yaml", ALL),
        ("growth.yaml", GROWTH),
        ("ops.yml", OPS),
        ("registry/beneficiaries.csv", REGISTRY_CSV),
        ("lists/ad-accounts.txt", AD_ACCOUNTS),
        // Not stacks: tests, other subdirectories, dotfiles, other extensions.
        ("tests/growth.yaml", "cases: []\n"),
        ("archive/old.yaml", "this: is not read\n"),
        (".#growth.yaml", "editor lock file\n"),
        ("README.md", "# policies\n"),
    ]
}

#[test]
fn a_valid_directory_loads_with_merged_stacks() {
    let (_dir, loaded) = loaded(&valid_files());
    let set = &loaded.set;
    assert_eq!(set.stacks.len(), 3);
    assert_eq!(
        set.files,
        [
            "all.yaml",
            "growth.yaml",
            "lists/ad-accounts.txt",
            "ops.yml",
            "registry/beneficiaries.csv"
        ]
    );

    let growth = set.merged_for("growth-agent");
    let priorities: Vec<u32> = growth.rules.iter().map(|r| r.priority).collect();
    assert_eq!(priorities, [5, 10, 20, 30, 40, 50]);
    assert!(growth.covered && !growth.shadow);
    assert_eq!(growth.default, Action::RequireHuman);

    let other = set.merged_for("someone-else");
    let priorities: Vec<u32> = other.rules.iter().map(|r| r.priority).collect();
    assert_eq!(priorities, [5, 10]);

    let ops = set.merged_for("ops-agent");
    let priorities: Vec<u32> = ops.rules.iter().map(|r| r.priority).collect();
    // ops reuses 20 and 30, which growth has too: only the `*` stack is shared.
    assert_eq!(priorities, [5, 10, 20, 30]);
    // A shadow stack enforces nothing, not even its default: the enforcing
    // `*` stack's settings apply.
    assert_eq!(ops.default, Action::RequireHuman);
    assert!(!ops.shadow);
}

#[test]
fn rules_carry_their_stack_context() {
    let (dir, loaded) = loaded(&valid_files());
    let set = &loaded.set;
    let growth = set
        .stacks
        .iter()
        .find(|s| s.agent == AgentSelector::Named("growth-agent".into()))
        .unwrap();
    assert_eq!(growth.file, dir.path().join("growth.yaml"));
    assert_eq!(growth.timezone, chrono_tz::Europe::Paris);
    assert_eq!(growth.mode, Mode::Enforce);
    // Sorted by priority, whatever the file order.
    let rules: Vec<u32> = growth.rules.iter().map(|r| r.priority).collect();
    assert_eq!(rules, [20, 30, 40, 50]);

    let threshold = &growth.rules[0];
    assert_eq!(
        threshold.origin,
        format!("{}:15", dir.path().join("growth.yaml").display())
    );
    assert_eq!(threshold.approvers, ["maya", "partners"]);
    assert_eq!(threshold.quorum, Quorum::Count(2));
    assert_eq!(threshold.currency.code(), "EUR");
    match &threshold.kind {
        RuleKind::AmountThreshold { range } => {
            assert_eq!(range.gte, Some(Decimal::new(150000, 2)));
            assert_eq!(range.currency, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(threshold.filters.amount, None);

    let whitelist = &growth.rules[1];
    match &whitelist.kind {
        RuleKind::BeneficiaryWhitelist {
            beneficiaries,
            require_tags,
        } => {
            let ids: Vec<&str> = beneficiaries
                .as_ref()
                .unwrap()
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(ids, ["act_1001", "act_1002", "act_1003"]);
            assert!(require_tags.contains("kyc_verified"));
        }
        other => panic!("{other:?}"),
    }
    let vendors = whitelist.filters.vendors.as_ref().unwrap();
    assert!(vendors.contains("meta") && vendors.contains("google_ads"));

    let window = &growth.rules[2];
    assert_eq!(window.timezone, chrono_tz::Europe::Paris);
    match &window.kind {
        RuleKind::TimeWindow {
            days,
            from,
            to,
            to_end_of_day,
            when,
        } => {
            assert_eq!(*days, [true, true, true, true, true, false, false]);
            assert_eq!(*from, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
            assert_eq!(*to, NaiveTime::from_hms_opt(22, 0, 0).unwrap());
            assert!(!to_end_of_day);
            assert_eq!(*when, WindowWhen::Inside);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        window.filters.amount.as_ref().unwrap().lt,
        Some(Decimal::from(1500))
    );

    let late = &growth.rules[3];
    assert!(late.shadow);
    assert_eq!(late.timezone, chrono_tz::America::New_York);
    match &late.kind {
        RuleKind::TimeWindow {
            to, to_end_of_day, ..
        } => {
            assert_eq!(*to, NaiveTime::MIN);
            assert!(to_end_of_day);
        }
        other => panic!("{other:?}"),
    }

    let ops = set
        .stacks
        .iter()
        .find(|s| s.agent == AgentSelector::Named("ops-agent".into()))
        .unwrap();
    assert_eq!(ops.mode, Mode::Shadow);
    assert_eq!(ops.default, Action::Reject);
    assert_eq!(ops.timezone, chrono_tz::Tz::UTC);
    assert!(ops.rules.iter().all(|r| r.shadow), "a shadow stack's rules");
    assert!(ops.rules.iter().all(|r| r.currency.code() == "USD"));
    match &ops.rules[0].kind {
        RuleKind::AgentScope {
            max_amount,
            allow_vendors,
            allow_agents,
            allow_categories,
        } => {
            assert_eq!(*max_amount, Some(Decimal::new(25050, 2)));
            assert_eq!(allow_vendors.as_ref().unwrap().len(), 2);
            assert!(allow_agents.is_none() && allow_categories.is_none());
        }
        other => panic!("{other:?}"),
    }
    match &ops.rules[1].kind {
        RuleKind::DailyCap {
            limit,
            scope,
            window,
        } => {
            assert_eq!(*limit, Decimal::from(1000));
            assert_eq!(*scope, CapScope::Category);
            assert_eq!(*window, CapWindow::Month);
        }
        other => panic!("{other:?}"),
    }
    let range = ops.rules[1].filters.amount.as_ref().unwrap();
    assert_eq!(
        range.currency.map(|c| c.code().to_string()).as_deref(),
        Some("USDC")
    );

    let all = set
        .stacks
        .iter()
        .find(|s| s.agent == AgentSelector::All)
        .unwrap();
    match &all.rules[1].kind {
        RuleKind::DailyCap { scope, window, .. } => {
            assert_eq!((*scope, *window), (CapScope::AllAgents, CapWindow::Day));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        all.rules[1].description.as_deref(),
        Some("Cap at €5,000 / day across all agents")
    );
}

#[test]
fn fx_approvers_and_registry_come_along() {
    let (_dir, loaded) = loaded(&valid_files());
    let set = &loaded.set;
    assert_eq!(set.fx.base.code(), "EUR");
    let rates: Vec<(String, Decimal)> = set
        .fx
        .rates
        .iter()
        .map(|(c, r)| (c.code().to_string(), *r))
        .collect();
    assert!(rates.contains(&("USD".to_string(), Decimal::new(92, 2))));
    assert!(rates.contains(&("USDC".to_string(), Decimal::new(92, 2))));
    assert!(set.approvers.knows("partners") && set.approvers.knows("maya"));
    assert_eq!(set.approvers.resolve(&["partners".to_string()]).len(), 2);

    let tags =
        |id: &str| -> Vec<String> { set.registry.entries[id].tags.iter().cloned().collect() };
    assert_eq!(tags("act_1001"), ["ads", "kyc_verified"]);
    assert_eq!(tags("act_1002"), ["ads", "kyc_verified"]);
    assert!(tags("act_1003").is_empty());
    assert_eq!(set.registry.entries.len(), 3);
}

#[test]
fn the_spec_example_loads() {
    // SPEC §5.1, verbatim.
    let spec = r#"agent: growth-agent        # or "*": applies to every agent, merged with the agent's own
currency: EUR              # currency of amounts written in this stack
timezone: Europe/Paris     # for day boundaries and time windows
default: REQUIRE_HUMAN     # when no rule triggers (REQUIRE_HUMAN if omitted)
mode: enforce              # enforce | shadow (decide and log, but forward everything)
unknown: REQUIRE_HUMAN
unreadable: REQUIRE_HUMAN
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 5000
    description: Cap at €5,000 / day per agent across all platforms
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 1500 }
    approvers: [maya]
  - priority: 30
    type: BENEFICIARY_WHITELIST
    action: REQUIRE_HUMAN
    beneficiaries: [act_1001, act_1002]
  - priority: 40
    type: TIME_WINDOW
    action: AUTO_APPROVE
    days: [mon, tue, wed, thu, fri]
    from: "08:00"
    to: "22:00"
    when: inside
    amount: { lt: 1500 }
"#;
    let (_dir, loaded) = loaded(&[("growth.yaml", spec)]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let merged = loaded.set.merged_for("growth-agent");
    assert_eq!(merged.rules.len(), 4);
    assert_eq!(merged.rules[0].type_name(), "DAILY_CAP");
}

#[test]
fn currency_defaults_to_the_fx_base_and_timezone_to_utc() {
    let (_dir, loaded) = loaded(&[("p.yaml", "agent: growth-agent\n")]);
    let stack = &loaded.set.stacks[0];
    assert_eq!(stack.currency.code(), "EUR");
    assert_eq!(stack.timezone, chrono_tz::Tz::UTC);
    assert_eq!(
        (stack.default, stack.unknown, stack.unreadable, stack.mode),
        (
            Action::RequireHuman,
            Action::RequireHuman,
            Action::RequireHuman,
            Mode::Enforce
        )
    );
    assert!(stack.rules.is_empty());
}

#[test]
fn missing_and_empty_directories_are_empty_sets() {
    let dir = tempfile::tempdir().unwrap();
    let empty = load_policy_set(dir.path(), &config()).unwrap();
    let missing = load_policy_set(&dir.path().join("nope"), &config()).unwrap();
    assert!(empty.stacks.is_empty() && empty.files.is_empty());
    assert_eq!(empty.hash, missing.hash);
    assert_eq!(empty.hash.len(), 64);
    let merged = empty.merged_for("anyone");
    assert!(!merged.covered);
    assert_eq!(merged.default, Action::RequireHuman);

    std::fs::write(dir.path().join("file"), "x").unwrap();
    let e = load_policy_set(&dir.path().join("file"), &config()).unwrap_err();
    assert!(e[0].message.contains("not a directory"), "{e:?}");
}

// ---------------------------------------------------------------------------
// Each kind of error, at its place.

#[test]
fn unknown_key_in_a_rule() {
    let errors = errors_of(&[(
        "p.yaml",
        "agent: a\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REJECT\n    limt: 5\n",
    )]);
    let found: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|(_, l, c, m)| (*l, *c, m.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                3,
                5,
                "rules[0]: missing `limit`: the most that may be spent in the window, like 5000"
            ),
            (
                6,
                5,
                "rules[0].limt: unknown key `limt`: did you mean `limit`?"
            )
        ]
    );

    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - { priority: 1, type: CATEGORY_BLOCKLIST, action: REJECT, categories: [x], colour: red }\n",
    );
    assert_eq!((l, c), (3, 79));
    assert!(
        m.starts_with("rules[0].colour: unknown key `colour`; expected one of `priority`"),
        "{m}"
    );

    let (l, c, m) = one_error("agent: a\nbogus: 1\n");
    assert_eq!((l, c), (2, 1));
    assert!(m.starts_with("bogus: unknown key `bogus`"), "{m}");
}

#[test]
fn key_of_another_rule_type_names_the_type() {
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: AMOUNT_THRESHOLD\n    action: REJECT\n    amount: { gt: 9 }\n    limit: 5000\n",
    );
    assert_eq!((l, c), (7, 5));
    assert_eq!(
        m,
        "rules[0].limit: `limit` is a DAILY_CAP key: an AMOUNT_THRESHOLD rule does not take it (its own keys: amount)"
    );
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REJECT\n    limit: 1\n    timezone: UTC\n",
    );
    assert_eq!((l, c), (7, 5));
    assert!(m.contains("`timezone` is a TIME_WINDOW key"), "{m}");
}

#[test]
fn wrong_types_point_at_the_value() {
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: ten\n    type: DAILY_CAP\n    action: REJECT\n    limit: 5\n",
    );
    assert_eq!((l, c), (3, 15));
    assert_eq!(
        m,
        "rules[0].priority: expected a whole number from 0 to 4294967295, found the string \"ten\""
    );
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REJECT\n    limit: 5\n    shadow: yes\n",
    );
    assert_eq!((l, c), (7, 13));
    assert!(
        m.ends_with("expected true or false, found the string \"yes\""),
        "{m}"
    );
    let (l, c, m) = one_error("agent: a\nrules: { priority: 1 }\n");
    assert_eq!((l, c), (2, 8));
    assert!(
        m.contains("expected a list of rules, found a mapping"),
        "{m}"
    );
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: CATEGORY_BLOCKLIST\n    action: REJECT\n    categories: gambling\n",
    );
    assert_eq!((l, c), (6, 17));
    assert!(m.contains("write a list, like [gambling]"), "{m}");
}

#[test]
fn unquoted_float_amounts_are_refused_with_a_hint() {
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: AMOUNT_THRESHOLD\n    action: REQUIRE_HUMAN\n    amount: { gte: 1500.50 }\n",
    );
    assert_eq!((l, c), (6, 20));
    assert_eq!(
        m,
        "rules[0].amount.gte: 1500.50 is a YAML float, and money never goes through floats: quote it, like \"1500.50\""
    );
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REJECT\n    limit: 99.9\n",
    );
    assert_eq!((l, c), (6, 12));
    assert!(m.contains("quote it, like \"99.9\""), "{m}");
}

#[test]
fn bad_currencies() {
    let (l, c, m) = one_error("agent: a\ncurrency: EURO\n");
    assert_eq!((l, c), (2, 11));
    assert_eq!(
        m,
        "currency: `EURO` is not an ISO 4217 currency code like EUR, nor an asset with a rate in leash.yaml fx.rates"
    );
    let (_, _, m) = one_error("agent: a\ncurrency: eur\n");
    assert_eq!(m, "currency: write currency codes in upper case: EUR");
    let (l, c, _) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: AMOUNT_THRESHOLD\n    action: REJECT\n    amount: { gt: 5, currency: BTC }\n",
    );
    assert_eq!((l, c), (6, 32));
}

#[test]
fn bad_timezones() {
    let (l, c, m) = one_error("agent: a\ntimezone: Europe/paris\n");
    assert_eq!((l, c), (2, 11));
    assert_eq!(
        m,
        "timezone: `Europe/paris` is not an IANA timezone: did you mean Europe/Paris?"
    );
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: TIME_WINDOW\n    action: REJECT\n    when: outside\n    days: [mon]\n    timezone: Mars/Olympus\n",
    );
    assert_eq!((l, c), (8, 15));
    assert!(m.contains("`Mars/Olympus` is not an IANA timezone"), "{m}");
}

#[test]
fn unknown_approvers_point_at_the_name() {
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REQUIRE_HUMAN\n    limit: 5\n    approvers: [maya, bob]\n",
    );
    assert_eq!((l, c), (7, 23));
    assert_eq!(
        m,
        "rules[0].approvers[1]: `bob` is not an approver in leash.yaml (people: alex, maya, sam; groups: partners)"
    );
}

#[test]
fn quorum_must_be_reachable() {
    let rule = |approvers: &str, quorum: &str| {
        format!(
            "agent: a\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REQUIRE_HUMAN\n    limit: 5\n{approvers}    quorum: {quorum}\n"
        )
    };
    let (l, c, m) = one_error(&rule("    approvers: [partners]\n", "3"));
    assert_eq!((l, c), (8, 13));
    assert_eq!(
        m,
        "rules[0].quorum: a quorum of 3 can never be reached: there are only 2 people these approvers resolve to (alex, sam)"
    );
    // Overlapping people count once.
    let (_, _, m) = one_error(&rule("    approvers: [alex, partners]\n", "3"));
    assert!(m.contains("only 2 people"), "{m}");
    // Without approvers, anyone in leash.yaml: 3 people.
    let (_, _, m) = one_error(&rule("", "4"));
    assert!(m.contains("only 3 approvers listed in leash.yaml"), "{m}");
    let (_, _, m) = one_error(&rule("", "0"));
    assert!(m.contains("a quorum of 0"), "{m}");
    let (_, _, m) = one_error(&rule("", "most"));
    assert!(m.contains("`most` is not a quorum"), "{m}");
    for ok in [
        rule("    approvers: [partners]\n", "2"),
        rule("    approvers: [partners]\n", "all"),
        rule("", "3"),
    ] {
        loaded(&[("p.yaml", ok.as_str())]);
    }
}

#[test]
fn duplicate_priority_across_an_agent_stack_and_star() {
    let errors = errors_of(&[
        ("all.yaml", "agent: \"*\"\nrules:\n  - { priority: 10, type: DAILY_CAP, action: REJECT, limit: 5 }\n"),
        ("growth.yaml", "agent: growth-agent\nrules:\n  - priority: 20\n    type: DAILY_CAP\n    action: REJECT\n    limit: 9\n  - priority: 10\n    type: DAILY_CAP\n    action: REJECT\n    limit: 9\n"),
        ("ops.yaml", "agent: ops-agent\nrules:\n  - { priority: 20, type: DAILY_CAP, action: REJECT, limit: 5 }\n"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (file, line, column, message) = &errors[0];
    assert_eq!((file.as_str(), *line, *column), ("growth.yaml", 7, 15));
    assert!(
        message.starts_with("rules[1].priority: priority 10 is also used by the `*` stack at "),
        "{message}"
    );
    assert!(message.contains("all.yaml:3"), "{message}");
    assert!(
        message.ends_with("unique in `growth-agent`'s merged stack"),
        "{message}"
    );
}

#[test]
fn duplicate_priority_in_one_file() {
    let (l, c, m) = one_error(
        "agent: a\nrules:\n  - { priority: 7, type: DAILY_CAP, action: REJECT, limit: 5 }\n  - { priority: 7, type: DAILY_CAP, action: REJECT, limit: 6 }\n",
    );
    assert_eq!((l, c), (4, 17));
    assert!(
        m.contains("priority 7 is already used by the rule at "),
        "{m}"
    );
    assert!(m.contains("p.yaml:3"), "{m}");
}

#[test]
fn two_stacks_for_one_agent() {
    let errors = errors_of(&[
        ("a.yaml", "agent: growth-agent\n"),
        ("b.yaml", "# second\nagent: growth-agent\n"),
        ("c.yaml", "agent: \"*\"\n"),
        ("d.yaml", "agent: '*'\n"),
    ]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1, errors[0].2),
        ("b.yaml", 2, 8)
    );
    assert!(
        errors[0]
            .3
            .contains("a.yaml already has a stack for agent `growth-agent`"),
        "{}",
        errors[0].3
    );
    assert_eq!(
        (errors[1].0.as_str(), errors[1].1, errors[1].2),
        ("d.yaml", 1, 8)
    );
    assert!(
        errors[1]
            .3
            .contains("c.yaml already has a stack for every agent (`*`)"),
        "{}",
        errors[1].3
    );
}

#[test]
fn unquoted_star_gets_a_hint() {
    let (l, _, m) = one_error("agent: *\n");
    assert_eq!(l, 1);
    assert!(m.contains("quote it, like agent: \"*\""), "{m}");
}

#[test]
fn required_keys_per_type() {
    let cases = [
        (
            "type: AMOUNT_THRESHOLD\n    action: REJECT\n",
            "missing `amount`",
        ),
        (
            "type: AMOUNT_THRESHOLD\n    action: REJECT\n    amount: { currency: USD }\n",
            "no bound",
        ),
        ("type: DAILY_CAP\n    action: REJECT\n", "missing `limit`"),
        (
            "type: DAILY_CAP\n    action: REJECT\n    limit: 0\n",
            "a limit of 0",
        ),
        (
            "type: BENEFICIARY_WHITELIST\n    action: REJECT\n",
            "needs `beneficiaries`",
        ),
        (
            "type: TIME_WINDOW\n    action: REJECT\n    when: inside\n",
            "needs `days`, or `from` and `to`",
        ),
        (
            "type: TIME_WINDOW\n    action: REJECT\n    days: [mon]\n",
            "missing `when`",
        ),
        (
            "type: TIME_WINDOW\n    action: REJECT\n    when: inside\n    from: \"08:00\"\n",
            "`from` without `to`",
        ),
        (
            "type: AGENT_SCOPE\n    action: REJECT\n",
            "at least one of allow_agents",
        ),
        (
            "type: CATEGORY_BLOCKLIST\n    action: REJECT\n",
            "missing `categories`",
        ),
        ("type: DAILY_CAP\n    limit: 5\n", "missing `action`"),
        ("action: REJECT\n", "missing `type`"),
        (
            "type: daily_cap\n    action: REJECT\n",
            "write rule types in upper case: DAILY_CAP",
        ),
        (
            "type: DAILY_CAP\n    action: reject\n    limit: 5\n",
            "write actions in upper case: REJECT",
        ),
    ];
    for (body, expected) in cases {
        let text = format!("agent: a\nrules:\n  - priority: 1\n    {body}");
        let errors = errors_of(&[("p.yaml", text.as_str())]);
        assert_eq!(errors.len(), 1, "{body}: {errors:#?}");
        assert!(errors[0].3.contains(expected), "{body}: {}", errors[0].3);
    }
    let (l, c, m) = one_error("# x\nrules: []\n");
    assert_eq!((l, c), (2, 1));
    assert!(m.starts_with("missing `agent`"), "{m}");
}

#[test]
fn values_that_cannot_mean_anything() {
    let rule =
        |body: &str| format!("agent: a\nrules:\n  - priority: 1\n    action: REJECT\n    {body}");
    let cases = [
        (
            "type: AMOUNT_THRESHOLD\n    amount: { gt: 10, lt: 5 }\n",
            "no amount is both gt 10 and lt 5",
        ),
        (
            "type: AMOUNT_THRESHOLD\n    amount: { gte: 5, lt: 5 }\n",
            "the range is empty",
        ),
        (
            "type: AMOUNT_THRESHOLD\n    amount: { gt: 1, gte: 2 }\n",
            "two lower bounds",
        ),
        (
            "type: AMOUNT_THRESHOLD\n    amount: { gt: -1 }\n",
            "-1 is negative",
        ),
        (
            "type: AMOUNT_THRESHOLD\n    amount: { gt: \"1,5\" }\n",
            "write an amount like 1500",
        ),
        (
            "type: TIME_WINDOW\n    when: inside\n    from: \"8:00\"\n    to: \"18:00\"\n",
            "`8:00` is not a time",
        ),
        (
            "type: TIME_WINDOW\n    when: inside\n    from: \"24:00\"\n    to: \"18:00\"\n",
            "`from` may not be \"24:00\"",
        ),
        (
            "type: TIME_WINDOW\n    when: inside\n    from: \"09:00\"\n    to: \"09:00\"\n",
            "the window is empty",
        ),
        (
            "type: TIME_WINDOW\n    when: inside\n    days: [Mon]\n",
            "write days in lower case: mon",
        ),
        (
            "type: TIME_WINDOW\n    when: inside\n    days: [weekdays, fri]\n",
            "fri is already in the list",
        ),
        (
            "type: TIME_WINDOW\n    when: always\n    days: [mon]\n",
            "`always` is not inside or outside",
        ),
        (
            "type: DAILY_CAP\n    limit: 5\n    scope: team\n",
            "`team` is not a cap scope",
        ),
        (
            "type: DAILY_CAP\n    limit: 5\n    window: year\n",
            "`year` is not a cap window",
        ),
        (
            "type: DAILY_CAP\n    limit: 5\n    vendors: [strpe]\n",
            "`strpe` is not a vendor leash reads",
        ),
        (
            "type: DAILY_CAP\n    limit: 5\n    vendors: []\n",
            "the list is empty",
        ),
        (
            "type: DAILY_CAP\n    limit: 5\n    categories: [Ad Spend]\n",
            "`Ad Spend` is not a category",
        ),
        (
            "type: CATEGORY_BLOCKLIST\n    categories: [x, x]\n",
            "`x` is listed twice",
        ),
        (
            "type: AGENT_SCOPE\n    allow_agents: [\"growth agent\"]\n",
            "is not an agent name",
        ),
        (
            "type: BENEFICIARY_WHITELIST\n    beneficiaries: { file: ../secrets.txt }\n",
            "leaves the policies directory",
        ),
        (
            "type: BENEFICIARY_WHITELIST\n    beneficiaries: { file: lists/none.txt }\n",
            "cannot read",
        ),
        (
            "type: BENEFICIARY_WHITELIST\n    beneficiaries: { path: x }\n",
            "unknown key `path`",
        ),
    ];
    for (body, expected) in cases {
        let text = rule(body);
        let errors = errors_of(&[("p.yaml", text.as_str())]);
        assert!(!errors.is_empty(), "{body}");
        assert!(
            errors.iter().any(|e| e.3.contains(expected)),
            "{body}: {errors:#?}"
        );
    }
}

#[test]
fn stack_level_values() {
    let (_, _, m) = one_error("agent: a\nunreadable: AUTO_APPROVE\n");
    assert!(m.contains("never approved unseen"), "{m}");
    let (_, _, m) = one_error("agent: a\nmode: dry-run\n");
    assert!(m.contains("`dry-run` is not a mode"), "{m}");
    let (_, _, m) = one_error("agent: growth agent\n");
    assert!(m.contains("is not an agent name"), "{m}");
    let (_, _, m) = one_error("agent: a\nregistry: people.json\n");
    assert!(
        m.contains("a registry is a .yaml, .yml or .csv file"),
        "{m}"
    );
    let (l, c, m) = one_error("agent: a\nregistry: gone.csv\n");
    assert_eq!((l, c), (2, 11));
    assert!(m.starts_with("registry: cannot read "), "{m}");
    let (l, _, m) = one_error("- a\n- b\n");
    assert_eq!(l, 1);
    assert!(m.contains("expected a policy stack"), "{m}");
}

#[test]
fn every_error_of_every_file_is_reported() {
    let errors = errors_of(&[
        (
            "a.yaml",
            "agent: a\ncurrency: XXX\nrules:\n  - priority: 1\n    type: DAILY_CAP\n    action: REJECT\n    limit: 1.5\n  - priority: 2\n    type: AMOUNT_THRESHOLD\n    action: REQUIRE_HUMAN\n    amount: { gt: 1 }\n    approvers: [nobody]\n    windw: day\n",
        ),
        ("b.yaml", "agent: b\ntimezone: Nowhere\n"),
        ("c.yaml", "agent: [c\n"),
    ]);
    let places: Vec<(&str, usize, usize)> = errors
        .iter()
        .map(|(f, l, c, _)| (f.as_str(), *l, *c))
        .collect();
    assert_eq!(
        places,
        [
            ("a.yaml", 2, 11),
            ("a.yaml", 7, 12),
            ("a.yaml", 12, 17),
            ("a.yaml", 13, 5),
            ("b.yaml", 2, 11),
            ("c.yaml", 2, 1),
        ],
        "{errors:#?}"
    );
}

// ---------------------------------------------------------------------------
// Registries and lists.

#[test]
fn registry_yaml() {
    let registry = "beneficiaries:\n  act_1: { tags: [kyc_verified] }\n  'DE89370400440532013000':\n    tags: [kyc_verified, supplier]\n  act_3:\n";
    let stack = "agent: ops-agent\nregistry: reg/beneficiaries.yaml\nrules:\n  - priority: 1\n    type: BENEFICIARY_WHITELIST\n    action: REQUIRE_HUMAN\n    require_tags: [supplier]\n";
    let (_dir, loaded) = loaded(&[("a.yaml", stack), ("reg/beneficiaries.yaml", registry)]);
    let entries = &loaded.set.registry.entries;
    assert_eq!(entries.len(), 3);
    assert!(entries["DE89370400440532013000"].tags.contains("supplier"));
    assert!(entries["act_3"].tags.is_empty());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    match &loaded.set.stacks[0].rules[0].kind {
        RuleKind::BeneficiaryWhitelist {
            beneficiaries,
            require_tags,
        } => {
            assert!(beneficiaries.is_none());
            assert_eq!(require_tags.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn registry_errors_point_into_the_registry() {
    let errors = errors_of(&[
        ("a.yaml", "agent: a\nregistry: reg/reg.yaml\n"),
        ("reg/reg.yaml", "beneficiaries:\n  act_1: { tags: [ok], colour: red }\n  act_2: { tags: [\"bad tag\"] }\n"),
    ]);
    let places: Vec<(&str, usize, usize)> = errors
        .iter()
        .map(|(f, l, c, _)| (f.as_str(), *l, *c))
        .collect();
    assert_eq!(
        places,
        [("reg/reg.yaml", 2, 24), ("reg/reg.yaml", 3, 19)],
        "{errors:#?}"
    );

    let errors = errors_of(&[
        ("a.yaml", "agent: a\nregistry: reg.csv\n"),
        (
            "reg.csv",
            "id,tags\nact_1,ok\nact_1,again\n\"act 2\",x\nact_3,a,b\nact_4,\"bad\n",
        ),
    ]);
    let found: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|(_, l, c, m)| (*l, *c, m.as_str()))
        .collect();
    assert_eq!(found.len(), 4, "{errors:#?}");
    assert_eq!((found[0].0, found[0].1), (3, 1));
    assert!(found[0].2.contains("already on line 2"));
    assert_eq!((found[1].0, found[1].1), (4, 1));
    assert!(found[1].2.contains("no spaces"));
    assert_eq!((found[2].0, found[2].1), (5, 9));
    assert!(found[2].2.contains("3 fields"));
    assert_eq!((found[3].0, found[3].1), (6, 7));
    assert!(found[3].2.contains("unclosed quote"));
}

#[test]
fn a_beneficiary_in_two_registries_is_an_error() {
    let errors = errors_of(&[
        ("a.yaml", "agent: a\nregistry: one.csv\n"),
        ("b.yaml", "agent: b\nregistry: two.csv\n"),
        ("c.yaml", "agent: c\nregistry: one.csv\n"),
        ("one.csv", "act_1,x\n"),
        ("two.csv", "act_2,y\nact_1,z\n"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].0.as_str(), errors[0].1), ("two.csv", 2));
    assert!(errors[0].3.contains("is already in"), "{}", errors[0].3);
}

#[test]
fn beneficiary_list_files() {
    let stack = |file: &str| {
        format!("agent: a\nrules:\n  - priority: 1\n    type: BENEFICIARY_WHITELIST\n    action: REQUIRE_HUMAN\n    beneficiaries: {{ file: {file} }}\n")
    };
    let ids = |loaded: &LoadedPolicies| -> Vec<String> {
        match &loaded.set.stacks[0].rules[0].kind {
            RuleKind::BeneficiaryWhitelist { beneficiaries, .. } => {
                beneficiaries.clone().unwrap().into_iter().collect()
            }
            other => panic!("{other:?}"),
        }
    };
    let text = stack("./lists/ids.yaml");
    let (_dir, yaml) = loaded(&[
        ("a.yaml", text.as_str()),
        ("lists/ids.yaml", "- act_1\n- 0042\n- 77\n"),
    ]);
    assert_eq!(ids(&yaml), ["0042", "77", "act_1"]);
    assert_eq!(yaml.set.files, ["a.yaml", "lists/ids.yaml"]);

    let text = stack("ids.txt");
    let (_dir, txt) = loaded(&[
        ("a.yaml", text.as_str()),
        ("ids.txt", "act_1\r\n# no\n\n act_2 \n"),
    ]);
    assert_eq!(ids(&txt), ["act_1", "act_2"]);

    let errors = errors_of(&[("a.yaml", text.as_str()), ("ids.txt", "act_1\nact 2\n")]);
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1, errors[0].2),
        ("ids.txt", 2, 1)
    );
    let errors = errors_of(&[("a.yaml", text.as_str()), ("ids.txt", "# nobody\n")]);
    assert!(errors[0].3.contains("no ids"), "{errors:?}");
    let text = stack("lists/ids.yaml");
    let errors = errors_of(&[
        ("a.yaml", text.as_str()),
        ("lists/ids.yaml", "- a\n- { b: 1 }\n"),
    ]);
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1, errors[0].2),
        ("lists/ids.yaml", 2, 3)
    );
    // A YAML list directly in the directory would be read as a stack too.
    let text = stack("ids.yaml");
    let errors = errors_of(&[("a.yaml", text.as_str())]);
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1, errors[0].2),
        ("a.yaml", 6, 28)
    );
    assert!(
        errors[0]
            .3
            .contains("move it into a subdirectory, like registry/ids.yaml"),
        "{errors:?}"
    );
}

// ---------------------------------------------------------------------------
// Warnings.

#[test]
fn suspicious_things_are_warnings() {
    let stack = r#"agent: growth-agent
default: AUTO_APPROVE
unknown: AUTO_APPROVE
rules:
  - priority: 1
    type: BENEFICIARY_WHITELIST
    action: AUTO_APPROVE
    beneficiaries: [act_1]
  - priority: 2
    type: DAILY_CAP
    action: REJECT
    limit: 5
    approvers: [maya]
  - priority: 3
    type: BENEFICIARY_WHITELIST
    action: REQUIRE_HUMAN
    require_tags: [kyc_verfied]
  - priority: 4
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gt: 5, currency: GBP }
"#;
    let (_dir, loaded) = loaded(&[
        ("growth.yaml", stack),
        ("all.yaml", "agent: \"*\"\n"),
        ("typo.yaml", "agent: grwoth-agent\n"),
    ]);
    let warnings: Vec<(String, usize, usize, String)> = loaded
        .warnings
        .iter()
        .map(|w| {
            (
                w.file.file_name().unwrap().to_string_lossy().into_owned(),
                w.line,
                w.column,
                w.message.clone(),
            )
        })
        .collect();
    let expect = [
        ("growth.yaml", 3, 10, "AUTO_APPROVE forwards every write"),
        ("growth.yaml", 7, 13, "approves exactly those"),
        ("growth.yaml", 13, 5, "has no effect on a REJECT rule"),
        (
            "growth.yaml",
            17,
            20,
            "no stack names a beneficiary `registry`",
        ),
        (
            "growth.yaml",
            21,
            32,
            "GBP is not the fx base (EUR) and has no rate",
        ),
        (
            "typo.yaml",
            1,
            8,
            "leash.yaml does not list agent `grwoth-agent`",
        ),
    ];
    assert_eq!(warnings.len(), expect.len(), "{warnings:#?}");
    for (got, (file, line, column, text)) in warnings.iter().zip(expect) {
        assert_eq!(
            (got.0.as_str(), got.1, got.2),
            (file, line, column),
            "{got:?}"
        );
        assert!(got.3.contains(text), "{got:?}");
    }
}

#[test]
fn a_tag_nobody_has_is_a_warning() {
    let stack = "agent: ops-agent\nregistry: r.csv\nrules:\n  - priority: 1\n    type: BENEFICIARY_WHITELIST\n    action: REQUIRE_HUMAN\n    require_tags: [kyc_verified, kyc_verfied]\n";
    let (_dir, loaded) = loaded(&[("a.yaml", stack), ("r.csv", "act_1,kyc_verified\n")]);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0];
    assert_eq!((w.line, w.column), (7, 34));
    assert!(w
        .message
        .contains("no beneficiary in the registry has tag `kyc_verfied`"));
}

// ---------------------------------------------------------------------------
// The hash.

#[test]
fn the_hash_covers_every_file_the_set_is_built_from() {
    let files = valid_files();
    let dir = dir_with(&files);
    let hash = || load_policy_set(dir.path(), &config()).unwrap().hash;
    let first = hash();
    assert_eq!(first.len(), 64);
    assert_eq!(hash(), first, "stable across loads");
    // The same content in another directory hashes the same: names are
    // relative.
    let elsewhere = dir_with(&files);
    assert_eq!(
        load_policy_set(elsewhere.path(), &config()).unwrap().hash,
        first
    );

    let mut seen = vec![first.clone()];
    for (file, extra) in [
        ("growth.yaml", "# a comment\n"),
        ("all.yaml", "\n"),
        ("registry/beneficiaries.csv", "act_9,\n"),
        ("lists/ad-accounts.txt", "act_9\n"),
    ] {
        let path = dir.path().join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(extra);
        std::fs::write(&path, text).unwrap();
        let now = hash();
        assert!(!seen.contains(&now), "{file} did not change the hash");
        seen.push(now);
    }
    // Files the set is not built from do not count.
    let before = hash();
    std::fs::write(dir.path().join("tests/growth.yaml"), "cases: [] # edited\n").unwrap();
    std::fs::write(dir.path().join("archive/old.yaml"), "changed: true\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "changed\n").unwrap();
    assert_eq!(hash(), before);

    // Renaming a file changes the hash even with the same bytes.
    std::fs::rename(dir.path().join("ops.yml"), dir.path().join("ops2.yml")).unwrap();
    assert_ne!(hash(), before);
}

#[test]
fn check_dir_reports_stacks_and_tests_together() {
    let dir = dir_with(&[
        ("a.yaml", "agent: a\nrules:\n  - { priority: 1, type: DAILY_CAP, action: REJECT, limit: 5 }\n"),
        ("tests/a.yaml", "cases:\n  - name: x\n    agent: a\n    at: \"2026-01-01T00:00:00Z\"\n    intent: { vendor: acme, operation: charge.create, category: payment }\n    expect: { action: REJECT, rule: 2 }\n"),
    ]);
    let check = check_dir(dir.path(), &config());
    assert!(!check.ok() && check.set.is_none());
    assert_eq!(check.errors.len(), 1, "{:?}", check.errors);
    assert_eq!((check.errors[0].line, check.errors[0].column), (6, 37));
    assert!(check.errors[0].message.contains("no rule has priority 2"));

    std::fs::write(
        dir.path().join("tests/a.yaml"),
        "cases:\n  - name: x\n    agent: a\n    at: \"2026-01-01T00:00:00Z\"\n    intent: { vendor: acme, operation: charge.create, category: payment }\n    expect: { action: REJECT, rule: 1 }\n",
    )
    .unwrap();
    let check = check_dir(dir.path(), &config());
    assert!(check.ok(), "{:?}", check.errors);
    assert_eq!(check.test_cases, 1);
    assert!(check.set.is_some());
}

#[test]
fn stand_in_config_without_approvers() {
    let config = Config::default();
    let dir = dir_with(&[(
        "a.yaml",
        "agent: a\nrules:\n  - { priority: 1, type: DAILY_CAP, action: REQUIRE_HUMAN, limit: 5, approvers: [maya] }\n",
    )]);
    let errors = load_policy_set(dir.path(), &config).unwrap_err();
    assert!(
        errors[0].message.contains("leash.yaml lists none"),
        "{errors:?}"
    );
}
#[test]
fn broken_files_still_take_part_in_cross_file_checks() {
    // growth.yaml has a bad timezone and a broken rule 10; the collision of
    // 10 with the `*` stack is reported in the same run, and warnings come
    // along with the errors in `check_dir`.
    let dir = dir_with(&[
        ("all.yaml", "agent: \"*\"\nrules:\n  - { priority: 10, type: DAILY_CAP, action: REJECT, limit: 5 }\n"),
        ("growth.yaml", "agent: growth-agent\ntimezone: Mars/Olympus\nrules:\n  - { priority: 10, type: AMOUNT_THRESHOLD, action: REJECT, amount: { gt: 1.5 } }\n  - { priority: 11, type: CATEGORY_BLOCKLIST, action: AUTO_APPROVE, categories: [gambling] }\n"),
    ]);
    let check = check_dir(dir.path(), &config());
    let errors: Vec<(usize, usize)> = check.errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(errors, [(2, 11), (4, 17), (4, 75)], "{:#?}", check.errors);
    assert!(check.errors[1]
        .message
        .contains("also used by the `*` stack"));
    assert_eq!(check.warnings.len(), 1, "{:?}", check.warnings);
    assert!(check.warnings[0].message.contains("approves exactly those"));
}

#[test]
fn stack_approvers_and_quorum_load_and_decide_stack_level_holds() {
    let (_dir, loaded) = loaded(&[(
        "g.yaml",
        "agent: growth-agent\napprovers: [partners]\nquorum: all\nrules:\n  - { priority: 1, type: DAILY_CAP, action: REJECT, limit: 5 }\n",
    )]);
    let merged = loaded.set.merged_for("growth-agent");
    assert_eq!(merged.level_approvers, vec!["partners".to_string()]);
    assert_eq!(merged.level_quorum, Quorum::All);
}

#[test]
fn without_stack_approvers_the_rules_approvers_release_stack_level_holds() {
    let (_dir, loaded) = loaded(&[
        (
            "g.yaml",
            "agent: growth-agent\n# no approvers\nrules:\n  - { priority: 1, type: AMOUNT_THRESHOLD, action: REQUIRE_HUMAN, amount: { gt: 5 }, approvers: [partners] }\n  - { priority: 2, type: AMOUNT_THRESHOLD, action: REQUIRE_HUMAN, amount: { gt: 9 }, approvers: [maya, alex] }\n",
        ),
        ("all.yaml", "agent: \"*\"\napprovers: [sam]\n"),
    ]);
    let merged = loaded.set.merged_for("growth-agent");
    // The agent's own stack decides its defaults, so its own rules' people
    // release them: not `*`'s approvers, and never everyone.
    assert_eq!(merged.level_approvers, ["partners", "maya", "alex"]);
    assert_eq!(merged.level_quorum, Quorum::Count(1));
    // An agent with no stack of its own gets the `*` stack's.
    assert_eq!(loaded.set.merged_for("ops-agent").level_approvers, ["sam"]);
}

#[test]
fn a_stack_whose_holds_nobody_could_approve_is_an_error_at_the_key() {
    let errors = errors_of(&[(
        "p.yaml",
        "agent: a\n# no approvers\ndefault: AUTO_APPROVE\nunknown: REJECT\nunreadable: REQUIRE_HUMAN\nrules:\n  - { priority: 1, type: DAILY_CAP, action: REJECT, limit: 5 }\n",
    )]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (file, line, column, message) = &errors[0];
    assert_eq!((file.as_str(), *line, *column), ("p.yaml", 5, 13));
    assert!(message.contains("could be approved by nobody"), "{message}");

    // Omitted keys are REQUIRE_HUMAN: reported once, at the file's top,
    // with the rule that names nobody.
    let (l, c, m) = one_error(
        "agent: a\n# no approvers\nrules:\n  - { priority: 1, type: AMOUNT_THRESHOLD, action: REQUIRE_HUMAN, amount: { gt: 5 } }\n",
    );
    assert_eq!((l, c), (1, 1));
    assert!(m.contains("`default` (REQUIRE_HUMAN when omitted)"), "{m}");
    assert!(
        m.contains("`unreadable` (REQUIRE_HUMAN when omitted)"),
        "{m}"
    );
    assert!(m.contains("rule 1 ("), "{m}");

    // A quorum without approvers counts nobody.
    let (l, c, m) = one_error(
        "agent: a\n# no approvers\ndefault: REJECT\nunknown: REJECT\nunreadable: REJECT\nquorum: 2\n",
    );
    assert_eq!((l, c), (6, 9));
    assert!(m.contains("write `approvers:` too"), "{m}");
}

#[test]
fn accounts_filter_loads_and_is_refused_on_caps() {
    let (_dir, loaded) = loaded(&[(
        "p.yaml",
        "agent: a\ncurrency: EUR\nrules:\n  - { priority: 10, type: AMOUNT_THRESHOLD, action: REJECT, accounts: [acct_1, acct_2], amount: { gte: 1 } }\n",
    )]);
    let rule = &loaded.set.stacks[0].rules[0];
    assert_eq!(
        rule.filters.accounts.as_ref().map(|a| a.len()),
        Some(2),
        "{rule:?}"
    );
    let (line, column, message) = one_error(
        "agent: a\ncurrency: EUR\nrules:\n  - { priority: 10, type: DAILY_CAP, action: REJECT, limit: 5, accounts: [acct_1] }\n",
    );
    assert_eq!((line, column), (4, 74), "at the value: {message}");
    assert!(message.contains("cannot narrow a DAILY_CAP"), "{message}");
    let (_, _, message) = one_error(
        "agent: a\ncurrency: EUR\nrules:\n  - { priority: 10, type: AMOUNT_THRESHOLD, action: REJECT, accounts: [\"acct 1\"], amount: { gte: 1 } }\n",
    );
    assert!(message.contains("not an account id"), "{message}");
}
