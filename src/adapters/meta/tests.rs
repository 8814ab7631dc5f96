//! The Meta adapter on the research's exact bodies (§2.2–§2.5).

use super::*;
use crate::adapters::json;
use crate::intent::{Facts, IntentDraft, NO_FACTS};
use proptest::prelude::*;

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");
const TOKEN: &str = "access_token=EAABsecret&appsecret_proof=d1a2b3";

fn adapter() -> MetaAdapter {
    let mut s = crate::config::MetaSettings::default();
    for (act, cur) in [
        ("act_1001", "EUR"),
        ("act_2002", "JPY"),
        ("act_3003", "HUF"),
        ("act_4004", "BHD"),
        ("act_1234567890", "EUR"),
        ("act_5005", "KWD"),
    ] {
        s.accounts.insert(act.into(), cur.into());
    }
    MetaAdapter::new(&s)
}

fn view<'a>(
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    ct: Option<&'a str>,
    body: &'a [u8],
    facts: &'a Facts,
) -> RequestView<'a> {
    RequestView {
        method,
        host: "graph.facebook.com",
        path,
        query,
        content_type: ct,
        idempotency_key: None,
        account: None,
        headers: &[],
        body,
        facts,
    }
}

fn post(path: &str, body: &str) -> Classification {
    adapter().classify(&view(
        "POST",
        path,
        Some(TOKEN),
        FORM,
        body.as_bytes(),
        &NO_FACTS,
    ))
}

fn drafts(c: &Classification) -> &[IntentDraft] {
    match c {
        Classification::Spend(d) => d,
        other => panic!("expected a spend, got {other:?}"),
    }
}

fn amounts(c: &Classification) -> Vec<String> {
    drafts(c)
        .iter()
        .map(|d| d.amount.unwrap().to_string())
        .collect()
}

fn reason(c: &Classification) -> &str {
    match c {
        Classification::Unknown { reason, .. }
        | Classification::Unreadable { reason, .. }
        | Classification::Ambiguous { reason, .. } => reason,
        other => panic!("expected a reason, got {other:?}"),
    }
}

fn assert_kind(c: &Classification, kind: &str, needle: &str) {
    assert_eq!(c.kind(), kind, "{c:?}");
    assert!(
        reason(c).contains(needle),
        "{needle:?} not in {:?}",
        reason(c)
    );
}

fn facts(answers: &[(&str, &str)]) -> Facts {
    let mut f = Facts::default();
    for (path, body) in answers {
        f.insert(path.to_string(), Ok(json::parse(body.as_bytes()).unwrap()));
    }
    f
}

/// research §2.2: the Python SDK's ad set create, exactly.
const SDK_ADSET: &str = "name=My+First+Adset&daily_budget=2000&campaign_id=120200000000000001&bid_amount=100&billing_event=LINK_CLICKS&optimization_goal=LINK_CLICKS&targeting=%7B%22facebook_positions%22%3A%5B%22feed%22%5D%2C%22geo_locations%22%3A%7B%22countries%22%3A%5B%22US%22%5D%7D%7D&status=PAUSED";

#[test]
fn the_python_sdks_adset_create_is_its_budget() {
    let c = post("/v25.0/act_1001/adsets", SDK_ADSET);
    let d = &drafts(&c)[0];
    assert_eq!(drafts(&c).len(), 1);
    assert_eq!(d.amount.unwrap().to_string(), "20.00 EUR");
    assert_eq!(d.operation, "adset.create");
    assert_eq!(d.category, "ad_spend");
    assert_eq!(d.vendor, "meta");
    assert_eq!(d.beneficiary.as_deref(), Some("act_1001"));
    assert_eq!(d.sources["bid_amount"], "1.00 EUR");
    assert_eq!(d.sources["daily_budget"], "20.00 EUR");
    assert_eq!(d.sources["currency"], "EUR (vendors.meta.accounts)");
}

