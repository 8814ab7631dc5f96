//! A JSON Schema for policy stack files, for editors.
//!
//! Policy authors work in VS Code, JetBrains or vim with the YAML language
//! server, which completes keys and flags mistakes as they type when a file
//! names a schema:
//!
//! ```yaml
//! # yaml-language-server: $schema=../leash-policy.schema.json
//! agent: growth-agent
//! ```
//!
//! The schema is a convenience, not the judge: [`super::load`] decides what
//! is valid, with checks no schema can make (approvers that exist in
//! `leash.yaml`, unique priorities across files, quorums that can be
//! reached). It is kept in step with the loader by construction where it
//! can be (key lists come from the loader's own tables) and by tests where
//! it cannot.
//!
//! Written by hand rather than derived: the loader reads a generic tree, so
//! there are no serde types to derive it from, and the per-type rules
//! (`if type is DAILY_CAP then limit is required and beneficiaries is
//! forbidden`) are exactly what a derive would not produce.

use serde_json::{json, Map, Value};

use super::load::{RuleType, COMMON_RULE_KEYS, STACK_KEYS};

/// The JSON Schema (draft 2020-12) of one policy stack file.
pub fn policy_json_schema() -> Value {
    let mut rule_properties = Map::new();
    for key in COMMON_RULE_KEYS {
        rule_properties.insert(key.to_string(), common_rule_key(key));
    }
    for ty in RuleType::ALL {
        for key in ty.own_keys() {
            if !rule_properties.contains_key(*key) {
                rule_properties.insert(key.to_string(), own_key(key));
            }
        }
    }
    let per_type: Vec<Value> = RuleType::ALL
        .into_iter()
        .map(|ty| {
            // Keys that belong to other types only are forbidden on this one.
            let mut forbidden = Map::new();
            for other in RuleType::ALL {
                for key in other.own_keys() {
                    let shared = COMMON_RULE_KEYS.contains(key) || ty.own_keys().contains(key);
                    if !shared {
                        forbidden.insert(key.to_string(), Value::Bool(false));
                    }
                }
            }
            let mut then = json!({ "properties": forbidden });
            if let (Some(obj), Some(extra)) = (then.as_object_mut(), type_requirements(ty)) {
                if let Some(extra) = extra.as_object() {
                    for (k, v) in extra {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
            json!({
                "if": { "properties": { "type": { "const": ty.name() } }, "required": ["type"] },
                "then": then
            })
        })
        .collect();

    let stack_properties: Map<String, Value> = STACK_KEYS
        .iter()
        .map(|key| (key.to_string(), stack_key(key)))
        .collect();

    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:leash:schema:policy-stack:v1",
        "title": "leash policy stack",
        "description": "One file of policies/: the rules that decide an agent's spend requests. `leash policy check` is the authority; this schema helps editors.",
        "type": "object",
        "additionalProperties": false,
        "required": ["agent"],
        "properties": stack_properties,
        "$defs": {
            "action": {
                "description": "REJECT > REQUIRE_HUMAN > AUTO_APPROVE: the most severe triggered rule decides.",
                "enum": ["REJECT", "REQUIRE_HUMAN", "AUTO_APPROVE"]
            },
            "currency": {
                "description": "ISO 4217 code (EUR), or an asset with a rate in leash.yaml fx.rates (USDC).",
                "type": "string",
                "pattern": "^[A-Z0-9]{2,10}$",
                "examples": ["EUR", "USD", "GBP", "JPY", "CHF", "USDC"]
            },
            "timezone": {
                "description": "IANA timezone name.",
                "type": "string",
                "enum": chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect::<Vec<_>>()
            },
            "amount": {
                "description": "An exact amount: a whole number, or a decimal in quotes (\"1500.50\"). Unquoted decimals are YAML floats and are refused.",
                "anyOf": [
                    { "type": "integer", "minimum": 0 },
                    { "type": "string", "pattern": "^(0|[1-9][0-9]*)(\\.[0-9]+)?$" }
                ]
            },
            "amountRange": {
                "description": "Every bound given must hold; at least one bound. Bounds are in the stack's currency unless `currency` says otherwise.",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "gt": { "$ref": "#/$defs/amount" },
                    "gte": { "$ref": "#/$defs/amount" },
                    "lt": { "$ref": "#/$defs/amount" },
                    "lte": { "$ref": "#/$defs/amount" },
                    "currency": { "$ref": "#/$defs/currency" }
                },
                "anyOf": [
                    { "required": ["gt"] },
                    { "required": ["gte"] },
                    { "required": ["lt"] },
                    { "required": ["lte"] }
                ],
                "not": { "anyOf": [ { "required": ["gt", "gte"] }, { "required": ["lt", "lte"] } ] }
            },
            "names": {
                "type": "array",
                "items": { "type": "string", "minLength": 1 },
                "minItems": 1,
                "uniqueItems": true
            },
            "vendors": {
                "description": "Vendors: the built-in adapters, or custom_vendors from leash.yaml.",
                "type": "array",
                "items": {
                    "anyOf": [
                        { "enum": crate::adapters::BUILTIN_NAMES },
                        { "type": "string", "pattern": "^[a-z][a-z0-9_]*$" }
                    ]
                },
                "minItems": 1,
                "uniqueItems": true
            },
            "categories": {
                "description": "Intent categories (payment, refund, transfer, payout, ad_spend, crypto_transfer, compute, reserved_capacity, gpu_reserved_capacity, ...).",
                "type": "array",
                "items": {
                    "anyOf": [
                        { "enum": ["payment", "refund", "transfer", "payout", "topup", "invoice", "ad_spend", "crypto_transfer", "compute", "reserved_capacity", "gpu_reserved_capacity", "procurement"] },
                        { "type": "string", "pattern": "^[a-z][a-z0-9_]*$" }
                    ]
                },
                "minItems": 1,
                "uniqueItems": true
            },
            "time": {
                "description": "24-hour \"HH:MM\"; \"24:00\" is the end of the day (only for `to`).",
                "type": "string",
                "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
            },
            "day": {
                "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun",
                         "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                         "weekdays", "weekend"]
            },
            "rule": {
                "type": "object",
                "additionalProperties": false,
                "required": ["priority", "type", "action"],
                "properties": rule_properties,
                "allOf": per_type
            }
        }
    })
}

