//! The SEPA adapter on the research's exact documents (§4.2, §4.3) and on
//! the traps of §10 (25–27).

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::testing::{
    adapter, classify, document, drafts, pain_09, Tx, BG_BULK, BG_SINGLE, PAIN_03,
};
use crate::adapters::{Adapter, Refusal, Registry};
use crate::intent::Classification;

const BULK_XML: &str = "/v1/bulk-payments/pain.001-sepa-credit-transfers";
const XML: Option<&str> = Some("application/xml");
const JSON: Option<&str> = Some("application/json");

fn amount(d: &crate::intent::IntentDraft) -> String {
    d.amount.map(|m| m.to_string()).unwrap_or_default()
}

fn kind(c: &Classification) -> &'static str {
    c.kind()
}

#[test]
fn the_research_pain_001_001_03_document() {
    let d = drafts(classify("POST", BULK_XML, XML, PAIN_03.as_bytes()));
    assert_eq!(d.len(), 1);
    assert_eq!(amount(&d[0]), "10.12 EUR");
    assert_eq!(d[0].vendor, "sepa");
    assert_eq!(d[0].operation, "bulk_payment.initiate");
    assert_eq!(d[0].category, "payout");
    assert_eq!(d[0].beneficiary.as_deref(), Some("NL50BANK1234567890"));
    assert_eq!(d[0].sources["creditor_name"], "GPU Vendor BV");
    assert_eq!(d[0].sources["end_to_end_id"], "INV-1042");
    assert_eq!(d[0].sources["message_id"], "LEASH-20260724-0001");
    assert_eq!(
        d[0].sources["transfer"],
        "PmtInf 1 (LEASH-PMT-0001), CdtTrfTxInf 1"
    );
    assert_eq!(d[0].idempotency_key, None);
}

#[test]
fn the_research_pain_001_001_09_document() {
    let d = drafts(classify("POST", BULK_XML, XML, pain_09().as_bytes()));
    assert_eq!(d.len(), 1);
    assert_eq!(amount(&d[0]), "10.12 EUR");
    assert_eq!(d[0].beneficiary.as_deref(), Some("NL50BANK1234567890"));
    let doc = super::pain::read(pain_09().as_bytes()).unwrap();
    assert_eq!(doc.version, super::pain::Version::V09);
}

#[test]
fn other_pain_versions_and_documents_are_unknown() {
    for version in ["02", "08", "10", "11"] {
        let doc = PAIN_03.replace("pain.001.001.03", &format!("pain.001.001.{version}"));
        let c = classify("POST", BULK_XML, XML, doc.as_bytes());
        assert_eq!(kind(&c), "unknown", "{version}: {c:?}");
    }
    let camt = PAIN_03.replace("pain.001.001.03", "camt.053.001.02");
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, camt.as_bytes())),
        "unreadable"
    );
    assert_eq!(
        kind(&classify("POST", "/upload", XML, camt.as_bytes())),
        "unknown"
    );
}

#[test]
fn a_raw_upload_elsewhere_is_read_too() {
    for (path, ct) in [
        (
            "/file-payment-consents/C-1/file",
            Some("application/octet-stream"),
        ),
        ("/h2h/upload", None),
        ("/h2h/upload", Some("text/xml; charset=utf-8")),
    ] {
        let d = drafts(classify("POST", path, ct, PAIN_03.as_bytes()));
        assert_eq!(d[0].operation, "pain001.upload");
        assert_eq!(amount(&d[0]), "10.12 EUR");
    }
    let c = classify("POST", "/file-payment-consents", JSON, b"{\"Data\":{}}");
    assert_eq!(kind(&c), "unknown");
}

