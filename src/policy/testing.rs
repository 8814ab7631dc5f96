//! Policy tests, kept beside the policies like `opa test` keeps them beside
//! Rego (SPEC §5.5).
//!
//! A finance team changing a cap wants to know, before the change ships,
//! that "€900 on top of €4,200 already spent today is refused by rule 10"
//! still holds. Each file in `policies/tests/` lists such cases: an intent,
//! a clock time, the spend already counted, and the decision expected. The
//! cases run through the same pure [`engine::decide`] the proxy uses, with
//! the clock and the spend taken from the case, so a test decides the same
//! way on every machine and every day.
//!
//! ```yaml
//! cases:
//!   - name: over the daily cap is refused
//!     agent: growth-agent
//!     intent: { vendor: acme, operation: order.create,
//!               amount: "900.00", currency: EUR, category: payment }
//!     at: "2026-11-24T10:00:00+01:00"
//!     spent:
//!       - { amount: "4200", currency: EUR }   # same agent, vendor, … and time as the intent
//!     expect: { action: REJECT, rule: 10 }
//! ```
//!
//! `expect.rule` is the deciding rule's priority; `rule: null` means "decided
//! by the stack's default" (no rule triggered), and leaving it out checks
//! the action only.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::engine::{self, Context, Decision, SpendEvent, Subject};
use super::load::{article, currency_code, shown, sort, yaml_files};
use super::model::{Action, FxTable, PolicySet};
use super::node::{self, Checker, Loc, Value};
use crate::intent::{Fingerprint, Intent};
use crate::money::Money;
use crate::yaml::YamlError;

/// The subdirectory of the policies directory that holds test files.
pub const TESTS_DIR: &str = "tests";

/// What kind of request a case decides (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseKind {
    /// A spend intent: the rules decide.
    Spend,
    /// A write the adapter does not recognise: the stack's `unknown`.
    Unknown,
    /// A spend whose amount could not be read: the stack's `unreadable`.
    Unreadable,
}

/// Which rule a case expects to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedRule {
    /// `rule` left out: only the action is checked.
    Any,
    /// `rule: null`: no rule decided (the stack's default, unknown or
    /// unreadable action did).
    Default,
    /// `rule: 40`: the rule with this priority decided.
    Priority(u32),
}

impl fmt::Display for ExpectedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRule::Any => Ok(()),
            ExpectedRule::Default => f.write_str(" by default"),
            ExpectedRule::Priority(p) => write!(f, " by rule {p}"),
        }
    }
}

/// The decision a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub action: Action,
    pub rule: ExpectedRule,
}

/// One test case, ready to decide.
#[derive(Debug, Clone, Serialize)]
pub struct TestCase {
    /// The test file, and the line the case starts on.
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    pub agent: String,
    pub kind: CaseKind,
    /// The intent (for `unknown` and `unreadable`, its operation is what
    /// the engine sees).
    pub intent: Intent,
    /// Spend already counted against caps.
    pub spent: Vec<SpendEvent>,
    pub expect: Expectation,
}

impl TestCase {
    /// Where the case is written: `policies/tests/growth.yaml:12`.
    pub fn origin(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: TestCase,
    pub passed: bool,
    /// The engine's whole decision, with every rule's verdict: when a case
    /// fails, the verdicts are what tells the author why.
    pub decision: Decision,
}

/// The outcome of every case, in file order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub results: Vec<CaseResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// True when every case passed (and so also when there were none).
    pub fn ok(&self) -> bool {
        self.failed() == 0
    }
}