fn stack_key(key: &str) -> Value {
    match key {
        "agent" => json!({
            "description": "The agent this stack applies to, or \"*\" (quoted) for every agent: the `*` stack is merged into each agent's own.",
            "type": "string",
            "anyOf": [ { "const": "*" }, { "pattern": "^[A-Za-z0-9._-]{1,64}$" } ]
        }),
        "currency" => json!({
            "description": "Currency of every amount in this stack. Default: fx.base of leash.yaml.",
            "$ref": "#/$defs/currency"
        }),
        "timezone" => json!({
            "description": "For cap windows (day/week/month) and time windows. Default: UTC.",
            "$ref": "#/$defs/timezone",
            "default": "UTC"
        }),
        "default" => json!({
            "description": "The action when no rule triggers. Default: REQUIRE_HUMAN.",
            "$ref": "#/$defs/action",
            "default": "REQUIRE_HUMAN"
        }),
        "mode" => json!({
            "description": "enforce: decisions apply. shadow: decide and record, but forward everything.",
            "enum": ["enforce", "shadow"],
            "default": "enforce"
        }),
        "unknown" => json!({
            "description": "The action for writes the vendor adapter does not recognise. Default: REQUIRE_HUMAN.",
            "$ref": "#/$defs/action",
            "default": "REQUIRE_HUMAN"
        }),
        "unreadable" => json!({
            "description": "The action for spend requests whose amount cannot be read exactly. Default: REQUIRE_HUMAN.",
            "enum": ["REQUIRE_HUMAN", "REJECT"],
            "default": "REQUIRE_HUMAN"
        }),
        "approvers" => json!({
            "description": "People or groups (from leash.yaml approvers) who can release holds from this stack's default, unknown and unreadable (and its REQUIRE_HUMAN rules that name nobody). Omitted: the approvers its REQUIRE_HUMAN rules name; never everyone.",
            "$ref": "#/$defs/names"
        }),
        "quorum" => json!({
            "description": "How many of the stack's `approvers` must approve its stack-level holds, or all of them.",
            "anyOf": [ { "type": "integer", "minimum": 1 }, { "const": "all" } ],
            "default": 1
        }),
        "registry" => json!({
            "description": "Beneficiary registry, relative to the policies directory: YAML { beneficiaries: { ID: { tags: [...] } } } or CSV id,tags.",
            "type": "string",
            "pattern": "\\.(ya?ml|csv)$"
        }),
        "description" => json!({ "description": "What this stack is for.", "type": "string" }),
        "rules" => json!({
            "description": "Every rule is evaluated; the most severe triggered action decides.",
            "type": "array",
            "items": { "$ref": "#/$defs/rule" }
        }),
        _ => json!({}),
    }
}