#[test]
fn berlin_group_json_payments() {
    let d = drafts(classify(
        "POST",
        "/v1/payments/sepa-credit-transfers",
        JSON,
        BG_SINGLE.as_bytes(),
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].operation, "payment.initiate");
    assert_eq!(amount(&d[0]), "123.50 EUR");
    assert_eq!(d[0].beneficiary.as_deref(), Some("DE02100100109307118603"));
    assert_eq!(d[0].sources["creditor_name"], "Merchant123");

    let d = drafts(classify(
        "POST",
        "/psd2/v1/bulk-payments/sepa-credit-transfers",
        JSON,
        BG_BULK.as_bytes(),
    ));
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].operation, "bulk_payment.initiate");
    assert_eq!(amount(&d[1]), "34.10 EUR");
    assert_eq!(
        d[1].beneficiary.as_deref(),
        Some("FR7612345987650123456789014")
    );

    let periodic = BG_SINGLE.replace(
        "\"creditorName\"",
        "\"startDate\":\"2026-01-01\",\"frequency\":\"Monthly\",\"creditorName\"",
    );
    let d = drafts(classify(
        "POST",
        "/v1/periodic-payments/instant-sepa-credit-transfers",
        JSON,
        periodic.as_bytes(),
    ));
    assert_eq!(d[0].operation, "periodic_payment.initiate");
    assert_eq!(amount(&d[0]), "123.50 EUR");
    let whole = BG_SINGLE.replace("\"123.50\"", "\"1056\"");
    let d = drafts(classify(
        "POST",
        "/v1/payments/sepa-credit-transfers",
        JSON,
        whole.as_bytes(),
    ));
    assert_eq!(amount(&d[0]), "1056.00 EUR");
}

#[test]
fn berlin_group_bodies_leash_cannot_read_exactly() {
    let single = "/v1/payments/sepa-credit-transfers";
    let bulk = "/v1/bulk-payments/sepa-credit-transfers";
    let cases: &[(&str, &str, &str)] = &[
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR","amount":"-5"}}"#,
            "unreadable",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR","amount":"1e3"}}"#,
            "unreadable",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR","amount":"1.2345"}}"#,
            "unreadable",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"eur","amount":"5"}}"#,
            "unreadable",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR"}}"#,
            "unreadable",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR","amount":"5","amount":"9000"}}"#,
            "ambiguous",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR","amount":"5"},"creditorAccount":{"iban":"DE02 1001","bban":"1"}}"#,
            "ambiguous",
        ),
        (
            single,
            r#"{"instructedAmount":{"currency":"EUR","amount":"5"},"creditorAccount":{"iban":"not an iban"}}"#,
            "unreadable",
        ),
        (
            bulk,
            r#"{"instructedAmount":{"currency":"EUR","amount":"5"},"payments":[]}"#,
            "ambiguous",
        ),
        (bulk, r#"{"payments":[]}"#, "unreadable"),
        (bulk, r#"[1]"#, "unreadable"),
    ];
    for (path, body, want) in cases {
        let c = classify("POST", path, JSON, body.as_bytes());
        assert_eq!(kind(&c), *want, "{body}: {c:?}");
    }
    // The wrong media type for the product: not guessed.
    let c = classify("POST", single, XML, BG_SINGLE.as_bytes());
    assert_eq!(kind(&c), "unreadable");
    let c = classify("POST", BULK_XML, JSON, PAIN_03.as_bytes());
    assert_eq!(kind(&c), "unreadable");
    let c = classify(
        "POST",
        "/v1/payments/swift-wires",
        JSON,
        BG_SINGLE.as_bytes(),
    );
    assert_eq!(kind(&c), "unknown");
}

#[test]
fn reads_are_safe_and_other_writes_unknown() {
    for path in [
        "/v1/payments/sepa-credit-transfers/P-1",
        "/v1/payments/sepa-credit-transfers/P-1/status",
    ] {
        assert_eq!(kind(&classify("GET", path, None, b"")), "safe");
    }
    for (method, path) in [
        ("DELETE", "/v1/payments/sepa-credit-transfers/P-1"),
        (
            "POST",
            "/v1/payments/sepa-credit-transfers/P-1/authorisations",
        ),
        (
            "PUT",
            "/v1/payments/sepa-credit-transfers/P-1/authorisations/A-1",
        ),
        ("PUT", "/v1/payments/sepa-credit-transfers"),
        ("POST", "/v1/payments"),
        ("POST", "/v1/consents"),
    ] {
        let c = classify(method, path, JSON, b"{}");
        assert_eq!(kind(&c), "unknown", "{method} {path}");
    }
    // Paths a lenient router may read as an initiation.
    for path in [
        "/v1//payments/sepa-credit-transfers",
        "/v1/payments/sepa-credit-transfers/",
        "/v1/Payments/sepa-credit-transfers",
        "/v1/payments/./sepa-credit-transfers",
        "/v1/%70ayments/sepa-credit-transfers",
    ] {
        let c = classify("POST", path, JSON, BG_SINGLE.as_bytes());
        assert_eq!(kind(&c), "ambiguous", "{path}: {c:?}");
    }
}