impl fmt::Display for TestReport {
    /// One line per case; under a failure, expected against got and every
    /// rule's verdict. Ends with `N passed, N failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            let case = &result.case;
            let status = if result.passed { "PASS" } else { "FAIL" };
            writeln!(f, "{status} {}: {}", case.origin(), case.name)?;
            if result.passed {
                continue;
            }
            let d = &result.decision;
            let by = match d.deciding_rule {
                Some(p) => format!(" by rule {p}"),
                None => " by default".to_string(),
            };
            writeln!(
                f,
                "    expected: {}{}",
                case.expect.action, case.expect.rule
            )?;
            writeln!(f, "    got:      {}{by}: {}", d.action, d.reason)?;
            if d.verdicts.is_empty() {
                writeln!(f, "    (no rule verdicts)")?;
            }
            for v in &d.verdicts {
                writeln!(
                    f,
                    "    {:>6} {} {}{}: {} ({})",
                    v.priority,
                    v.rule_type,
                    v.action,
                    if v.shadow { " [shadow]" } else { "" },
                    if v.triggered {
                        "triggered"
                    } else {
                        "not triggered"
                    },
                    v.reason
                )?;
            }
        }
        writeln!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Reads every case in `dir/tests/*.yaml` (and `*.yml`). A missing `tests/`
/// has no cases.
///
/// With `set`, each `expect.rule` is also checked against the agent's merged
/// stack: a test expecting a rule that does not exist, is shadow, or has
/// another action can never pass, and is better reported as a mistake in
/// the test than as a failure of the policy.
pub fn parse_tests(dir: &Path, set: Option<&PolicySet>) -> Result<Vec<TestCase>, Vec<YamlError>> {
    let tests = dir.join(TESTS_DIR);
    let names = yaml_files(&tests).map_err(|e| vec![e])?;
    let fx = set.map(|s| &s.fx);
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let rel = format!("{TESTS_DIR}/{name}");
        let file = shown(dir, &rel);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(YamlError::new(&file, (0, 0), format!("cannot read: {e}")));
                continue;
            }
        };
        let root = match node::parse(&file, &text) {
            Ok(root) => root,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut c = Checker::new(&file, &text);
        let file_cases = read_file(&mut c, &root, fx, set);
        errors.extend(c.errors);
        cases.extend(file_cases);
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        sort(&mut errors);
        Err(errors)
    }
}

/// Parses and runs every test in `dir/tests/` against `set`.
pub fn run_tests(set: &PolicySet, dir: &Path) -> Result<TestReport, Vec<YamlError>> {
    let cases = parse_tests(dir, Some(set))?;
    Ok(TestReport {
        results: cases.into_iter().map(|case| run_case(set, case)).collect(),
    })
}

/// Decides one case with the agent's merged stack, the case's clock and
/// spend, and the set's fx table and registry.
pub fn run_case(set: &PolicySet, case: TestCase) -> CaseResult {
    let merged = set.merged_for(&case.agent);
    const REASON: &str = "policy test case";
    let subject = match case.kind {
        CaseKind::Spend => Subject::Spend(&case.intent),
        CaseKind::Unknown => Subject::Unknown {
            operation: &case.intent.operation,
            reason: REASON,
        },
        CaseKind::Unreadable => Subject::Unreadable {
            operation: &case.intent.operation,
            reason: REASON,
        },
    };
    let queries = engine::cap_queries(&merged, &[subject], case.intent.at);
    let totals = crate::spend::totals_of_events(&case.spent, &queries);
    let ctx = Context {
        now: case.intent.at,
        spent: &totals,
        fx: &set.fx,
        registry: &set.registry,
    };
    let mut decision = engine::decide(&merged, subject, &ctx);
    // As the proxy decides: a hold nobody listed can release is refused.
    crate::holds::approvals::refuse_unreleasable(&mut decision, &set.approvers);
    let rule_ok = match case.expect.rule {
        ExpectedRule::Any => true,
        ExpectedRule::Default => decision.deciding_rule.is_none(),
        ExpectedRule::Priority(p) => decision.deciding_rule == Some(p),
    };
    let passed = decision.action == case.expect.action && rule_ok;
    CaseResult {
        case,
        passed,
        decision,
    }
}

const CASE_KEYS: &[&str] = &["name", "agent", "intent", "at", "spent", "kind", "expect"];
const INTENT_KEYS: &[&str] = &[
    "vendor",
    "operation",
    "amount",
    "currency",
    "beneficiary",
    "category",
];
const SPENT_KEYS: &[&str] = &[
    "amount",
    "currency",
    "at",
    "agent",
    "vendor",
    "operation",
    "category",
    "beneficiary",
];

