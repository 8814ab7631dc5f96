//! The Google Ads adapter on the research's exact bodies (§3.3, §3.4) and
//! on what the libraries may send besides.

use proptest::prelude::*;
use prost::Message;

use super::proto::*;
use super::*;
use crate::adapters::json;
use crate::intent::{Facts, NO_FACTS};

const BUDGETS: &str =
    "/google.ads.googleads.v25.services.CampaignBudgetService/MutateCampaignBudgets";
const CAMPAIGNS: &str = "/google.ads.googleads.v25.services.CampaignService/MutateCampaigns";
const MUTATE: &str = "/google.ads.googleads.v25.services.GoogleAdsService/Mutate";
const GRPC: Option<&str> = Some("application/grpc");
const JSON_CT: Option<&str> = Some("application/json");
const SEARCH: &str = "/v25/customers/1234567890/googleAds:search";

fn eur_adapter() -> GoogleAdsAdapter {
    let mut settings = GoogleAdsSettings::default();
    settings
        .accounts
        .insert("1234567890".to_owned(), "EUR".to_owned());
    GoogleAdsAdapter::new(&settings)
}

fn view<'a>(
    path: &'a str,
    content_type: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    facts: &'a Facts,
) -> RequestView<'a> {
    RequestView {
        method: "POST",
        host: HOST,
        path,
        query: None,
        content_type,
        idempotency_key: None,
        account: None,
        headers,
        body,
        facts,
    }
}

fn grpc_call(adapter: &GoogleAdsAdapter, path: &str, body: &[u8]) -> Classification {
    adapter.classify(&view(path, GRPC, &[], body, &NO_FACTS))
}

fn rest(adapter: &GoogleAdsAdapter, path: &str, body: &str) -> Classification {
    adapter.classify(&view(path, JSON_CT, &[], body.as_bytes(), &NO_FACTS))
}

/// `(operation, amount, currency, beneficiary)` of each intent.
fn spent(c: &Classification) -> Vec<(String, String, String, String)> {
    match c {
        Classification::Spend(drafts) => drafts
            .iter()
            .map(|d| {
                let m = d.amount.unwrap();
                assert_eq!(d.category, "ad_spend");
                assert_eq!(d.vendor, "google_ads");
                (
                    d.operation.clone(),
                    m.amount.to_string(),
                    m.currency.to_string(),
                    d.beneficiary.clone().unwrap(),
                )
            })
            .collect(),
        other => panic!("not a spend: {other:?}"),
    }
}

fn spend(op: &str, amount: &str) -> (String, String, String, String) {
    (op.into(), amount.into(), "EUR".into(), "1234567890".into())
}

fn kind(c: &Classification) -> &'static str {
    c.kind()
}

/// The research's hand-encoded create (§3.3), byte for byte.
fn research_create() -> Vec<u8> {
    let mut m = vec![0x0a, 0x0a];
    m.extend_from_slice(b"1234567890");
    m.extend_from_slice(&[0x12, 0x15, 0x0a, 0x13, 0xa2, 0x01, 0x08]);
    m.extend_from_slice(b"Budget 1");
    m.extend_from_slice(&[0xa8, 0x01, 0x80, 0xe1, 0xeb, 0x17, 0x38, 0x02]);
    m
}

/// The research's hand-encoded update (§3.3): amount 75.00, masked.
fn research_update() -> Vec<u8> {
    let mut m = vec![0x0a, 0x0a];
    m.extend_from_slice(b"1234567890");
    m.extend_from_slice(&[0x12, 0x43, 0x12, 0x30, 0x0a, 0x28]);
    m.extend_from_slice(b"customers/1234567890/campaignBudgets/111");
    m.extend_from_slice(&[0xa8, 0x01, 0xc0, 0xd1, 0xe1, 0x23, 0x22, 0x0f, 0x0a, 0x0d]);
    m.extend_from_slice(b"amount_micros");
    m
}

#[test]
fn the_research_wire_create_is_fifty_euros() {
    let message = research_create();
    let body = grpc::frame(&message, false);
    assert_eq!(&body[..5], &[0, 0, 0, 0, 0x23], "the research's prefix");
    let c = grpc_call(&eur_adapter(), BUDGETS, &body);
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "50.00")]);
    // prost reads the same bytes the same way.
    let decoded = MutateCampaignBudgetsRequest::decode(message.as_slice()).unwrap();
    assert_eq!(decoded.customer_id, "1234567890");
    let Some(BudgetAction::Create(b)) = &decoded.operations[0].operation else {
        panic!()
    };
    assert_eq!(b.amount_micros, Some(50_000_000));
}

