//! Validated policy stacks, as the engine reads them (SPEC §5.1–§5.2).
//!
//! These types are what a policy file means once it has been checked: every
//! currency is a real currency, every timezone a real zone, every approver a
//! known person or group, every priority unique in each agent's merged stack.
//! The YAML shapes that produce them live in `policy::load`; nothing here
//! parses or reads files, so the engine over them stays pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveTime;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::Currency;

/// What a rule (or a stack's default) does with an intent.
///
/// Ordered by severity: `AutoApprove < RequireHuman < Reject`, so the decision
/// over several triggered rules is simply the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    AutoApprove,
    RequireHuman,
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AutoApprove => "AUTO_APPROVE",
            Action::RequireHuman => "REQUIRE_HUMAN",
            Action::Reject => "REJECT",
        }
    }

    /// Restricting actions fail closed on missing data; permitting ones fail
    /// open (SPEC §5.3.6).
    pub fn is_restricting(self) -> bool {
        self != Action::AutoApprove
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `enforce`: decisions are applied. `shadow`: decided and recorded, but
/// everything is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Shadow,
}

/// Which agents a stack applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AgentSelector {
    /// `agent: "*"`: merged into every agent's stack.
    All,
    /// `agent: NAME`.
    Named(String),
}

/// One policy file.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The file it came from (for messages and `policy check`).
    pub file: PathBuf,
    pub agent: AgentSelector,
    /// Currency of every amount written in this stack.
    pub currency: Currency,
    /// Day boundaries and time windows of this stack's rules.
    pub timezone: Tz,
    /// When no rule triggers (REQUIRE_HUMAN if omitted).
    pub default: Action,
    pub mode: Mode,
    /// Action for requests the vendor adapter does not recognise.
    pub unknown: Action,
    /// Action for spend requests whose amount cannot be read exactly.
    pub unreadable: Action,
    /// Sorted by priority.
    pub rules: Vec<Arc<Rule>>,
    /// Who releases a hold that comes from this stack's `default`,
    /// `unknown` or `unreadable` (people or groups). Empty: the people named
    /// by this stack's REQUIRE_HUMAN rules — never everyone in the directory.
    pub approvers: Vec<String>,
    /// The quorum for those holds (1 when `approvers` is not written).
    pub quorum: Quorum,
}

impl Stack {
    /// The approvers of a hold this stack's own `default`, `unknown` or
    /// `unreadable` decided: its `approvers:` if written, else the union of
    /// the approvers its non-shadow REQUIRE_HUMAN rules name (quorum 1).
    ///
    /// Those rule approvers are the people the stack's owners already trust
    /// with this agent's money; anyone else in the directory is not.
    pub fn level_approvers(&self) -> (Vec<String>, Quorum) {
        if !self.approvers.is_empty() {
            return (self.approvers.clone(), self.quorum);
        }
        (union_of_rule_approvers([self]), Quorum::Count(1))
    }
}

/// The approvers named by the non-shadow REQUIRE_HUMAN rules of `stacks`, in
/// order of first mention.
fn union_of_rule_approvers<'a>(stacks: impl IntoIterator<Item = &'a Stack>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for stack in stacks {
        let live = stack.mode == Mode::Enforce;
        for rule in &stack.rules {
            if rule.action == Action::RequireHuman && !(rule.shadow && live) {
                for name in &rule.approvers {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            }
        }
    }
    out
}

/// One rule, with the context of the stack it was written in.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique across each agent's merged stack; lower is evaluated first and
    /// wins ties between rules of the same action.
    pub priority: u32,
    pub action: Action,
    pub description: Option<String>,
    /// Evaluated and recorded, never affects the decision. Also true for
    /// every rule of a `mode: shadow` stack.
    pub shadow: bool,
    pub filters: Filters,
    pub kind: RuleKind,
    /// People or groups whose approval releases this rule (REQUIRE_HUMAN).
    /// Empty: the approvers of the stack-level holds of the agent's merged
    /// stack ([`MergedStack::level_approvers`]); never everyone.
    pub approvers: Vec<String>,
    pub quorum: Quorum,
    /// The stack's currency: `limit`, `max_amount` and `amount` bounds are in it
    /// unless the rule says otherwise.
    pub currency: Currency,
    /// The stack's timezone (a TIME_WINDOW may override it).
    pub timezone: Tz,
    /// Where the rule is written: `policies/growth.yaml:14`.
    pub origin: String,
}

impl Rule {
    /// The rule's type as written in YAML (`DAILY_CAP`).
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }
}

