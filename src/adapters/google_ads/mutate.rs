//! A Google Ads mutate as leash reads it, whichever transport carried it
//! (gRPC protobuf or REST JSON): the customer, `validate_only`, and each
//! operation that may move money. Then what it means: the intents, or why
//! there are none.

use std::collections::BTreeMap;

use prost::Message;
use rust_decimal::Decimal;

use super::proto::{self, BudgetAction, CampaignAction};
use crate::intent::{Classification, IntentDraft};
use crate::money::{Currency, Money};

/// What could not be read, and whether it is missing or read two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unreadable(String),
    Ambiguous(String),
}

pub type Read<T> = Result<T, Problem>;

pub fn unreadable<T>(why: impl Into<String>) -> Read<T> {
    Err(Problem::Unreadable(why.into()))
}

pub fn ambiguous<T>(why: impl Into<String>) -> Read<T> {
    Err(Problem::Ambiguous(why.into()))
}

/// The three mutate methods leash reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `CampaignBudgetService/MutateCampaignBudgets`, `campaignBudgets:mutate`.
    Budgets,
    /// `CampaignService/MutateCampaigns`, `campaigns:mutate`.
    Campaigns,
    /// `GoogleAdsService/Mutate`, `googleAds:mutate`.
    GoogleAds,
}

impl Service {
    /// The operation name of the request as a whole.
    pub fn operation(self) -> &'static str {
        match self {
            Service::Budgets => "campaign_budget.mutate",
            Service::Campaigns => "campaign.mutate",
            Service::GoogleAds => "google_ads.mutate",
        }
    }
}

/// One mutate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutate {
    pub customer_id: String,
    pub validate_only: bool,
    /// Read for the record: with or without it every operation is
    /// evaluated (trap 24), and the request gets the most severe result.
    pub partial_failure: bool,
    pub operations: Vec<Operation>,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Remove,
}

/// One operation of a mutate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Budget(BudgetOp),
    Campaign(CampaignOp),
    /// An operation leash knows changes no money (an ad, a keyword).
    NoMoney(String),
    /// An operation leash does not read (named by field).
    Unknown(String),
}

/// A campaign budget create, update or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetOp {
    pub action: Action,
    pub resource_name: Option<String>,
    pub amount_micros: Option<i64>,
    pub total_amount_micros: Option<i64>,
    /// The update mask's paths in snake_case (REST's lowerCamel converted).
    pub mask: Option<Vec<String>>,
}

/// A campaign's status as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Unset,
    Enabled,
    Paused,
    Removed,
    /// UNKNOWN, or a value leash does not know: taken as enabling.
    Other(String),
}

/// A campaign create, update or remove: what decides whether it starts
/// spending a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignOp {
    pub action: Action,
    pub resource_name: Option<String>,
    pub status: Status,
    pub campaign_budget: Option<String>,
    pub mask: Option<Vec<String>>,
}

