//! Loading `policies/`: YAML stacks in, a validated [`PolicySet`] out
//! (SPEC §5.1, §5.2, §5.5).
//!
//! A policy set is what stands between an agent and money, and it is edited
//! by people who do not read Rust. So the loader is strict and talkative:
//!
//! - every key is known, every value has the right type, every currency,
//!   timezone, vendor and approver is real, and every error names
//!   `file:line:column`;
//! - all errors of all files are collected, so `leash policy check` lists
//!   them in one go instead of one per run;
//! - keys that mean something for one rule type only are refused on the
//!   others *by name* ("`limit` is a DAILY_CAP key"), because a cap written
//!   on the wrong rule is a cap that silently does not exist;
//! - amounts are whole numbers or quoted decimals: an unquoted `1500.50` is a
//!   binary float by the time YAML hands it over, and is refused with the
//!   quoted form to write instead;
//! - things that are valid but probably not meant (an AUTO_APPROVE whitelist
//!   approves everyone *not* on the list) are warnings, returned beside the
//!   set rather than refusing it.
//!
//! # Files
//!
//! Stacks are the `*.yaml` / `*.yml` files directly in the directory (not in
//! subdirectories, not dotfiles: editors leave those behind). `tests/` holds
//! policy tests ([`super::testing`]); registries and id lists usually live in
//! other subdirectories and are read only when a stack names them. A missing
//! or empty directory is an empty set, in which every agent gets the fail-
//! closed defaults.
//!
//! Files a stack refers to (`registry:`, `beneficiaries: { file: }`) are
//! given relative to the policies directory and must stay inside it: the
//! set's [hash](PolicySet::hash) covers exactly the files it was built from,
//! and a file outside the directory could change under a running leash
//! without the directory's watcher noticing.
//!
//! # Format
//!
//! ```yaml
//! agent: growth-agent        # required: an agent name, or "*" (quoted!) for every agent
//! currency: EUR              # amounts in this stack (default: fx.base of leash.yaml)
//! timezone: Europe/Paris     # IANA name, for cap and time windows (default: UTC)
//! default: REQUIRE_HUMAN     # when no rule triggers: REJECT | REQUIRE_HUMAN | AUTO_APPROVE
//! mode: enforce              # enforce | shadow (every rule becomes shadow)
//! unknown: REQUIRE_HUMAN     # writes the adapter does not recognise
//! unreadable: REQUIRE_HUMAN  # REQUIRE_HUMAN | REJECT
//! registry: registry/beneficiaries.csv   # optional, see below
//! description: any text
//! rules:
//!   - priority: 10           # required: 0..4294967295, unique in the agent's merged stack
//!     type: DAILY_CAP        # required: one of the six types below
//!     action: REJECT         # required
//!     description: any text
//!     shadow: false          # evaluate and record only
//!     approvers: [maya, partners]   # people / groups of leash.yaml (REQUIRE_HUMAN)
//!     quorum: 2              # 1.. (default 1) or `all`; at most the people approvers resolve to
//!     vendors: [acme]        # filters: non-empty lists; vendors must be known (built-in or custom_vendors)
//!     operations: [payment_intent.create]
//!     categories: [payment]  # (CATEGORY_BLOCKLIST: its own list)
//!     amount: { gte: 100, lt: "1500.50", currency: USD }   # (AMOUNT_THRESHOLD: its own range)
//!     limit: 5000            # the type's own keys, below
//! ```
//!
//! | type | own keys (required in bold) |
//! |---|---|
//! | AMOUNT_THRESHOLD | **`amount`** (at least one of gt/gte/lt/lte) |
//! | DAILY_CAP | **`limit`** (> 0), `scope: agent\|all_agents\|beneficiary\|category` (agent), `window: day\|week\|month` (day) |
//! | BENEFICIARY_WHITELIST | `beneficiaries: [ids]` or `{ file: lists/x.txt }`, `require_tags: [tags]`; at least one |
//! | TIME_WINDOW | **`when: inside\|outside`**; `days` (mon..sun, monday..sunday, weekdays, weekend; default all), `from`/`to` together (`"HH:MM"`, `to` may be `"24:00"`; `to` ≤ `from` wraps midnight), `timezone` (overrides the stack's); `days` or `from`/`to` required |
//! | AGENT_SCOPE | `allow_agents`, `max_amount`, `allow_vendors`, `allow_categories`; at least one |
//! | CATEGORY_BLOCKLIST | **`categories`** |
//!
//! Amounts are whole numbers or quoted decimals (`1500`, `"1500.50"`), never
//! negative. Currencies are ISO 4217 codes in upper case, or an asset with a
//! rate in `fx.rates` (`USDC`).
//!
//! A registry is YAML, `{ beneficiaries: { ID: { tags: [kyc_verified] } } }`
//! (`ID:` alone for no tags), or CSV, `id,tags` per line with tags separated
//! by `;` or spaces, an optional `id,tags` header, `#` comments, and
//! double-quoted fields as spreadsheets write them. A beneficiary list file
//! is a YAML list (`.yaml`, `.yml`) or text with one id per line (`#`
//! comments). Every stack may name a registry; together they form the set's
//! one registry, in which an id may be defined only once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::NaiveTime;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::model::{
    Action, AgentSelector, AmountRange, ApproverDirectory, Beneficiary, BeneficiaryRegistry,
    CapScope, CapWindow, Filters, FxTable, Mode, PolicySet, Quorum, Rule, RuleKind, Stack,
    WindowWhen,
};
use super::node::{self, Checker, Loc, Src, Value};
use crate::config::Config;
use crate::money::Currency;
use crate::yaml::{self, YamlError};

/// Keys of a stack file.
pub(crate) const STACK_KEYS: &[&str] = &[
    "agent",
    "currency",
    "timezone",
    "default",
    "mode",
    "unknown",
    "unreadable",
    "approvers",
    "quorum",
    "registry",
    "description",
    "rules",
];

/// Refuses an enforcing stack whose REQUIRE_HUMAN holds nobody could
/// release (issue 8): its `default`/`unknown`/`unreadable` (REQUIRE_HUMAN
/// when omitted) and its REQUIRE_HUMAN rules that name no approvers fall back
/// to the stack's `approvers:`, else to the people its REQUIRE_HUMAN rules
/// name — never to everyone. With nobody there, such a request would be
/// refused at run time; `policy check` says so first, at the key that asks
/// for the hold (or the file's top, for omitted keys and such rules).
/// `written`: the action keys the file writes.
fn check_releasable(
    c: &mut Checker,
    stack: &Stack,
    directory: &ApproverDirectory,
    written: &[&str],
) {
    if stack.mode == Mode::Shadow {
        return;
    }
    let (names, _) = stack.level_approvers();
    if !directory.resolve(names.iter()).is_empty() {
        return;
    }
    let top = Loc::root();
    let fix = "name who may release them with `approvers:` at the stack's top level (or on its REQUIRE_HUMAN rules), or make them REJECT";
    // Without any approver in leash.yaml (the built-in defaults) no hold
    // can be released at all, and naming one is an error of its own; the
    // stack still loads so that `leash run` works out of the box, and these
    // requests are refused at run time.
    let nobody_at_all = directory.people.is_empty();
    let report = |c: &mut Checker, loc: &Loc, message: String| {
        if nobody_at_all {
            c.warn_value(
                loc,
                format!("{message} (leash.yaml lists no approvers: such requests are refused)"),
            );
        } else {
            c.error_value(loc, message);
        }
    };
    let mut unwritten: Vec<String> = Vec::new();
    for (key, action) in [
        ("default", stack.default),
        ("unknown", stack.unknown),
        ("unreadable", stack.unreadable),
    ] {
        if action != Action::RequireHuman {
            continue;
        }
        if written.contains(&key) {
            report(
                c,
                &top.key(key),
                format!("holds from `{key}: REQUIRE_HUMAN` could be approved by nobody: {fix}"),
            );
        } else {
            unwritten.push(format!("`{key}` (REQUIRE_HUMAN when omitted)"));
        }
    }
    for rule in &stack.rules {
        if rule.action == Action::RequireHuman && !rule.shadow && rule.approvers.is_empty() {
            unwritten.push(format!(
                "rule {} ({}), which names no approvers",
                rule.priority, rule.origin
            ));
        }
    }
    if !unwritten.is_empty() {
        report(
            c,
            &top,
            format!(
                "holds from {} could be approved by nobody: {fix}",
                unwritten.join(", ")
            ),
        );
    }
}

/// Keys every rule may carry, whatever its type. `categories` and `amount`
/// are filters here, except on the rule type whose own list they are.
pub(crate) const COMMON_RULE_KEYS: &[&str] = &[
    "priority",
    "type",
    "action",
    "description",
    "shadow",
    "approvers",
    "quorum",
    "vendors",
    "accounts",
    "operations",
    "categories",
    "amount",
];