fn read_file(
    c: &mut Checker,
    root: &Value,
    fx: Option<&FxTable>,
    set: Option<&PolicySet>,
) -> Vec<TestCase> {
    let top = Loc::root();
    let Some(entries) = c.mapping(root, &top, "a mapping with `cases`") else {
        return Vec::new();
    };
    c.known_keys(entries, &top, &["cases"], |_| None);
    let Some((_, list)) = entries.iter().find(|(k, _)| k == "cases") else {
        c.error_value(&top, "missing `cases`: a list of test cases");
        return Vec::new();
    };
    let loc = top.key("cases");
    let Some(items) = c.list(list, &loc, "a list of test cases") else {
        return Vec::new();
    };
    let mut cases: Vec<TestCase> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = loc.index(i);
        if let Some(case) = read_case(c, item, &at, fx, set) {
            if let Some(first) = cases.iter().find(|k| k.name == case.name) {
                c.error_value(
                    &at.key("name"),
                    format!(
                        "a case named {:?} is already on line {}: names tell failures apart",
                        case.name, first.line
                    ),
                );
                continue;
            }
            cases.push(case);
        }
    }
    cases
}

fn read_case(
    c: &mut Checker,
    v: &Value,
    loc: &Loc,
    fx: Option<&FxTable>,
    set: Option<&PolicySet>,
) -> Option<TestCase> {
    let before = c.errors.len();
    let entries = c.mapping(v, loc, "a test case")?;
    c.known_keys(entries, loc, CASE_KEYS, |_| None);
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let required = |c: &mut Checker, key: &str, what: &str| {
        let v = get(key);
        if v.is_none() {
            c.error_value(loc, format!("missing `{key}`: {what}"));
        }
        v
    };

    let name = required(c, "name", "what the case checks, shown when it fails")
        .and_then(|v| c.string(v, &loc.key("name"), "a name"));
    let agent = required(c, "agent", "the agent making the request")
        .and_then(|v| c.string(v, &loc.key("agent"), "an agent name"));
    let at = required(
        c,
        "at",
        "the clock time of the decision, like \"2026-11-24T10:00:00+01:00\"",
    )
    .and_then(|v| c.parsed(v, &loc.key("at"), "an RFC 3339 time", rfc3339));
    let kind = match get("kind") {
        None => Some(CaseKind::Spend),
        Some(v) => c.parsed(
            v,
            &loc.key("kind"),
            "spend, unknown or unreadable",
            |s| match s {
                "spend" => Ok(CaseKind::Spend),
                "unknown" => Ok(CaseKind::Unknown),
                "unreadable" => Ok(CaseKind::Unreadable),
                _ => Err(format!("`{s}` is not a kind: spend, unknown or unreadable")),
            },
        ),
    };
    let intent = required(
        c,
        "intent",
        "{ vendor, operation, amount, currency, category, beneficiary }",
    )
    .and_then(|v| read_intent(c, v, &loc.key("intent"), fx, kind == Some(CaseKind::Spend)));
    let expect = required(c, "expect", "{ action: REJECT, rule: 10 }")
        .and_then(|v| read_expect(c, v, &loc.key("expect")));

    let (Some(name), Some(agent), Some(at), Some(kind), Some(draft), Some(expect)) =
        (name, agent, at, kind, intent, expect)
    else {
        return None;
    };
    let intent = Intent {
        agent: agent.clone(),
        vendor: draft.vendor,
        operation: draft.operation,
        amount: draft.amount,
        beneficiary: draft.beneficiary,
        category: draft.category,
        idempotency_key: None,
        sources: Default::default(),
        account: None,
        fingerprint: Fingerprint::of(
            "TEST",
            "leash.policy-test",
            &format!("{}#{name}", c.src.file.display()),
            b"",
        ),
        at,
    };
    let spent = match get("spent") {
        None => Vec::new(),
        Some(v) => read_spent(c, v, &loc.key("spent"), &intent, fx).unwrap_or_default(),
    };
    if let Some(set) = set {
        check_expected_rule(c, &loc.key("expect"), set, &agent, expect);
    }
    if c.errors.len() > before {
        return None;
    }
    Some(TestCase {
        file: c.src.file.to_path_buf(),
        line: c.src.line(loc),
        name,
        agent,
        kind,
        intent,
        spent,
        expect,
    })
}

