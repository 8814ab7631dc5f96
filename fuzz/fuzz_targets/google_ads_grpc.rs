//! The Google Ads gRPC reader: the frame reader (compressed flag, length
//! prefix, gzip), the prost messages and the field scan behind them, and
//! what the adapter makes of the result, on arbitrary bytes.
//!
//! Input: byte 0 picks the method (budgets, campaigns, GoogleAds mutate)
//! and whether the rest is a whole body or a message leash frames (so the
//! protobuf reader sees well-framed input most of the time); byte 1 picks
//! the `grpc-encoding` (none, gzip, deflate) and, for framed messages,
//! whether they are gzip-compressed.
//!
//! Checks: never panics; a spend is read only from a message that is one
//! whole frame, each intent in EUR (the configured customer's currency)
//! with a non-negative amount and the customer's digits as beneficiary.

#![no_main]

use std::sync::OnceLock;

use leash::adapters::google_ads::{grpc, GoogleAdsAdapter, HOST};
use leash::adapters::Adapter;
use leash::config::GoogleAdsSettings;
use leash::intent::{Classification, RequestView, NO_FACTS};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 3] = [
    "/google.ads.googleads.v25.services.CampaignBudgetService/MutateCampaignBudgets",
    "/google.ads.googleads.v25.services.CampaignService/MutateCampaigns",
    "/google.ads.googleads.v25.services.GoogleAdsService/Mutate",
];

fn adapter() -> &'static GoogleAdsAdapter {
    static ADAPTER: OnceLock<GoogleAdsAdapter> = OnceLock::new();
    ADAPTER.get_or_init(|| {
        let mut settings = GoogleAdsSettings::default();
        settings
            .accounts
            .insert("1234567890".to_owned(), "EUR".to_owned());
        GoogleAdsAdapter::new(&settings)
    })
}

fuzz_target!(|data: &[u8]| {
    let (Some(&pick), Some(&flags)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = &data[2..];
    let path = PATHS[usize::from(pick % 3)];
    let framed = pick & 0x80 != 0;
    let encoding = match flags % 3 {
        0 => None,
        1 => Some("gzip"),
        _ => Some("deflate"),
    };
    let body = if framed {
        let gzip = flags & 0x80 != 0;
        grpc::frame(rest, gzip)
    } else {
        rest.to_vec()
    };
    let _ = grpc::one_message(&body, encoding);
    let headers: Vec<(&str, &str)> = encoding.map(|e| ("grpc-encoding", e)).into_iter().collect();
    let req = RequestView {
        method: "POST",
        host: HOST,
        path,
        query: None,
        content_type: Some("application/grpc"),
        idempotency_key: None,
        account: None,
        headers: &headers,
        body: &body,
        facts: &NO_FACTS,
    };
    let _ = adapter().lookups(&req);
    if let Classification::Spend(drafts) = adapter().classify(&req) {
        assert!(grpc::one_message(&body, encoding).is_ok());
        for draft in drafts {
            let amount = draft.amount.expect("a spend has its amount");
            assert_eq!(amount.currency.code(), "EUR");
            assert!(!amount.amount.is_sign_negative());
            assert_eq!(draft.beneficiary.as_deref(), Some("1234567890"));
            assert_eq!(draft.category, "ad_spend");
        }
    }
});