/// How many of a rule's approvers must approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quorum {
    /// This many distinct approvers.
    Count(u32),
    /// Every person the approvers resolve to.
    All,
}

impl Default for Quorum {
    fn default() -> Self {
        Quorum::Count(1)
    }
}

/// Filters narrowing which intents a rule looks at. `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub vendors: Option<BTreeSet<String>>,
    /// The acting accounts (an adapter's
    /// [`account_header`](crate::adapters::Adapter::account_header), e.g. a
    /// platform's connected accounts) the rule looks at; an intent made for
    /// no account matches none.
    pub accounts: Option<BTreeSet<String>>,
    pub operations: Option<BTreeSet<String>>,
    pub categories: Option<BTreeSet<String>>,
    pub amount: Option<AmountRange>,
}

/// `{ gt | gte | lt | lte: N, currency: XXX }`: every bound given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmountRange {
    pub gt: Option<Decimal>,
    pub gte: Option<Decimal>,
    pub lt: Option<Decimal>,
    pub lte: Option<Decimal>,
    /// Currency of the bounds; the stack's currency when `None`.
    pub currency: Option<Currency>,
}

/// The six rule types of SPEC §5.2 and their own keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Triggers when the amount lies in `range`.
    AmountThreshold { range: AmountRange },
    /// Triggers when spent in the window + this amount > `limit`.
    DailyCap {
        limit: Decimal,
        scope: CapScope,
        window: CapWindow,
    },
    /// Triggers when the beneficiary is missing, not listed, or lacks a tag.
    BeneficiaryWhitelist {
        /// `None`: any beneficiary in the registry (only tags are checked).
        beneficiaries: Option<BTreeSet<String>>,
        require_tags: BTreeSet<String>,
    },
    /// Triggers when the time is inside / outside the window.
    TimeWindow {
        /// Monday first: `days[0]` is Monday, `days[6]` Sunday.
        days: [bool; 7],
        from: NaiveTime,
        /// Exclusive. `to <= from` wraps past midnight.
        to: NaiveTime,
        /// `to` was written as `24:00`.
        to_end_of_day: bool,
        when: WindowWhen,
    },
    /// Triggers when the intent is outside what is allowed.
    AgentScope {
        allow_agents: Option<BTreeSet<String>>,
        max_amount: Option<Decimal>,
        allow_vendors: Option<BTreeSet<String>>,
        allow_categories: Option<BTreeSet<String>>,
    },
    /// Triggers when the category is in `categories`.
    CategoryBlocklist { categories: BTreeSet<String> },
}

impl RuleKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            RuleKind::AmountThreshold { .. } => "AMOUNT_THRESHOLD",
            RuleKind::DailyCap { .. } => "DAILY_CAP",
            RuleKind::BeneficiaryWhitelist { .. } => "BENEFICIARY_WHITELIST",
            RuleKind::TimeWindow { .. } => "TIME_WINDOW",
            RuleKind::AgentScope { .. } => "AGENT_SCOPE",
            RuleKind::CategoryBlocklist { .. } => "CATEGORY_BLOCKLIST",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowWhen {
    Inside,
    Outside,
}

/// Whose spend a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapScope {
    /// The intent's agent (default).
    Agent,
    AllAgents,
    /// The intent's beneficiary.
    Beneficiary,
    /// The intent's category.
    Category,
}

/// The calendar window a cap counts over, in the rule's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CapWindow {
    Day,
    /// ISO week: Monday 00:00 to Monday 00:00.
    Week,
    Month,
}

/// A beneficiary and its tags (`kyc_verified`, `audited_supplier`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beneficiary {
    pub tags: BTreeSet<String>,
}

/// Known beneficiaries by id (customer, account, IBAN, wallet address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BeneficiaryRegistry {
    pub entries: BTreeMap<String, Beneficiary>,
}

/// How amounts in different currencies compare: `1 unit = rate × base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxTable {
    pub base: Currency,
    pub rates: BTreeMap<Currency, Decimal>,
}

/// An approver directory entry, resolved: group name → people, person → itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApproverDirectory {
    pub people: BTreeSet<String>,
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

impl ApproverDirectory {
    /// The people a list of approver names (people or groups) resolves to.
    pub fn resolve<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
        let mut people = BTreeSet::new();
        for name in names {
            if let Some(members) = self.groups.get(name) {
                people.extend(members.iter().cloned());
            } else if self.people.contains(name) {
                people.insert(name.clone());
            }
        }
        people
    }

    pub fn knows(&self, name: &str) -> bool {
        self.people.contains(name) || self.groups.contains_key(name)
    }
}