/// The intent's fields, before the case's agent and time complete it.
struct Draft {
    vendor: String,
    operation: String,
    amount: Option<Money>,
    beneficiary: Option<String>,
    category: String,
}

fn read_intent(
    c: &mut Checker,
    v: &Value,
    loc: &Loc,
    fx: Option<&FxTable>,
    spend: bool,
) -> Option<Draft> {
    let entries = c.mapping(v, loc, "an intent")?;
    c.known_keys(entries, loc, INTENT_KEYS, |_| None);
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    // Outer `None`: an error was recorded. Inner `None`: left out.
    let field = |c: &mut Checker, key: &str, required: bool| match get(key) {
        None if required => {
            c.error_value(loc, format!("missing `{key}`"));
            None
        }
        None => Some(None),
        Some(v) => c.string(v, &loc.key(key), "text").map(Some),
    };
    let vendor = field(c, "vendor", true);
    let operation = field(c, "operation", true);
    let category = field(c, "category", spend);
    let beneficiary = field(c, "beneficiary", false);
    let money = read_money(c, loc, get("amount"), get("currency"), None, fx);
    Some(Draft {
        vendor: vendor??,
        operation: operation??,
        amount: money?,
        beneficiary: beneficiary?,
        category: category?.unwrap_or_default(),
    })
}

/// `amount` and `currency` together; `Some(None)` when neither is given and
/// no default applies.
fn read_money(
    c: &mut Checker,
    loc: &Loc,
    amount: Option<&Value>,
    currency: Option<&Value>,
    default_currency: Option<crate::money::Currency>,
    fx: Option<&FxTable>,
) -> Option<Option<Money>> {
    let currency = match currency {
        None => default_currency,
        Some(v) => {
            let parsed = match fx {
                Some(fx) => c.parsed(v, &loc.key("currency"), "a currency code like EUR", |s| {
                    currency_code(s, fx)
                }),
                None => c.parsed(v, &loc.key("currency"), "a currency code like EUR", |s| {
                    crate::money::Currency::parse(s)
                        .or_else(|_| crate::money::Currency::asset(s))
                        .map_err(|e| e.to_string())
                }),
            };
            Some(parsed?)
        }
    };
    match amount {
        None if currency.is_some() && default_currency.is_none() => {
            c.error_value(
                loc,
                "`currency` without `amount`: give both, or neither for an intent with no amount",
            );
            None
        }
        None => Some(None),
        Some(v) => {
            let amount = c.amount(v, &loc.key("amount"))?;
            let Some(currency) = currency else {
                c.error_value(loc, "missing `currency` for the amount");
                return None;
            };
            Some(Some(Money::new(amount, currency)))
        }
    }
}