#[test]
fn the_research_wire_update_is_the_new_amount() {
    let body = grpc::frame(&research_update(), false);
    let c = grpc_call(&eur_adapter(), BUDGETS, &body);
    assert_eq!(spent(&c), vec![spend("campaign_budget.update", "75.00")]);
}

fn budget_request(ops: Vec<CampaignBudgetOperation>) -> MutateCampaignBudgetsRequest {
    MutateCampaignBudgetsRequest {
        customer_id: "1234567890".into(),
        operations: ops,
        partial_failure: false,
        validate_only: false,
    }
}

fn create(micros: Option<i64>, total: Option<i64>) -> CampaignBudgetOperation {
    CampaignBudgetOperation {
        update_mask: None,
        operation: Some(BudgetAction::Create(CampaignBudget {
            resource_name: String::new(),
            amount_micros: micros,
            total_amount_micros: total,
        })),
    }
}

fn update(micros: Option<i64>, mask: &[&str]) -> CampaignBudgetOperation {
    CampaignBudgetOperation {
        update_mask: Some(FieldMask {
            paths: mask.iter().map(|p| p.to_string()).collect(),
        }),
        operation: Some(BudgetAction::Update(CampaignBudget {
            resource_name: "customers/1234567890/campaignBudgets/111".into(),
            amount_micros: micros,
            total_amount_micros: None,
        })),
    }
}

fn budgets(ops: Vec<CampaignBudgetOperation>) -> Classification {
    let body = grpc::frame(&budget_request(ops).encode_to_vec(), false);
    grpc_call(&eur_adapter(), BUDGETS, &body)
}

#[test]
fn micros_are_exact_and_keep_their_decimals() {
    let eur = Currency::parse("EUR").unwrap();
    let jpy = Currency::parse("JPY").unwrap();
    let show = |m, c| mutate::micros_to_major(m, c).unwrap().to_string();
    assert_eq!(show(50_000_000, eur), "50.00");
    assert_eq!(show(1_234_567, eur), "1.234567");
    assert_eq!(show(10_000, eur), "0.01");
    assert_eq!(show(1, eur), "0.000001");
    assert_eq!(show(0, eur), "0.00");
    assert_eq!(show(5_000_000_000, jpy), "5000");
    assert_eq!(show(i64::MAX, eur), "9223372036854.775807");
}

#[test]
fn update_masks_decide_what_an_update_changes() {
    // The mask names the amount: the new amount.
    assert_eq!(
        spent(&budgets(vec![update(
            Some(700_000_000),
            &["amount_micros"]
        )])),
        vec![spend("campaign_budget.update", "700.00")]
    );
    // A rename changes no money.
    assert_eq!(
        budgets(vec![update(None, &["name"])]),
        Classification::Safe {
            operation: "campaign_budget.mutate".into()
        }
    );
    // An amount outside the mask is counted anyway: conservative.
    assert_eq!(
        spent(&budgets(vec![update(Some(1_000_000), &["name"])])),
        vec![spend("campaign_budget.update", "1.00")]
    );
    // The mask names the amount, the budget sets none: cleared, unreadable.
    assert_eq!(
        kind(&budgets(vec![update(None, &["amount_micros"])])),
        "unreadable"
    );
    // A lifetime budget: its total.
    let mut op = update(None, &["total_amount_micros"]);
    if let Some(BudgetAction::Update(b)) = &mut op.operation {
        b.total_amount_micros = Some(9_000_000_000);
    }
    assert_eq!(
        spent(&budgets(vec![op])),
        vec![spend("campaign_budget.update", "9000.00")]
    );
}

#[test]
fn creates_need_exactly_one_amount() {
    assert_eq!(
        spent(&budgets(vec![create(None, Some(3_000_000_000))])),
        vec![spend("campaign_budget.create", "3000.00")]
    );
    assert_eq!(kind(&budgets(vec![create(None, None)])), "unreadable");
    assert_eq!(kind(&budgets(vec![create(Some(1), Some(1))])), "ambiguous");
    assert_eq!(kind(&budgets(vec![create(Some(-5), None)])), "unreadable");
}