fn common_rule_key(key: &str) -> Value {
    match key {
        "priority" => json!({
            "description": "Unique in the agent's merged stack (its own file plus `*`). Lower is evaluated first and names the deciding rule among rules of the same action.",
            "type": "integer",
            "minimum": 0,
            "maximum": u32::MAX
        }),
        "type" => json!({
            "description": "What the rule checks.",
            "enum": RuleType::ALL.map(RuleType::name)
        }),
        "action" => json!({ "$ref": "#/$defs/action" }),
        "description" => {
            json!({ "description": "Shown in explanations and approval requests.", "type": "string" })
        }
        "shadow" => json!({
            "description": "Evaluate and record, but never let this rule change the decision.",
            "type": "boolean",
            "default": false
        }),
        "approvers" => json!({
            "description": "People or groups (from leash.yaml approvers) who can release this rule's hold. Omitted: the stack's approvers; never everyone.",
            "$ref": "#/$defs/names"
        }),
        "quorum" => json!({
            "description": "How many distinct approvers must approve, or all of them.",
            "anyOf": [ { "type": "integer", "minimum": 1 }, { "const": "all" } ],
            "default": 1
        }),
        "vendors" => json!({
            "description": "Filter: only intents from these vendors.",
            "$ref": "#/$defs/vendors"
        }),
        "accounts" => json!({
            "description": "Filter: only intents made for these acting accounts (read from the vendor's acting-account header, e.g. a connected account). Not on DAILY_CAP.",
            "$ref": "#/$defs/names"
        }),
        "operations" => json!({
            "description": "Filter: only these operations (payment_intent.create, ...).",
            "$ref": "#/$defs/names"
        }),
        "categories" => json!({
            "description": "Filter: only intents in these categories. On CATEGORY_BLOCKLIST: the categories blocked.",
            "$ref": "#/$defs/categories"
        }),
        "amount" => json!({
            "description": "Filter: only amounts in this range. On AMOUNT_THRESHOLD: the range that triggers.",
            "$ref": "#/$defs/amountRange"
        }),
        _ => json!({}),
    }
}

fn own_key(key: &str) -> Value {
    match key {
        "limit" => json!({
            "description": "DAILY_CAP: triggers when spent in the window + this amount > limit.",
            "$ref": "#/$defs/amount"
        }),
        "scope" => json!({
            "description": "DAILY_CAP: whose spend is counted.",
            "enum": ["agent", "all_agents", "beneficiary", "category"],
            "default": "agent"
        }),
        "window" => json!({
            "description": "DAILY_CAP: the calendar window, in the stack's timezone.",
            "enum": ["day", "week", "month"],
            "default": "day"
        }),
        "beneficiaries" => json!({
            "description": "BENEFICIARY_WHITELIST: allowed beneficiary ids, or { file: PATH } (a YAML list, or one id per line).",
            "anyOf": [
                { "$ref": "#/$defs/names" },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["file"],
                    "properties": { "file": { "type": "string", "minLength": 1 } }
                }
            ]
        }),
        "require_tags" => json!({
            "description": "BENEFICIARY_WHITELIST: tags (from the registry) the beneficiary must all have.",
            "$ref": "#/$defs/names"
        }),
        "days" => json!({
            "description": "TIME_WINDOW: the days the window is open. Default: every day.",
            "type": "array",
            "items": { "$ref": "#/$defs/day" },
            "minItems": 1,
            "uniqueItems": true
        }),
        "from" => {
            json!({ "description": "TIME_WINDOW: opens at (inclusive).", "$ref": "#/$defs/time" })
        }
        "to" => {
            json!({ "description": "TIME_WINDOW: closes at (exclusive); before `from` wraps past midnight.", "$ref": "#/$defs/time" })
        }
        "timezone" => json!({
            "description": "TIME_WINDOW: overrides the stack's timezone.",
            "$ref": "#/$defs/timezone"
        }),
        "when" => json!({
            "description": "TIME_WINDOW: trigger inside or outside the window.",
            "enum": ["inside", "outside"]
        }),
        "allow_agents" => {
            json!({ "description": "AGENT_SCOPE: agents allowed.", "$ref": "#/$defs/names" })
        }
        "max_amount" => {
            json!({ "description": "AGENT_SCOPE: largest amount allowed.", "$ref": "#/$defs/amount" })
        }
        "allow_vendors" => {
            json!({ "description": "AGENT_SCOPE: vendors allowed.", "$ref": "#/$defs/vendors" })
        }
        "allow_categories" => {
            json!({ "description": "AGENT_SCOPE: categories allowed.", "$ref": "#/$defs/categories" })
        }
        _ => json!({}),
    }
}

