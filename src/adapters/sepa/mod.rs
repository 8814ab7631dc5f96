//! SEPA credit transfers on the banks' API hosts (`vendors.sepa.hosts`,
//! SPEC §4.3, research §4): ISO 20022 `pain.001.001.03` / `.09` documents
//! and Berlin Group NextGenPSD2 JSON payments.
//!
//! What is read, and how (every write on a bank host is one of these):
//!
//! - Berlin Group initiations, `POST …/v1/{payments|bulk-payments|
//!   periodic-payments}/{product}` (a bank may put a base path before
//!   `v1`): JSON products (`sepa-credit-transfers` …) through
//!   [`berlin`]; `pain.001-…` products as an XML body, or a multipart body
//!   whose `xml_sct` part is the document (periodic payments), through
//!   [`pain`].
//! - Any other write whose body is a pain.001 document (raw, or in a
//!   multipart part): a file upload (UK Open Banking file payments, a
//!   corporate upload endpoint). A write with no pain.001 in it is
//!   `unknown`.
//! - Reads (`GET …/{paymentId}`, `…/status`) are safe; every other write
//!   (cancellation, authorisations, consents) is `unknown`.
//!
//! One intent per credit transfer (`CdtTrfTxInf`, or JSON payment): its
//! amount and currency, the creditor IBAN (no spaces, upper case) as the
//! beneficiary, the category of the host (`vendors.sepa.category`). The
//! creditor's name, the end-to-end id and where in the file the transfer
//! stood are kept in the intent's `sources`, so an approver and the audit
//! chain see them. Refusals come in the Berlin Group `tppMessages` shape.

pub mod berlin;
pub mod multipart;
pub mod pain;
pub mod xml;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::{json, normalize_host, path, Adapter, Refusal, Shaped};
use crate::config::SepaSettings;
use crate::intent::{Classification, IntentDraft, RequestView};
use crate::money::Money;
use berlin::Service;

/// The vendor name in intents and policies.
pub const VENDOR: &str = "sepa";

/// One credit transfer, as read from a pain.001 `CdtTrfTxInf` or a Berlin
/// Group JSON payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub amount: Money,
    /// The creditor's IBAN, normalised; else the account's other id.
    pub beneficiary: Option<String>,
    pub creditor_name: Option<String>,
    pub end_to_end_id: Option<String>,
    /// `PmtInfId` of the transfer's payment block.
    pub block_id: Option<String>,
    /// Where the transfer stood (`PmtInf 1 (P-1), CdtTrfTxInf 3`).
    pub at: String,
    /// Whether the amount is `EqvtAmt/Amt` (in the debtor account's
    /// currency) rather than `InstdAmt`.
    pub equivalent: bool,
    /// `EqvtAmt/CcyOfTrf`: the currency the creditor is paid in.
    pub transfer_currency: Option<String>,
}

/// Why a body was not read as credit transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not read exactly (malformed, a value missing or out of range).
    Unreadable(String),
    /// Readable two ways (a DTD, two amounts, counts that disagree).
    Ambiguous(String),
    /// A pain.001 version leash does not read.
    UnknownVersion(String),
    /// Well-formed XML that is not a pain.001 document.
    NotPain(String),
}

impl ReadError {
    /// The same error, prefixed with where it was found.
    fn at(self, at: &str) -> ReadError {
        match self {
            ReadError::Unreadable(m) => ReadError::Unreadable(format!("{at}: {m}")),
            ReadError::Ambiguous(m) => ReadError::Ambiguous(format!("{at}: {m}")),
            ReadError::UnknownVersion(m) => ReadError::UnknownVersion(format!("{at}: {m}")),
            ReadError::NotPain(m) => ReadError::NotPain(format!("{at}: {m}")),
        }
    }

    fn classification(self, operation: &str) -> Classification {
        let operation = operation.to_owned();
        match self {
            ReadError::Unreadable(reason) => Classification::Unreadable { operation, reason },
            ReadError::Ambiguous(reason) => Classification::Ambiguous { operation, reason },
            ReadError::UnknownVersion(reason) | ReadError::NotPain(reason) => {
                Classification::Unknown { operation, reason }
            }
        }
    }
}

/// An IBAN as a beneficiary: spaces removed, upper case, and then the
/// IBAN pattern `[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}` (research §4.1).
pub fn normalize_iban(raw: &str) -> Result<String, String> {
    let iban: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
        .collect::<String>()
        .to_ascii_uppercase();
    let b = iban.as_bytes();
    let ok = (5..=34).contains(&b.len())
        && b.iter().take(2).all(u8::is_ascii_uppercase)
        && b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        && b.iter()
            .skip(4)
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(iban)
    } else {
        Err(format!(
            "{:?} is not an IBAN",
            raw.chars().take(40).collect::<String>()
        ))
    }
}

/// The media type of a Content-Type value: lowercase, no parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_xml(media: &str) -> bool {
    media == "application/xml"
        || media == "text/xml"
        || (media.starts_with("application/") && media.ends_with("+xml"))
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Bytes of a path segment leash reads on bank hosts: ids, product names
/// (`pain.001-sepa-credit-transfers`), nothing that needs decoding.
fn segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// A Berlin Group route: `…/v1/{service}/{product}[/…]`.
struct Route<'p> {
    service: Service,
    product: Option<&'p str>,
    /// Segments after the product (a payment id, `status`, …).
    rest: usize,
}

