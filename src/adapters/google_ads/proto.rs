//! The Google Ads protobuf messages leash reads, declaring only the fields
//! it needs (prost skips the others), and a scan of a message's field tags
//! for what prost alone would hide: which member of a big `oneof` is set,
//! and a field given twice.
//!
//! Field numbers are from the published protos, v25 (the same in v21–v24),
//! as the research notes them (`shared/research/payment_apis.md` §3.3) and
//! as `google-ads-python` v25 generates them
//! (`google/ads/googleads/v25/services/types/campaign_budget_service.py`,
//! `campaign_service.py`, `google_ads_service.py`,
//! `resources/types/campaign_budget.py`, `campaign.py`).

use prost::encoding::{decode_key, decode_varint, WireType};

/// `google.ads.googleads.v25.services.MutateCampaignBudgetsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutateCampaignBudgetsRequest {
    /// 1: the customer whose budgets change, digits only.
    #[prost(string, tag = "1")]
    pub customer_id: String,
    /// 2: the operations.
    #[prost(message, repeated, tag = "2")]
    pub operations: Vec<CampaignBudgetOperation>,
    /// 3: apply the valid operations, fail the others.
    #[prost(bool, tag = "3")]
    pub partial_failure: bool,
    /// 4: validate, execute nothing.
    #[prost(bool, tag = "4")]
    pub validate_only: bool,
}

/// `CampaignBudgetOperation`: 4 `update_mask`, oneof `operation` { 1
/// create, 2 update, 3 remove }.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CampaignBudgetOperation {
    #[prost(message, optional, tag = "4")]
    pub update_mask: Option<FieldMask>,
    #[prost(oneof = "BudgetAction", tags = "1, 2, 3")]
    pub operation: Option<BudgetAction>,
}

/// The `operation` oneof of [`CampaignBudgetOperation`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum BudgetAction {
    #[prost(message, tag = "1")]
    Create(CampaignBudget),
    #[prost(message, tag = "2")]
    Update(CampaignBudget),
    /// The resource name of the budget removed.
    #[prost(string, tag = "3")]
    Remove(String),
}

/// `google.ads.googleads.v25.resources.CampaignBudget`: 1 resource_name,
/// 21 amount_micros (optional int64, the daily amount), 22
/// total_amount_micros (optional int64, the lifetime amount of a
/// CUSTOM_PERIOD budget).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CampaignBudget {
    #[prost(string, tag = "1")]
    pub resource_name: String,
    #[prost(int64, optional, tag = "21")]
    pub amount_micros: Option<i64>,
    #[prost(int64, optional, tag = "22")]
    pub total_amount_micros: Option<i64>,
}

/// `google.protobuf.FieldMask`: 1 repeated paths (snake_case).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

/// `MutateCampaignsRequest`: 1 customer_id, 2 operations, 3
/// partial_failure, 4 validate_only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutateCampaignsRequest {
    #[prost(string, tag = "1")]
    pub customer_id: String,
    #[prost(message, repeated, tag = "2")]
    pub operations: Vec<CampaignOperation>,
    #[prost(bool, tag = "3")]
    pub partial_failure: bool,
    #[prost(bool, tag = "4")]
    pub validate_only: bool,
}

/// `CampaignOperation`: 4 update_mask, oneof { 1 create, 2 update, 3
/// remove }.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CampaignOperation {
    #[prost(message, optional, tag = "4")]
    pub update_mask: Option<FieldMask>,
    #[prost(oneof = "CampaignAction", tags = "1, 2, 3")]
    pub operation: Option<CampaignAction>,
}

/// The `operation` oneof of [`CampaignOperation`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CampaignAction {
    #[prost(message, tag = "1")]
    Create(Campaign),
    #[prost(message, tag = "2")]
    Update(Campaign),
    #[prost(string, tag = "3")]
    Remove(String),
}

/// `google.ads.googleads.v25.resources.Campaign`: 1 resource_name, 5
/// status (`CampaignStatus`: ENABLED = 2, PAUSED = 3, REMOVED = 4), 62
/// campaign_budget (optional string, the budget's resource name).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Campaign {
    #[prost(string, tag = "1")]
    pub resource_name: String,
    #[prost(int32, tag = "5")]
    pub status: i32,
    #[prost(string, optional, tag = "62")]
    pub campaign_budget: Option<String>,
}

/// `MutateGoogleAdsRequest`: 1 customer_id, 2 mutate_operations, 3
/// partial_failure, 4 validate_only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutateGoogleAdsRequest {
    #[prost(string, tag = "1")]
    pub customer_id: String,
    #[prost(message, repeated, tag = "2")]
    pub mutate_operations: Vec<MutateOperation>,
    #[prost(bool, tag = "3")]
    pub partial_failure: bool,
    #[prost(bool, tag = "4")]
    pub validate_only: bool,
}

/// `MutateOperation`, a oneof of some sixty operations; leash declares the
/// two it reads (8 campaign_budget_operation, 10 campaign_operation) and
/// tells the others apart with [`tags`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutateOperation {
    #[prost(message, optional, tag = "8")]
    pub campaign_budget_operation: Option<CampaignBudgetOperation>,
    #[prost(message, optional, tag = "10")]
    pub campaign_operation: Option<CampaignOperation>,
}

