//! The research's exact documents and bodies (research §4.2, §4.3), and a
//! generator of pain.001 files for the SEPA adapter's tests.

use super::SepaAdapter;
use crate::config::SepaSettings;
use crate::intent::{Classification, RequestView, NO_FACTS};

pub const HOST: &str = "api.bank.example";

/// pain.001.001.03, XSD-valid (research §4.2), verbatim.
pub const PAIN_03: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">
  <CstmrCdtTrfInitn>
    <GrpHdr>
      <MsgId>LEASH-20260724-0001</MsgId>
      <CreDtTm>2026-07-24T16:04:32</CreDtTm>
      <NbOfTxs>1</NbOfTxs>
      <CtrlSum>10.12</CtrlSum>
      <InitgPty><Nm>TestDebtor</Nm></InitgPty>
    </GrpHdr>
    <PmtInf>
      <PmtInfId>LEASH-PMT-0001</PmtInfId>
      <PmtMtd>TRF</PmtMtd>
      <BtchBookg>true</BtchBookg>
      <NbOfTxs>1</NbOfTxs>
      <CtrlSum>10.12</CtrlSum>
      <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>
      <ReqdExctnDt>2026-07-27</ReqdExctnDt>
      <Dbtr><Nm>TestDebtor</Nm></Dbtr>
      <DbtrAcct><Id><IBAN>NL50BANK1234567890</IBAN></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BIC>BANKNL2A</BIC></FinInstnId></DbtrAgt>
      <ChrgBr>SLEV</ChrgBr>
      <CdtTrfTxInf>
        <PmtId><EndToEndId>INV-1042</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="EUR">10.12</InstdAmt></Amt>
        <CdtrAgt><FinInstnId><BIC>BANKNL2A</BIC></FinInstnId></CdtrAgt>
        <Cdtr><Nm>GPU Vendor BV</Nm></Cdtr>
        <CdtrAcct><Id><IBAN>NL50BANK1234567890</IBAN></Id></CdtrAcct>
        <RmtInf><Ustrd>Invoice 1042</Ustrd></RmtInf>
      </CdtTrfTxInf>
    </PmtInf>
  </CstmrCdtTrfInitn>
</Document>
"#;

/// pain.001.001.09: the .03 document with the research's three edits.
pub fn pain_09() -> String {
    PAIN_03
        .replace("pain.001.001.03", "pain.001.001.09")
        .replace(
            "<ReqdExctnDt>2026-07-27</ReqdExctnDt>",
            "<ReqdExctnDt><Dt>2026-07-27</Dt></ReqdExctnDt>",
        )
        .replace("<BIC>BANKNL2A</BIC>", "<BICFI>BANKNL2A</BICFI>")
}

/// Berlin Group's single payment example (research §4.3), verbatim.
pub const BG_SINGLE: &str = r#"{"instructedAmount":{"currency":"EUR","amount":"123.50"},"debtorAccount":{"iban":"DE40100100103307118608"},
 "creditorName":"Merchant123","creditorAccount":{"iban":"DE02100100109307118603"},
 "remittanceInformationUnstructured":"Ref Number Merchant"}"#;

/// Berlin Group's bulk example, as fixed by the research.
pub const BG_BULK: &str = r#"{"batchBookingPreferred":"true","debtorAccount":{"iban":"DE40100100103307118608"},
 "paymentInformationId":"my-bulk-identification-1234","requestedExecutionDate":"2018-08-01",
 "payments":[{"instructedAmount":{"currency":"EUR","amount":"123.50"},"creditorName":"Merchant123",
   "creditorAccount":{"iban":"DE02100100109307118603"},"remittanceInformationUnstructured":"Ref Number Merchant 1"},
  {"instructedAmount":{"currency":"EUR","amount":"34.10"},"creditorName":"Merchant456",
   "creditorAccount":{"iban":"FR7612345987650123456789014"},"remittanceInformationUnstructured":"Ref Number Merchant 2"}]}"#;