fn route<'p>(segments: &[&'p str]) -> Option<Route<'p>> {
    let at = segments.windows(2).position(|w| {
        matches!(w, [version, service] if is_version(version) && Service::parse(service).is_some())
    })?;
    let service = Service::parse(segments.get(at + 1)?)?;
    Some(Route {
        service,
        product: segments.get(at + 2).copied(),
        rest: segments.len().saturating_sub(at + 3),
    })
}

fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The SEPA adapter, for the hosts `vendors.sepa` names.
#[derive(Debug, Clone)]
pub struct SepaAdapter {
    hosts: Vec<String>,
    category: String,
}

impl SepaAdapter {
    pub fn new(settings: &SepaSettings) -> SepaAdapter {
        SepaAdapter {
            hosts: settings.hosts.iter().map(|h| normalize_host(h)).collect(),
            category: settings.category.clone(),
        }
    }

    fn spend(
        &self,
        operation: &str,
        message_id: Option<&str>,
        transfers: Vec<Transfer>,
    ) -> Classification {
        let drafts = transfers
            .into_iter()
            .map(|t| self.draft(operation, message_id, t))
            .collect();
        Classification::spend(operation, drafts)
    }

    fn draft(&self, operation: &str, message_id: Option<&str>, t: Transfer) -> IntentDraft {
        let mut sources = BTreeMap::new();
        let clip = |s: &str| s.chars().take(140).collect::<String>();
        sources.insert("transfer".to_owned(), clip(&t.at));
        if let Some(name) = &t.creditor_name {
            sources.insert("creditor_name".to_owned(), clip(name));
        }
        if let Some(id) = &t.end_to_end_id {
            sources.insert("end_to_end_id".to_owned(), clip(id));
        }
        if let Some(id) = message_id {
            sources.insert("message_id".to_owned(), clip(id));
        }
        if t.equivalent {
            let paid_in = t.transfer_currency.as_deref().unwrap_or("?");
            sources.insert(
                "amount".to_owned(),
                clip(&format!(
                    "EqvtAmt (the debtor account's currency), paid in {paid_in}"
                )),
            );
        }
        IntentDraft {
            vendor: VENDOR.to_owned(),
            operation: operation.to_owned(),
            amount: Some(t.amount),
            beneficiary: t.beneficiary,
            category: self.category.clone(),
            idempotency_key: None,
            sources,
        }
    }

    /// A pain.001 document on a route that must carry one.
    fn pain_document(&self, operation: &str, body: &[u8]) -> Classification {
        match pain::read(body) {
            Ok(doc) => self.spend(operation, doc.message_id.as_deref(), doc.transfers),
            Err(ReadError::NotPain(reason)) => Classification::Unreadable {
                operation: operation.to_owned(),
                reason,
            },
            Err(e) => e.classification(operation),
        }
    }

    /// Every pain.001 document in a multipart body, read as one spend.
    /// `None` when no part is one.
    fn pain_parts(
        &self,
        operation: &str,
        content_type: &str,
        body: &[u8],
    ) -> Option<Classification> {
        let parts = match multipart::boundary(content_type).and_then(|b| multipart::parse(&b, body))
        {
            Ok(parts) => parts,
            Err(e) => return Some(e.classification(operation)),
        };
        let mut transfers = Vec::new();
        let mut message_id = None;
        let mut found = false;
        for part in parts {
            let xmlish = part.content_type.as_deref().is_some_and(is_xml)
                || part.name.as_deref() == Some("xml_sct")
                || pain::looks_like_xml(part.body);
            if !xmlish {
                continue;
            }
            let label = part.name.clone().unwrap_or_else(|| "(unnamed)".to_owned());
            match pain::read(part.body) {
                Ok(doc) => {
                    found = true;
                    message_id = message_id.or(doc.message_id);
                    transfers.extend(doc.transfers);
                }
                Err(ReadError::NotPain(_)) if part.name.as_deref() != Some("xml_sct") => {}
                Err(e) => return Some(e.at(&format!("part {label}")).classification(operation)),
            }
        }
        found.then(|| self.spend(operation, message_id.as_deref(), transfers))
    }