#[test]
fn the_python_sdks_campaign_create_and_the_node_sdks_json() {
    // {'name':…, 'objective':'OUTCOME_LEADS', 'status':'PAUSED', 'daily_budget':'1000', 'special_ad_categories':[]}
    let c = post(
        "/v25.0/act_1001/campaigns",
        "name=Leads&objective=OUTCOME_LEADS&status=PAUSED&daily_budget=1000&special_ad_categories=%5B%5D",
    );
    assert_eq!(amounts(&c), ["10.00 EUR"]);
    assert_eq!(drafts(&c)[0].operation, "campaign.create");
    // The Node SDK: JSON body, token in the query.
    let body = br#"{"name":"Leads","objective":"OUTCOME_LEADS","status":"PAUSED","daily_budget":1000,"special_ad_categories":[]}"#;
    let c = adapter().classify(&view(
        "POST",
        "/v25.0/act_1001/campaigns",
        Some(TOKEN),
        JSON,
        body,
        &NO_FACTS,
    ));
    assert_eq!(amounts(&c), ["10.00 EUR"]);
    let body = br#"{"name":"x","lifetime_budget":"250000","status":"ACTIVE"}"#;
    let c = adapter().classify(&view(
        "POST",
        "/act_1001/campaigns",
        Some(TOKEN),
        JSON,
        body,
        &NO_FACTS,
    ));
    assert_eq!(amounts(&c), ["2500.00 EUR"], "unversioned path");
}

#[test]
fn offsets_eur_jpy_huf_bhd() {
    for (act, want) in [
        ("act_1001", "20.00 EUR"),
        ("act_2002", "2000 JPY"),
        // Meta: whole forints (ISO would read 20.00).
        ("act_3003", "2000.00 HUF"),
        // Meta: hundredths (ISO would read 2.000).
        ("act_4004", "20.000 BHD"),
    ] {
        let c = post(&format!("/v25.0/{act}/adsets"), "name=x&daily_budget=2000");
        assert_eq!(amounts(&c), [want], "{act}");
    }
    let c = post("/v25.0/act_5005/adsets", "daily_budget=2000");
    assert_kind(&c, "unreadable", "no offset");
}

#[test]
fn several_money_fields_count_the_largest_whole() {
    let c = post(
        "/v25.0/act_1001/campaigns",
        "name=x&daily_budget=5000&spend_cap=100000",
    );
    assert_eq!(amounts(&c), ["1000.00 EUR"]);
    let d = &drafts(&c)[0];
    assert_eq!(d.sources["daily_budget"], "50.00 EUR");
    assert!(d.sources["amount"].contains("spend_cap"));
    // A bid alone is an intent of the bid.
    let c = post(
        "/v25.0/act_1001/adsets",
        "name=x&bid_amount=150&campaign_id=1",
    );
    assert_eq!(amounts(&c), ["1.50 EUR"]);
}

#[test]
fn creates_without_a_budget_and_harmless_writes_are_safe() {
    for (path, body) in [
        (
            "/v25.0/act_1001/campaigns",
            "name=x&objective=OUTCOME_SALES&status=ACTIVE&special_ad_categories=%5B%5D",
        ),
        (
            "/v25.0/act_1001/adsets",
            "name=x&campaign_id=1&status=PAUSED&targeting=%7B%7D",
        ),
        (
            "/v25.0/act_1001/ads",
            "name=x&adset_id=1&creative=%7B%22creative_id%22%3A%221%22%7D&status=ACTIVE",
        ),
        (
            "/v25.0/act_1001/adcreatives",
            "name=x&object_story_spec=%7B%7D",
        ),
        ("/v25.0/120200000000000777/", "name=renamed&status=PAUSED"),
        ("/v25.0/act_1001", "name=Growth"),
    ] {
        assert_eq!(post(path, body).kind(), "safe", "{path} {body}");
    }
    let c = adapter().classify(&view(
        "DELETE",
        "/v25.0/120200000000000777",
        Some(TOKEN),
        None,
        b"",
        &NO_FACTS,
    ));
    assert_eq!(c.kind(), "safe");
}