/// Domain separation for [`PolicySet::hash`]; bumped if the framing changes.
const HASH_DOMAIN: &[u8] = b"leash.policy-set.v1\0";

/// The six rule types of SPEC §5.2, as written in YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleType {
    AmountThreshold,
    DailyCap,
    BeneficiaryWhitelist,
    TimeWindow,
    AgentScope,
    CategoryBlocklist,
}

impl RuleType {
    pub(crate) const ALL: [RuleType; 6] = [
        RuleType::AmountThreshold,
        RuleType::DailyCap,
        RuleType::BeneficiaryWhitelist,
        RuleType::TimeWindow,
        RuleType::AgentScope,
        RuleType::CategoryBlocklist,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RuleType::AmountThreshold => "AMOUNT_THRESHOLD",
            RuleType::DailyCap => "DAILY_CAP",
            RuleType::BeneficiaryWhitelist => "BENEFICIARY_WHITELIST",
            RuleType::TimeWindow => "TIME_WINDOW",
            RuleType::AgentScope => "AGENT_SCOPE",
            RuleType::CategoryBlocklist => "CATEGORY_BLOCKLIST",
        }
    }

    /// The keys that belong to this type (SPEC §5.2 "own keys").
    pub(crate) fn own_keys(self) -> &'static [&'static str] {
        match self {
            RuleType::AmountThreshold => &["amount"],
            RuleType::DailyCap => &["limit", "scope", "window"],
            RuleType::BeneficiaryWhitelist => &["beneficiaries", "require_tags"],
            RuleType::TimeWindow => &["days", "from", "to", "timezone", "when"],
            RuleType::AgentScope => &[
                "allow_agents",
                "max_amount",
                "allow_vendors",
                "allow_categories",
            ],
            RuleType::CategoryBlocklist => &["categories"],
        }
    }

    /// Triggering means "something is wrong" for these types (over a cap,
    /// not on the list, out of scope, blocked): as AUTO_APPROVE they approve
    /// exactly what they exist to stop.
    fn triggers_on_violation(self) -> bool {
        matches!(
            self,
            RuleType::DailyCap
                | RuleType::BeneficiaryWhitelist
                | RuleType::AgentScope
                | RuleType::CategoryBlocklist
        )
    }

    fn parse(s: &str) -> Result<RuleType, String> {
        if let Some(t) = RuleType::ALL.into_iter().find(|t| t.name() == s) {
            return Ok(t);
        }
        let names = RuleType::ALL.map(RuleType::name).join(", ");
        match RuleType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
        {
            Some(t) => Err(format!("write rule types in upper case: {}", t.name())),
            None => Err(format!("`{s}` is not a rule type: one of {names}")),
        }
    }
}

/// A policy set and what the loader thinks is suspicious about it.
#[derive(Debug, Clone)]
pub struct LoadedPolicies {
    pub set: PolicySet,
    /// Valid but probably not meant: an AUTO_APPROVE whitelist, approvers on
    /// a REJECT rule, a tag no beneficiary has. Same `file:line:column` shape
    /// as errors.
    pub warnings: Vec<YamlError>,
}

/// Everything `leash policy check` reports about a directory.
#[derive(Debug, Clone)]
pub struct PolicyCheck {
    /// The set, when there were no errors.
    pub set: Option<PolicySet>,
    /// Errors in stacks, the files they name, and the policy tests.
    pub errors: Vec<YamlError>,
    pub warnings: Vec<YamlError>,
    /// Policy test cases found (and parsed) under `tests/`.
    pub test_cases: usize,
}

impl PolicyCheck {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Loads every stack in `dir` into a [`PolicySet`], with warnings.
///
/// `config` supplies what policies refer to: the approvers, the fx table
/// (and so which currencies a stack may be written in), the custom vendors,
/// and the default currency of a stack that names none (`fx.base`).
///
/// On failure every error found is returned, sorted by file and position.
pub fn load_policies(dir: &Path, config: &Config) -> Result<LoadedPolicies, Vec<YamlError>> {
    let (set, warnings) = load(dir, config);
    set.map(|set| LoadedPolicies { set, warnings })
}

/// The set (or its errors), and the warnings either way.
fn load(dir: &Path, config: &Config) -> (Result<PolicySet, Vec<YamlError>>, Vec<YamlError>) {
    match Loader::new(dir, config) {
        Ok(mut loader) => {
            loader.run();
            loader.finish()
        }
        Err(e) => (Err(vec![e]), Vec::new()),
    }
}

/// [`load_policies`] without the warnings: what a running leash swaps in.
pub fn load_policy_set(dir: &Path, config: &Config) -> Result<PolicySet, Vec<YamlError>> {
    load_policies(dir, config).map(|loaded| loaded.set)
}

/// What `leash policy check` runs: the set, plus the policy tests in
/// `dir/tests/`, parsed (not run) and checked against the set, so that a
/// test naming a rule that no longer exists fails the check and not just a
/// later `leash policy test`.
pub fn check_dir(dir: &Path, config: &Config) -> PolicyCheck {
    // Warnings are reported beside errors: an author fixing the errors
    // should see the rest of what is off in the same run.
    let (set, warnings) = load(dir, config);
    let (set, mut errors) = match set {
        Ok(set) => (Some(set), Vec::new()),
        Err(errors) => (None, errors),
    };
    let test_cases = match super::testing::parse_tests(dir, set.as_ref()) {
        Ok(cases) => cases.len(),
        Err(test_errors) => {
            errors.extend(test_errors);
            0
        }
    };
    sort(&mut errors);
    PolicyCheck {
        set: if errors.is_empty() { set } else { None },
        errors,
        warnings,
        test_cases,
    }
}

/// The stack files of `dir`: `*.yaml` and `*.yml` directly in it, sorted,
/// without dotfiles. A missing directory has none.
pub(crate) fn yaml_files(dir: &Path) -> Result<Vec<String>, YamlError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(YamlError::new(
                dir,
                (0, 0),
                format!("cannot read the directory: {e}"),
            ))
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| YamlError::new(dir, (0, 0), format!("cannot read the directory: {e}")))?;
        let Ok(name) = entry.file_name().into_string() else {
            return Err(YamlError::new(
                &entry.path(),
                (0, 0),
                "the file name is not UTF-8; rename it",
            ));
        };
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        // `metadata` follows symlinks: a linked stack is a stack.
        let is_file = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
        if is_yaml && is_file && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `dir/name` as shown in messages and `Rule.origin`: `policies/growth.yaml`,
/// without a leading `./`.
pub(crate) fn shown(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Errors in a stable order: by file, then position.
pub(crate) fn sort(errors: &mut Vec<YamlError>) {
    errors.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
    errors.dedup();
}

/// A stack as read, with what the cross-file checks need to point back into
/// its text.
struct Parsed {
    /// Known even when the stack has errors, so that the cross-file checks
    /// (one stack per agent, unique merged priorities) still run for it.
    agent: AgentSelector,
    /// `None` when the file has errors.
    stack: Option<Stack>,
    file: PathBuf,
    text: String,
    meta: StackMeta,
}

impl Parsed {
    fn src(&self) -> Src<'_> {
        Src {
            file: &self.file,
            text: &self.text,
        }
    }
}

/// What the cross-file checks need from one stack's read.
struct StackMeta {
    /// `(priority, where its value is written, the rule's line)`, for every
    /// rule whose priority could be read.
    priorities: Vec<(u32, Loc, usize)>,
    /// Tags named in `require_tags`, for the "no beneficiary has it" warning.
    tags: Vec<(Loc, String)>,
    /// Stack-level actions the file writes itself, for the merge warning.
    written_actions: Vec<(&'static str, Action)>,
}

/// The stack being read, as its rules see it.
struct StackCtx {
    currency: Currency,
    timezone: Tz,
    shadow: bool,
}

struct Loader<'c> {
    dir: PathBuf,
    config: &'c Config,
    directory: ApproverDirectory,
    fx: FxTable,
    vendors: BTreeSet<String>,
    errors: Vec<YamlError>,
    warnings: Vec<YamlError>,
    /// Every file the set is built from: relative path → bytes (hashed).
    files: BTreeMap<String, Vec<u8>>,
    registry: BeneficiaryRegistry,
    /// Beneficiary id → the registry file that defines it.
    registry_origin: BTreeMap<String, String>,
    /// Registry files read so far (each once, however many stacks name it).
    registries: BTreeSet<String>,
    /// List files read so far, and their ids (`None`: they had errors).
    lists: BTreeMap<String, Option<BTreeSet<String>>>,
    stacks: Vec<Parsed>,
}