/// Prior spend. Fields left out take the intent's (and the case's time and
/// agent): the usual prior spend is "the same kind of thing, earlier today".
fn read_spent(
    c: &mut Checker,
    v: &Value,
    loc: &Loc,
    intent: &Intent,
    fx: Option<&FxTable>,
) -> Option<Vec<SpendEvent>> {
    let items = c.list(v, loc, "a list of prior spend")?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = loc.index(i);
        let Some(entries) = c.mapping(item, &at, "{ amount, currency, at, agent, ... }") else {
            continue;
        };
        c.known_keys(entries, &at, SPENT_KEYS, |_| None);
        let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let text = |c: &mut Checker, key: &str, default: &str| match get(key) {
            None => Some(default.to_string()),
            Some(v) => c.string(v, &at.key(key), "text"),
        };
        let Some(amount_value) = get("amount") else {
            c.error_value(&at, "missing `amount`");
            continue;
        };
        let money = read_money(
            c,
            &at,
            Some(amount_value),
            get("currency"),
            intent.amount.map(|m| m.currency),
            fx,
        );
        let when = match get("at") {
            None => Some(intent.at),
            Some(v) => c.parsed(v, &at.key("at"), "an RFC 3339 time", rfc3339),
        };
        let agent = text(c, "agent", &intent.agent);
        let vendor = text(c, "vendor", &intent.vendor);
        let operation = text(c, "operation", &intent.operation);
        let category = text(c, "category", &intent.category);
        let beneficiary = match get("beneficiary") {
            None => Some(intent.beneficiary.clone()),
            Some(v) => c.string(v, &at.key("beneficiary"), "text").map(Some),
        };
        if let (
            Some(Some(amount)),
            Some(when),
            Some(agent),
            Some(vendor),
            Some(operation),
            Some(category),
            Some(beneficiary),
        ) = (money, when, agent, vendor, operation, category, beneficiary)
        {
            out.push(SpendEvent {
                at: when,
                agent,
                vendor,
                operation,
                category,
                beneficiary,
                amount,
            });
        }
    }
    Some(out)
}

fn read_expect(c: &mut Checker, v: &Value, loc: &Loc) -> Option<Expectation> {
    let entries = c.mapping(v, loc, "{ action: REJECT, rule: 10 }")?;
    c.known_keys(entries, loc, &["action", "rule"], |_| None);
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let action = match get("action") {
        None => {
            c.error_value(
                loc,
                "missing `action`: REJECT, REQUIRE_HUMAN or AUTO_APPROVE",
            );
            None
        }
        Some(v) => c.parsed(v, &loc.key("action"), "an action", |s| {
            [Action::Reject, Action::RequireHuman, Action::AutoApprove]
                .into_iter()
                .find(|a| a.as_str() == s)
                .ok_or_else(|| {
                    format!("`{s}` is not an action: REJECT, REQUIRE_HUMAN or AUTO_APPROVE")
                })
        }),
    };
    let rule = match get("rule") {
        None => Some(ExpectedRule::Any),
        Some(Value::Null) => Some(ExpectedRule::Default),
        Some(v) => c
            .uint(
                v,
                &loc.key("rule"),
                "a rule's priority, or null for the stack's default",
                u64::from(u32::MAX),
            )
            .and_then(|p| u32::try_from(p).ok())
            .map(ExpectedRule::Priority),
    };
    Some(Expectation {
        action: action?,
        rule: rule?,
    })
}

