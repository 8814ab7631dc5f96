//! Google Ads REST bodies (research §3.4): the proto3 JSON mapping of the
//! same messages the gRPC reader reads. Keys are lowerCamelCase, and
//! parsers also take the proto's snake_case names, so leash reads both and
//! refuses an object that spells one field both ways; int64 is a string or
//! a number (trap 21); enums a name or a number; a field mask is one
//! comma-separated string of lowerCamel paths.

use super::mutate::{
    ambiguous, unreadable, Action, BudgetOp, CampaignOp, Mutate, Operation, Read, Service, Status,
};
use super::proto::MUTATE_NO_MONEY;
use crate::adapters::json::Json;

/// `amount_micros` → `amountMicros`.
pub fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `amountMicros` → `amount_micros` (a mask path's segments each).
pub fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn members<'j>(json: &'j Json, what: &str) -> Read<&'j [(String, Json)]> {
    match json {
        Json::Object(members) => Ok(members),
        _ => unreadable(format!("{what} is not a JSON object")),
    }
}

/// The member `snake_name` of `object`, in either spelling; both spellings
/// at once are ambiguous (two parsers may keep different ones).
fn field<'j>(object: &'j [(String, Json)], snake_name: &str) -> Read<Option<&'j Json>> {
    let camel = lower_camel(snake_name);
    let mut found = object
        .iter()
        .filter(|(k, _)| *k == snake_name || *k == camel);
    let first = found.next().map(|(_, v)| v);
    if found.next().is_some() {
        return ambiguous(format!("the body spells {camel} two ways"));
    }
    // `null` is the field's default, as proto3 JSON parsers read it.
    Ok(first.filter(|v| **v != Json::Null))
}

fn bool_field(object: &[(String, Json)], snake_name: &str) -> Read<bool> {
    match field(object, snake_name)? {
        None => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => unreadable(format!("{} is not true or false", lower_camel(snake_name))),
    }
}

fn string_field(object: &[(String, Json)], snake_name: &str) -> Read<Option<String>> {
    match field(object, snake_name)? {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => unreadable(format!("{} is not a string", lower_camel(snake_name))),
    }
}

/// An int64 as a string or a number of digits, exactly (never a float;
/// `5e7` is refused rather than guessed).
fn int64_field(object: &[(String, Json)], snake_name: &str) -> Read<Option<i64>> {
    match field(object, snake_name)? {
        None => Ok(None),
        Some(value) => match value.as_i64() {
            Some(v) => Ok(Some(v)),
            None => unreadable(format!(
                "{} is not an int64 written as digits",
                lower_camel(snake_name)
            )),
        },
    }
}

/// `updateMask`: `"amountMicros,name"` (proto3 JSON) → snake paths.
fn mask_field(object: &[(String, Json)]) -> Read<Option<Vec<String>>> {
    match field(object, "update_mask")? {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(snake)
                .collect(),
        )),
        Some(_) => unreadable("updateMask is not a comma-separated string"),
    }
}

/// Reads the JSON body of `service`'s REST mutate for `customer_id` (from
/// the path). The body must not name another customer.
pub fn from_json(service: Service, customer_id: &str, body: &Json) -> Read<Mutate> {
    let top = members(body, "the body")?;
    if let Some(id) = string_field(top, "customer_id")? {
        if id != customer_id {
            return ambiguous("the body's customerId is not the path's");
        }
    }
    let list = match service {
        Service::Budgets | Service::Campaigns => "operations",
        Service::GoogleAds => "mutate_operations",
    };
    let items = match field(top, list)? {
        None => &[][..],
        Some(Json::Array(items)) => items.as_slice(),
        Some(_) => return unreadable(format!("{} is not an array", lower_camel(list))),
    };
    let mut operations = Vec::new();
    for item in items {
        let op = members(item, "an operation")?;
        operations.push(match service {
            Service::Budgets => budget_op(op)?,
            Service::Campaigns => campaign_op(op)?,
            Service::GoogleAds => mutate_op(op)?,
        });
    }
    Ok(Mutate {
        customer_id: customer_id.to_owned(),
        validate_only: bool_field(top, "validate_only")?,
        partial_failure: bool_field(top, "partial_failure")?,
        operations,
    })
}