impl<'c> Loader<'c> {
    /// Fails only when the config's fx table cannot be used, which the
    /// config loader already prevents for any `leash.yaml` it accepted.
    fn new(dir: &Path, config: &'c Config) -> Result<Loader<'c>, YamlError> {
        let fx = fx_table(config)?;
        // A filter naming a vendor that is neither built in nor custom would
        // never match, which for a REJECT rule means never refusing anything.
        let mut vendors: BTreeSet<String> = crate::adapters::BUILTIN_NAMES
            .iter()
            .map(|v| v.to_string())
            .collect();
        vendors.extend(config.custom_vendors.iter().map(|v| v.name.clone()));
        Ok(Loader {
            dir: dir.to_path_buf(),
            config,
            directory: approver_directory(config),
            fx,
            vendors,
            errors: Vec::new(),
            warnings: Vec::new(),
            files: BTreeMap::new(),
            registry: BeneficiaryRegistry::default(),
            registry_origin: BTreeMap::new(),
            registries: BTreeSet::new(),
            lists: BTreeMap::new(),
            stacks: Vec::new(),
        })
    }

    fn run(&mut self) {
        if self.dir.exists() && !self.dir.is_dir() {
            self.errors.push(YamlError::new(
                &self.dir,
                (0, 0),
                "is not a directory: policies are the *.yaml files in a directory",
            ));
            return;
        }
        let names = match yaml_files(&self.dir) {
            Ok(names) => names,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        for name in names {
            self.read_stack(&name);
        }
        self.check_agents();
        self.check_priorities();
        self.check_tags();
    }

    fn finish(mut self) -> (Result<PolicySet, Vec<YamlError>>, Vec<YamlError>) {
        sort(&mut self.warnings);
        if !self.errors.is_empty() {
            sort(&mut self.errors);
            return (Err(self.errors), self.warnings);
        }
        let mut hash = Sha256::new();
        hash.update(HASH_DOMAIN);
        for (rel, bytes) in &self.files {
            for part in [rel.as_bytes(), bytes.as_slice()] {
                let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
                hash.update(len.to_be_bytes());
                hash.update(part);
            }
        }
        let set = PolicySet {
            stacks: self.stacks.into_iter().filter_map(|p| p.stack).collect(),
            registry: self.registry,
            fx: self.fx,
            approvers: self.directory,
            hash: hex::encode(hash.finalize()),
            files: self.files.into_keys().collect(),
        };
        (Ok(set), self.warnings)
    }

    /// Reads a file the set is built from, recording its bytes for the hash.
    /// A failure is an error at `blame` (the key that names the file) or, for
    /// a stack itself, about the file.
    fn read_file(&mut self, rel: &str, blame: Option<(&Checker, &Loc)>) -> Option<String> {
        let path = shown(&self.dir, rel);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let message = format!("cannot read {}: {e}", path.display());
                self.errors.push(match blame {
                    Some((c, loc)) => c.src.at_value(loc, &message),
                    None => YamlError::new(&path, (0, 0), format!("cannot read: {e}")),
                });
                return None;
            }
        };
        let text = match String::from_utf8(bytes.clone()) {
            Ok(text) => text,
            Err(_) => {
                self.errors.push(YamlError::new(
                    &path,
                    (0, 0),
                    "is not UTF-8 text: save it as UTF-8",
                ));
                return None;
            }
        };
        self.files.insert(rel.to_string(), bytes);
        Some(text)
    }

    fn read_stack(&mut self, name: &str) {
        let Some(text) = self.read_file(name, None) else {
            return;
        };
        let file = shown(&self.dir, name);
        let root = match node::parse(&file, &text) {
            Ok(root) => root,
            Err(mut e) => {
                if e.message.contains("alias") {
                    e.message.push_str(
                        "; a plain `*` starts an alias in YAML: quote it, like agent: \"*\"",
                    );
                }
                self.errors.push(e);
                return;
            }
        };
        let mut c = Checker::new(&file, &text);
        let (agent, stack, meta) = self.stack(&mut c, &root, name);
        let Checker {
            errors, warnings, ..
        } = c;
        let clean = errors.is_empty();
        self.errors.extend(errors);
        self.warnings.extend(warnings);
        if let Some(agent) = agent {
            self.stacks.push(Parsed {
                agent,
                stack: stack.filter(|_| clean),
                file,
                text,
                meta,
            });
        }
    }

    /// One stack file: its agent (if readable), the stack (if valid), and
    /// what the cross-file checks need.
    fn stack(
        &mut self,
        c: &mut Checker,
        root: &Value,
        name: &str,
    ) -> (Option<AgentSelector>, Option<Stack>, StackMeta) {
        let top = Loc::root();
        let errors_before = c.errors.len();
        let mut meta = StackMeta {
            priorities: Vec::new(),
            tags: Vec::new(),
            written_actions: Vec::new(),
        };
        let Some(entries) = c.mapping(
            root,
            &top,
            "a policy stack: a mapping with `agent` and `rules`",
        ) else {
            return (None, None, meta);
        };
        c.known_keys(entries, &top, STACK_KEYS, |_| None);
        let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);