#[test]
fn amounts_are_exact_xs_decimals() {
    let one = |text: &str| {
        let doc = document(
            "",
            &[vec![Tx {
                amount: text,
                iban: "DE02100100109307118603",
                name: "A",
            }]],
            None,
        );
        classify("POST", BULK_XML, XML, doc.as_bytes())
    };
    for (text, want) in [
        ("+0010.12000", "10.12 EUR"),
        ("10.12345", "10.12345 EUR"),
        ("1.100000000", "1.10 EUR"),
        (" 10.12\n", "10.12 EUR"),
        (".5", "0.50 EUR"),
        ("5.", "5.00 EUR"),
        ("999999999.99", "999999999.99 EUR"),
        ("0", "0.00 EUR"),
    ] {
        let d = drafts(one(text));
        assert_eq!(amount(&d[0]), want, "{text}");
    }
    for text in [
        "10.123456",
        "-1",
        "-0",
        "1e3",
        "",
        "10,12",
        "1.2.3",
        "+",
        ".",
        "0x10",
        "1 000",
        "1234567890123456789",
        "NaN",
        "١٢",
    ] {
        let c = one(text);
        assert_eq!(kind(&c), "unreadable", "{text:?}: {c:?}");
    }
}

#[test]
fn several_payment_blocks_each_count() {
    let blocks = vec![
        vec![
            Tx {
                amount: "100.00",
                iban: "DE02100100109307118603",
                name: "A",
            },
            Tx {
                amount: "200.50",
                iban: "FR7612345987650123456789014",
                name: "B",
            },
        ],
        vec![Tx {
            amount: "3.25",
            iban: "NL91ABNA0417164300",
            name: "C",
        }],
    ];
    let doc = document("", &blocks, Some("303.75"));
    let d = drafts(classify("POST", BULK_XML, XML, doc.as_bytes()));
    assert_eq!(d.len(), 3);
    assert_eq!(amount(&d[2]), "3.25 EUR");
    assert_eq!(d[2].sources["transfer"], "PmtInf 2 (P-1), CdtTrfTxInf 1");
    assert_eq!(d[1].sources["end_to_end_id"], "E2E-0-1");
    // The declared sum disagrees with the transactions: read two ways.
    let doc = document("", &blocks, Some("303.76"));
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, doc.as_bytes())),
        "ambiguous"
    );
    let doc = document("", &blocks, None).replace("<NbOfTxs>3</NbOfTxs>", "<NbOfTxs>2</NbOfTxs>");
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, doc.as_bytes())),
        "ambiguous"
    );
    let doc =
        document("", &blocks, None).replacen("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>1</NbOfTxs>", 1);
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, doc.as_bytes())),
        "ambiguous"
    );
    let block_sum = PAIN_03.replacen("<CtrlSum>10.12</CtrlSum>", "<CtrlSum>10.120</CtrlSum>", 1);
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, block_sum.as_bytes())),
        "spend"
    );
    let block_sum = PAIN_03.replace(
        "      <CtrlSum>10.12</CtrlSum>\n      <PmtTpInf>",
        "      <CtrlSum>1012</CtrlSum>\n      <PmtTpInf>",
    );
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, block_sum.as_bytes())),
        "ambiguous"
    );
}

#[test]
fn any_prefix_reads_the_same() {
    let blocks = vec![vec![
        Tx {
            amount: "42.00",
            iban: "DE02100100109307118603",
            name: "A",
        },
        Tx {
            amount: "1.5",
            iban: "de02 1001 0010 9307 1186 03",
            name: "B &amp; C",
        },
    ]];
    let plain = drafts(classify(
        "POST",
        BULK_XML,
        XML,
        document("", &blocks, None).as_bytes(),
    ));
    for prefix in ["p", "ns0", "Document"] {
        let doc = document(prefix, &blocks, None);
        assert_eq!(
            drafts(classify("POST", BULK_XML, XML, doc.as_bytes())),
            plain,
            "{prefix}"
        );
    }
    assert_eq!(
        plain[1].beneficiary.as_deref(),
        Some("DE02100100109307118603")
    );
    assert_eq!(plain[1].sources["creditor_name"], "B & C");
    assert_eq!(amount(&plain[1]), "1.50 EUR");
}