fn check_expected_rule(
    c: &mut Checker,
    loc: &Loc,
    set: &PolicySet,
    agent: &str,
    expect: Expectation,
) {
    let ExpectedRule::Priority(p) = expect.rule else {
        return;
    };
    let merged = set.merged_for(agent);
    let at = loc.key("rule");
    match merged.rules.iter().find(|r| r.priority == p) {
        None => {
            let priorities: Vec<String> = merged
                .rules
                .iter()
                .map(|r| r.priority.to_string())
                .collect();
            c.error_value(
                &at,
                format!(
                    "no rule has priority {p} in `{agent}`'s merged stack ({})",
                    if priorities.is_empty() {
                        "it has no rules".to_string()
                    } else {
                        format!("priorities: {}", priorities.join(", "))
                    }
                ),
            );
        }
        Some(rule) if rule.shadow => c.error_value(
            &at,
            format!(
                "rule {p} ({}) is shadow: it is recorded but never decides",
                rule.origin
            ),
        ),
        // A REQUIRE_HUMAN rule decides REJECT when nobody listed could
        // release its hold (as the proxy decides).
        Some(rule) if rule.action == Action::RequireHuman && expect.action == Action::Reject => {}
        Some(rule) if rule.action != expect.action => c.error_value(
            &at,
            format!(
                "rule {p} ({}) is {} {} rule, so it can never decide {}",
                rule.origin,
                article(rule.action.as_str()),
                rule.action,
                expect.action
            ),
        ),
        Some(_) => {}
    }
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("`{s}` is not an RFC 3339 time ({e}): write it with its offset, like \"2026-11-24T10:00:00+01:00\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::load::load_policy_set;
    use rust_decimal::Decimal;

    const STACK: &str = r#"agent: growth-agent
currency: EUR
approvers: [maya]
rules:
  - priority: 10
    type: CATEGORY_BLOCKLIST
    action: REJECT
    categories: [gambling]
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: AUTO_APPROVE
    amount: { lt: 100 }
  - priority: 30
    type: DAILY_CAP
    action: REJECT
    limit: 5000
    shadow: true
"#;

    fn config() -> Config {
        Config::parse(
            Path::new("leash.yaml"),
            "fx: { base: EUR, rates: { USD: \"0.92\" } }\napprovers: { people: { maya: { slack: U1 } } }\n",
        )
        .unwrap()
    }

    fn dir_with(tests: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("growth.yaml"), STACK).unwrap();
        std::fs::create_dir(dir.path().join(TESTS_DIR)).unwrap();
        for (name, text) in tests {
            std::fs::write(dir.path().join(TESTS_DIR).join(name), text).unwrap();
        }
        dir
    }

    fn set_of(dir: &tempfile::TempDir) -> PolicySet {
        load_policy_set(dir.path(), &config()).unwrap()
    }

    /// `(file name, line, column, message)` of each error.
    fn errors(text: &str) -> Vec<(String, usize, usize, String)> {
        let dir = dir_with(&[("t.yaml", text)]);
        let set = set_of(&dir);
        run_tests(&set, dir.path())
            .unwrap_err()
            .into_iter()
            .map(|e| {
                let name = e
                    .file
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string();
                (name, e.line, e.column, e.message)
            })
            .collect()
    }

    const CASES: &str = r#"cases:
  - name: nothing triggers, so the default holds it
    agent: growth-agent
    intent: { vendor: acme, operation: payment_intent.create, amount: "120.00", currency: EUR, category: payment }
    at: "2026-11-24T10:00:00+01:00"
    expect: { action: REQUIRE_HUMAN, rule: null }
  - name: only the action is checked
    agent: growth-agent
    kind: unreadable
    intent: { vendor: acme, operation: refund.create }
    at: "2026-11-24T10:00:00Z"
    expect: { action: REQUIRE_HUMAN }
  - name: a wrong expectation fails
    agent: growth-agent
    intent: { vendor: acme, operation: payment_intent.create, amount: 250, currency: USD, category: payment, beneficiary: cus_1 }
    at: "2026-11-24T10:00:00+01:00"
    spent:
      - { amount: "4200", currency: EUR }
      - amount: 10
        at: "2026-11-23T09:00:00Z"
        agent: other-agent
        vendor: globex
        operation: adset.create
        category: ad_spend
        beneficiary: act_9
    expect: { action: AUTO_APPROVE, rule: null }
"#;

    #[test]
    fn the_runner_decides_each_case_and_reports() {
        let dir = dir_with(&[("growth.yaml", CASES)]);
        let set = set_of(&dir);
        let report = run_tests(&set, dir.path()).unwrap();
        assert_eq!(report.results.len(), 3);
        let passed: Vec<bool> = report.results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, true, false]);
        assert_eq!(
            (report.passed(), report.failed(), report.ok()),
            (2, 1, false)
        );

        let text = report.to_string();
        let file = dir.path().join("tests/growth.yaml");
        assert!(
            text.contains(&format!(
                "PASS {}:2: nothing triggers, so the default holds it\n",
                file.display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "FAIL {}:13: a wrong expectation fails\n",
                file.display()
            )),
            "{text}"
        );
        assert!(
            text.contains("    expected: AUTO_APPROVE by default\n"),
            "{text}"
        );
        assert!(
            text.contains("    got:      REQUIRE_HUMAN by default: "),
            "{text}"
        );
        assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");
        // The report serializes for tools (`--format json`).
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["results"][2]["passed"], false);
        assert_eq!(json["results"][0]["case"]["expect"]["rule"], "default");
    }

    #[test]
    fn cases_become_intents_and_spend() {
        let dir = dir_with(&[("growth.yaml", CASES)]);
        let cases = parse_tests(dir.path(), None).unwrap();
        let case = &cases[2];
        assert_eq!(case.kind, CaseKind::Spend);
        assert_eq!(case.intent.agent, "growth-agent");
        assert_eq!(case.intent.beneficiary.as_deref(), Some("cus_1"));
        let amount = case.intent.amount.unwrap();
        assert_eq!(
            (amount.amount, amount.currency.code()),
            (Decimal::from(250), "USD")
        );
        assert_eq!(case.intent.at.to_rfc3339(), "2026-11-24T09:00:00+00:00");
        assert_eq!(
            case.expect,
            Expectation {
                action: Action::AutoApprove,
                rule: ExpectedRule::Default
            }
        );

        // Left out: the intent's fields, the case's time and agent.
        let first = &case.spent[0];
        assert_eq!(first.amount.amount, Decimal::from(4200));
        assert_eq!(first.amount.currency.code(), "EUR");
        assert_eq!(first.at, case.intent.at);
        assert_eq!(
            (
                first.agent.as_str(),
                first.vendor.as_str(),
                first.operation.as_str()
            ),
            ("growth-agent", "acme", "payment_intent.create")
        );
        assert_eq!(first.category, "payment");
        assert_eq!(first.beneficiary.as_deref(), Some("cus_1"));
        // Given: their own, and the intent's currency when none is written.
        let second = &case.spent[1];
        assert_eq!(second.amount.currency.code(), "USD");
        assert_eq!(second.at.to_rfc3339(), "2026-11-23T09:00:00+00:00");
        assert_eq!(
            (
                second.agent.as_str(),
                second.vendor.as_str(),
                second.category.as_str()
            ),
            ("other-agent", "globex", "ad_spend")
        );
        assert_eq!(second.beneficiary.as_deref(), Some("act_9"));

        let unreadable = &cases[1];
        assert_eq!(unreadable.kind, CaseKind::Unreadable);
        assert!(unreadable.intent.amount.is_none());
        assert_eq!(unreadable.expect.rule, ExpectedRule::Any);
    }

    #[test]
    fn no_tests_directory_is_an_empty_report() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("growth.yaml"), STACK).unwrap();
        let set = set_of(&dir);
        let report = run_tests(&set, dir.path()).unwrap();
        assert!(report.results.is_empty() && report.ok());
        assert_eq!(report.to_string(), "0 passed, 0 failed\n");
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let case = |body: &str| {
            format!(
                "cases:\n  - name: c\n    agent: growth-agent\n    at: \"2026-11-24T10:00:00Z\"\n{body}"
            )
        };
        let intent = "    intent: { vendor: acme, operation: charge.create, category: payment }\n";
        let expect = "    expect: { action: REJECT }\n";

        let found = errors(&case(&format!("{intent}{expect}    when: now\n")));
        assert_eq!(found.len(), 1, "{found:?}");
        let (file, line, column, message) = &found[0];
        assert_eq!((file.as_str(), *line, *column), ("tests/t.yaml", 7, 5));
        assert!(
            message.starts_with("cases[0].when: unknown key `when`"),
            "{message}"
        );

        let found = errors(&format!(
            "cases:\n  - name: c\n    agent: growth-agent\n    at: 2026-11-24 10:00\n{intent}{expect}"
        ));
        assert_eq!((found[0].1, found[0].2), (4, 9));
        assert!(found[0].3.contains("is not an RFC 3339 time"), "{found:?}");

        let found = errors(&case(&format!(
            "    intent: {{ vendor: acme, operation: x, category: payment, amount: 12.50, currency: EUR }}\n{expect}"
        )));
        assert_eq!((found[0].1, found[0].2), (5, 70));
        assert!(found[0].3.contains("quote it, like \"12.50\""), "{found:?}");

        let found = errors(&case(&format!(
            "{intent}    expect: {{ action: REJECT, rule: 99 }}\n"
        )));
        assert_eq!((found[0].1, found[0].2), (6, 37));
        assert!(
            found[0].3.ends_with(
                "no rule has priority 99 in `growth-agent`'s merged stack (priorities: 10, 20, 30)"
            ),
            "{found:?}"
        );
        let found = errors(&case(&format!(
            "{intent}    expect: {{ action: REJECT, rule: 20 }}\n"
        )));
        assert!(
            found[0]
                .3
                .contains("is an AUTO_APPROVE rule, so it can never decide REJECT"),
            "{found:?}"
        );
        let found = errors(&case(&format!(
            "{intent}    expect: {{ action: REJECT, rule: 30 }}\n"
        )));
        assert!(found[0].3.contains("is shadow"), "{found:?}");

        let found = errors(&case("    expect: { action: MAYBE }\n"));
        let messages: Vec<&str> = found.iter().map(|e| e.3.as_str()).collect();
        assert_eq!(messages.len(), 2, "{found:?}");
        assert!(messages[0].contains("missing `intent`"), "{messages:?}");
        assert!(
            messages[1].contains("`MAYBE` is not an action"),
            "{messages:?}"
        );

        let found = errors(&case(&format!(
            "    intent: {{ vendor: acme, operation: x, category: payment, currency: EUR }}\n{expect}"
        )));
        assert!(
            found[0].3.contains("`currency` without `amount`"),
            "{found:?}"
        );

        let twice = format!("{}{intent}{expect}  - name: c\n    agent: a\n    at: \"2026-11-24T10:00:00Z\"\n{intent}{expect}", case(""));
        let found = errors(&twice);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].1, found[0].2), (7, 11));
        assert!(found[0].3.contains("already on line 2"), "{found:?}");

        let found = errors("cases: [1\n");
        assert_eq!(found[0].0, "tests/t.yaml");
        assert_eq!(found[0].1, 2);
    }
}