/// Reads a gRPC request message of `service`.
pub fn from_grpc(service: Service, message: &[u8]) -> Read<Mutate> {
    fn bad(e: impl std::fmt::Display) -> Problem {
        Problem::Unreadable(format!("the protobuf message could not be read: {e}"))
    }
    let top = proto::fields(message).map_err(bad)?;
    for (tag, name) in [
        (1, "customer_id"),
        (3, "partial_failure"),
        (4, "validate_only"),
    ] {
        if proto::count(&top, tag) > 1 {
            return ambiguous(format!("{name} is given more than once"));
        }
    }
    match service {
        Service::Budgets => {
            let request = proto::MutateCampaignBudgetsRequest::decode(message).map_err(bad)?;
            let mut operations = Vec::new();
            for (op, field) in request
                .operations
                .iter()
                .zip(top.iter().filter(|f| f.tag == 2))
            {
                operations.push(grpc_budget_op(op, field.bytes)?);
            }
            Ok(Mutate {
                customer_id: request.customer_id,
                validate_only: request.validate_only,
                partial_failure: request.partial_failure,
                operations,
            })
        }
        Service::Campaigns => {
            let request = proto::MutateCampaignsRequest::decode(message).map_err(bad)?;
            let mut operations = Vec::new();
            for (op, field) in request
                .operations
                .iter()
                .zip(top.iter().filter(|f| f.tag == 2))
            {
                operations.push(grpc_campaign_op(op, field.bytes)?);
            }
            Ok(Mutate {
                customer_id: request.customer_id,
                validate_only: request.validate_only,
                partial_failure: request.partial_failure,
                operations,
            })
        }
        Service::GoogleAds => {
            let request = proto::MutateGoogleAdsRequest::decode(message).map_err(bad)?;
            let mut operations = Vec::new();
            for (op, field) in request
                .mutate_operations
                .iter()
                .zip(top.iter().filter(|f| f.tag == 2))
            {
                let members = proto::fields(field.bytes).map_err(bad)?;
                let [member] = members.as_slice() else {
                    return match members.len() {
                        0 => unreadable("a mutate operation sets no operation"),
                        _ => ambiguous(
                            "a mutate operation sets more than one operation (the last would win)",
                        ),
                    };
                };
                let read = match member.tag {
                    proto::MUTATE_BUDGET => match &op.campaign_budget_operation {
                        Some(inner) => grpc_budget_op(inner, member.bytes)?,
                        None => return unreadable("campaign_budget_operation could not be read"),
                    },
                    proto::MUTATE_CAMPAIGN => match &op.campaign_operation {
                        Some(inner) => grpc_campaign_op(inner, member.bytes)?,
                        None => return unreadable("campaign_operation could not be read"),
                    },
                    tag => match proto::MUTATE_NO_MONEY.iter().find(|(t, _)| *t == tag) {
                        Some((_, name)) => Operation::NoMoney((*name).to_owned()),
                        None => Operation::Unknown(format!("mutate operation field {tag}")),
                    },
                };
                operations.push(read);
            }
            Ok(Mutate {
                customer_id: request.customer_id,
                validate_only: request.validate_only,
                partial_failure: request.partial_failure,
                operations,
            })
        }
    }
}

/// The oneof and mask of an operation given once each: an SDK never sends
/// two, and the protobuf rule (the last wins) is one more reading to get
/// right for no gain.
fn check_operation_fields(raw: &[u8], what: &str) -> Read<()> {
    let fields = proto::fields(raw)
        .map_err(|e| Problem::Unreadable(format!("the {what} could not be read: {e}")))?;
    let actions = fields.iter().filter(|f| matches!(f.tag, 1..=3)).count();
    if actions > 1 {
        return ambiguous(format!(
            "a {what} sets create, update or remove more than once"
        ));
    }
    if proto::count(&fields, 4) > 1 {
        return ambiguous(format!("a {what} carries two update masks"));
    }
    Ok(())
}

/// Fields of the resource inside an operation given at most once.
fn check_resource_fields(raw: &[u8], singular: &[(u32, &str)]) -> Read<()> {
    let Some(inner) = proto::fields(raw)
        .ok()
        .and_then(|f| f.into_iter().find(|f| matches!(f.tag, 1 | 2)))
    else {
        return Ok(());
    };
    let fields = proto::fields(inner.bytes)
        .map_err(|e| Problem::Unreadable(format!("the resource could not be read: {e}")))?;
    for (tag, name) in singular {
        if proto::count(&fields, *tag) > 1 {
            return ambiguous(format!("{name} is given more than once in one operation"));
        }
    }
    Ok(())
}

fn grpc_budget_op(op: &proto::CampaignBudgetOperation, raw: &[u8]) -> Read<Operation> {
    check_operation_fields(raw, "campaign budget operation")?;
    check_resource_fields(
        raw,
        &[
            (1, "resource_name"),
            (21, "amount_micros"),
            (22, "total_amount_micros"),
        ],
    )?;
    let mask = op.update_mask.as_ref().map(|m| m.paths.clone());
    let (action, budget) = match &op.operation {
        None => return unreadable("a campaign budget operation sets no create, update or remove"),
        Some(BudgetAction::Create(b)) => (Action::Create, Some(b)),
        Some(BudgetAction::Update(b)) => (Action::Update, Some(b)),
        Some(BudgetAction::Remove(name)) => {
            return Ok(Operation::Budget(BudgetOp {
                action: Action::Remove,
                resource_name: Some(name.clone()),
                amount_micros: None,
                total_amount_micros: None,
                mask,
            }))
        }
    };
    let budget = budget.cloned().unwrap_or_default();
    Ok(Operation::Budget(BudgetOp {
        action,
        resource_name: (!budget.resource_name.is_empty()).then_some(budget.resource_name),
        amount_micros: budget.amount_micros,
        total_amount_micros: budget.total_amount_micros,
        mask,
    }))
}