        let agent = match get("agent") {
            None => {
                c.error_value(
                    &top,
                    "missing `agent`: the agent this stack applies to, or \"*\" for every agent",
                );
                None
            }
            Some(v) => c.parsed(v, &top.key("agent"), "an agent name or \"*\"", |s| {
                if s == "*" {
                    Ok(AgentSelector::All)
                } else {
                    agent_name(s).map(AgentSelector::Named)
                }
            }),
        };
        let currency = match get("currency") {
            None => Some(self.fx.base),
            Some(v) => {
                let loc = top.key("currency");
                let currency = self.currency(c, v, &loc);
                if let Some(currency) = currency {
                    self.warn_unconvertible(c, &loc, currency);
                }
                currency
            }
        };
        let timezone = match get("timezone") {
            None => Some(Tz::UTC),
            Some(v) => c.parsed(v, &top.key("timezone"), "an IANA timezone", parse_timezone),
        };
        let written_actions = &mut meta.written_actions;
        let mut action_key = |c: &mut Checker, key: &'static str| match get(key) {
            None => Some(Action::RequireHuman),
            Some(v) => {
                let action = c.parsed(v, &top.key(key), "an action", parse_action)?;
                written_actions.push((key, action));
                Some(action)
            }
        };
        let default = action_key(c, "default");
        let unknown = action_key(c, "unknown");
        let unreadable = action_key(c, "unreadable");
        if unreadable == Some(Action::AutoApprove) {
            c.error_value(
                &top.key("unreadable"),
                "an intent whose amount cannot be read is never approved unseen: REQUIRE_HUMAN or REJECT",
            );
        }
        if unknown == Some(Action::AutoApprove) {
            c.warn_value(
                &top.key("unknown"),
                "AUTO_APPROVE forwards every write leash does not recognise, unseen by a human",
            );
        }
        let mode = match get("mode") {
            None => Some(Mode::Enforce),
            Some(v) => c.parsed(v, &top.key("mode"), "enforce or shadow", |s| match s {
                "enforce" => Ok(Mode::Enforce),
                "shadow" => Ok(Mode::Shadow),
                _ => Err(format!("`{s}` is not a mode: enforce or shadow")),
            }),
        };
        if let Some(v) = get("description") {
            c.string(v, &top.key("description"), "text");
        }
        if let Some(v) = get("registry") {
            let loc = top.key("registry");
            if let Some(written) = c.string(v, &loc, "a path to a registry file") {
                self.load_registry(c, &loc, &written);
            }
        }

        // Who releases this stack's own default/unknown/unreadable holds.
        let approvers: Vec<String> = match get("approvers") {
            None => Vec::new(),
            Some(v) => self
                .approvers(c, v, &top.key("approvers"))
                .unwrap_or_default(),
        };
        let quorum = match (get("quorum"), get("approvers")) {
            (None, _) => Some(Quorum::default()),
            (Some(_), None) => {
                c.error_value(
                    &top.key("quorum"),
                    "`quorum` counts the stack's `approvers`: write `approvers:` too",
                );
                None
            }
            (Some(v), Some(_)) => self.quorum(c, v, &top.key("quorum"), &approvers, true),
        };

        let mut rules = Vec::new();
        {
            // With a bad stack currency, timezone or mode the stack is
            // refused anyway; its rules are still checked, against stand-ins,
            // so that all their errors are listed in the same run.
            let ctx = StackCtx {
                currency: currency.unwrap_or(self.fx.base),
                timezone: timezone.unwrap_or(Tz::UTC),
                shadow: mode == Some(Mode::Shadow),
            };
            let origin = shown(&self.dir, name).display().to_string();
            if let Some(v) = get("rules") {
                let loc = top.key("rules");
                let items = match v {
                    Value::Null => {
                        c.error_value(
                            &loc,
                            "no rules: write a list of rules, or leave `rules` out",
                        );
                        &[][..]
                    }
                    v => c.list(v, &loc, "a list of rules").unwrap_or(&[]),
                };
                let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
                for (i, item) in items.iter().enumerate() {
                    let loc = loc.index(i);
                    let rule = self.rule(c, item, &loc, &ctx, &origin, &mut meta.tags);
                    // A rule with other errors still takes part in the
                    // priority checks, so that fixing those does not reveal
                    // a collision only on the next run.
                    let Some(priority) = rule
                        .as_ref()
                        .map(|r| r.priority)
                        .or_else(|| written_priority(item))
                    else {
                        continue;
                    };
                    let at = loc.key("priority");
                    let line = c.src.line(&loc);
                    if let Some(first) = seen.get(&priority) {
                        c.error_value(
                            &at,
                            format!(
                                "priority {priority} is already used by the rule at {origin}:{first}: priorities are unique in each agent's merged stack"
                            ),
                        );
                        continue;
                    }
                    seen.insert(priority, line);
                    meta.priorities.push((priority, at, line));
                    if let Some(rule) = rule {
                        rules.push(Arc::new(rule));
                    }
                }
            }
        }
        rules.sort_by_key(|r| r.priority);
        let stack = match (
            agent.clone(),
            currency,
            timezone,
            default,
            mode,
            unknown,
            unreadable,
        ) {
            (
                Some(agent),
                Some(currency),
                Some(timezone),
                Some(default),
                Some(mode),
                Some(unknown),
                Some(unreadable),
            ) => Some(Stack {
                file: shown(&self.dir, name),
                agent,
                currency,
                timezone,
                default,
                mode,
                unknown,
                unreadable,
                rules,
                approvers,
                quorum: quorum.unwrap_or_default(),
            }),
            _ => None,
        };
        // With other errors in this stack (an unknown approver, a broken
        // rule) who could approve is not known yet: those errors come first.
        if let (Some(stack), true) = (&stack, c.errors.len() == errors_before) {
            let written: Vec<&str> = meta.written_actions.iter().map(|(k, _)| *k).collect();
            check_releasable(c, stack, &self.directory, &written);
        }
        (agent, stack, meta)
    }

    /// One rule. `None` when it had any error (all of them recorded).
    fn rule(
        &mut self,
        c: &mut Checker,
        v: &Value,
        loc: &Loc,
        ctx: &StackCtx,
        origin: &str,
        tags: &mut Vec<(Loc, String)>,
    ) -> Option<Rule> {
        let before = c.errors.len();
        let entries = c.mapping(
            v,
            loc,
            "a rule: a mapping with `priority`, `type` and `action`",
        )?;
        let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);

        let ty = match get("type") {
            None => {
                c.error_value(
                    loc,
                    format!(
                        "missing `type`: one of {}",
                        RuleType::ALL.map(RuleType::name).join(", ")
                    ),
                );
                None
            }
            Some(v) => c.parsed(v, &loc.key("type"), "a rule type", RuleType::parse),
        };
        match ty {
            Some(ty) => {
                let mut allowed: Vec<&str> = COMMON_RULE_KEYS.to_vec();
                allowed.extend_from_slice(ty.own_keys());
                c.known_keys(entries, loc, &allowed, |key| foreign_key(key, ty));
            }
            None => {
                let mut all: Vec<&str> = COMMON_RULE_KEYS.to_vec();
                for t in RuleType::ALL {
                    all.extend_from_slice(t.own_keys());
                }
                c.known_keys(entries, loc, &all, |_| None);
            }
        }

        let required = |c: &mut Checker, key: &str, what: &str| {
            let v = get(key);
            if v.is_none() {
                c.error_value(loc, format!("missing `{key}`: {what}"));
            }
            v
        };
        let priority = required(
            c,
            "priority",
            "a whole number, unique in the agent's merged stack",
        )
        .and_then(|v| {
            c.uint(
                v,
                &loc.key("priority"),
                "a whole number from 0 to 4294967295",
                u64::from(u32::MAX),
            )
        })
        .and_then(|p| u32::try_from(p).ok());
        let action = required(c, "action", "REJECT, REQUIRE_HUMAN or AUTO_APPROVE")
            .and_then(|v| c.parsed(v, &loc.key("action"), "an action", parse_action));
        let description =
            get("description").and_then(|v| c.string(v, &loc.key("description"), "text"));
        let shadow = match get("shadow") {
            None => Some(false),
            Some(v) => c.boolean(v, &loc.key("shadow")),
        };

        // Approvers and quorum: who can release this rule's hold.
        let approvers: Vec<String> = match get("approvers") {
            None => Vec::new(),
            Some(v) => self
                .approvers(c, v, &loc.key("approvers"))
                .unwrap_or_default(),
        };
        let quorum = match get("quorum") {
            None => Some(Quorum::default()),
            Some(v) => self.quorum(
                c,
                v,
                &loc.key("quorum"),
                &approvers,
                get("approvers").is_some(),
            ),
        };
        if let Some(action) = action.filter(|a| *a != Action::RequireHuman) {
            for key in ["approvers", "quorum"] {
                if get(key).is_some() {
                    c.warn_key(
                        &loc.key(key),
                        format!(
                            "`{key}` has no effect on {} {action} rule: only a REQUIRE_HUMAN hold waits for approvers{}",
                            article(action.as_str()),
                            if action == Action::Reject { " (a REJECT is never released)" } else { "" }
                        ),
                    );
                }
            }
        }

        // Filters. `categories` and `amount` are the rule's own on two types.
        let own = |key: &str| ty.is_some_and(|t| t.own_keys().contains(&key));
        let mut filters = Filters::default();
        if let Some(v) = get("vendors") {
            filters.vendors = self.vendor_list(c, v, &loc.key("vendors"));
        }
        if let Some(v) = get("accounts") {
            if matches!(ty, Some(RuleType::DailyCap)) {
                c.error_value(
                    &loc.key("accounts"),
                    "`accounts` cannot narrow a DAILY_CAP yet: the spend ledger does not record which account spent, so the cap would count every account's spend; write the cap without it",
                );
            } else {
                filters.accounts =
                    set_of(c.names(v, &loc.key("accounts"), "a list of account ids", account_id));
            }
        }
        if let Some(v) = get("operations") {
            filters.operations =
                set_of(c.names(v, &loc.key("operations"), "a list of operations", operation));
        }
        if !own("categories") {
            if let Some(v) = get("categories") {
                filters.categories =
                    set_of(c.names(v, &loc.key("categories"), "a list of categories", category));
            }
        }
        if !own("amount") {
            if let Some(v) = get("amount") {
                filters.amount = self.amount_range(c, v, &loc.key("amount"));
            }
        }

        let ty = ty?;
        let mut timezone = ctx.timezone;
        let kind = match ty {
            RuleType::AmountThreshold => {
                let v = required(c, "amount", "the range that triggers, like { gte: 1500 }")?;
                RuleKind::AmountThreshold {
                    range: self.amount_range(c, v, &loc.key("amount"))?,
                }
            }
            RuleType::DailyCap => {
                let limit = required(
                    c,
                    "limit",
                    "the most that may be spent in the window, like 5000",
                )
                .and_then(|v| c.amount(v, &loc.key("limit")));
                if limit == Some(Decimal::ZERO) {
                    c.error_value(
                        &loc.key("limit"),
                        "a limit of 0 refuses every spend: write a limit above 0 (or refuse outright with CATEGORY_BLOCKLIST or AGENT_SCOPE)",
                    );
                }
                let scope = match get("scope") {
                    None => Some(CapScope::Agent),
                    Some(v) => c.parsed(v, &loc.key("scope"), "a cap scope", |s| match s {
                        "agent" => Ok(CapScope::Agent),
                        "all_agents" => Ok(CapScope::AllAgents),
                        "beneficiary" => Ok(CapScope::Beneficiary),
                        "category" => Ok(CapScope::Category),
                        _ => Err(format!(
                            "`{s}` is not a cap scope: agent, all_agents, beneficiary or category"
                        )),
                    }),
                };
                let window = match get("window") {
                    None => Some(CapWindow::Day),
                    Some(v) => c.parsed(v, &loc.key("window"), "a cap window", |s| match s {
                        "day" => Ok(CapWindow::Day),
                        "week" => Ok(CapWindow::Week),
                        "month" => Ok(CapWindow::Month),
                        _ => Err(format!("`{s}` is not a cap window: day, week or month")),
                    }),
                };
                RuleKind::DailyCap {
                    limit: limit.filter(|l| !l.is_zero())?,
                    scope: scope?,
                    window: window?,
                }
            }
            RuleType::BeneficiaryWhitelist => {
                let beneficiaries = match get("beneficiaries") {
                    None => None,
                    Some(v) => Some(self.beneficiaries(c, v, &loc.key("beneficiaries"))?),
                };
                let require_tags = match get("require_tags") {
                    None => BTreeSet::new(),
                    Some(v) => {
                        let at = loc.key("require_tags");
                        let named = c.names(v, &at, "a list of tags", tag)?;
                        for (i, t) in &named {
                            tags.push((at.index(*i), t.clone()));
                        }
                        named.into_iter().map(|(_, t)| t).collect()
                    }
                };
                if beneficiaries.is_none() && require_tags.is_empty() {
                    c.error_value(
                        loc,
                        "a BENEFICIARY_WHITELIST needs `beneficiaries` (the allowed ids, or { file: PATH }), `require_tags` (tags from the registry), or both",
                    );
                    return None;
                }
                RuleKind::BeneficiaryWhitelist {
                    beneficiaries,
                    require_tags,
                }
            }
            RuleType::TimeWindow => {
                if let Some(v) = get("timezone") {
                    timezone =
                        c.parsed(v, &loc.key("timezone"), "an IANA timezone", parse_timezone)?;
                }
                self.time_window(c, loc, &get)?
            }
            RuleType::AgentScope => {
                let allow_agents = match get("allow_agents") {
                    None => None,
                    Some(v) => Some(set_of(c.names(
                        v,
                        &loc.key("allow_agents"),
                        "a list of agent names",
                        |s| agent_name(s).map(|_| ()),
                    ))?),
                };
                let max_amount = match get("max_amount") {
                    None => None,
                    Some(v) => Some(c.amount(v, &loc.key("max_amount"))?),
                };
                let allow_vendors = match get("allow_vendors") {
                    None => None,
                    Some(v) => Some(self.vendor_list(c, v, &loc.key("allow_vendors"))?),
                };
                let allow_categories = match get("allow_categories") {
                    None => None,
                    Some(v) => Some(set_of(c.names(
                        v,
                        &loc.key("allow_categories"),
                        "a list of categories",
                        category,
                    ))?),
                };
                if allow_agents.is_none()
                    && max_amount.is_none()
                    && allow_vendors.is_none()
                    && allow_categories.is_none()
                {
                    c.error_value(
                        loc,
                        "an AGENT_SCOPE needs at least one of allow_agents, max_amount, allow_vendors, allow_categories",
                    );
                    return None;
                }
                RuleKind::AgentScope {
                    allow_agents,
                    max_amount,
                    allow_vendors,
                    allow_categories,
                }
            }
            RuleType::CategoryBlocklist => {
                let v = required(c, "categories", "the categories to block, like [gambling]")?;
                RuleKind::CategoryBlocklist {
                    categories: set_of(c.names(
                        v,
                        &loc.key("categories"),
                        "a list of categories",
                        category,
                    ))?,
                }
            }
        };

        if c.errors.len() > before {
            return None;
        }
        let action = action?;
        if action == Action::AutoApprove && ty.triggers_on_violation() {
            let what = match ty {
                RuleType::DailyCap => "spend over the cap",
                RuleType::BeneficiaryWhitelist => "beneficiaries NOT on the list",
                RuleType::AgentScope => "intents outside the allowed scope",
                _ => "the blocked categories",
            };
            c.warn_value(
                &loc.key("action"),
                format!(
                    "an AUTO_APPROVE {} triggers on {what}, so it approves exactly those: did you mean REJECT or REQUIRE_HUMAN?",
                    ty.name()
                ),
            );
        }
        Some(Rule {
            priority: priority?,
            action,
            description,
            shadow: shadow? || ctx.shadow,
            filters,
            kind,
            approvers,
            quorum: quorum?,
            currency: ctx.currency,
            timezone,
            origin: format!("{origin}:{}", c.src.line(loc)),
        })
    }

    fn time_window<'v>(
        &mut self,
        c: &mut Checker,
        loc: &Loc,
        get: &dyn Fn(&str) -> Option<&'v Value>,
    ) -> Option<RuleKind> {
        if get("days").is_none() && get("from").is_none() && get("to").is_none() {
            c.error_value(
                loc,
                "a TIME_WINDOW needs `days`, or `from` and `to` (\"HH:MM\"), or all three",
            );
            return None;
        }
        let days = match get("days") {
            None => Some([true; 7]),
            Some(v) => self.days(c, v, &loc.key("days")),
        };
        let from = match get("from") {
            None if get("to").is_some() => {
                c.error_value(loc, "`to` without `from`: write both, like from: \"08:00\", to: \"18:00\"");
                None
            }
            None => Some((NaiveTime::MIN, false)),
            Some(v) => c.parsed(v, &loc.key("from"), "a time like \"08:00\"", |s| {
                match clock_time(s)? {
                    (_, true) => Err("`from` may not be \"24:00\": a window that starts at midnight is from: \"00:00\"".to_string()),
                    t => Ok(t),
                }
            }),
        };
        let to = match get("to") {
            None if get("from").is_some() => {
                c.error_value(loc, "`from` without `to`: write both, like from: \"08:00\", to: \"18:00\" (\"24:00\" for midnight)");
                None
            }
            None => Some((NaiveTime::MIN, true)),
            Some(v) => c.parsed(v, &loc.key("to"), "a time like \"18:00\"", clock_time),
        };
        let when = match get("when") {
            None => {
                c.error_value(
                    loc,
                    "missing `when`: inside (trigger during the window) or outside (trigger outside it)",
                );
                None
            }
            Some(v) => c.parsed(v, &loc.key("when"), "inside or outside", |s| match s {
                "inside" => Ok(WindowWhen::Inside),
                "outside" => Ok(WindowWhen::Outside),
                _ => Err(format!("`{s}` is not inside or outside")),
            }),
        };
        let ((from, _), (to, to_end_of_day)) = (from?, to?);
        if from == to && !to_end_of_day {
            c.error_value(
                &loc.key("to"),
                "`from` and `to` are equal, so the window is empty: for the whole day write from: \"00:00\", to: \"24:00\"",
            );
            return None;
        }
        Some(RuleKind::TimeWindow {
            days: days?,
            from,
            to,
            to_end_of_day,
            when: when?,
        })
    }

    fn days(&mut self, c: &mut Checker, v: &Value, loc: &Loc) -> Option<[bool; 7]> {
        let items = c.list(v, loc, "a list of days, like [mon, tue] or [weekdays]")?;
        if items.is_empty() {
            c.error_value(
                loc,
                "no days: the window would never be open (leave `days` out for every day)",
            );
            return None;
        }
        let mut days = [false; 7];
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = loc.index(i);
            let Some(named) = c.parsed(item, &at, "a day", day_set) else {
                ok = false;
                continue;
            };
            for (d, on) in named.iter().enumerate() {
                if let (true, Some(slot)) = (*on, days.get_mut(d)) {
                    if *slot {
                        c.error_value(
                            &at,
                            format!(
                                "{} is already in the list",
                                DAY_NAMES.get(d).copied().unwrap_or("a day")
                            ),
                        );
                        ok = false;
                    }
                    *slot = true;
                }
            }
        }
        ok.then_some(days)
    }

    fn approvers(&mut self, c: &mut Checker, v: &Value, loc: &Loc) -> Option<Vec<String>> {
        let directory = &self.directory;
        let known = known_approvers(directory);
        let named = c.names(v, loc, "a list of approvers (people or groups)", |name| {
            if directory.knows(name) {
                Ok(())
            } else if directory.people.is_empty() {
                Err(format!(
                    "`{name}` is not an approver: leash.yaml lists none (add them under approvers.people)"
                ))
            } else {
                Err(format!(
                    "`{name}` is not an approver in leash.yaml ({known})"
                ))
            }
        })?;
        Some(named.into_iter().map(|(_, n)| n).collect())
    }

    fn quorum(
        &mut self,
        c: &mut Checker,
        v: &Value,
        loc: &Loc,
        approvers: &[String],
        approvers_written: bool,
    ) -> Option<Quorum> {
        let quorum = match v {
            Value::Str(s) if s == "all" => Quorum::All,
            Value::Int(_) => {
                let n = c.uint(v, loc, "a number of approvers, or all", u64::from(u32::MAX))?;
                if n == 0 {
                    c.error_value(
                        loc,
                        "a quorum of 0 would release holds with no approval: write 1 or more",
                    );
                    return None;
                }
                Quorum::Count(u32::try_from(n).ok()?)
            }
            Value::Str(s) => {
                c.error_value(
                    loc,
                    format!("`{s}` is not a quorum: a number like 2, or all"),
                );
                return None;
            }
            other => {
                c.error_value(
                    loc,
                    format!(
                        "expected a number of approvers or all, found {}",
                        other.describe()
                    ),
                );
                return None;
            }
        };
        // With errors in `approvers` the pool is unknown: that error is enough.
        if approvers_written && approvers.is_empty() {
            return Some(quorum);
        }
        if let Quorum::Count(n) = quorum {
            let pool = if approvers.is_empty() {
                self.directory.people.clone()
            } else {
                self.directory.resolve(approvers.iter())
            };
            if usize::try_from(n).map_or(true, |n| n > pool.len()) {
                let who = if approvers.is_empty() {
                    "approvers listed in leash.yaml".to_string()
                } else {
                    format!(
                        "people these approvers resolve to ({})",
                        pool.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                c.error_value(
                    loc,
                    format!(
                        "a quorum of {n} can never be reached: there are only {} {who}",
                        pool.len()
                    ),
                );
                return None;
            }
        }
        Some(quorum)
    }

    fn vendor_list(&mut self, c: &mut Checker, v: &Value, loc: &Loc) -> Option<BTreeSet<String>> {
        let vendors = &self.vendors;
        set_of(c.names(v, loc, "a list of vendors", |s| {
            if vendors.contains(s) {
                return Ok(());
            }
            let list: Vec<&str> = vendors.iter().map(String::as_str).collect();
            Err(format!(
                "`{s}` is not a vendor leash reads: one of {} (custom vendors come from leash.yaml custom_vendors)",
                list.join(", ")
            ))
        }))
    }

    fn currency(&mut self, c: &mut Checker, v: &Value, loc: &Loc) -> Option<Currency> {
        let fx = &self.fx;
        c.parsed(v, loc, "a currency code like EUR", |s| currency_code(s, fx))
    }

    /// Amounts in a currency the fx table cannot convert only compare with
    /// intents in that same currency; everything else is unreadable.
    fn warn_unconvertible(&self, c: &mut Checker, loc: &Loc, currency: Currency) {
        if currency != self.fx.base && !self.fx.rates.contains_key(&currency) {
            c.warn_value(
                loc,
                format!(
                    "{currency} is not the fx base ({}) and has no rate in leash.yaml fx.rates: intents in any other currency cannot be compared with these amounts, and are treated as unreadable",
                    self.fx.base
                ),
            );
        }
    }

    fn amount_range(&mut self, c: &mut Checker, v: &Value, loc: &Loc) -> Option<AmountRange> {
        let before = c.errors.len();
        let entries = c.mapping(
            v,
            loc,
            "a range like { gte: 1500 } or { gt: 100, lte: 500, currency: USD }",
        )?;
        c.known_keys(
            entries,
            loc,
            &["gt", "gte", "lt", "lte", "currency"],
            |_| None,
        );
        let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let bound = |c: &mut Checker, key: &str| get(key).and_then(|v| c.amount(v, &loc.key(key)));
        let range = AmountRange {
            gt: bound(c, "gt"),
            gte: bound(c, "gte"),
            lt: bound(c, "lt"),
            lte: bound(c, "lte"),
            currency: match get("currency") {
                None => None,
                Some(v) => {
                    let at = loc.key("currency");
                    let currency = self.currency(c, v, &at);
                    if let Some(currency) = currency {
                        self.warn_unconvertible(c, &at, currency);
                    }
                    currency
                }
            },
        };
        if c.errors.len() > before {
            return None;
        }
        if ["gt", "gte", "lt", "lte"].iter().all(|k| get(k).is_none()) {
            c.error_value(
                loc,
                "no bound: write at least one of gt, gte, lt, lte, like { gte: 1500 }",
            );
            return None;
        }
        if range.gt.is_some() && range.gte.is_some() {
            c.error_key(
                &loc.key("gte"),
                "two lower bounds: write gt or gte, not both",
            );
            return None;
        }
        if range.lt.is_some() && range.lte.is_some() {
            c.error_key(
                &loc.key("lte"),
                "two upper bounds: write lt or lte, not both",
            );
            return None;
        }
        let lower = range
            .gt
            .map(|v| (v, "gt", true))
            .or(range.gte.map(|v| (v, "gte", false)));
        let upper = range
            .lt
            .map(|v| (v, "lt", true))
            .or(range.lte.map(|v| (v, "lte", false)));
        if let (Some((lo, lo_key, lo_strict)), Some((hi, hi_key, hi_strict))) = (lower, upper) {
            if lo > hi || (lo == hi && (lo_strict || hi_strict)) {
                c.error_value(
                    loc,
                    format!(
                        "no amount is both {lo_key} {lo} and {hi_key} {hi}: the range is empty"
                    ),
                );
                return None;
            }
        }
        Some(range)
    }

    /// `beneficiaries: [id, ...]` or `beneficiaries: { file: PATH }`.
    fn beneficiaries(&mut self, c: &mut Checker, v: &Value, loc: &Loc) -> Option<BTreeSet<String>> {
        if let Value::Map(entries) = v {
            c.known_keys(entries, loc, &["file"], |_| None);
            let Some((_, file)) = entries.iter().find(|(k, _)| k == "file") else {
                c.error_value(
                    loc,
                    "missing `file`: the path of a list of ids, relative to the policies directory",
                );
                return None;
            };
            let at = loc.key("file");
            let written = c.string(file, &at, "a path")?;
            return self.load_list(c, &at, &written);
        }
        set_of(c.names(
            v,
            loc,
            "a list of beneficiary ids, or { file: PATH }",
            beneficiary_id,
        ))
    }

    /// Resolves a path a stack names to its place under the policies
    /// directory, or records why it cannot be used.
    ///
    /// A YAML file directly in the directory is refused: it would be read
    /// as a stack too.
    fn reference(&self, c: &mut Checker, loc: &Loc, written: &str) -> Option<String> {
        match relative(written) {
            Ok(rel) if !rel.contains('/') && is_yaml_name(&rel) => {
                c.error_value(
                    loc,
                    format!(
                        "`{written}` is directly in the policies directory, where every YAML file is a stack: move it into a subdirectory, like registry/{rel}"
                    ),
                );
                None
            }
            Ok(rel) => Some(rel),
            Err(message) => {
                c.error_value(loc, message);
                None
            }
        }
    }

    /// A list of ids: a YAML list (`.yaml`, `.yml`), or text with one id per
    /// line (blank lines and `#` comments skipped).
    fn load_list(&mut self, c: &mut Checker, loc: &Loc, written: &str) -> Option<BTreeSet<String>> {
        let rel = self.reference(c, loc, written)?;
        if let Some(known) = self.lists.get(&rel) {
            return known.clone();
        }
        let text = self.read_file(&rel, Some((c, loc)))?;
        let file = shown(&self.dir, &rel);
        let ids = if is_yaml_name(&rel) {
            let mut lc = Checker::new(&file, &text);
            let ids = match node::parse(&file, &text) {
                Ok(root) => set_of(lc.names(
                    &root,
                    &Loc::root(),
                    "a list of beneficiary ids",
                    beneficiary_id,
                )),
                Err(e) => {
                    lc.errors.push(e);
                    None
                }
            };
            self.errors.extend(lc.errors);
            ids
        } else {
            let mut ids = BTreeSet::new();
            let mut ok = true;
            for (n, line) in text.lines().enumerate() {
                let id = line.trim();
                if id.is_empty() || id.starts_with('#') {
                    continue;
                }
                if let Err(message) = beneficiary_id(id) {
                    let column = line.find(id).map_or(1, |i| i + 1);
                    self.errors
                        .push(YamlError::new(&file, (n + 1, column), message));
                    ok = false;
                }
                ids.insert(id.to_string());
            }
            if ok && ids.is_empty() {
                self.errors.push(YamlError::new(
                    &file,
                    (1, 1),
                    "no ids in this list: a whitelist of nobody refuses everyone",
                ));
                ok = false;
            }
            ok.then_some(ids)
        };
        self.lists.insert(rel, ids.clone());
        ids
    }

    /// A beneficiary registry: YAML `{ beneficiaries: { ID: { tags: [..] } } }`
    /// or CSV `id,tags` with tags separated by `;` or spaces.
    fn load_registry(&mut self, c: &mut Checker, loc: &Loc, written: &str) {
        let Some(rel) = self.reference(c, loc, written) else {
            return;
        };
        if !self.registries.insert(rel.clone()) {
            return;
        }
        let is_csv = rel.ends_with(".csv");
        if !is_csv && !is_yaml_name(&rel) {
            c.error_value(loc, "a registry is a .yaml, .yml or .csv file");
            return;
        }
        let Some(text) = self.read_file(&rel, Some((c, loc))) else {
            return;
        };
        let file = shown(&self.dir, &rel);
        let entries = if is_csv {
            registry_csv(&file, &text)
        } else {
            registry_yaml(&file, &text)
        };
        for (id, beneficiary, pos) in entries {
            match (pos, self.registry_origin.get(&id)) {
                (Err(e), _) => self.errors.push(e),
                (Ok(pos), Some(other)) => self.errors.push(YamlError::new(
                    &file,
                    pos,
                    format!(
                        "beneficiary `{id}` is already in {}: each beneficiary is defined once, so its tags are not ambiguous",
                        shown(&self.dir, other).display()
                    ),
                )),
                (Ok(_), None) => {
                    self.registry_origin.insert(id.clone(), rel.clone());
                    self.registry.entries.insert(id, beneficiary);
                }
            }
        }
    }

    /// Two stacks for one agent (or two `*` stacks) would make the merged
    /// stack depend on file order.
    fn check_agents(&mut self) {
        let mut seen: BTreeMap<AgentSelector, PathBuf> = BTreeMap::new();
        for parsed in &self.stacks {
            let agent = &parsed.agent;
            if let Some(first) = seen.get(agent) {
                let who = match agent {
                    AgentSelector::All => "every agent (`*`)".to_string(),
                    AgentSelector::Named(name) => format!("agent `{name}`"),
                };
                self.errors.push(parsed.src().at_value(
                    &Loc::root().key("agent"),
                    &format!(
                        "{} already has a stack for {who}: an agent has one stack of its own, merged with the `*` stack; put these rules in one file",
                        first.display()
                    ),
                ));
            } else {
                seen.insert(agent.clone(), parsed.file.clone());
            }
        }
        // A stack for an agent leash.yaml does not know is usually a typo,
        // and leaves the real agent with only the `*` stack.
        if !self.config.agents.is_empty() {
            for parsed in &self.stacks {
                if let AgentSelector::Named(name) = &parsed.agent {
                    let known = self.config.agents.contains_key(name)
                        || self.config.default_agent.as_deref() == Some(name.as_str());
                    if !known {
                        let agents: Vec<&str> =
                            self.config.agents.keys().map(String::as_str).collect();
                        self.warnings.push(parsed.src().at_value(
                            &Loc::root().key("agent"),
                            &format!(
                                "leash.yaml does not list agent `{name}` (agents: {}); if this is a typo, the real agent gets only the `*` stack",
                                agents.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }

    /// Priorities are unique in every agent's merged stack: its own plus `*`
    /// (within one file that was checked while reading it). The deciding
    /// rule and `X-Leash-Rule` name a priority, so it must name one rule.
    fn check_priorities(&mut self) {
        let Some(all) = self.stacks.iter().find(|p| p.agent == AgentSelector::All) else {
            return;
        };
        let everyone: BTreeMap<u32, String> = all
            .meta
            .priorities
            .iter()
            .map(|(p, _, line)| (*p, format!("{}:{line}", all.file.display())))
            .collect();
        let mut errors = Vec::new();
        for parsed in &self.stacks {
            let AgentSelector::Named(agent) = &parsed.agent else {
                continue;
            };
            let src = parsed.src();
            for (priority, loc, _) in &parsed.meta.priorities {
                if let Some(origin) = everyone.get(priority) {
                    errors.push(src.at_value(
                        loc,
                        &format!(
                            "priority {priority} is also used by the `*` stack at {origin}, which is merged into every agent's stack: priorities must be unique in `{agent}`'s merged stack"
                        ),
                    ));
                }
            }
        }
        self.errors.extend(errors);
    }

    /// A tag that no beneficiary has makes `require_tags` refuse everyone,
    /// which is most often a typo (`kyc_verfied`).
    fn check_tags(&mut self) {
        let known: BTreeSet<&String> = self
            .registry
            .entries
            .values()
            .flat_map(|b| b.tags.iter())
            .collect();
        let mut warnings = Vec::new();
        for parsed in &self.stacks {
            let src = parsed.src();
            for (loc, tag) in &parsed.meta.tags {
                let message = if self.registries.is_empty() {
                    format!("no stack names a beneficiary `registry`, so no beneficiary has tag `{tag}` and this rule triggers on every intent")
                } else if !known.contains(tag) {
                    format!("no beneficiary in the registry has tag `{tag}`, so this rule triggers on every intent")
                } else {
                    continue;
                };
                warnings.push(src.at_value(loc, &message));
            }
        }
        self.warnings.extend(warnings);
    }
}

/// "`limit` is a DAILY_CAP key" for a key another rule type owns.
fn foreign_key(key: &str, ty: RuleType) -> Option<String> {
    let owners: Vec<&str> = RuleType::ALL
        .into_iter()
        .filter(|t| *t != ty && t.own_keys().contains(&key))
        .map(RuleType::name)
        .collect();
    if owners.is_empty() {
        return None;
    }
    Some(format!(
        "`{key}` is a {} key: {} {} rule does not take it (its own keys: {})",
        owners.join(" / "),
        article(ty.name()),
        ty.name(),
        ty.own_keys().join(", ")
    ))
}

/// "a" or "an" before an upper-case name, as it is read aloud.
pub(crate) fn article(name: &str) -> &'static str {
    if name.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

fn parse_action(s: &str) -> Result<Action, String> {
    for action in [Action::Reject, Action::RequireHuman, Action::AutoApprove] {
        if action.as_str() == s {
            return Ok(action);
        }
        if action.as_str().eq_ignore_ascii_case(s) {
            return Err(format!("write actions in upper case: {action}"));
        }
    }
    Err(format!(
        "`{s}` is not an action: REJECT, REQUIRE_HUMAN or AUTO_APPROVE"
    ))
}

/// Agent names, as `leash.yaml` accepts them: they travel in proxy URLs.
fn agent_name(s: &str) -> Result<String, String> {
    if crate::config::is_valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an agent name: 1 to 64 letters, digits, `.`, `_` or `-` (or \"*\" for every agent)"
        ))
    }
}

/// Categories are lower-case identifiers, as custom vendors declare them.
fn category(s: &str) -> Result<(), String> {
    let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a category: lower-case letters, digits and `_`, like ad_spend"
        ))
    }
}

/// Acting accounts are what the vendor calls them (an adapter's
/// `account_header` value): any id of letters, digits, `_`, `-` and `.`.
fn account_id(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an account id: at most 255 letters, digits, `_`, `-` and `.`"
        ))
    }
}