#[test]
fn validate_only_is_safe() {
    let c = post(
        "/v25.0/act_1001/adsets",
        &format!("{SDK_ADSET}&execution_options=%5B%22validate_only%22%5D"),
    );
    assert_eq!(c, safe("adset.create.validate_only"));
    let c = post(
        "/v25.0/act_1001/adsets",
        "daily_budget=2000&execution_options=%5B%22include_recommendations%22%5D",
    );
    assert_eq!(c.kind(), "spend");
    // Not a list: read as the write it is.
    let c = post(
        "/v25.0/act_1001/adsets",
        "daily_budget=2000&execution_options=validate_only",
    );
    assert_eq!(c.kind(), "spend");
    // validate_only does not make an ambiguous write readable.
    let c = post(
        "/v25.0/act_1001/adsets",
        "daily_budget=1&daily_budget=2000&execution_options=%5B%22validate_only%22%5D",
    );
    assert_eq!(c.kind(), "ambiguous");
}

#[test]
fn duplicate_keys_and_query_plus_body_are_ambiguous() {
    assert_kind(
        &post(
            "/v25.0/act_1001/adsets",
            "daily_budget=1&daily_budget=200000",
        ),
        "ambiguous",
        "daily_budget",
    );
    let a = adapter();
    let c = a.classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        Some("access_token=x&daily_budget=200000"),
        FORM,
        b"daily_budget=1",
        &NO_FACTS,
    ));
    assert_kind(&c, "ambiguous", "daily_budget");
    let c = a.classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        Some("access_token=x&daily_budget=200000"),
        JSON,
        br#"{"daily_budget":1}"#,
        &NO_FACTS,
    ));
    assert_kind(&c, "ambiguous", "both the query string and the body");
    let c = a.classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        Some(TOKEN),
        JSON,
        br#"{"daily_budget":1,"daily_budget":200000}"#,
        &NO_FACTS,
    ));
    assert_kind(&c, "ambiguous", "daily_budget");
    // Inside a JSON-string value too.
    let c = post("/v25.0/120200000000000777", "adset_budgets=%5B%7B%22adset_id%22%3A%221%22%2C%22daily_budget%22%3A1%2C%22daily_budget%22%3A9%7D%5D");
    assert_kind(&c, "ambiguous", "daily_budget");
}

#[test]
fn money_in_the_query_string_counts() {
    let c = adapter().classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        Some("daily_budget=2000&access_token=x"),
        FORM,
        b"",
        &NO_FACTS,
    ));
    assert_eq!(amounts(&c), ["20.00 EUR"]);
    // A GET with `method=post` is a write.
    let c = adapter().classify(&view(
        "GET",
        "/v25.0/act_1001/adsets",
        Some("method=post&daily_budget=2000&access_token=x"),
        None,
        b"",
        &NO_FACTS,
    ));
    assert_eq!(amounts(&c), ["20.00 EUR"]);
    // A POST with `method=get` is read as the write it may be.
    let c = post("/v25.0/act_1001/adsets", "method=get&daily_budget=2000");
    assert_eq!(c.kind(), "spend");
}

#[test]
fn reads_are_safe_and_odd_reads_are_not() {
    let a = adapter();
    for q in [Some("fields=name&fields=id"), Some(TOKEN), None] {
        let c = a.classify(&view(
            "GET",
            "/v25.0/act_1001/campaigns",
            q,
            None,
            b"",
            &NO_FACTS,
        ));
        assert_eq!(c, safe("read"), "{q:?}");
    }
    let c = a.classify(&view(
        "GET",
        "/v25.0/act_1001/adsets",
        None,
        FORM,
        b"method=post&daily_budget=%zz",
        &NO_FACTS,
    ));
    assert_eq!(c.kind(), "unknown", "{c:?}");
    let q = format!(
        "batch={}",
        urlencode(
            r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000"}]"#
        )
    );
    let c = a.classify(&view("GET", "/v25.0/", Some(&q), None, b"", &NO_FACTS));
    assert_eq!(
        amounts(&c),
        ["20.00 EUR"],
        "a batch in a GET's query is read"
    );
}