#[test]
fn every_operation_is_an_intent_and_removes_are_not() {
    let remove = CampaignBudgetOperation {
        update_mask: None,
        operation: Some(BudgetAction::Remove(
            "customers/1234567890/campaignBudgets/5".into(),
        )),
    };
    let mut request = budget_request(vec![
        create(Some(10_000_000), None),
        remove,
        update(Some(20_000_000), &["amount_micros"]),
    ]);
    for partial_failure in [false, true] {
        request.partial_failure = partial_failure;
        let body = grpc::frame(&request.encode_to_vec(), false);
        assert_eq!(
            spent(&grpc_call(&eur_adapter(), BUDGETS, &body)),
            vec![
                spend("campaign_budget.create", "10.00"),
                spend("campaign_budget.update", "20.00")
            ]
        );
    }
}

#[test]
fn validate_only_is_safe() {
    let mut request = budget_request(vec![create(Some(10_000_000_000), None)]);
    request.validate_only = true;
    let body = grpc::frame(&request.encode_to_vec(), false);
    assert_eq!(
        grpc_call(&eur_adapter(), BUDGETS, &body),
        Classification::Safe {
            operation: "campaign_budget.mutate.validate_only".into()
        }
    );
}

#[test]
fn compressed_messages_are_read_with_their_grpc_encoding() {
    let adapter = eur_adapter();
    let body = grpc::frame(&research_create(), true);
    let gzip = [("grpc-encoding", "gzip")];
    let c = adapter.classify(&view(BUDGETS, GRPC, &gzip, &body, &NO_FACTS));
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "50.00")]);
    // The same bytes named otherwise, or not named: never read as nothing.
    for headers in [
        &[][..],
        &[("grpc-encoding", "identity")][..],
        &[("grpc-encoding", "deflate")][..],
    ] {
        let c = adapter.classify(&view(BUDGETS, GRPC, headers, &body, &NO_FACTS));
        assert_eq!(kind(&c), "unreadable", "{headers:?}");
    }
    assert_eq!(adapter.read_headers(), vec!["grpc-encoding"]);
}

#[test]
fn a_message_split_anywhere_reads_as_one_when_whole_and_never_in_part() {
    let body = grpc::frame(&research_create(), false);
    for cut in 0..body.len() {
        let c = grpc_call(&eur_adapter(), BUDGETS, &body[..cut]);
        assert_eq!(kind(&c), "unreadable", "cut at {cut}");
    }
    let mut two = body.clone();
    two.extend_from_slice(&body);
    assert_eq!(
        kind(&grpc_call(&eur_adapter(), BUDGETS, &two)),
        "unreadable"
    );
}

#[test]
fn fields_given_twice_are_ambiguous() {
    // amount_micros twice in one budget: protobuf keeps the last; leash
    // refuses rather than rely on one more rule.
    let mut m = vec![0x0a, 0x0a];
    m.extend_from_slice(b"1234567890");
    m.extend_from_slice(&[
        0x12, 0x0d, 0x0a, 0x0b, 0xa8, 0x01, 0x01, 0xa8, 0x01, 0x80, 0xe1, 0xeb, 0x17, 0x38, 0x02,
    ]);
    let c = grpc_call(&eur_adapter(), BUDGETS, &grpc::frame(&m, false));
    assert_eq!(kind(&c), "ambiguous", "{c:?}");
    // create and update in one operation.
    let mut op = create(Some(1), None).encode_to_vec();
    op.extend(update(Some(2), &["amount_micros"]).encode_to_vec());
    let mut m = vec![0x0a, 0x0a];
    m.extend_from_slice(b"1234567890");
    m.push(0x12);
    m.push(op.len() as u8);
    m.extend(op);
    let c = grpc_call(&eur_adapter(), BUDGETS, &grpc::frame(&m, false));
    assert_eq!(kind(&c), "ambiguous", "{c:?}");
    // customer_id twice.
    let mut m = research_create();
    m.extend_from_slice(&[0x0a, 0x01, b'9']);
    let c = grpc_call(&eur_adapter(), BUDGETS, &grpc::frame(&m, false));
    assert_eq!(kind(&c), "ambiguous", "{c:?}");
}

#[test]
fn another_customers_budget_is_ambiguous() {
    let mut op = update(Some(1_000_000), &["amount_micros"]);
    if let Some(BudgetAction::Update(b)) = &mut op.operation {
        b.resource_name = "customers/999/campaignBudgets/1".into();
    }
    assert_eq!(kind(&budgets(vec![op])), "ambiguous");
    let mut request = budget_request(vec![create(Some(1), None)]);
    request.customer_id = "123-456-7890".into();
    let body = grpc::frame(&request.encode_to_vec(), false);
    assert_eq!(
        kind(&grpc_call(&eur_adapter(), BUDGETS, &body)),
        "unreadable"
    );
}

