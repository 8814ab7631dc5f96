//! Feeds arbitrary bytes to the SEPA adapter: the pain.001 reader (strict
//! XML, namespaces, amounts, NbOfTxs/CtrlSum) and the Berlin Group JSON and
//! multipart readers, through `classify` on a configured bank host.
//!
//! Input layout: byte 0 picks the mode, the rest is the payload.
//! - 0: the payload is a whole document for `pain::read`;
//! - 1: the payload is spliced into a valid pain.001 document at a position
//!   byte 1 chooses (so the fuzzer works inside a real document);
//! - 2: the payload is the `InstdAmt` text of a valid document;
//! - 3, 4, 5: a Berlin Group single / bulk / periodic JSON body;
//! - 6: a multipart body (boundary `b`) on the periodic pain.001 product;
//! - 7: a raw upload to a non-Berlin-Group path, no Content-Type.
//!
//! Besides "never panics": a spend is never empty, every intent has a
//! non-negative amount of at most five fraction digits and the SEPA
//! category, and a document read has as many intents as transfers.
#![no_main]

use std::sync::OnceLock;

use leash::adapters::sepa::{pain, SepaAdapter};
use leash::adapters::Adapter;
use leash::config::SepaSettings;
use leash::intent::{Classification, RequestView, NO_FACTS};
use libfuzzer_sys::fuzz_target;

const HOST: &str = "api.bank.example";

const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"><CstmrCdtTrfInitn><GrpHdr><MsgId>M-1</MsgId><CreDtTm>2026-07-24T16:04:32</CreDtTm><NbOfTxs>2</NbOfTxs><CtrlSum>20.24</CtrlSum><InitgPty><Nm>D</Nm></InitgPty></GrpHdr><PmtInf><PmtInfId>P-1</PmtInfId><PmtMtd>TRF</PmtMtd><NbOfTxs>1</NbOfTxs><CtrlSum>10.12</CtrlSum><ReqdExctnDt>2026-07-27</ReqdExctnDt><Dbtr><Nm>D</Nm></Dbtr><DbtrAcct><Id><IBAN>NL50BANK1234567890</IBAN></Id></DbtrAcct><DbtrAgt><FinInstnId><BIC>BANKNL2A</BIC></FinInstnId></DbtrAgt><CdtTrfTxInf><PmtId><EndToEndId>E-1</EndToEndId></PmtId><Amt><InstdAmt Ccy="EUR">10.12</InstdAmt></Amt><Cdtr><Nm>C</Nm></Cdtr><CdtrAcct><Id><IBAN>DE02100100109307118603</IBAN></Id></CdtrAcct></CdtTrfTxInf></PmtInf><PmtInf><PmtInfId>P-2</PmtInfId><PmtMtd>TRF</PmtMtd><ReqdExctnDt>2026-07-27</ReqdExctnDt><Dbtr><Nm>D</Nm></Dbtr><DbtrAcct><Id><IBAN>NL50BANK1234567890</IBAN></Id></DbtrAcct><DbtrAgt><FinInstnId><BIC>BANKNL2A</BIC></FinInstnId></DbtrAgt><CdtTrfTxInf><PmtId><EndToEndId>E-2</EndToEndId></PmtId><Amt><EqvtAmt><Amt Ccy="EUR">10.12</Amt><CcyOfTrf>USD</CcyOfTrf></EqvtAmt></Amt><CdtrAcct><Id><Othr><Id>X-1</Id></Othr></Id></CdtrAcct></CdtTrfTxInf></PmtInf></CstmrCdtTrfInitn></Document>"#;

fn adapter() -> &'static SepaAdapter {
    static ADAPTER: OnceLock<SepaAdapter> = OnceLock::new();
    ADAPTER.get_or_init(|| {
        SepaAdapter::new(&SepaSettings {
            hosts: vec![HOST.to_owned()],
            category: "payout".to_owned(),
        })
    })
}

fn classify(path: &str, content_type: Option<&str>, body: &[u8]) -> Classification {
    adapter().classify(&RequestView {
        method: "POST",
        host: HOST,
        path,
        query: None,
        content_type,
        idempotency_key: None,
        account: None,
        headers: &[],
        body,
        facts: &NO_FACTS,
    })
}

fn check(c: &Classification) {
    assert!(matches!(
        c.kind(),
        "safe" | "spend" | "unknown" | "unreadable" | "ambiguous"
    ));
    if let Classification::Spend(drafts) = c {
        assert!(!drafts.is_empty(), "empty spend");
        for d in drafts {
            let money = d.amount.expect("a SEPA intent always has an amount");
            assert!(!money.amount.is_sign_negative(), "negative amount {money}");
            assert!(money.amount.normalize().scale() <= 5, "{money}");
            assert_eq!(d.category, "payout");
            let _ = money.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let xml = Some("application/xml");
    let json = Some("application/json");
    let c = match mode % 8 {
        0 => {
            if let Ok(doc) = pain::read(payload) {
                assert!(!doc.transfers.is_empty());
                let c = classify("/v1/bulk-payments/pain.001-sepa-credit-transfers", xml, payload);
                match &c {
                    Classification::Spend(d) => assert_eq!(d.len(), doc.transfers.len()),
                    other => panic!("read but not a spend: {other:?}"),
                }
            }
            classify("/v1/bulk-payments/pain.001-sepa-credit-transfers", xml, payload)
        }
        1 => {
            let (at, rest) = payload.split_first().map(|(a, r)| (*a, r)).unwrap_or((0, &[]));
            let cut = (usize::from(at) * DOC.len() / 256).min(DOC.len());
            let mut doc = DOC.as_bytes()[..cut].to_vec();
            doc.extend_from_slice(rest);
            doc.extend_from_slice(&DOC.as_bytes()[cut..]);
            classify("/v1/payments/pain.001-sepa-credit-transfers", xml, &doc)
        }
        2 => {
            let text = String::from_utf8_lossy(payload);
            let doc = DOC.replacen(">10.12</InstdAmt>", &format!(">{text}</InstdAmt>"), 1);
            classify("/v1/bulk-payments/pain.001-sepa-credit-transfers", xml, doc.as_bytes())
        }
        3 => classify("/v1/payments/sepa-credit-transfers", json, payload),
        4 => classify("/v1/bulk-payments/sepa-credit-transfers", json, payload),
        5 => classify("/v1/periodic-payments/instant-sepa-credit-transfers", json, payload),
        6 => classify(
            "/v1/periodic-payments/pain.001-sepa-credit-transfers",
            Some("multipart/form-data; boundary=b"),
            payload,
        ),
        _ => classify("/h2h/upload", None, payload),
    };
    check(&c);
});