/// Operations are what adapters name them: `payment_intent.create`.
fn operation(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an operation name like payment_intent.create"
        ))
    }
}

/// Tags: `kyc_verified`, `audited-supplier`, `tier:1`.
fn tag(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a tag: letters, digits, `_`, `.`, `-` or `:`"
        ))
    }
}

/// Beneficiary ids are whatever the vendor uses (customer ids, IBANs,
/// wallet addresses): anything printable without spaces.
pub(crate) fn beneficiary_id(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty beneficiary id".to_string());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` is not a beneficiary id: no spaces or control characters",
            s.escape_debug()
        ));
    }
    Ok(())
}

/// Timezones are IANA names (`Europe/Paris`), as chrono-tz knows them.
pub(crate) fn parse_timezone(s: &str) -> Result<Tz, String> {
    if let Ok(tz) = Tz::from_str(s) {
        return Ok(tz);
    }
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    let near = names
        .iter()
        .find(|name| name.eq_ignore_ascii_case(s))
        .copied()
        .or_else(|| node::closest(s, &names));
    Err(match near {
        Some(name) => format!("`{s}` is not an IANA timezone: did you mean {name}?"),
        None => format!("`{s}` is not an IANA timezone like Europe/Paris or America/New_York"),
    })
}

/// A currency an amount may be written in: an ISO 4217 code, or an asset
/// (USDC, BTC) that the fx table has a rate for.
pub(crate) fn currency_code(s: &str, fx: &FxTable) -> Result<Currency, String> {
    if let Ok(currency) = Currency::parse(s) {
        if s.chars().all(|c| c.is_ascii_uppercase()) {
            return Ok(currency);
        }
        return Err(format!(
            "write currency codes in upper case: {}",
            currency.code()
        ));
    }
    if let Some(asset) = fx.rates.keys().find(|c| !c.is_iso() && c.code() == s) {
        return Ok(*asset);
    }
    Err(format!(
        "`{s}` is not an ISO 4217 currency code like EUR, nor an asset with a rate in leash.yaml fx.rates"
    ))
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A day (`mon`, `monday`) or a shorthand (`weekdays`, `weekend`), as the
/// days it covers, Monday first.
fn day_set(s: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    match s {
        "weekdays" => days[..5].fill(true),
        "weekend" => days[5..].fill(true),
        _ => {
            let Some(i) = DAY_NAMES
                .iter()
                .position(|d| *d == s)
                .or_else(|| LONG_DAY_NAMES.iter().position(|d| *d == s))
            else {
                let lower = s.to_ascii_lowercase();
                return Err(if lower != s && day_set(&lower).is_ok() {
                    format!("write days in lower case: {lower}")
                } else {
                    format!("`{s}` is not a day: mon, tue, wed, thu, fri, sat, sun, weekdays or weekend")
                });
            };
            if let Some(slot) = days.get_mut(i) {
                *slot = true;
            }
        }
    }
    Ok(days)
}

/// `"HH:MM"`, 24-hour. `"24:00"` is the end of the day: returned as
/// midnight with the flag set, as `RuleKind::TimeWindow` keeps it.
fn clock_time(s: &str) -> Result<(NaiveTime, bool), String> {
    let bad = || {
        format!("`{s}` is not a time: write \"HH:MM\" in 24-hour form, like \"08:00\" or \"24:00\"")
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h, m) == (24, 0) {
        return Ok((NaiveTime::MIN, true));
    }
    NaiveTime::from_hms_opt(h, m, 0)
        .map(|t| (t, false))
        .ok_or_else(bad)
}

fn is_yaml_name(rel: &str) -> bool {
    rel.ends_with(".yaml") || rel.ends_with(".yml")
}

/// A path written in a stack, as a `/`-separated path under the policies
/// directory.
pub(crate) fn relative(written: &str) -> Result<String, String> {
    if written.is_empty() {
        return Err("empty path".to_string());
    }
    if written.starts_with('~') {
        return Err(format!(
            "`{written}`: leash does not expand `~`; write a path relative to the policies directory"
        ));
    }
    let path = Path::new(written);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(part) => parts.push(part.to_string()),
                None => return Err(format!("`{written}` is not UTF-8")),
            },
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`{written}` leaves the policies directory: files a stack uses live inside it (relative paths, no `..`), so the set's hash and reloads cover them"
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("`{written}` names no file"));
    }
    Ok(parts.join("/"))
}