fn mutate_request(ops: Vec<Vec<u8>>) -> Vec<u8> {
    // MutateGoogleAdsRequest by hand: 1 customer_id, 2 each operation.
    let mut m = vec![0x0a, 0x0a];
    m.extend_from_slice(b"1234567890");
    for op in ops {
        m.push(0x12);
        prost::encoding::encode_varint(op.len() as u64, &mut m);
        m.extend(op);
    }
    m
}

/// A MutateOperation whose member `tag` holds `inner`.
fn member(tag: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(inner);
    out
}

#[test]
fn google_ads_mutate_reads_budget_operations_among_others() {
    let budget = create(Some(25_000_000), None).encode_to_vec();
    let ad_group = b"\x0a\x00".to_vec();
    let body = mutate_request(vec![member(MUTATE_BUDGET, &budget), member(5, &ad_group)]);
    let c = grpc_call(&eur_adapter(), MUTATE, &grpc::frame(&body, false));
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "25.00")]);
    // A booked reservation campaign (89) is not read: unknown.
    let body = mutate_request(vec![member(MUTATE_BUDGET, &budget), member(89, b"")]);
    let c = grpc_call(&eur_adapter(), MUTATE, &grpc::frame(&body, false));
    assert_eq!(kind(&c), "unknown");
    // Two members in one MutateOperation.
    let mut two = member(MUTATE_BUDGET, &budget);
    two.extend(member(5, &ad_group));
    let body = mutate_request(vec![two]);
    let c = grpc_call(&eur_adapter(), MUTATE, &grpc::frame(&body, false));
    assert_eq!(kind(&c), "ambiguous");
}

fn campaign_op(
    action: fn(Campaign) -> CampaignAction,
    status: i32,
    budget: Option<&str>,
) -> CampaignOperation {
    CampaignOperation {
        update_mask: None,
        operation: Some(action(Campaign {
            resource_name: String::new(),
            status,
            campaign_budget: budget.map(str::to_owned),
        })),
    }
}

#[test]
fn a_campaign_that_starts_spending_a_budget_it_does_not_carry_is_unreadable() {
    let classify = |op: CampaignOperation| {
        let request = MutateCampaignsRequest {
            customer_id: "1234567890".into(),
            operations: vec![op],
            partial_failure: false,
            validate_only: false,
        };
        grpc_call(
            &eur_adapter(),
            CAMPAIGNS,
            &grpc::frame(&request.encode_to_vec(), false),
        )
    };
    let budget = Some("customers/1234567890/campaignBudgets/7");
    assert_eq!(
        kind(&classify(campaign_op(
            CampaignAction::Create,
            CAMPAIGN_ENABLED,
            budget
        ))),
        "unreadable"
    );
    assert_eq!(
        kind(&classify(campaign_op(CampaignAction::Create, 0, budget))),
        "unreadable"
    );
    assert_eq!(
        kind(&classify(campaign_op(
            CampaignAction::Create,
            CAMPAIGN_PAUSED,
            budget
        ))),
        "safe"
    );
    assert_eq!(
        kind(&classify(campaign_op(
            CampaignAction::Update,
            CAMPAIGN_ENABLED,
            None
        ))),
        "unreadable"
    );
    assert_eq!(
        kind(&classify(campaign_op(
            CampaignAction::Update,
            CAMPAIGN_PAUSED,
            None
        ))),
        "safe"
    );
    assert_eq!(
        kind(&classify(campaign_op(CampaignAction::Update, 0, None))),
        "safe"
    );
    // A campaign enabled on a budget created in the same request: that
    // budget's intent counts it.
    let budget_op = CampaignBudgetOperation {
        update_mask: None,
        operation: Some(BudgetAction::Create(CampaignBudget {
            resource_name: "customers/1234567890/campaignBudgets/-1".into(),
            amount_micros: Some(40_000_000),
            total_amount_micros: None,
        })),
    };
    let campaign = campaign_op(
        CampaignAction::Create,
        CAMPAIGN_ENABLED,
        Some("customers/1234567890/campaignBudgets/-1"),
    );
    let body = mutate_request(vec![
        member(MUTATE_BUDGET, &budget_op.encode_to_vec()),
        member(MUTATE_CAMPAIGN, &campaign.encode_to_vec()),
    ]);
    let c = grpc_call(&eur_adapter(), MUTATE, &grpc::frame(&body, false));
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "40.00")]);
}