/// Every stack loaded from the policies directory, plus what they reference.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub stacks: Vec<Stack>,
    pub registry: BeneficiaryRegistry,
    pub fx: FxTable,
    pub approvers: ApproverDirectory,
    /// SHA-256 (hex) over every file that makes up the set, names included.
    pub hash: String,
    /// The files, relative to the policies directory, sorted.
    pub files: Vec<String>,
}

/// One agent's merged view: its own stack (if any) plus the `*` stack.
#[derive(Debug, Clone)]
pub struct MergedStack {
    pub agent: String,
    /// Rules of both stacks, sorted by priority (unique, checked at load).
    pub rules: Vec<Arc<Rule>>,
    /// The agent's own stack's `default`, else the `*` stack's;
    /// REQUIRE_HUMAN when no stack applies.
    pub default: Action,
    pub unknown: Action,
    pub unreadable: Action,
    /// Who releases a hold decided by `default`, `unknown` or `unreadable`
    /// (people or groups as written): the deciding stack's `approvers:`,
    /// else the people its REQUIRE_HUMAN rules name (plus the agent's own
    /// stack's when the `*` stack decided). Empty: nobody can — such a
    /// hold is refused rather than opened.
    pub level_approvers: Vec<String>,
    pub level_quorum: Quorum,
    /// True when every stack that applies is `mode: shadow` (or none applies
    /// and the set is empty of enforcing stacks): decide, record, forward.
    pub shadow: bool,
    /// False when no stack at all names this agent or `*`.
    pub covered: bool,
}

impl PolicySet {
    /// The timezones the set's caps count in (for the spend ledger, which
    /// keeps running sums per zone).
    pub fn cap_timezones(&self) -> Vec<Tz> {
        let mut out: Vec<Tz> = Vec::new();
        for rule in self.stacks.iter().flat_map(|s| &s.rules) {
            if matches!(rule.kind, RuleKind::DailyCap { .. }) && !out.contains(&rule.timezone) {
                out.push(rule.timezone);
            }
        }
        out
    }

    /// The merged stack for `agent` (SPEC §5.3.1).
    ///
    /// Rules of both stacks are merged. Stack-level settings (`default`,
    /// `unknown`, `unreadable`) come from the agent's own stack when it has
    /// an enforcing one, else from an enforcing `*`, else (everything in
    /// shadow) from the agent's own: the `*` stack exists to add rules for everyone
    /// (a cap, a blocklist), and its defaults must not override what an
    /// agent's owners wrote for it. A `shadow` stack contributes its rules as
    /// shadow rules only.
    pub fn merged_for(&self, agent: &str) -> MergedStack {
        let applying: Vec<&Stack> = self
            .stacks
            .iter()
            .filter(|s| match &s.agent {
                AgentSelector::All => true,
                AgentSelector::Named(name) => name == agent,
            })
            .collect();
        // Enforcing stacks first (a shadow stack enforces nothing, not even
        // its default), the agent's own before `*`.
        let own = applying
            .iter()
            .filter(|s| s.mode == Mode::Enforce)
            .min_by_key(|s| matches!(s.agent, AgentSelector::All))
            .or_else(|| {
                applying
                    .iter()
                    .min_by_key(|s| matches!(s.agent, AgentSelector::All))
            });
        let setting =
            |pick: fn(&Stack) -> Action| own.map(|s| pick(s)).unwrap_or(Action::RequireHuman);
        let all_shadow = applying.iter().all(|s| s.mode == Mode::Shadow);
        let mut rules: Vec<Arc<Rule>> = applying
            .iter()
            .flat_map(|s| s.rules.iter().cloned())
            .collect();
        rules.sort_by_key(|r| r.priority);
        let (level_approvers, level_quorum) = match own {
            None => (Vec::new(), Quorum::Count(1)),
            Some(s) if !s.approvers.is_empty() => (s.approvers.clone(), s.quorum),
            // The `*` stack decided: the agent's own (shadow) stack's
            // approvers are people trusted with this agent too.
            Some(s) if s.agent == AgentSelector::All => (
                union_of_rule_approvers(applying.iter().copied()),
                Quorum::Count(1),
            ),
            Some(s) => s.level_approvers(),
        };
        MergedStack {
            agent: agent.to_string(),
            rules,
            default: setting(|s| s.default),
            unknown: setting(|s| s.unknown),
            unreadable: setting(|s| s.unreadable),
            level_approvers,
            level_quorum,
            shadow: !applying.is_empty() && all_shadow,
            covered: !applying.is_empty(),
        }
    }
}
