//! The bank stand-in: a Berlin Group NextGenPSD2 (XS2A 1.3.8) payment
//! initiation API on `api.bank.example` (research §4.3), in memory.
//!
//! - `POST /v1/{payments|bulk-payments|periodic-payments}/{product}`:
//!   JSON products (`sepa-credit-transfers` …) take `instructedAmount`
//!   (`payments[]` for bulk); `pain.001-…` products take a pain.001 document
//!   (`application/xml`, or `multipart/form-data` with part `xml_sct`).
//!   Every initiation needs `X-Request-ID`. The answer is `201
//!   {"transactionStatus":"RCVD","paymentId",…,"_links":{scaRedirect,self,
//!   status}}`: nothing moves until the PSU authorises, as at a bank.
//! - `GET …/{paymentId}` and `…/{paymentId}/status`; `DELETE
//!   …/{paymentId}` cancels (`204`).
//! - Errors as Berlin Group writes them: `{"tppMessages":[{"category":
//!   "ERROR","code":"FORMAT_ERROR"|"RESOURCE_UNKNOWN"|"SERVICE_INVALID",
//!   "text"}]}`.
//!
//! A light reader on purpose (it counts `CdtTrfTxInf` and checks the
//! namespace), so that it answers what leash lets through instead of
//! agreeing with leash's own parser.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use http::{HeaderValue, Method};
use serde_json::{json, Value};

use super::{lock, new_id, Call, Reply, Vendor};

pub const HOSTS: &[&str] = &["api.bank.example"];

const SERVICES: &[&str] = &["payments", "bulk-payments", "periodic-payments"];

/// The in-memory bank.
#[derive(Default)]
pub struct Bank {
    payments: Mutex<BTreeMap<String, Value>>,
}

impl Bank {
    pub fn new() -> Self {
        Self::default()
    }
}

fn tpp(status: u16, code: &str, text: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "tppMessages": [{ "category": "ERROR", "code": code, "text": text }] }),
    )
}

fn media(call: &Call<'_>) -> String {
    call.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The number of credit transfers in a pain.001 document, or why not.
fn pain_transactions(xml: &str) -> Result<usize, &'static str> {
    if !xml.contains("urn:iso:std:iso:20022:tech:xsd:pain.001.001.") {
        return Err("not a pain.001 document");
    }
    if xml.contains("<!DOCTYPE") {
        return Err("DTDs are not accepted");
    }
    let n = xml.matches("CdtTrfTxInf>").count() / 2;
    if n == 0 {
        return Err("no CdtTrfTxInf");
    }
    Ok(n)
}

/// The `xml_sct` part of a multipart body, found without a full parser.
fn xml_sct(body: &str) -> Option<&str> {
    let at = body.find("name=\"xml_sct\"")?;
    let rest = body.get(at..)?;
    let start = rest.find("\r\n\r\n")? + 4;
    let rest = rest.get(start..)?;
    let end = rest.find("\r\n--")?;
    rest.get(..end)
}

impl Bank {
    fn initiate(&self, call: &Call<'_>, service: &str, product: &str) -> Reply {
        if call.headers.get("x-request-id").is_none() {
            return tpp(400, "FORMAT_ERROR", "X-Request-ID is missing");
        }
        let Ok(body) = std::str::from_utf8(call.body) else {
            return tpp(400, "FORMAT_ERROR", "the body is not UTF-8");
        };
        let media = media(call);
        let transactions = if product.starts_with("pain.001-") {
            let xml = match media.as_str() {
                "application/xml" | "text/xml" => Some(body),
                "multipart/form-data" => xml_sct(body),
                _ => None,
            };
            match xml.map(pain_transactions) {
                Some(Ok(n)) => n,
                Some(Err(why)) => return tpp(400, "FORMAT_ERROR", why),
                None => return tpp(400, "FORMAT_ERROR", "a pain.001 product takes XML"),
            }
        } else if [
            "sepa-credit-transfers",
            "instant-sepa-credit-transfers",
            "target-2-payments",
            "cross-border-credit-transfers",
        ]
        .contains(&product)
        {
            let Ok(value) = serde_json::from_str::<Value>(body) else {
                return tpp(400, "FORMAT_ERROR", "the body is not JSON");
            };
            match (service, &value["payments"]) {
                ("bulk-payments", Value::Array(items)) if !items.is_empty() => items.len(),
                ("bulk-payments", _) => return tpp(400, "FORMAT_ERROR", "payments is missing"),
                _ if value["instructedAmount"]["amount"].is_string() => 1,
                _ => return tpp(400, "FORMAT_ERROR", "instructedAmount is missing"),
            }
        } else {
            return tpp(403, "PRODUCT_UNKNOWN", "the payment product is not offered");
        };
        let id = new_id("pay");
        let base = format!("/v1/{service}/{product}/{id}");
        let payment = json!({
            "paymentId": id,
            "transactionStatus": "RCVD",
            "numberOfTransactions": transactions,
            "_links": {
                "scaRedirect": { "href": format!("https://bank.example/sca/{id}") },
                "self": { "href": base },
                "status": { "href": format!("{base}/status") }
            }
        });
        lock(&self.payments).insert(id, payment.clone());
        let mut reply = Reply::json(201, &payment);
        if let Ok(location) = HeaderValue::from_str(&base) {
            reply.headers.push(("location", location));
        }
        reply
    }
}