#[test]
fn methods_are_read_safe_or_unknown() {
    let adapter = eur_adapter();
    let safe = |path: &str| grpc_call(&adapter, path, b"\x00\x00\x00\x00\x00");
    for path in [
        "/google.ads.googleads.v25.services.GoogleAdsService/Search",
        "/google.ads.googleads.v25.services.GoogleAdsService/SearchStream",
    ] {
        assert_eq!(kind(&safe(path)), "safe", "{path}");
    }
    for path in [
        "/google.ads.googleads.v25.services.BatchJobService/RunBatchJob",
        "/google.ads.googleads.v25.services.AccountBudgetProposalService/MutateAccountBudgetProposal",
        "/google.ads.googleads.v25.services.CampaignBudgetService/mutatecampaignbudgets",
        "/google.ads.googleads.vX.services.CampaignBudgetService/MutateCampaignBudgets",
        "/grpc.health.v1.Health/Check",
    ] {
        assert_eq!(kind(&safe(path)), "unknown", "{path}");
    }
    // A gRPC path sent as something else.
    let c = adapter.classify(&view(BUDGETS, JSON_CT, &[], b"{}", &NO_FACTS));
    assert_eq!(kind(&c), "unreadable");
    assert_eq!(kind(&rest(&adapter, SEARCH, "{}")), "safe");
    assert_eq!(
        kind(&rest(
            &adapter,
            "/v25/customers/1/accountBudgetProposals:mutate",
            "{}"
        )),
        "unknown"
    );
    for lenient in [
        "/v25/customers/1234567890/campaignbudgets:mutate",
        "/v25/customers/1234567890/campaignBudgets%3Amutate",
        "/v25/customers/1234567890//campaignBudgets:mutate",
        "/v25/customers/1234567890/campaignBudgets:mutate/",
    ] {
        assert_eq!(
            kind(&rest(&adapter, lenient, "{}")),
            "ambiguous",
            "{lenient}"
        );
    }
    let mut get = view(
        "/v25/customers/1234567890/campaignBudgets/1",
        None,
        &[],
        b"",
        &NO_FACTS,
    );
    get.method = "GET";
    assert_eq!(kind(&adapter.classify(&get)), "safe");
}

const REST_BUDGETS: &str = "/v25/customers/1234567890/campaignBudgets:mutate";

#[test]
fn rest_bodies_from_the_research() {
    let adapter = eur_adapter();
    let c = rest(
        &adapter,
        REST_BUDGETS,
        r#"{"operations":[{"create":{"name":"Budget 1","amountMicros":"50000000","deliveryMethod":"STANDARD"}}]}"#,
    );
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "50.00")]);
    let c = rest(
        &adapter,
        REST_BUDGETS,
        r#"{"operations":[{"updateMask":"amountMicros","update":{"resourceName":"customers/1234567890/campaignBudgets/111","amountMicros":"700000000"}}]}"#,
    );
    assert_eq!(spent(&c), vec![spend("campaign_budget.update", "700.00")]);
    // A number, as Perl sends it; snake_case keys.
    let c = rest(
        &adapter,
        REST_BUDGETS,
        r#"{"operations":[{"create":{"amount_micros":50000000}}],"partial_failure":true}"#,
    );
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "50.00")]);
    let c = rest(
        &adapter,
        REST_BUDGETS,
        r#"{"operations":[{"update_mask":"name","update":{"resourceName":"customers/1234567890/campaignBudgets/1","name":"x"}}]}"#,
    );
    assert_eq!(kind(&c), "safe");
    let c = rest(
        &adapter,
        "/v25/customers/1234567890/googleAds:mutate",
        r#"{"mutateOperations":[{"campaignBudgetOperation":{"create":{"resourceName":"customers/1234567890/campaignBudgets/-1","amountMicros":"30000000"}}},{"campaignOperation":{"create":{"status":"ENABLED","campaignBudget":"customers/1234567890/campaignBudgets/-1"}}},{"adGroupOperation":{"create":{}}}]}"#,
    );
    assert_eq!(spent(&c), vec![spend("campaign_budget.create", "30.00")]);
    let c = rest(
        &adapter,
        "/v25/customers/1234567890/campaigns:mutate",
        r#"{"operations":[{"create":{"status":"PAUSED","campaignBudget":"customers/1234567890/campaignBudgets/9"}}]}"#,
    );
    assert_eq!(kind(&c), "safe");
    let c = rest(
        &adapter,
        "/v25/customers/1234567890/campaigns:mutate",
        r#"{"operations":[{"updateMask":"status","update":{"resourceName":"customers/1234567890/campaigns/9","status":2}}]}"#,
    );
    assert_eq!(kind(&c), "unreadable");
    let c = rest(
        &adapter,
        REST_BUDGETS,
        r#"{"operations":[{"create":{"amountMicros":"1"}}],"validateOnly":true}"#,
    );
    assert_eq!(kind(&c), "safe");
}