#[test]
fn amounts_must_be_plain_integers() {
    for bad in ["20.00", "-1", "+5", "1e3", "0200", "", "20%2000"] {
        let c = post("/v25.0/act_1001/adsets", &format!("daily_budget={bad}"));
        assert_eq!(c.kind(), "unreadable", "{bad}: {c:?}");
    }
    let c = adapter().classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        None,
        JSON,
        br#"{"daily_budget":2000.5}"#,
        &NO_FACTS,
    ));
    assert_eq!(c.kind(), "unreadable");
    let c = adapter().classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        None,
        JSON,
        br#"{"daily_budget":{"x":1}}"#,
        &NO_FACTS,
    ));
    assert_eq!(c.kind(), "unreadable");
}

#[test]
fn unknown_fields_paths_and_unread_money() {
    assert_kind(
        &post("/v25.0/act_1001/adsets", "daily_budget=2000&mystery=1"),
        "unknown",
        "mystery",
    );
    assert_kind(
        &post("/v25.0/act_1001/adsets", "budget_schedule_specs=%5B%5D"),
        "unreadable",
        "budget_schedule_specs",
    );
    assert_kind(
        &post("/v25.0/act_1001/campaigns", "buying_type=RESERVED"),
        "unreadable",
        "buying_type",
    );
    assert_kind(
        &post("/v25.0/act_1001", "spend_cap=100000"),
        "unreadable",
        "spend_cap",
    );
    assert_kind(
        &post("/v25.0/act_1001/async_batch_requests", "adbatch=%5B%5D"),
        "unreadable",
        "adbatch",
    );
    for path in [
        "/v25.0/act_1001//adsets",
        "/v25.0/act_1001/ad%73ets",
        "/v25.0/me/adaccounts",
        "/v25.0/act_1001/nonsense",
        "/",
    ] {
        assert_eq!(post(path, "daily_budget=2000").kind(), "unknown", "{path}");
    }
    let c = adapter().classify(&view(
        "POST",
        "/v25.0/act_1001/adimages",
        Some(TOKEN),
        Some("multipart/form-data; boundary=x"),
        b"--x--",
        &NO_FACTS,
    ));
    assert_eq!(c.kind(), "unknown", "{c:?}");
    let c = adapter().classify(&view(
        "POST",
        "/v25.0/act_1001/adsets",
        Some(TOKEN),
        Some("text/plain"),
        b"daily_budget=1",
        &NO_FACTS,
    ));
    assert_eq!(c.kind(), "unreadable", "{c:?}");
    assert_eq!(
        adapter()
            .classify(&view(
                "PUT",
                "/v25.0/act_1001/adsets",
                None,
                FORM,
                b"",
                &NO_FACTS
            ))
            .kind(),
        "unknown"
    );
}

#[test]
fn the_currency_is_looked_up_once_when_not_configured() {
    let a = MetaAdapter::default();
    let req = |f| {
        view(
            "POST",
            "/v25.0/act_777/adsets",
            Some(TOKEN),
            FORM,
            SDK_ADSET.as_bytes(),
            f,
        )
    };
    let wanted = a.lookups(&req(&NO_FACTS));
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].path, "/v25.0/act_777?fields=currency");
    assert!(!wanted[0].path.contains("access_token"));
    assert_kind(
        &a.classify(&req(&NO_FACTS)),
        "unreadable",
        "was not looked up",
    );
    let got = facts(&[(
        "/v25.0/act_777?fields=currency",
        r#"{"currency":"JPY","id":"act_777"}"#,
    )]);
    assert!(a.lookups(&req(&got)).iter().all(|l| got.has(&l.path)));
    let c = a.classify(&req(&got));
    assert_eq!(amounts(&c), ["2000 JPY"]);
    assert_eq!(
        drafts(&c)[0].sources["currency"],
        "JPY (GET /v25.0/act_777?fields=currency)"
    );
    // Unversioned: looked up unversioned.
    let v = view(
        "POST",
        "/act_777/adsets",
        Some(TOKEN),
        FORM,
        b"daily_budget=1",
        &NO_FACTS,
    );
    assert_eq!(a.lookups(&v)[0].path, "/act_777?fields=currency");
    // A failed lookup leaves it unreadable, with the failure.
    let mut failed = Facts::default();
    failed.insert(
        "/v25.0/act_777?fields=currency".into(),
        Err("meta answered 400".into()),
    );
    assert_kind(
        &a.classify(&req(&failed)),
        "unreadable",
        "meta answered 400",
    );
    // A configured account needs no lookup.
    assert!(adapter()
        .lookups(&view(
            "POST",
            "/v25.0/act_1001/adsets",
            None,
            FORM,
            b"daily_budget=1",
            &NO_FACTS
        ))
        .is_empty());
}