#[test]
fn what_a_namespace_blind_bank_would_read_differently_is_ambiguous() {
    let foreign = PAIN_03.replace(
        "<Amt><InstdAmt Ccy=\"EUR\">10.12</InstdAmt></Amt>",
        "<Amt><x:InstdAmt xmlns:x=\"urn:other\" Ccy=\"EUR\">99999</x:InstdAmt><InstdAmt Ccy=\"EUR\">10.12</InstdAmt></Amt>",
    );
    let no_ns = PAIN_03.replace(
        "<RmtInf><Ustrd>Invoice 1042</Ustrd></RmtInf>",
        "<RmtInf xmlns=\"\"><Ustrd>Invoice 1042</Ustrd></RmtInf>",
    );
    let both = PAIN_03.replace(
        "<Amt><InstdAmt Ccy=\"EUR\">10.12</InstdAmt></Amt>",
        "<Amt><InstdAmt Ccy=\"EUR\">10.12</InstdAmt><EqvtAmt><Amt Ccy=\"EUR\">9000</Amt><CcyOfTrf>EUR</CcyOfTrf></EqvtAmt></Amt>",
    );
    let two = PAIN_03.replace(
        "<InstdAmt Ccy=\"EUR\">10.12</InstdAmt>",
        "<InstdAmt Ccy=\"EUR\">10.12</InstdAmt><InstdAmt Ccy=\"EUR\">9000</InstdAmt>",
    );
    let stray = PAIN_03.replace(
        "<RmtInf><Ustrd>Invoice 1042</Ustrd></RmtInf>",
        "<RmtInf><CdtTrfTxInf><Amt><InstdAmt Ccy=\"EUR\">9000</InstdAmt></Amt></CdtTrfTxInf></RmtInf>",
    );
    let split = PAIN_03.replace(">10.12</InstdAmt>", ">10<!-- -->.12</InstdAmt>");
    let ccy_twice = PAIN_03.replace("Ccy=\"EUR\"", "Ccy=\"EUR\" xmlns:p=\"urn:p\" p:Ccy=\"USD\"");
    let two_accounts = PAIN_03.replace(
        "<CdtrAcct><Id><IBAN>NL50BANK1234567890</IBAN></Id></CdtrAcct>",
        "<CdtrAcct><Id><IBAN>NL50BANK1234567890</IBAN><IBAN>DE02100100109307118603</IBAN></Id></CdtrAcct>",
    );
    for (name, doc) in [
        ("foreign", foreign),
        ("no namespace", no_ns),
        ("both amounts", both),
        ("two amounts", two),
        ("stray transaction", stray),
        ("split value", split),
        ("ccy twice", ccy_twice),
        ("two accounts", two_accounts),
    ] {
        let c = classify("POST", BULK_XML, XML, doc.as_bytes());
        assert_eq!(kind(&c), "ambiguous", "{name}: {c:?}");
    }
}

#[test]
fn the_equivalent_amount_is_read_in_the_debtor_currency() {
    let doc = PAIN_03.replace(
        "<Amt><InstdAmt Ccy=\"EUR\">10.12</InstdAmt></Amt>",
        "<Amt><EqvtAmt><Amt Ccy=\"EUR\">10.12</Amt><CcyOfTrf>USD</CcyOfTrf></EqvtAmt></Amt>",
    );
    let d = drafts(classify("POST", BULK_XML, XML, doc.as_bytes()));
    assert_eq!(amount(&d[0]), "10.12 EUR");
    assert!(d[0].sources["amount"].contains("paid in USD"));
}