    fn initiation(
        &self,
        req: &RequestView<'_>,
        route: &Route<'_>,
        product: &str,
    ) -> Classification {
        let operation = route.service.operation();
        let media = req.content_type.map(media_type).unwrap_or_default();
        if product.starts_with("pain.001-") {
            if is_xml(&media) {
                return self.pain_document(operation, req.body);
            }
            if media == "multipart/form-data" {
                return self
                    .pain_parts(operation, req.content_type.unwrap_or(""), req.body)
                    .unwrap_or_else(|| Classification::Unreadable {
                        operation: operation.to_owned(),
                        reason: "the multipart body has no pain.001 part (xml_sct)".to_owned(),
                    });
            }
            return Classification::Unreadable {
                operation: operation.to_owned(),
                reason: format!(
                    "the product {product} carries pain.001 XML, but the Content-Type is {}",
                    if media.is_empty() { "missing" } else { &media }
                ),
            };
        }
        if !berlin::JSON_PRODUCTS.contains(&product) {
            return Classification::Unknown {
                operation: operation.to_owned(),
                reason: format!(
                    "the payment product {:?} is not one leash reads",
                    product.chars().take(60).collect::<String>()
                ),
            };
        }
        if !is_json(&media) {
            return Classification::Unreadable {
                operation: operation.to_owned(),
                reason: format!(
                    "the product {product} carries JSON, but the Content-Type is {}",
                    if media.is_empty() { "missing" } else { &media }
                ),
            };
        }
        let body = match json::parse(req.body) {
            Ok(body) => body,
            Err(e) if e.is_ambiguous() => {
                return Classification::Ambiguous {
                    operation: operation.to_owned(),
                    reason: e.to_string(),
                }
            }
            Err(e) => {
                return Classification::Unreadable {
                    operation: operation.to_owned(),
                    reason: e.to_string(),
                }
            }
        };
        match berlin::read(route.service, &body) {
            Ok(transfers) => self.spend(operation, None, transfers),
            Err(e) => e.classification(operation),
        }
    }

    /// A write that is not a Berlin Group initiation: a pain.001 upload if
    /// its body is one, else unknown.
    fn other_write(&self, req: &RequestView<'_>) -> Classification {
        const UPLOAD: &str = "pain001.upload";
        let media = req.content_type.map(media_type).unwrap_or_default();
        let unknown = || Classification::Unknown {
            operation: "unknown".to_owned(),
            reason: format!(
                "{} {} is not a write leash knows on a bank host",
                req.method,
                req.path.chars().take(100).collect::<String>()
            ),
        };
        if media == "multipart/form-data" {
            return self
                .pain_parts(UPLOAD, req.content_type.unwrap_or(""), req.body)
                .unwrap_or_else(unknown);
        }
        if is_xml(&media) || pain::looks_like_xml(req.body) {
            return match pain::read(req.body) {
                Ok(doc) => self.spend(UPLOAD, doc.message_id.as_deref(), doc.transfers),
                Err(ReadError::NotPain(_)) => unknown(),
                // Not XML at all, under a non-XML type: some other upload.
                Err(ReadError::Unreadable(_)) if !is_xml(&media) => unknown(),
                Err(e) => e.classification(UPLOAD),
            };
        }
        unknown()
    }
}

impl Adapter for SepaAdapter {
    fn name(&self) -> &str {
        VENDOR
    }

    fn claims_host(&self, host: &str) -> bool {
        self.hosts.contains(&normalize_host(host))
    }

    fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    /// Berlin Group has no idempotency header (`X-Request-ID` names each
    /// request, n/v whether banks dedupe on it); a retry is the same bytes.
    fn idempotency_header(&self) -> Option<&str> {
        None
    }

    fn classify(&self, req: &RequestView<'_>) -> Classification {
        if matches!(req.method, "GET" | "HEAD" | "OPTIONS") {
            return Classification::Safe {
                operation: "read".into(),
            };
        }
        let exact = path::canonical_segments(req.path, segment_byte).and_then(|s| route(&s));
        let Some(route) = exact else {
            let lenient = path::lenient(req.path);
            let lenient_segments: Vec<&str> =
                lenient.split('/').filter(|s| !s.is_empty()).collect();
            if route(&lenient_segments).is_some() {
                return Classification::Ambiguous {
                    operation: "unknown".into(),
                    reason: format!(
                        "the path {:?} is not canonical, and a bank's router may read it as a payment initiation",
                        req.path.chars().take(100).collect::<String>()
                    ),
                };
            }
            return self.other_write(req);
        };
        match (req.method, route.product, route.rest) {
            ("POST", Some(product), 0) => self.initiation(req, &route, product),
            _ => Classification::Unknown {
                operation: route.service.operation().replace(".initiate", ".update"),
                reason: format!(
                    "{} {} changes a payment (cancellation, authorisation); leash reads initiations",
                    req.method,
                    req.path.chars().take(100).collect::<String>()
                ),
            },
        }
    }

    /// Berlin Group's error shape (research §4.3): `{"tppMessages":
    /// [{"category":"ERROR","code":…,"text":…}]}`. The code is one of the
    /// spec's (`SERVICE_BLOCKED` for a refusal or a hold, `ACCESS_EXCEEDED`
    /// for 429, `FORMAT_ERROR` for 400), which clients show and do not
    /// retry; leash's own code opens the text (`Max500Text`).
    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        let code = match refusal.status.as_u16() {
            429 => "ACCESS_EXCEEDED",
            400 => "FORMAT_ERROR",
            _ => "SERVICE_BLOCKED",
        };
        let text: String = format!("{}: {}", refusal.code, refusal.message)
            .chars()
            .take(500)
            .collect();
        Shaped::json(serde_json::json!({
            "tppMessages": [{ "category": "ERROR", "code": code, "text": text }]
        }))
    }
}