#[test]
fn an_update_by_id_looks_up_the_objects_account_then_its_currency() {
    let a = MetaAdapter::default();
    let req = |f| {
        view(
            "POST",
            "/v25.0/120200000000000777/",
            Some(TOKEN),
            FORM,
            b"daily_budget=7500",
            f,
        )
    };
    assert_eq!(
        a.lookups(&req(&NO_FACTS))[0].path,
        "/v25.0/120200000000000777?fields=account_id"
    );
    let one = facts(&[(
        "/v25.0/120200000000000777?fields=account_id",
        r#"{"account_id":"4004","id":"120200000000000777"}"#,
    )]);
    let second: Vec<String> = a.lookups(&req(&one)).into_iter().map(|l| l.path).collect();
    assert!(
        second.contains(&"/v25.0/act_4004?fields=currency".to_owned()),
        "{second:?}"
    );
    let both = facts(&[
        (
            "/v25.0/120200000000000777?fields=account_id",
            r#"{"account_id":"4004","id":"120200000000000777"}"#,
        ),
        ("/v25.0/act_4004?fields=currency", r#"{"currency":"BHD"}"#),
    ]);
    let c = a.classify(&req(&both));
    let d = &drafts(&c)[0];
    assert_eq!(d.amount.unwrap().to_string(), "75.000 BHD");
    assert_eq!(d.operation, "object.update");
    assert_eq!(d.beneficiary.as_deref(), Some("act_4004"));
    assert!(d.sources["beneficiary"].contains("fields=account_id"));
    assert!(a.stays_fresh("/v25.0/120200000000000777?fields=account_id"));
    assert!(a.stays_fresh("/v25.0/act_4004?fields=currency"));
    assert!(!a.stays_fresh("/v25.0/1?fields=account_id,daily_budget,lifetime_budget"));
}

#[test]
fn activation_and_copies_spend_the_looked_up_budget() {
    let a = adapter();
    let path = "/v25.0/555?fields=account_id,daily_budget,lifetime_budget";
    let activate = |f| view("POST", "/v25.0/555", Some(TOKEN), FORM, b"status=ACTIVE", f);
    assert_eq!(a.lookups(&activate(&NO_FACTS))[0].path, path);
    let got = facts(&[(
        path,
        r#"{"account_id":"1001","daily_budget":"5000","lifetime_budget":"0","id":"555"}"#,
    )]);
    let c = a.classify(&activate(&got));
    assert_eq!(amounts(&c), ["50.00 EUR"]);
    assert_eq!(drafts(&c)[0].operation, "object.activate");
    let copy = view(
        "POST",
        "/v25.0/555/copies",
        Some(TOKEN),
        FORM,
        b"deep_copy=false&status_option=PAUSED",
        &got,
    );
    let c = a.classify(&copy);
    assert_eq!(amounts(&c), ["50.00 EUR"]);
    assert_eq!(drafts(&c)[0].operation, "object.copy");
    let none = facts(&[(path, r#"{"account_id":"1001","id":"555"}"#)]);
    assert_kind(
        &a.classify(&activate(&none)),
        "unreadable",
        "no budget of its own",
    );
    // Pausing needs nothing.
    assert_eq!(post("/v25.0/555", "status=PAUSED").kind(), "safe");
}

#[test]
fn adset_budgets_inside_a_campaign_are_intents_of_their_own() {
    let a = adapter();
    let got = facts(&[("/v25.0/900?fields=account_id", r#"{"account_id":"1001"}"#)]);
    let body = br#"{"adset_budgets":[{"adset_id":"11","daily_budget":3000},{"adset_id":"12","lifetime_budget":"90000"}],"adset_bid_amounts":{"11":250}}"#;
    let c = a.classify(&view("POST", "/v25.0/900", Some(TOKEN), JSON, body, &got));
    assert_eq!(amounts(&c), ["30.00 EUR", "900.00 EUR", "2.50 EUR"]);
    assert!(drafts(&c)
        .iter()
        .all(|d| d.operation == "adset.update" && d.beneficiary.as_deref() == Some("act_1001")));
    let bad = br#"{"adset_budgets":[{"adset_id":"11","daily_budget":3000,"x":1}]}"#;
    assert_eq!(
        a.classify(&view("POST", "/v25.0/900", None, JSON, bad, &got))
            .kind(),
        "unreadable"
    );
}

/// research §2.5: the Python SDK's batch, exactly as posted.
const SDK_BATCH: &str = "batch=%5B%7B%22body%22%3A%22name%3DSpring%2520sale%26objective%3DOUTCOME_TRAFFIC%26status%3DPAUSED%26daily_budget%3D5000%26special_ad_categories%3D%255B%255D%22%2C%22method%22%3A%22POST%22%2C%22relative_url%22%3A%22act_1234567890%2Fcampaigns%22%7D%2C%7B%22body%22%3A%22daily_budget%3D7500%22%2C%22method%22%3A%22POST%22%2C%22relative_url%22%3A%22120200000000000777%2F%22%7D%5D";

#[test]
fn the_python_sdks_batch_is_every_items_intent() {
    let a = adapter();
    let req = |f| {
        view(
            "POST",
            "/v25.0/",
            Some(TOKEN),
            FORM,
            SDK_BATCH.as_bytes(),
            f,
        )
    };
    let wanted: Vec<String> = a
        .lookups(&req(&NO_FACTS))
        .into_iter()
        .map(|l| l.path)
        .collect();
    assert_eq!(wanted, ["/v25.0/120200000000000777?fields=account_id"]);
    let got = facts(&[(
        "/v25.0/120200000000000777?fields=account_id",
        r#"{"account_id":"1234567890"}"#,
    )]);
    let c = a.classify(&req(&got));
    assert_eq!(amounts(&c), ["50.00 EUR", "75.00 EUR"]);
    assert_eq!(drafts(&c)[0].operation, "campaign.create");
    assert_eq!(drafts(&c)[1].operation, "object.update");
    // The same batch in the query string.
    let q = format!("{TOKEN}&{SDK_BATCH}");
    let c = a.classify(&view("POST", "/v25.0/", Some(&q), FORM, b"", &got));
    assert_eq!(amounts(&c), ["50.00 EUR", "75.00 EUR"]);
    // And in both: ambiguous.
    let c = a.classify(&view(
        "POST",
        "/v25.0/",
        Some(&q),
        FORM,
        SDK_BATCH.as_bytes(),
        &got,
    ));
    assert_eq!(c.kind(), "ambiguous");
}

#[test]
fn the_node_sdks_batch_json_with_raw_item_bodies() {
    let body = br#"{"batch":[{"method":"POST","relative_url":"v25.0/act_1001/adsets","body":"name=A&daily_budget=2000&targeting={\"geo_locations\":{\"countries\":[\"FR\"]}}","name":"A"},{"method":"GET","relative_url":"act_1001?fields=currency"}]}"#;
    let c = adapter().classify(&view("POST", "/v25.0/", Some(TOKEN), JSON, body, &NO_FACTS));
    assert_eq!(amounts(&c), ["20.00 EUR"]);
}

#[test]
fn a_batch_gets_its_most_severe_item() {
    let batch = |items: &str| {
        let body = format!("batch={}", urlencode(items));
        post("/v25.0/", &body)
    };
    let c = batch(
        r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000"},{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=1&daily_budget=2"}]"#,
    );
    assert_kind(&c, "ambiguous", "batch item 2");
    let c = batch(
        r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000"},{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2e3"}]"#,
    );
    assert_kind(&c, "unreadable", "batch item 2");
    let c = batch(
        r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000"},{"method":"POST","relative_url":"act_1001/mystery","body":"x=1"}]"#,
    );
    assert_kind(&c, "unknown", "batch item 2");
    let c = batch(
        r#"[{"method":"GET","relative_url":"act_1001/adsets"},{"method":"POST","relative_url":"act_1001/adsets","body":"name=x"}]"#,
    );
    assert_eq!(c.kind(), "safe");
    let c = batch(
        r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000&execution_options=[\"validate_only\"]"}]"#,
    );
    assert_eq!(c.kind(), "safe");
    let c = batch(
        r#"[{"method":"POST","relative_url":"/v25.0/act_1001/adsets?daily_budget=2000&access_token=per_item_secret"}]"#,
    );
    assert_eq!(amounts(&c), ["20.00 EUR"], "item query params count");
    let c = batch(
        r#"[{"method":"POST","relative_url":"act_1001/adsets?daily_budget=1","body":"daily_budget=2000"}]"#,
    );
    assert_kind(&c, "ambiguous", "batch item 1");
    let c = batch(r#"[{"method":"POST","relative_url":"","body":"batch=[]"}]"#);
    assert_kind(&c, "unreadable", "batch of its own");
    let c = batch(
        r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000","headers":[{"name":"Content-Type","value":"application/json"}]}]"#,
    );
    assert_kind(&c, "unreadable", "headers");
    // A batch posted to an endpoint: the endpoint's own write is read too.
    let body = format!(
        "daily_budget=9000&batch={}",
        urlencode(
            r#"[{"method":"POST","relative_url":"act_1001/adsets","body":"daily_budget=2000"}]"#
        )
    );
    assert_eq!(
        amounts(&post("/v25.0/act_1001/adsets", &body)),
        ["90.00 EUR", "20.00 EUR"]
    );
}

#[test]
fn secrets_never_reach_a_reason() {
    let secret = "EAABsecret";
    let cases = [
        format!("daily_budget=1&daily_budget=2&access_token={secret}"),
        format!("access_token={secret}&access_token={secret}"),
        format!("mystery=1&access_token={secret}"),
        format!(
            "batch={}",
            urlencode(&format!(
                r#"[{{"method":"POST","relative_url":"act_1001/nonsense?access_token={secret}","body":"x=1"}}]"#
            ))
        ),
        format!(
            "batch={}",
            urlencode(&format!(
                r#"[{{"method":"POST","relative_url":"act_1001/adsets?access_token={secret}","body":"daily_budget=x"}}]"#
            ))
        ),
    ];
    for body in &cases {
        let c = post("/v25.0/act_1001/adsets", body);
        assert!(!reason(&c).contains(secret), "{c:?}");
    }
    let a = adapter();
    assert!(!a.amount_field("access_token") && !a.amount_field("appsecret_proof"));
    assert_eq!(a.secret_params(), ["access_token", "appsecret_proof"]);
}

#[test]
fn refusals_are_graph_errors_that_are_not_transient() {
    let shaped = adapter().shape_refusal(&Refusal {
        status: http::StatusCode::FORBIDDEN,
        code: "leash_held",
        message: "held for a growth lead",
    });
    let body = shaped.json_body().unwrap();
    assert_eq!(body["error"]["code"], 200);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert_eq!(body["error"]["is_transient"], false);
    assert_eq!(body["error"]["message"], "held for a growth lead");
    assert_eq!(body["error"]["error_user_title"], "leash_held");
    assert_eq!(shaped.status, None);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn item() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("POST"), Just("GET"), Just("post"), Just("DELETE")],
        prop_oneof![
            Just("act_1001/adsets"),
            Just("v25.0/act_1001/campaigns"),
            Just("555/"),
            Just("act_1001"),
            Just("x/y")
        ],
        prop::collection::vec(
            (
                prop_oneof![
                    Just("daily_budget"),
                    Just("name"),
                    Just("status"),
                    Just("bid_amount"),
                    Just("access_token")
                ],
                "[0-9A-Z%]{0,5}",
            ),
            0..4,
        ),
    )
        .prop_map(|(m, u, fields)| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            serde_json::json!({"method": m, "relative_url": u, "body": body.join("&")}).to_string()
        })
}