#[test]
fn xml_hazards_are_refused() {
    let xxe = PAIN_03.replace(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE Document [<!ENTITY amt SYSTEM \"file:///etc/passwd\">]>",
    );
    let laughs = PAIN_03
        .replace(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<?xml version=\"1.0\"?><!DOCTYPE Document [<!ENTITY a \"1\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>",
        )
        .replace("<Ustrd>Invoice 1042</Ustrd>", "<Ustrd>&b;</Ustrd>");
    let entity = PAIN_03.replace(">10.12</InstdAmt>", ">&amt;</InstdAmt>");
    for doc in [xxe, laughs, entity] {
        for path in [BULK_XML, "/h2h/upload"] {
            let c = classify("POST", path, XML, doc.as_bytes());
            assert_eq!(kind(&c), "ambiguous", "{c:?}");
        }
    }
    let latin1 = PAIN_03.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, latin1.as_bytes())),
        "unreadable"
    );
    let deep = PAIN_03.replace(
        "<Ustrd>Invoice 1042</Ustrd>",
        &format!("{}{}", "<Ustrd>".repeat(40), "</Ustrd>".repeat(40)),
    );
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, deep.as_bytes())),
        "unreadable"
    );
    let truncated = &PAIN_03[..PAIN_03.len() / 2];
    assert_eq!(
        kind(&classify("POST", BULK_XML, XML, truncated.as_bytes())),
        "unreadable"
    );
}

#[test]
fn pain_001_in_multipart_parts() {
    let body = format!(
        "--LEASH\r\nContent-Disposition: form-data; name=\"xml_sct\"\r\nContent-Type: application/xml\r\n\r\n{PAIN_03}\r\n--LEASH\r\nContent-Disposition: form-data; name=\"json_standingorderType\"\r\nContent-Type: application/json\r\n\r\n{{\"startDate\":\"2026-08-01\",\"frequency\":\"Monthly\"}}\r\n--LEASH--\r\n"
    );
    let ct = Some("multipart/form-data; boundary=LEASH");
    let d = drafts(classify(
        "POST",
        "/v1/periodic-payments/pain.001-sepa-credit-transfers",
        ct,
        body.as_bytes(),
    ));
    assert_eq!(d[0].operation, "periodic_payment.initiate");
    assert_eq!(amount(&d[0]), "10.12 EUR");
    // A generic upload form with the file in some part.
    let upload = format!(
        "--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"batch.xml\"\r\n\r\n{PAIN_03}\r\n--b1--"
    );
    let d = drafts(classify(
        "POST",
        "/uploads",
        Some("multipart/form-data; boundary=b1"),
        upload.as_bytes(),
    ));
    assert_eq!(d[0].operation, "pain001.upload");
    // No pain.001 at all: an unknown write, or an unreadable initiation.
    let none = "--b1\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--b1--";
    let c = classify(
        "POST",
        "/uploads",
        Some("multipart/form-data; boundary=b1"),
        none.as_bytes(),
    );
    assert_eq!(kind(&c), "unknown");
    let c = classify(
        "POST",
        "/v1/periodic-payments/pain.001-sepa-credit-transfers",
        Some("multipart/form-data; boundary=b1"),
        none.as_bytes(),
    );
    assert_eq!(kind(&c), "unreadable");
    let twice = format!(
        "--b1\r\nContent-Disposition: form-data; name=\"xml_sct\"\r\n\r\n{PAIN_03}\r\n--b1\r\nContent-Disposition: form-data; name=\"xml_sct\"\r\n\r\n{PAIN_03}\r\n--b1--"
    );
    let c = classify(
        "POST",
        "/uploads",
        Some("multipart/form-data; boundary=b1"),
        twice.as_bytes(),
    );
    assert_eq!(kind(&c), "ambiguous");
}