fn mutate_op(op: &[(String, Json)]) -> Read<Operation> {
    let [(key, inner)] = op else {
        return match op.len() {
            0 => unreadable("a mutate operation sets no operation"),
            _ => ambiguous("a mutate operation sets more than one operation"),
        };
    };
    let name = snake(key);
    let inner = members(inner, "an operation")?;
    match name.as_str() {
        "campaign_budget_operation" => budget_op(inner),
        "campaign_operation" => campaign_op(inner),
        _ if MUTATE_NO_MONEY.iter().any(|(_, n)| *n == name) => Ok(Operation::NoMoney(name)),
        _ => Ok(Operation::Unknown(key.chars().take(60).collect())),
    }
}

/// The action of an operation object: exactly one of create, update,
/// remove (besides updateMask).
fn action(op: &[(String, Json)]) -> Read<(Action, &Json)> {
    let mut found = Vec::new();
    for (a, name) in [
        (Action::Create, "create"),
        (Action::Update, "update"),
        (Action::Remove, "remove"),
    ] {
        if let Some(value) = field(op, name)? {
            found.push((a, value));
        }
    }
    for (key, _) in op {
        if !matches!(
            key.as_str(),
            "create" | "update" | "remove" | "updateMask" | "update_mask"
        ) {
            return unreadable(format!(
                "an operation carries {:?}, which leash does not read",
                key.chars().take(40).collect::<String>()
            ));
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => unreadable("an operation sets no create, update or remove"),
        _ => ambiguous("an operation sets more than one of create, update and remove"),
    }
}

fn budget_op(op: &[(String, Json)]) -> Read<Operation> {
    let mask = mask_field(op)?;
    let (action, value) = action(op)?;
    if action == Action::Remove {
        return Ok(Operation::Budget(BudgetOp {
            action,
            resource_name: value.as_str().map(str::to_owned),
            amount_micros: None,
            total_amount_micros: None,
            mask,
        }));
    }
    let budget = members(value, "a campaign budget")?;
    Ok(Operation::Budget(BudgetOp {
        action,
        resource_name: string_field(budget, "resource_name")?,
        amount_micros: int64_field(budget, "amount_micros")?,
        total_amount_micros: int64_field(budget, "total_amount_micros")?,
        mask,
    }))
}

fn campaign_op(op: &[(String, Json)]) -> Read<Operation> {
    let mask = mask_field(op)?;
    let (action, value) = action(op)?;
    if action == Action::Remove {
        return Ok(Operation::Campaign(CampaignOp {
            action,
            resource_name: value.as_str().map(str::to_owned),
            status: Status::Unset,
            campaign_budget: None,
            mask,
        }));
    }
    let campaign = members(value, "a campaign")?;
    let status = match field(campaign, "status")? {
        None => Status::Unset,
        Some(Json::String(s)) => match s.as_str() {
            "ENABLED" => Status::Enabled,
            "PAUSED" => Status::Paused,
            "REMOVED" => Status::Removed,
            "UNSPECIFIED" => Status::Unset,
            other => Status::Other(other.chars().take(30).collect()),
        },
        Some(Json::Number(n)) => match n.as_str() {
            "0" => Status::Unset,
            "2" => Status::Enabled,
            "3" => Status::Paused,
            "4" => Status::Removed,
            other => Status::Other(other.chars().take(30).collect()),
        },
        Some(_) => return unreadable("a campaign's status is not a name or a number"),
    };
    Ok(Operation::Campaign(CampaignOp {
        action,
        resource_name: string_field(campaign, "resource_name")?,
        status,
        campaign_budget: string_field(campaign, "campaign_budget")?,
        mask,
    }))
}
