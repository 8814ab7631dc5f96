//! Who may approve a hold, when a need is met, and who is calling.
//!
//! A rule names approvers as written (`[maya]`, `[partners]`; a rule or
//! stack default naming nobody falls back to the stack's approvers, never to
//! everyone) with a quorum (`2`, `all`). A [`Need`] is that rule's
//! requirement resolved once, when the hold is made, into a set of people
//! and a number. Counting is then simple and stable: a need is met when at
//! least `quorum` distinct people of its `eligible` set approved.
//!
//! [`ApproverTokens`] turns a bearer token or a Slack member ID into one of
//! those people's names, and nothing else: the name a vote is counted under
//! is always one leash derived from a credential, never one the caller typed.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::{Approval, Vote};
use crate::config::Approvers;
use crate::policy::engine::ApprovalNeed;
use crate::policy::model::{ApproverDirectory, Quorum};

/// One triggered REQUIRE_HUMAN rule's requirement, resolved to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    /// The rule's priority; `None` when the hold comes from the stack's
    /// `default`, `unknown` or `unreadable` setting.
    pub priority: Option<u32>,
    /// People or groups as the rule (or stack) wrote them.
    pub approvers: Vec<String>,
    /// The people who may approve for this need, resolved at creation.
    pub eligible: BTreeSet<String>,
    /// How many distinct people of `eligible` must approve; at least 1.
    pub quorum: u32,
}

impl Need {
    /// Resolves a decision's approval need against the approver directory.
    ///
    /// An empty `approvers` list means nobody (never "everyone in the
    /// directory": a hold must name who may release it); `quorum: all` means every eligible person. A quorum is never below 1,
    /// even for `all` over nobody: a need that nobody can meet keeps the
    /// hold closed (it can still be rejected or expire), where a quorum of
    /// 0 would release it with no approval at all. The policy loader already
    /// refuses both; this is the last line.
    pub fn resolve(need: &ApprovalNeed, directory: &ApproverDirectory) -> Need {
        let eligible = directory.resolve(need.approvers.iter());
        Need::new(need.priority, need.approvers.clone(), eligible, need.quorum)
    }

    /// A need over an explicit set of people.
    pub fn new(
        priority: Option<u32>,
        approvers: Vec<String>,
        eligible: BTreeSet<String>,
        quorum: Quorum,
    ) -> Need {
        let quorum = match quorum {
            Quorum::Count(n) => n,
            Quorum::All => u32::try_from(eligible.len()).unwrap_or(u32::MAX),
        }
        .max(1);
        Need {
            priority,
            approvers,
            eligible,
            quorum,
        }
    }