/// One generated transaction: amount text, creditor IBAN, name.
pub struct Tx<'a> {
    pub amount: &'a str,
    pub iban: &'a str,
    pub name: &'a str,
}

/// A pain.001.001.03 file with one `PmtInf` per block, element prefix
/// `prefix` (`""` for the default namespace), counts and sums declared as
/// given (`None`: computed as the sum of the amounts' text, which the
/// caller keeps plain).
pub fn document(prefix: &str, blocks: &[Vec<Tx<'_>>], ctrl_sum: Option<&str>) -> String {
    let p = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}:")
    };
    let xmlns = if prefix.is_empty() {
        "xmlns".to_owned()
    } else {
        format!("xmlns:{prefix}")
    };
    let n: usize = blocks.iter().map(Vec::len).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{p}Document {xmlns}=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03\"><{p}CstmrCdtTrfInitn><{p}GrpHdr><{p}MsgId>GEN-1</{p}MsgId><{p}CreDtTm>2026-07-24T16:04:32</{p}CreDtTm><{p}NbOfTxs>{n}</{p}NbOfTxs>"
    );
    if let Some(sum) = ctrl_sum {
        out.push_str(&format!("<{p}CtrlSum>{sum}</{p}CtrlSum>"));
    }
    out.push_str(&format!(
        "<{p}InitgPty><{p}Nm>Debtor</{p}Nm></{p}InitgPty></{p}GrpHdr>"
    ));
    for (b, block) in blocks.iter().enumerate() {
        out.push_str(&format!(
            "<{p}PmtInf><{p}PmtInfId>P-{b}</{p}PmtInfId><{p}PmtMtd>TRF</{p}PmtMtd><{p}NbOfTxs>{}</{p}NbOfTxs><{p}ReqdExctnDt>2026-07-27</{p}ReqdExctnDt><{p}Dbtr><{p}Nm>Debtor</{p}Nm></{p}Dbtr><{p}DbtrAcct><{p}Id><{p}IBAN>NL50BANK1234567890</{p}IBAN></{p}Id></{p}DbtrAcct><{p}DbtrAgt><{p}FinInstnId><{p}BIC>BANKNL2A</{p}BIC></{p}FinInstnId></{p}DbtrAgt><{p}ChrgBr>SLEV</{p}ChrgBr>",
            block.len()
        ));
        for (t, tx) in block.iter().enumerate() {
            out.push_str(&format!(
                "<{p}CdtTrfTxInf><{p}PmtId><{p}EndToEndId>E2E-{b}-{t}</{p}EndToEndId></{p}PmtId><{p}Amt><{p}InstdAmt Ccy=\"EUR\">{}</{p}InstdAmt></{p}Amt><{p}Cdtr><{p}Nm>{}</{p}Nm></{p}Cdtr><{p}CdtrAcct><{p}Id><{p}IBAN>{}</{p}IBAN></{p}Id></{p}CdtrAcct></{p}CdtTrfTxInf>",
                tx.amount, tx.name, tx.iban
            ));
        }
        out.push_str(&format!("</{p}PmtInf>"));
    }
    out.push_str(&format!("</{p}CstmrCdtTrfInitn></{p}Document>"));
    out
}

pub fn adapter() -> SepaAdapter {
    SepaAdapter::new(&SepaSettings {
        hosts: vec![HOST.to_owned()],
        category: "payout".to_owned(),
    })
}

/// `method path` with `content_type` and `body`, classified.
pub fn classify(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Classification {
    use crate::adapters::Adapter;
    adapter().classify(&RequestView {
        method,
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

/// The drafts of a spend, or a panic naming what it was.
pub fn drafts(c: Classification) -> Vec<crate::intent::IntentDraft> {
    match c {
        Classification::Spend(d) => d,
        other => panic!("not a spend: {other:?}"),
    }
}