#[test]
fn rest_bodies_read_two_ways_are_ambiguous() {
    let adapter = eur_adapter();
    for body in [
        r#"{"operations":[{"create":{"amountMicros":"1","amountMicros":"99999999999"}}]}"#,
        r#"{"operations":[{"create":{"amountMicros":"1","amount_micros":"99999999999"}}]}"#,
        r#"{"operations":[{"create":{"amountMicros":"1"},"update":{"amountMicros":"2"}}]}"#,
        r#"{"operations":[],"validateOnly":false,"validate_only":true}"#,
        r#"{"customerId":"999","operations":[{"create":{"amountMicros":"1"}}]}"#,
        r#"{"mutateOperations":[]}"#,
    ] {
        let c = rest(&adapter, REST_BUDGETS, body);
        let want = if body.contains("mutateOperations") {
            "safe"
        } else {
            "ambiguous"
        };
        assert_eq!(kind(&c), want, "{body}");
    }
    let mut with_query = view(
        REST_BUDGETS,
        JSON_CT,
        &[],
        br#"{"operations":[]}"#,
        &NO_FACTS,
    );
    with_query.query = Some("validateOnly=true");
    assert_eq!(kind(&adapter.classify(&with_query)), "ambiguous");
    with_query.query = Some("%24alt=json%3Benum-encoding%3Dint");
    assert_eq!(kind(&adapter.classify(&with_query)), "safe");
}

#[test]
fn rest_bodies_leash_cannot_read_exactly_are_unreadable() {
    let adapter = eur_adapter();
    for body in [
        r#"{"operations":[{"create":{"amountMicros":5e7}}]}"#,
        r#"{"operations":[{"create":{"amountMicros":"50000000.0"}}]}"#,
        r#"{"operations":[{"create":{"amountMicros":true}}]}"#,
        r#"{"operations":[{"create":{"amountMicros":"99999999999999999999"}}]}"#,
        r#"{"operations":[{"create":{}}]}"#,
        r#"{"operations":[{"create":{"amountMicros":"1"},"extra":1}]}"#,
        r#"{"operations":{}}"#,
        r#"{"operations":[{"create":{"amountMicros":"1"}}],"validateOnly":"true"}"#,
        "not json",
    ] {
        assert_eq!(
            kind(&rest(&adapter, REST_BUDGETS, body)),
            "unreadable",
            "{body}"
        );
    }
    let c = adapter.classify(&view(
        REST_BUDGETS,
        Some("application/x-protobuf"),
        &[],
        b"",
        &NO_FACTS,
    ));
    assert_eq!(kind(&c), "unreadable");
}