/// What each type requires beyond the common keys.
fn type_requirements(ty: RuleType) -> Option<Value> {
    let any_of = |keys: &[&str]| -> Value {
        Value::Array(keys.iter().map(|k| json!({ "required": [k] })).collect())
    };
    Some(match ty {
        RuleType::AmountThreshold => json!({ "required": ["amount"] }),
        RuleType::DailyCap => json!({ "required": ["limit"] }),
        RuleType::BeneficiaryWhitelist => {
            json!({ "anyOf": any_of(&["beneficiaries", "require_tags"]) })
        }
        RuleType::TimeWindow => json!({
            "required": ["when"],
            "anyOf": any_of(&["days", "from", "to"]),
            "dependentRequired": { "from": ["to"], "to": ["from"] }
        }),
        RuleType::AgentScope => json!({
            "anyOf": any_of(&["allow_agents", "max_amount", "allow_vendors", "allow_categories"])
        }),
        RuleType::CategoryBlocklist => json!({ "required": ["categories"] }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_draft_2020_12_and_round_trips() {
        let schema = policy_json_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let text = serde_json::to_string_pretty(&schema).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, schema);
    }

    #[test]
    fn schema_names_every_stack_key_and_rule_type() {
        let schema = policy_json_schema();
        let props = schema["properties"].as_object().unwrap();
        for key in STACK_KEYS {
            assert!(props.contains_key(*key), "stack key {key}");
            assert_ne!(props[*key], json!({}), "stack key {key} has no schema");
        }
        assert_eq!(props.len(), STACK_KEYS.len());
        let types = schema["$defs"]["rule"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
        assert_eq!(
            names,
            [
                "AMOUNT_THRESHOLD",
                "DAILY_CAP",
                "BENEFICIARY_WHITELIST",
                "TIME_WINDOW",
                "AGENT_SCOPE",
                "CATEGORY_BLOCKLIST"
            ]
        );
    }

    #[test]
    fn every_rule_key_has_a_schema_and_each_type_a_branch() {
        let schema = policy_json_schema();
        let rule = &schema["$defs"]["rule"];
        let props = rule["properties"].as_object().unwrap();
        let mut keys: Vec<&str> = COMMON_RULE_KEYS.to_vec();
        for ty in RuleType::ALL {
            keys.extend_from_slice(ty.own_keys());
        }
        for key in &keys {
            assert!(props.contains_key(*key), "rule key {key}");
            assert_ne!(props[*key], json!({}), "rule key {key} has no schema");
        }
        let branches = rule["allOf"].as_array().unwrap();
        assert_eq!(branches.len(), 6);
        // DAILY_CAP: requires limit, forbids the other types' keys, allows its own.
        let cap = branches
            .iter()
            .find(|b| b["if"]["properties"]["type"]["const"] == "DAILY_CAP")
            .unwrap();
        assert_eq!(cap["then"]["required"], json!(["limit"]));
        let forbidden = cap["then"]["properties"].as_object().unwrap();
        assert_eq!(forbidden["beneficiaries"], json!(false));
        assert_eq!(forbidden["timezone"], json!(false));
        assert!(!forbidden.contains_key("limit"));
        assert!(
            !forbidden.contains_key("amount"),
            "amount is a filter on DAILY_CAP"
        );
        assert!(!forbidden.contains_key("categories"));
    }

    #[test]
    fn every_ref_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("$ref", Value::String(r)) => out.push(r),
                            _ => refs(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let schema = policy_json_schema();
        let mut found = Vec::new();
        refs(&schema, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/$defs/").unwrap();
            assert!(schema["$defs"].get(name).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn timezones_are_listed_for_completion() {
        let schema = policy_json_schema();
        let zones = schema["$defs"]["timezone"]["enum"].as_array().unwrap();
        assert!(zones.iter().any(|z| z == "Europe/Paris"));
        assert!(zones.iter().any(|z| z == "UTC"));
    }
}