impl Vendor for Bank {
    fn hosts(&self) -> &'static [&'static str] {
        HOSTS
    }

    fn answer(&self, call: &Call<'_>) -> Reply {
        let segments: Vec<&str> = call.path.split('/').skip(1).collect();
        let (service, product, rest) = match segments.as_slice() {
            ["v1", service, product, rest @ ..] if SERVICES.contains(service) => {
                (*service, *product, rest)
            }
            _ => return tpp(405, "SERVICE_INVALID", "no such service"),
        };
        let _ = service;
        match (call.method, rest) {
            (&Method::POST, []) => self.initiate(call, service, product),
            (&Method::GET, [id]) => match lock(&self.payments).get(*id) {
                Some(p) => Reply::json(200, p),
                None => tpp(403, "RESOURCE_UNKNOWN", "no such payment"),
            },
            (&Method::GET, [id, "status"]) => match lock(&self.payments).get(*id) {
                Some(p) => {
                    Reply::json(200, &json!({ "transactionStatus": p["transactionStatus"] }))
                }
                None => tpp(403, "RESOURCE_UNKNOWN", "no such payment"),
            },
            (&Method::DELETE, [id]) => match lock(&self.payments).get_mut(*id) {
                Some(p) => {
                    p["transactionStatus"] = json!("CANC");
                    Reply {
                        status: 204,
                        headers: Vec::new(),
                        body: Bytes::new(),
                        trailers: None,
                    }
                }
                None => tpp(403, "RESOURCE_UNKNOWN", "no such payment"),
            },
            _ => tpp(405, "SERVICE_INVALID", "not offered"),
        }
    }

    fn object(&self, id: &str) -> Option<Value> {
        lock(&self.payments).get(id).cloned()
    }
}

/// A pain.001.001.03 document (research §4.2's shape) paying each
/// `(amount, creditor IBAN, creditor name)` from one `PmtInf`, with
/// `NbOfTxs` and `CtrlSum` (the amounts' sum, which the caller gives)
/// declared: what a payout job uploads.
pub fn pain001(message_id: &str, ctrl_sum: &str, transfers: &[(&str, &str, &str)]) -> String {
    let n = transfers.len();
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">
  <CstmrCdtTrfInitn>
    <GrpHdr>
      <MsgId>{message_id}</MsgId>
      <CreDtTm>2026-11-24T09:00:00</CreDtTm>
      <NbOfTxs>{n}</NbOfTxs>
      <CtrlSum>{ctrl_sum}</CtrlSum>
      <InitgPty><Nm>Marketplace BV</Nm></InitgPty>
    </GrpHdr>
    <PmtInf>
      <PmtInfId>{message_id}-P1</PmtInfId>
      <PmtMtd>TRF</PmtMtd>
      <NbOfTxs>{n}</NbOfTxs>
      <ReqdExctnDt>2026-11-25</ReqdExctnDt>
      <Dbtr><Nm>Marketplace BV</Nm></Dbtr>
      <DbtrAcct><Id><IBAN>NL50BANK1234567890</IBAN></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BIC>BANKNL2A</BIC></FinInstnId></DbtrAgt>
      <ChrgBr>SLEV</ChrgBr>
"#
    );
    for (i, (amount, iban, name)) in transfers.iter().enumerate() {
        out.push_str(&format!(
            r#"      <CdtTrfTxInf>
        <PmtId><EndToEndId>{message_id}-{i}</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="EUR">{amount}</InstdAmt></Amt>
        <Cdtr><Nm>{name}</Nm></Cdtr>
        <CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct>
        <RmtInf><Ustrd>Payout {message_id} {i}</Ustrd></RmtInf>
      </CdtTrfTxInf>
"#
        ));
    }
    out.push_str("    </PmtInf>\n  </CstmrCdtTrfInitn>\n</Document>\n");
    out
}