#[test]
fn the_currency_is_looked_up_once_when_config_does_not_say_it() {
    let adapter = GoogleAdsAdapter::default();
    let body = grpc::frame(&research_create(), false);
    let lookups = adapter.lookups(&view(BUDGETS, GRPC, &[], &body, &NO_FACTS));
    assert_eq!(
        lookups,
        vec![Lookup {
            path: SEARCH.into(),
            body: Some(CURRENCY_QUERY.as_bytes().to_vec()),
            why: "the currency of customer 1234567890".into(),
        }]
    );
    // Not looked up: no lookup answer, unreadable.
    assert_eq!(kind(&grpc_call(&adapter, BUDGETS, &body)), "unreadable");
    let mut facts = Facts::default();
    facts.insert(
        SEARCH.into(),
        json::parse(br#"{"results":[{"customer":{"resourceName":"customers/1234567890","currencyCode":"JPY"}}],"fieldMask":"customer.currencyCode"}"#).map_err(|e| e.to_string()),
    );
    let c = adapter.classify(&view(BUDGETS, GRPC, &[], &body, &facts));
    let Classification::Spend(drafts) = &c else {
        panic!("{c:?}")
    };
    assert_eq!(drafts[0].amount.unwrap().to_string(), "50 JPY");
    assert_eq!(
        drafts[0].sources["currency"],
        format!("POST {SEARCH} (customer.currency_code)")
    );
    // A failed lookup leaves it unreadable, with the reason.
    let mut failed = Facts::default();
    failed.insert(SEARCH.into(), Err("google_ads answered 401".into()));
    let c = adapter.classify(&view(BUDGETS, GRPC, &[], &body, &failed));
    let Classification::Unreadable { reason, .. } = &c else {
        panic!("{c:?}")
    };
    assert!(reason.contains("401"), "{reason}");
    // An answer that does not state one currency.
    let mut odd = Facts::default();
    odd.insert(
        SEARCH.into(),
        json::parse(br#"{"results":[]}"#).map_err(|e| e.to_string()),
    );
    assert_eq!(
        kind(&adapter.classify(&view(BUDGETS, GRPC, &[], &body, &odd))),
        "unreadable"
    );
    // Nothing to look up for config's customers, reads, or no-money ops.
    assert!(eur_adapter()
        .lookups(&view(BUDGETS, GRPC, &[], &body, &NO_FACTS))
        .is_empty());
    let rename = grpc::frame(
        &budget_request(vec![update(None, &["name"])]).encode_to_vec(),
        false,
    );
    assert!(adapter
        .lookups(&view(BUDGETS, GRPC, &[], &rename, &NO_FACTS))
        .is_empty());
    assert!(adapter.stays_fresh(SEARCH));
    assert_eq!(
        adapter.lookup_headers(),
        vec![
            "authorization",
            "developer-token",
            "login-customer-id",
            "linked-customer-id"
        ]
    );
}

#[test]
fn refusals_answer_in_the_protocol_asked() {
    let adapter = eur_adapter();
    let refusal = Refusal {
        status: http::StatusCode::FORBIDDEN,
        code: "leash_held",
        message: "needs maya",
    };
    let grpc_shape = adapter.shape_refusal_to(
        &refusal,
        &Asked {
            path: BUDGETS,
            content_type: GRPC,
        },
    );
    assert_eq!(grpc_shape.status, Some(http::StatusCode::OK));
    assert!(grpc_shape
        .headers
        .iter()
        .any(|(n, v)| *n == "grpc-status" && v == "7"));
    let rest_shape = adapter.shape_refusal_to(
        &refusal,
        &Asked {
            path: "/v23/customers/1/campaignBudgets:mutate",
            content_type: JSON_CT,
        },
    );
    assert_eq!(rest_shape.status, None);
    let body = rest_shape.json_body().unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["message"], "leash_held: needs maya");
    assert_eq!(
        body["error"]["details"][0]["@type"],
        "type.googleapis.com/google.ads.googleads.v23.errors.GoogleAdsFailure"
    );
    assert_eq!(
        body["error"]["details"][0]["errors"][0]["errorCode"]["authorizationError"],
        "ACTION_NOT_PERMITTED"
    );
    assert_eq!(body["error"]["details"][1]["reason"], "leash_held");
    assert_eq!(
        adapter.shape_refusal(&refusal),
        rest_refusal(&refusal, "v25")
    );
}

#[test]
fn config_accounts_are_digits_and_their_currency() {
    let adapter = eur_adapter();
    assert_eq!(adapter.name(), "google_ads");
    assert_eq!(adapter.hosts(), vec![HOST.to_owned()]);
    assert!(adapter.claims_host(HOST));
    assert!(!adapter.claims_host("ads.google.com"));
    assert_eq!(adapter.idempotency_header(), None);
    assert!(adapter.amount_field("amountMicros"));
    assert!(adapter.amount_field("campaign_budget.total_amount_micros"));
}

fn arb_budget_op() -> impl Strategy<Value = CampaignBudgetOperation> {
    (
        0u8..3,
        prop::option::of(0i64..i64::MAX),
        prop::option::of(0i64..i64::MAX),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec![
                "amount_micros",
                "total_amount_micros",
                "name",
                "status",
            ]),
            0..3,
        )),
    )
        .prop_map(|(action, amount, total, mask)| {
            let budget = CampaignBudget {
                resource_name: "customers/1234567890/campaignBudgets/1".into(),
                amount_micros: amount,
                total_amount_micros: total,
            };
            CampaignBudgetOperation {
                update_mask: mask.map(|paths| FieldMask {
                    paths: paths.into_iter().map(str::to_owned).collect(),
                }),
                operation: Some(match action {
                    0 => BudgetAction::Create(budget),
                    1 => BudgetAction::Update(budget),
                    _ => BudgetAction::Remove(budget.resource_name),
                }),
            }
        })
}