    /// The distinct eligible people who approved.
    pub fn approved_by<'a>(&self, approvals: &'a [Approval]) -> BTreeSet<&'a str> {
        approvals
            .iter()
            .filter(|a| a.decision == Vote::Approve && self.eligible.contains(&a.approver))
            .map(|a| a.approver.as_str())
            .collect()
    }

    pub fn is_met(&self, approvals: &[Approval]) -> bool {
        usize::try_from(self.quorum).is_ok_and(|q| self.approved_by(approvals).len() >= q)
    }

    /// Whether enough people are eligible for the quorum ever to be reached.
    pub fn can_be_met(&self) -> bool {
        usize::try_from(self.quorum).is_ok_and(|q| self.eligible.len() >= q)
    }

    /// `1 more of [alex, sam] for rule 30`, or `None` when met. Lists only
    /// the eligible people who have not approved yet: those are the ones to
    /// chase.
    pub fn missing(&self, approvals: &[Approval]) -> Option<String> {
        let approved = self.approved_by(approvals);
        let have = u32::try_from(approved.len()).unwrap_or(u32::MAX);
        if have >= self.quorum {
            return None;
        }
        let waiting: Vec<&str> = self
            .eligible
            .iter()
            .map(String::as_str)
            .filter(|p| !approved.contains(p))
            .collect();
        let more = self.quorum - have;
        if !self.can_be_met() {
            return Some(format!(
                "{} can never be met: it needs {} approvals and only [{}] may give them",
                self.label(),
                self.quorum,
                self.eligible
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Some(format!(
            "{more} more of [{}] for {}",
            waiting.join(", "),
            self.label()
        ))
    }

    /// `rule 30`, or `the stack default` for a need no rule named.
    pub fn label(&self) -> String {
        match self.priority {
            Some(p) => format!("rule {p}"),
            None => "the stack default".to_string(),
        }
    }
}

/// Tells which approver is calling, from a bearer token (admin API) or a
/// Slack member ID (button clicks).
///
/// Tokens are compared as SHA-256 digests in constant time, against every
/// person, without stopping at a match: the time an answer takes says
/// nothing about which digest came close or which person matched.
#[derive(Clone, Default)]
pub struct ApproverTokens {
    people: Vec<PersonIds>,
}

#[derive(Clone)]
struct PersonIds {
    name: String,
    token_sha256: Option<[u8; 32]>,
    slack: Option<String>,
}

impl fmt::Debug for ApproverTokens {
    /// Names only: digests are not secrets, but they have no business in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApproverTokens")
            .field(
                "people",
                &self.people.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ApproverTokens {
    /// From `approvers.people` in `leash.yaml`.
    pub fn new(approvers: &Approvers) -> Self {
        Self {
            people: approvers
                .people
                .iter()
                .map(|(name, person)| PersonIds {
                    name: name.clone(),
                    token_sha256: person.token_sha256,
                    slack: person.slack.clone(),
                })
                .collect(),
        }
    }

    /// The approver whose token this is. An empty token is nobody's.
    ///
    /// The config check refuses two identities with one token, so at most
    /// one person can match; should two ever match anyway, this refuses
    /// both rather than pick one.
    pub fn authenticate(&self, bearer_token: &str) -> Option<String> {
        if bearer_token.is_empty() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(bearer_token.as_bytes()).into();
        let mut found: Option<usize> = None;
        let mut matches = 0u32;
        for (index, person) in self.people.iter().enumerate() {
            // People without a token compare against a digest no token can
            // produce in practice, so every person costs the same.
            let (expected, has_token) = match &person.token_sha256 {
                Some(d) => (*d, Choice::from(1)),
                None => ([0u8; 32], Choice::from(0)),
            };
            let hit = digest.ct_eq(&expected) & has_token;
            matches = u32::conditional_select(&matches, &(matches + 1), hit);
            if bool::from(hit) {
                found = Some(index);
            }
        }
        if matches != 1 {
            return None;
        }
        found
            .and_then(|i| self.people.get(i))
            .map(|p| p.name.clone())
    }

    /// The approver with this Slack member ID (exact: IDs are not names,
    /// and `U024BE7LH` is not `u024be7lh`).
    pub fn by_slack_id(&self, id: &str) -> Option<String> {
        if id.is_empty() {
            return None;
        }
        self.people
            .iter()
            .find(|p| p.slack.as_deref() == Some(id))
            .map(|p| p.name.clone())
    }
}

/// Turns a hold that nobody could release into a refusal, as the proxy
/// decides it (and `policy test`, `explain` and `replay` with it): a hold
/// that no listed approver can release would only wait for its expiry while
/// telling the agent to wait, and "nobody named" never means "anyone".
/// Shadow decisions are left alone (they are never enforced). Returns the
/// resolved approval needs for a hold that stays one.
pub fn refuse_unreleasable(
    decision: &mut crate::policy::engine::Decision,
    directory: &ApproverDirectory,
) -> Vec<Need> {
    let needs: Vec<Need> = decision
        .approvals
        .iter()
        .map(|need| Need::resolve(need, directory))
        .collect();
    if decision.action == crate::policy::model::Action::RequireHuman
        && !decision.shadow
        && (needs.is_empty() || needs.iter().any(|n| !n.can_be_met()))
    {
        decision.action = crate::policy::model::Action::Reject;
        decision.reason = format!("{}; no approver can release it", decision.reason);
    }
    needs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Person;
    use chrono::Utc;

    fn sha(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    fn vote(who: &str, decision: Vote) -> Approval {
        Approval {
            approver: who.into(),
            decision,
            channel: super::super::Channel::Api,
            at: Utc::now(),
            comment: None,
            stated: None,
        }
    }

    fn directory() -> ApproverDirectory {
        ApproverDirectory {
            people: ["alex", "maya", "sam"].map(String::from).into(),
            groups: [(
                "partners".to_string(),
                ["alex", "sam"].map(String::from).into(),
            )]
            .into(),
        }
    }

    #[test]
    fn needs_resolve_groups_all_and_never_everyone() {
        let dir = directory();
        let all_partners = Need::resolve(
            &ApprovalNeed {
                priority: Some(30),
                approvers: vec!["partners".into()],
                quorum: Quorum::All,
            },
            &dir,
        );
        assert_eq!(all_partners.eligible.len(), 2);
        assert_eq!(all_partners.quorum, 2);
        assert_eq!(all_partners.approvers, vec!["partners".to_string()]);

        // Naming nobody is nobody, not "anyone in the directory".
        let unnamed = Need::resolve(
            &ApprovalNeed {
                priority: None,
                approvers: vec![],
                quorum: Quorum::Count(1),
            },
            &dir,
        );
        assert!(unnamed.eligible.is_empty());
        assert!(!unnamed.can_be_met());
        assert_eq!(unnamed.label(), "the stack default");

        // `all` over nobody is not 0: such a need can never be met.
        let nobody = Need::new(Some(5), vec![], BTreeSet::new(), Quorum::All);
        assert_eq!(nobody.quorum, 1);
        assert!(!nobody.can_be_met());
        assert!(nobody.missing(&[]).unwrap().contains("can never be met"));
        let zero = Need::new(Some(5), vec![], dir.people.clone(), Quorum::Count(0));
        assert_eq!(zero.quorum, 1);
        assert!(!zero.is_met(&[]));
    }

    #[test]
    fn counting_is_by_distinct_eligible_people() {
        let need = Need::new(
            Some(30),
            vec!["partners".into()],
            ["alex", "sam"].map(String::from).into(),
            Quorum::Count(2),
        );
        let alex = vote("alex", Vote::Approve);
        let maya = vote("maya", Vote::Approve);
        assert_eq!(
            need.missing(&[]).unwrap(),
            "2 more of [alex, sam] for rule 30"
        );
        assert_eq!(
            need.missing(&[alex.clone(), alex.clone(), maya]).unwrap(),
            "1 more of [sam] for rule 30"
        );
        assert!(!need.is_met(&[alex.clone(), vote("sam", Vote::Reject)]));
        assert!(need.is_met(&[alex, vote("sam", Vote::Approve)]));
    }

    #[test]
    fn tokens_authenticate_only_their_owner() {
        let mut approvers = Approvers::default();
        approvers.people.insert(
            "maya".into(),
            Person {
                token_sha256: Some(sha("maya-secret")),
                slack: Some("U024BE7LH".into()),
            },
        );
        approvers.people.insert(
            "alex".into(),
            Person {
                token_sha256: Some(sha("alex-secret")),
                slack: None,
            },
        );
        approvers.people.insert(
            "sam".into(),
            Person {
                token_sha256: None,
                slack: Some("U0SAM".into()),
            },
        );
        let tokens = ApproverTokens::new(&approvers);
        assert_eq!(tokens.authenticate("maya-secret").as_deref(), Some("maya"));
        assert_eq!(tokens.authenticate("alex-secret").as_deref(), Some("alex"));
        assert_eq!(tokens.authenticate("maya-secret "), None);
        assert_eq!(tokens.authenticate("MAYA-SECRET"), None);
        assert_eq!(tokens.authenticate(""), None);
        // A person with no token cannot be reached with the digest of
        // nothing, or of anything.
        assert_eq!(tokens.authenticate("sam"), None);
        assert_eq!(tokens.by_slack_id("U024BE7LH").as_deref(), Some("maya"));
        assert_eq!(tokens.by_slack_id("U0SAM").as_deref(), Some("sam"));
        assert_eq!(tokens.by_slack_id("u024be7lh"), None);
        assert_eq!(tokens.by_slack_id(""), None);
        assert_eq!(tokens.by_slack_id("maya"), None);
        let shown = format!("{tokens:?}");
        assert!(!shown.contains(&hex::encode(sha("maya-secret"))), "{shown}");
    }
}