#[cfg(test)]
mod release_tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::load::load_policy_set;

    const HOLDING: &str = "agent: growth-agent\ncurrency: EUR\nrules:\n  - priority: 20\n    type: AMOUNT_THRESHOLD\n    action: REQUIRE_HUMAN\n    amount: { gte: 100 }\n";

    fn report(config: &str, stack: &str) -> TestReport {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("growth.yaml"), stack).unwrap();
        std::fs::create_dir(dir.path().join(TESTS_DIR)).unwrap();
        std::fs::write(
            dir.path().join(TESTS_DIR).join("t.yaml"),
            "cases:\n  - name: held or refused\n    agent: growth-agent\n    intent: { vendor: acme, operation: x, category: payment, amount: \"500\", currency: EUR }\n    at: \"2026-11-24T10:00:00+01:00\"\n    expect: { action: REJECT, rule: 20 }\n",
        )
        .unwrap();
        let config = Config::parse(Path::new("leash.yaml"), config).unwrap();
        let set = load_policy_set(dir.path(), &config).unwrap();
        run_tests(&set, dir.path()).unwrap()
    }

    #[test]
    fn a_hold_nobody_can_release_is_refused_as_the_proxy_refuses_it() {
        // No approvers at all: the proxy turns the hold into a refusal, and
        // so does the test.
        let none = report("{}\n", HOLDING);
        assert!(none.results[0].passed, "{:?}", none.results[0].decision);
        assert!(none.results[0]
            .decision
            .reason
            .ends_with("no approver can release it"));

        // With maya named, the same case is a hold again.
        let named = report(
            "approvers: { people: { maya: { slack: U1 } } }\n",
            &HOLDING.replace("currency: EUR\n", "currency: EUR\napprovers: [maya]\n"),
        );
        assert!(!named.results[0].passed);
        assert_eq!(named.results[0].decision.action, Action::RequireHuman);
    }
}