proptest! {
    /// Any bytes, any content type, any path: a classification, no panic.
    #[test]
    fn classify_never_panics(
        method in prop_oneof![Just("POST"), Just("GET"), Just("DELETE"), Just("PATCH")],
        path in "(/v25\\.0)?/[a-z0-9_/%.]{0,20}",
        query in prop::option::of("[a-z_=&%0-9\\[\\]]{0,40}"),
        json in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let ct = if json { JSON } else { FORM };
        let f = Facts::default();
        let a = adapter();
        let v = view(method, &path, query.as_deref(), ct, &body, &f);
        let _ = a.lookups(&v);
        let _ = a.classify(&v);
    }

    /// Every item of a batch is read: a spend of every item that budgets,
    /// or a reason naming an item.
    #[test]
    fn every_batch_item_is_read(items in prop::collection::vec(item(), 1..8)) {
        let body = format!("batch={}", urlencode(&format!("[{}]", items.join(","))));
        let got = facts(&[("/v25.0/555?fields=account_id", r#"{"account_id":"1001"}"#)]);
        let c = adapter().classify(&view("POST", "/v25.0/", Some(TOKEN), FORM, body.as_bytes(), &got));
        // Each item alone, as a request of its own.
        let mut alone = Vec::new();
        for item in &items {
            let one = format!("batch={}", urlencode(&format!("[{item}]")));
            alone.push(adapter().classify(&view("POST", "/v25.0/", Some(TOKEN), FORM, one.as_bytes(), &got)));
        }
        let worst = alone.iter().map(severity).max().unwrap();
        prop_assert_eq!(severity(&c), worst, "{:?} vs {:?}", c, alone);
        if let Classification::Spend(all) = &c {
            let each: usize = alone.iter().map(|a| match a { Classification::Spend(d) => d.len(), _ => 0 }).sum();
            prop_assert_eq!(all.len(), each);
        }
    }
}

#[test]
fn a_create_teaches_the_new_objects_account() {
    let a = adapter();
    let req = view(
        "POST",
        "/v25.0/act_1001/adsets",
        Some(TOKEN),
        FORM,
        SDK_ADSET.as_bytes(),
        &NO_FACTS,
    );
    assert!(a.learns_from(&req));
    let answer = json::parse(br#"{"id":"120200000000555"}"#).unwrap();
    let learned = a.learn(&req, &answer);
    assert_eq!(learned.len(), 1);
    assert_eq!(learned[0].0, "/v25.0/120200000000555?fields=account_id");
    assert_eq!(
        learned[0].1.pointer("/account_id").and_then(|v| v.as_str()),
        Some("1001")
    );
    // Then an update of it needs no lookup of its account.
    let mut f = Facts::default();
    f.insert_learned(
        learned[0].0.clone(),
        learned[0].1.clone(),
        "POST /v25.0/act_1001/adsets".into(),
    );
    let update = view(
        "POST",
        "/v25.0/120200000000555/",
        Some(TOKEN),
        FORM,
        b"daily_budget=3000",
        &f,
    );
    assert!(a.lookups(&update).iter().all(|l| f.has(&l.path)));
    let c = a.classify(&update);
    assert_eq!(amounts(&c), ["30.00 EUR"]);
    // Nothing from batches, validate_only, other answers.
    for body in [
        "batch=%5B%5D",
        "daily_budget=1&execution_options=%5B%22validate_only%22%5D",
    ] {
        assert!(!a.learns_from(&view(
            "POST",
            "/v25.0/act_1001/adsets",
            None,
            FORM,
            body.as_bytes(),
            &NO_FACTS
        )));
    }
    assert!(a
        .learn(&req, &json::parse(br#"{"id":"../x"}"#).unwrap())
        .is_empty());
    assert!(a
        .learn(&req, &json::parse(br#"{"success":true}"#).unwrap())
        .is_empty());
    assert!(!a.learns_from(&view(
        "POST",
        "/v25.0/555",
        None,
        FORM,
        b"daily_budget=1",
        &NO_FACTS
    )));
}