#[test]
fn refusals_come_in_the_tpp_messages_shape() {
    let shaped = adapter().shape_refusal(&Refusal {
        status: http::StatusCode::FORBIDDEN,
        code: "leash_rejected",
        message: "leash rejected this request: rule 10",
    });
    assert_eq!(shaped.status, None);
    assert!(shaped.headers.is_empty());
    let body = shaped.json_body().unwrap();
    assert_eq!(body["tppMessages"][0]["category"], "ERROR");
    assert_eq!(body["tppMessages"][0]["code"], "SERVICE_BLOCKED");
    assert_eq!(
        body["tppMessages"][0]["text"],
        "leash_rejected: leash rejected this request: rule 10"
    );
    let long = "x".repeat(900);
    let shaped = adapter().shape_refusal(&Refusal {
        status: http::StatusCode::TOO_MANY_REQUESTS,
        code: "leash_too_many_holds",
        message: &long,
    });
    let body = shaped.json_body().unwrap();
    assert_eq!(body["tppMessages"][0]["code"], "ACCESS_EXCEEDED");
    assert_eq!(
        body["tppMessages"][0]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        500
    );
}

#[test]
fn the_registry_claims_the_configured_bank_hosts() {
    assert!(Registry::builtin().for_host("api.bank.example").is_none());
    let mut config = crate::config::Config::default();
    config.vendors.sepa.hosts = vec!["api.bank.example".into()];
    config.vendors.sepa.category = "seller_payout".into();
    let registry = Registry::from_config(&config);
    let sepa = registry.for_host("API.Bank.Example:443").expect("claimed");
    assert_eq!(sepa.name(), "sepa");
    assert_eq!(sepa.hosts(), vec!["api.bank.example".to_string()]);
    assert_eq!(sepa.read_headers(), Vec::<&str>::new());
    let d = drafts(sepa.classify(&crate::intent::RequestView {
        method: "POST",
        host: "api.bank.example",
        path: BULK_XML,
        query: None,
        content_type: XML,
        idempotency_key: None,
        account: None,
        headers: &[],
        body: PAIN_03.as_bytes(),
        facts: &crate::intent::NO_FACTS,
    }));
    assert_eq!(d[0].category, "seller_payout");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn classify_never_panics(
        path in prop::sample::select(vec![BULK_XML, "/v1/payments/sepa-credit-transfers", "/v1/bulk-payments/sepa-credit-transfers", "/up"]),
        ct in prop::sample::select(vec!["application/xml", "application/json", "multipart/form-data; boundary=b", "text/plain"]),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let _ = classify("POST", path, Some(ct), &body);
    }

    #[test]
    fn mutated_documents_never_panic(at in 0usize..1200, byte in any::<u8>()) {
        let mut doc = PAIN_03.as_bytes().to_vec();
        if let Some(b) = doc.get_mut(at) {
            *b = byte;
        }
        let c = classify("POST", BULK_XML, XML, &doc);
        if let Classification::Spend(d) = c {
            prop_assert_eq!(d.len(), 1);
        }
    }

    #[test]
    fn every_generated_transaction_is_read_with_its_amount(
        blocks in prop::collection::vec(prop::collection::vec((0u64..10_000_000, 0usize..3), 1..6), 1..4),
        prefix in prop::sample::select(vec!["", "p", "pain"]),
        with_sum in any::<bool>(),
    ) {
        let ibans = ["DE02100100109307118603", "FR7612345987650123456789014", "NL91ABNA0417164300"];
        let texts: Vec<Vec<(String, usize)>> = blocks
            .iter()
            .map(|b| b.iter().map(|(cents, i)| (format!("{}.{:02}", cents / 100, cents % 100), *i)).collect())
            .collect();
        let txs: Vec<Vec<Tx<'_>>> = texts
            .iter()
            .map(|b| b.iter().map(|(a, i)| Tx { amount: a, iban: ibans[*i], name: "Seller" }).collect())
            .collect();
        let total: u64 = blocks.iter().flatten().map(|(c, _)| c).sum();
        let sum = format!("{}.{:02}", total / 100, total % 100);
        let doc = document(prefix, &txs, with_sum.then_some(sum.as_str()));
        let d = drafts(classify("POST", BULK_XML, XML, doc.as_bytes()));
        let want: Vec<(Decimal, &str)> = blocks
            .iter()
            .flatten()
            .map(|(c, i)| (Decimal::new(i64::try_from(*c).unwrap(), 2), ibans[*i]))
            .collect();
        let got: Vec<(Decimal, &str)> = d
            .iter()
            .map(|x| (x.amount.unwrap().amount, x.beneficiary.as_deref().unwrap()))
            .collect();
        prop_assert_eq!(got, want);
    }
}