proptest! {
    #[test]
    fn grpc_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), path in 0usize..3, gzip in any::<bool>()) {
        let path = [BUDGETS, CAMPAIGNS, MUTATE][path];
        let headers = [("grpc-encoding", "gzip")];
        let headers: &[(&str, &str)] = if gzip { &headers } else { &[] };
        let adapter = GoogleAdsAdapter::default();
        let req = view(path, GRPC, headers, &body, &NO_FACTS);
        let _ = adapter.lookups(&req);
        let c = adapter.classify(&req);
        // Random bytes never read as a spend leash could approve blind.
        prop_assert!(!matches!(c, Classification::Spend(_)));
    }

    #[test]
    fn messages_with_a_valid_prefix_never_panic(message in prop::collection::vec(any::<u8>(), 0..256), path in 0usize..3) {
        let path = [BUDGETS, CAMPAIGNS, MUTATE][path];
        let body = grpc::frame(&message, false);
        let _ = grpc_call(&eur_adapter(), path, &body);
    }

    #[test]
    fn rest_bodies_never_panic(body in ".{0,200}", path in 0usize..3) {
        let path = [REST_BUDGETS, "/v25/customers/1234567890/campaigns:mutate", "/v25/customers/1234567890/googleAds:mutate"][path];
        let _ = rest(&eur_adapter(), path, &body);
    }

    #[test]
    fn what_prost_encodes_leash_reads_back(ops in prop::collection::vec(arb_budget_op(), 0..5), gzip in any::<bool>()) {
        let request = budget_request(ops.clone());
        let body = grpc::frame(&request.encode_to_vec(), gzip);
        let headers = [("grpc-encoding", "gzip")];
        let message = grpc::one_message(&body, gzip.then_some("gzip")).unwrap();
        let read = mutate::from_grpc(Service::Budgets, &message).unwrap();
        prop_assert_eq!(&read.customer_id, "1234567890");
        prop_assert_eq!(read.operations.len(), ops.len());
        for (got, sent) in read.operations.iter().zip(&ops) {
            let mutate::Operation::Budget(got) = got else { panic!("{got:?}") };
            match &sent.operation {
                Some(BudgetAction::Create(b)) | Some(BudgetAction::Update(b)) => {
                    prop_assert_eq!(got.amount_micros, b.amount_micros);
                    prop_assert_eq!(got.total_amount_micros, b.total_amount_micros);
                }
                _ => prop_assert_eq!(got.action, mutate::Action::Remove),
            }
            prop_assert_eq!(got.mask.clone(), sent.update_mask.as_ref().map(|m| m.paths.clone()));
        }
        // And the whole request classifies without panicking, each spend
        // its own intent at exactly micros / 10^6.
        let c = eur_adapter().classify(&view(BUDGETS, GRPC, if gzip { &headers } else { &[] }, &body, &NO_FACTS));
        if let Classification::Spend(drafts) = c {
            for d in drafts {
                let amount = d.amount.unwrap().amount;
                prop_assert!(amount >= rust_decimal::Decimal::ZERO);
            }
        }
    }

    #[test]
    fn rest_and_grpc_agree_on_amounts(micros in 0i64..i64::MAX, as_number in any::<bool>()) {
        let value = if as_number { micros.to_string() } else { format!("\"{micros}\"") };
        let body = format!(r#"{{"operations":[{{"create":{{"amountMicros":{value}}}}}]}}"#);
        let from_rest = rest(&eur_adapter(), REST_BUDGETS, &body);
        let grpc_body = grpc::frame(&budget_request(vec![create(Some(micros), None)]).encode_to_vec(), false);
        let from_grpc = grpc_call(&eur_adapter(), BUDGETS, &grpc_body);
        prop_assert_eq!(spent(&from_rest), spent(&from_grpc));
    }

    #[test]
    fn camel_and_snake_round_trip(words in prop::collection::vec("[a-z]{1,8}", 1..4)) {
        let snake_name = words.join("_");
        prop_assert_eq!(rest::snake(&rest::lower_camel(&snake_name)), snake_name);
    }
}