/// `campaign_budget_operation` in [`MutateOperation`].
pub const MUTATE_BUDGET: u32 = 8;
/// `campaign_operation` in [`MutateOperation`].
pub const MUTATE_CAMPAIGN: u32 = 10;

/// `CampaignStatus.ENABLED`.
pub const CAMPAIGN_ENABLED: i32 = 2;
/// `CampaignStatus.PAUSED`.
pub const CAMPAIGN_PAUSED: i32 = 3;
/// `CampaignStatus.REMOVED`.
pub const CAMPAIGN_REMOVED: i32 = 4;

/// `MutateOperation` members that change no money: ads, ad groups and
/// their criteria, bids, assets, labels, audiences, conversions,
/// keyword plans, shared sets, user lists (field numbers from
/// `google_ads_service.py`). Not here, so read as unknown: budgets (8) and
/// campaigns (10), which leash reads; campaign drafts (24) and
/// experiments (82, 83), which create or promote campaigns;
/// `customer_operation` (35); `smart_campaign_setting_operation` (61);
/// `recommendation_subscription_operation` (86, auto-applied
/// recommendations may raise budgets); `quote_campaigns_operation` (88) and
/// `book_campaigns_operation` (89, reservation campaigns are bought);
/// campaign groups (9); and any member added after v25.
pub const MUTATE_NO_MONEY: &[(u32, &str)] = &[
    (1, "ad_group_ad_operation"),
    (2, "ad_group_bid_modifier_operation"),
    (3, "ad_group_criterion_operation"),
    (5, "ad_group_operation"),
    (6, "bidding_strategy_operation"),
    (7, "campaign_bid_modifier_operation"),
    (11, "campaign_shared_set_operation"),
    (12, "conversion_action_operation"),
    (13, "campaign_criterion_operation"),
    (14, "shared_criterion_operation"),
    (15, "shared_set_operation"),
    (16, "user_list_operation"),
    (17, "ad_group_ad_label_operation"),
    (18, "ad_group_criterion_label_operation"),
    (21, "ad_group_label_operation"),
    (22, "ad_parameter_operation"),
    (23, "asset_operation"),
    (28, "campaign_label_operation"),
    (32, "customer_label_operation"),
    (34, "customer_negative_criterion_operation"),
    (41, "label_operation"),
    (43, "remarketing_action_operation"),
    (44, "keyword_plan_ad_group_operation"),
    (45, "keyword_plan_campaign_operation"),
    (48, "keyword_plan_operation"),
    (49, "ad_operation"),
    (50, "keyword_plan_ad_group_keyword_operation"),
    (51, "keyword_plan_campaign_keyword_operation"),
    (52, "campaign_asset_operation"),
    (55, "conversion_custom_variable_operation"),
    (56, "ad_group_asset_operation"),
    (57, "customer_asset_operation"),
    (58, "bidding_data_exclusion_operation"),
    (59, "bidding_seasonality_adjustment_operation"),
    (62, "asset_group_operation"),
    (63, "conversion_value_rule_operation"),
    (64, "conversion_value_rule_set_operation"),
    (65, "asset_group_asset_operation"),
    (66, "customer_conversion_goal_operation"),
    (67, "campaign_conversion_goal_operation"),
    (68, "custom_conversion_goal_operation"),
    (69, "conversion_goal_campaign_config_operation"),
    (70, "customizer_attribute_operation"),
    (71, "asset_set_asset_operation"),
    (72, "asset_set_operation"),
    (73, "campaign_asset_set_operation"),
    (75, "ad_group_customizer_operation"),
    (76, "campaign_customizer_operation"),
    (77, "ad_group_criterion_customizer_operation"),
    (78, "asset_group_listing_group_filter_operation"),
    (79, "customer_customizer_operation"),
    (80, "asset_group_signal_operation"),
    (81, "audience_operation"),
];

/// Why a message's fields could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Prost(#[from] prost::DecodeError),
    #[error("a field's length runs past the end of its message")]
    Length,
    #[error("a group field, which no Google Ads message has")]
    Group,
}

/// One top-level field of an encoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub tag: u32,
    pub wire: WireType,
    /// The payload of a length-delimited field (empty for the others).
    pub bytes: &'a [u8],
}

/// A message's top-level fields, in wire order (a field given twice
/// appears twice). Errors where prost would: a bad varint, key or wire
/// type, or a length past the end.
pub fn fields(mut bytes: &[u8]) -> Result<Vec<Field<'_>>, WireError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        let len = match wire {
            WireType::Varint => {
                decode_varint(&mut bytes)?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                usize::try_from(decode_varint(&mut bytes)?).map_err(|_| WireError::Length)?
            }
            // Groups are deprecated; no Google Ads message has one.
            WireType::StartGroup | WireType::EndGroup => return Err(WireError::Group),
        };
        let payload = bytes.get(..len).ok_or(WireError::Length)?;
        bytes = bytes.get(len..).unwrap_or(&[]);
        let payload = if wire == WireType::LengthDelimited {
            payload
        } else {
            &[]
        };
        out.push(Field {
            tag,
            wire,
            bytes: payload,
        });
    }
    Ok(out)
}

/// How many times field `tag` appears at the top level of `fields`.
pub fn count(fields: &[Field<'_>], tag: u32) -> usize {
    fields.iter().filter(|f| f.tag == tag).count()
}