fn grpc_campaign_op(op: &proto::CampaignOperation, raw: &[u8]) -> Read<Operation> {
    check_operation_fields(raw, "campaign operation")?;
    check_resource_fields(
        raw,
        &[(1, "resource_name"), (5, "status"), (62, "campaign_budget")],
    )?;
    let mask = op.update_mask.as_ref().map(|m| m.paths.clone());
    let (action, campaign) = match &op.operation {
        None => return unreadable("a campaign operation sets no create, update or remove"),
        Some(CampaignAction::Create(c)) => (Action::Create, c.clone()),
        Some(CampaignAction::Update(c)) => (Action::Update, c.clone()),
        Some(CampaignAction::Remove(name)) => {
            return Ok(Operation::Campaign(CampaignOp {
                action: Action::Remove,
                resource_name: Some(name.clone()),
                status: Status::Unset,
                campaign_budget: None,
                mask,
            }))
        }
    };
    let status = match campaign.status {
        0 => Status::Unset,
        proto::CAMPAIGN_ENABLED => Status::Enabled,
        proto::CAMPAIGN_PAUSED => Status::Paused,
        proto::CAMPAIGN_REMOVED => Status::Removed,
        other => Status::Other(other.to_string()),
    };
    Ok(Operation::Campaign(CampaignOp {
        action,
        resource_name: (!campaign.resource_name.is_empty()).then_some(campaign.resource_name),
        status,
        campaign_budget: campaign.campaign_budget,
        mask,
    }))
}

/// The customer's currency as leash knows it: the currency and where it
/// came from, or why it is not known.
pub type Known = Result<(Currency, String), String>;

/// A customer id as the API takes it: digits only (the libraries strip
/// the dashes of `123-456-7890`).
pub fn customer_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

fn named(mask: &Option<Vec<String>>, path: &str) -> bool {
    mask.as_ref().is_some_and(|m| m.iter().any(|p| p == path))
}

/// A resource name's customer (`customers/123/campaignBudgets/4` → `123`).
fn customer_of(resource_name: &str) -> Option<&str> {
    resource_name.strip_prefix("customers/")?.split('/').next()
}