type RegistryEntry = (String, Beneficiary, Result<(usize, usize), YamlError>);

/// `{ beneficiaries: { ID: { tags: [a, b] } } }`.
fn registry_yaml(file: &Path, text: &str) -> Vec<RegistryEntry> {
    let root = match node::parse(file, text) {
        Ok(root) => root,
        Err(e) => return vec![(String::new(), Beneficiary::default(), Err(e))],
    };
    let mut c = Checker::new(file, text);
    let mut out = Vec::new();
    let top = Loc::root();
    if let Some(entries) = c.mapping(&root, &top, "a mapping with `beneficiaries`") {
        c.known_keys(entries, &top, &["beneficiaries"], |_| None);
        let list = entries.iter().find(|(k, _)| k == "beneficiaries");
        let loc = top.key("beneficiaries");
        match list {
            None => c.error_value(
                &top,
                "missing `beneficiaries`: { ID: { tags: [kyc_verified] } }",
            ),
            Some((_, v)) => {
                if let Some(ids) =
                    c.mapping(v, &loc, "a mapping of beneficiary id to { tags: [...] }")
                {
                    for (id, entry) in ids {
                        let at = loc.key(id);
                        if let Err(message) = beneficiary_id(id) {
                            c.error_key(&at, message);
                            continue;
                        }
                        let mut beneficiary = Beneficiary::default();
                        match entry {
                            // `ID:` alone: known, no tags.
                            Value::Null => {}
                            entry => {
                                let Some(fields) = c.mapping(entry, &at, "{ tags: [...] }") else {
                                    continue;
                                };
                                c.known_keys(fields, &at, &["tags"], |_| None);
                                if let Some((_, tags)) = fields.iter().find(|(k, _)| k == "tags") {
                                    let tags_at = at.key("tags");
                                    match tags {
                                        Value::Seq(items) if items.is_empty() => {}
                                        tags => {
                                            match c.names(tags, &tags_at, "a list of tags", tag) {
                                                Some(named) => {
                                                    beneficiary.tags =
                                                        named.into_iter().map(|(_, t)| t).collect()
                                                }
                                                None => continue,
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        let pos =
                            yaml::locate(text, &["beneficiaries", id], None).unwrap_or((1, 1));
                        out.push((id.clone(), beneficiary, Ok(pos)));
                    }
                }
            }
        }
    }
    out.extend(
        c.errors
            .into_iter()
            .map(|e| (String::new(), Beneficiary::default(), Err(e))),
    );
    out
}

/// `id,tags` per line; tags separated by `;` or spaces. A first line
/// `id,tags` is a header; blank lines and `#` comments are skipped. Fields
/// may be double-quoted (as spreadsheets export them).
fn registry_csv(file: &Path, text: &str) -> Vec<RegistryEntry> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut first = true;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let err = |column: usize, message: String| {
            (
                String::new(),
                Beneficiary::default(),
                Err(YamlError::new(file, (lineno, column), message)),
            )
        };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields = match csv_fields(line) {
            Ok(fields) => fields,
            Err((column, message)) => {
                out.push(err(column, message));
                continue;
            }
        };
        let is_header = first
            && fields
                .first()
                .is_some_and(|(_, f)| f.trim().eq_ignore_ascii_case("id"));
        first = false;
        if is_header {
            continue;
        }
        if fields.len() > 2 {
            let column = fields.get(2).map_or(1, |(c, _)| *c);
            out.push(err(
                column,
                format!(
                    "{} fields: a registry line is `id,tags` (tags separated by `;` or spaces)",
                    fields.len()
                ),
            ));
            continue;
        }
        let (id_column, id) = match fields.first() {
            Some((c, f)) => (*c, f.trim().to_string()),
            None => continue,
        };
        if let Err(message) = beneficiary_id(&id) {
            out.push(err(id_column, message));
            continue;
        }
        if let Some(line) = seen.get(&id) {
            out.push(err(
                id_column,
                format!("beneficiary `{id}` is already on line {line}"),
            ));
            continue;
        }
        seen.insert(id.clone(), lineno);
        let mut beneficiary = Beneficiary::default();
        let mut ok = true;
        if let Some((column, tags)) = fields.get(1) {
            for t in tags
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|t| !t.is_empty())
            {
                if let Err(message) = tag(t) {
                    out.push(err(*column, message));
                    ok = false;
                }
                beneficiary.tags.insert(t.to_string());
            }
        }
        if ok {
            out.push((id, beneficiary, Ok((lineno, id_column))));
        }
    }
    out
}

/// Splits one CSV line into `(1-based column, field)`, handling double
/// quotes (`""` inside a quoted field is one quote).
fn csv_fields(line: &str) -> Result<Vec<(usize, String)>, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let start = i + 1;
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err((start, "unclosed quote".to_string())),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(_) => return Err((i + 1, "text after a closing quote".to_string())),
            }
        } else {
            while let Some(c) = chars.get(i).filter(|c| **c != ',') {
                field.push(*c);
                i += 1;
            }
        }
        fields.push((start, field));
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}