/// What `mutate` means, with the customer's currency `currency` (asked
/// only when some operation spends).
pub fn decide(
    vendor: &str,
    service: Service,
    mutate: &Mutate,
    currency: impl FnOnce() -> Known,
) -> Classification {
    let op_name = service.operation();
    let unreadable = |reason: String| Classification::Unreadable {
        operation: op_name.to_owned(),
        reason,
    };
    if !customer_id_ok(&mutate.customer_id) {
        return unreadable(format!(
            "the customer id {:?} is not digits only",
            mutate.customer_id.chars().take(30).collect::<String>()
        ));
    }
    if mutate.validate_only {
        // Executes nothing (trap 24), whatever the operations say.
        return Classification::Safe {
            operation: format!("{op_name}.validate_only"),
        };
    }
    let customer = mutate.customer_id.as_str();
    // Budgets created in this request, by resource name: a campaign that
    // links one (a temporary id `-1`) spends what that budget's intent
    // already counts.
    let created: Vec<&str> = mutate
        .operations
        .iter()
        .filter_map(|op| match op {
            Operation::Budget(b) if b.action == Action::Create => b.resource_name.as_deref(),
            _ => None,
        })
        .collect();
    let mut spends: Vec<(String, i64)> = Vec::new();
    let mut worst: Option<Classification> = None;
    let mut note = |c: Classification| {
        let rank = |c: &Classification| match c {
            Classification::Ambiguous { .. } => 3,
            Classification::Unreadable { .. } => 2,
            Classification::Unknown { .. } => 1,
            _ => 0,
        };
        if worst.as_ref().is_none_or(|w| rank(&c) > rank(w)) {
            worst = Some(c);
        }
    };
    for (i, op) in mutate.operations.iter().enumerate() {
        let at = format!("operation {i}");
        let foreign = |name: &Option<String>| {
            name.as_deref()
                .and_then(customer_of)
                .is_some_and(|c| c != customer)
        };
        match op {
            Operation::NoMoney(_) => {}
            Operation::Unknown(what) => note(Classification::Unknown {
                operation: op_name.to_owned(),
                reason: format!("{at} is a {what}, which leash does not read"),
            }),
            Operation::Budget(b) => {
                if foreign(&b.resource_name) {
                    note(Classification::Ambiguous {
                        operation: op_name.to_owned(),
                        reason: format!("{at} names a budget of another customer than {customer}"),
                    });
                    continue;
                }
                let name = match b.action {
                    Action::Create => "campaign_budget.create",
                    Action::Update => "campaign_budget.update",
                    Action::Remove => continue,
                };
                let daily = b.amount_micros.is_some() || named(&b.mask, "amount_micros");
                let total =
                    b.total_amount_micros.is_some() || named(&b.mask, "total_amount_micros");
                let amount = match (daily, total) {
                    (true, true) => {
                        note(Classification::Ambiguous {
                            operation: name.to_owned(),
                            reason: format!("{at} sets both amount_micros and total_amount_micros, which exclude each other"),
                        });
                        continue;
                    }
                    (true, false) => b.amount_micros,
                    (false, true) => b.total_amount_micros,
                    (false, false) if b.action == Action::Update => continue,
                    (false, false) => {
                        note(unreadable_op(name, format!("{at} creates a budget with neither amount_micros nor total_amount_micros")));
                        continue;
                    }
                };
                match amount {
                    Some(micros) if micros >= 0 => spends.push((name.to_owned(), micros)),
                    Some(micros) => note(unreadable_op(
                        name,
                        format!("{at} sets a negative amount ({micros} micros)"),
                    )),
                    None => note(unreadable_op(
                        name,
                        format!("{at}'s update_mask names the amount but the budget sets none"),
                    )),
                }
            }
            Operation::Campaign(c) => {
                if foreign(&c.resource_name) || foreign(&c.campaign_budget) {
                    note(Classification::Ambiguous {
                        operation: op_name.to_owned(),
                        reason: format!(
                            "{at} names a campaign or budget of another customer than {customer}"
                        ),
                    });
                    continue;
                }
                let enabling = match c.action {
                    Action::Remove => false,
                    // A new campaign is enabled unless it says otherwise.
                    Action::Create => !matches!(c.status, Status::Paused | Status::Removed),
                    Action::Update => {
                        let sets_status = c.status != Status::Unset || named(&c.mask, "status");
                        let new_budget =
                            c.campaign_budget.is_some() || named(&c.mask, "campaign_budget");
                        (sets_status && !matches!(c.status, Status::Paused | Status::Removed))
                            || (new_budget && !matches!(c.status, Status::Paused | Status::Removed))
                    }
                };
                let covered = c
                    .campaign_budget
                    .as_deref()
                    .is_some_and(|budget| created.contains(&budget));
                if enabling && !covered {
                    let name = match c.action {
                        Action::Create => "campaign.create",
                        _ => "campaign.update",
                    };
                    note(unreadable_op(name, format!(
                        "{at} lets a campaign spend its budget ({}), whose amount this request does not carry",
                        c.campaign_budget.as_deref().unwrap_or("the campaign's current budget")
                    )));
                }
            }
        }
    }
    if let Some(worst) = worst {
        return worst;
    }
    if spends.is_empty() {
        return Classification::Safe {
            operation: op_name.to_owned(),
        };
    }
    let (currency, source) = match currency() {
        Ok(known) => known,
        Err(reason) => return unreadable(reason),
    };
    let mut drafts = Vec::new();
    for (name, micros) in spends {
        let amount = match micros_to_major(micros, currency) {
            Some(amount) => amount,
            None => return unreadable(format!("{micros} micros cannot be read as an amount")),
        };
        let mut sources = BTreeMap::new();
        sources.insert("currency".to_owned(), source.clone());
        drafts.push(IntentDraft {
            vendor: vendor.to_owned(),
            operation: name,
            amount: Some(Money::new(amount, currency)),
            beneficiary: Some(customer.to_owned()),
            category: "ad_spend".to_owned(),
            idempotency_key: None,
            sources,
        });
    }
    Classification::spend(op_name, drafts)
}

fn unreadable_op(name: &str, reason: String) -> Classification {
    Classification::Unreadable {
        operation: name.to_owned(),
        reason,
    }
}

/// Micros ÷ 10^6, exactly (trap 22), shown with at least the currency's
/// own decimals (`50000000` EUR micros → `50.00`), more when the micros
/// have them (`1234567` → `1.234567`).
pub fn micros_to_major(micros: i64, currency: Currency) -> Option<Decimal> {
    let mut amount = Decimal::try_from_i128_with_scale(i128::from(micros), 6)
        .ok()?
        .normalize();
    let exponent = currency.iso_exponent().unwrap_or(2);
    if amount.scale() < exponent {
        amount.rescale(exponent);
    }
    Some(amount)
}