/// The priority a rule item names, if it is a readable one.
fn written_priority(item: &Value) -> Option<u32> {
    let Value::Map(entries) = item else {
        return None;
    };
    match entries.iter().find(|(k, _)| k == "priority") {
        Some((_, Value::Int(p))) => u32::try_from(*p).ok(),
        _ => None,
    }
}

fn set_of(named: Option<Vec<(usize, String)>>) -> Option<BTreeSet<String>> {
    named.map(|v| v.into_iter().map(|(_, n)| n).collect())
}

/// "people: maya, alex; groups: partners", for unknown-approver messages.
fn known_approvers(directory: &ApproverDirectory) -> String {
    let people: Vec<&str> = directory.people.iter().map(String::as_str).collect();
    let groups: Vec<&str> = directory.groups.keys().map(String::as_str).collect();
    let mut out = format!("people: {}", people.join(", "));
    if !groups.is_empty() {
        out.push_str(&format!("; groups: {}", groups.join(", ")));
    }
    out
}

/// The approver directory of `leash.yaml`, resolved.
fn approver_directory(config: &Config) -> ApproverDirectory {
    ApproverDirectory {
        people: config.approvers.people.keys().cloned().collect(),
        groups: config
            .approvers
            .groups
            .iter()
            .map(|(name, members)| (name.clone(), members.iter().cloned().collect()))
            .collect(),
    }
}

/// The fx table of `leash.yaml`, with codes as [`Currency`] values. The
/// config already checked their shape; a base that is not in ISO 4217, or a
/// rate code that is neither ISO nor a valid asset, is reported at the
/// config file.
fn fx_table(config: &Config) -> Result<FxTable, YamlError> {
    let at = |path: &[&str], message: String| match &config.source {
        Some(file) => match yaml::read(file) {
            Ok(text) => YamlError::at_value(file, &text, path, message),
            Err(e) => e,
        },
        None => YamlError::new(Path::new(crate::config::DEFAULT_FILE), (0, 0), message),
    };
    let base = Currency::parse(&config.fx.base).map_err(|e| {
        at(
            &["fx", "base"],
            format!("fx.base: {e}: the base must be an ISO 4217 currency"),
        )
    })?;
    let mut rates = BTreeMap::new();
    for (code, rate) in &config.fx.rates {
        let currency = Currency::parse(code)
            .or_else(|_| Currency::asset(code))
            .map_err(|e| at(&["fx", "rates", code], format!("fx.rates.{code}: {e}")))?;
        rates.insert(currency, *rate);
    }
    Ok(FxTable { base, rates })
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
