//! ISO 20022 `pain.001` (customer credit transfer initiation), versions
//! `.001.001.03` and `.001.001.09`, read as one [`Transfer`] per
//! `CdtTrfTxInf` (research §4.1, §4.2, traps 25–27).
//!
//! Elements are matched on namespace URI + local name, so any prefix (or
//! the default namespace) reads the same. Everything that decides money is
//! read exactly once or the document is refused: two amounts in one `Amt`
//! (`InstdAmt` *and* `EqvtAmt`), two creditor accounts, a `CdtTrfTxInf` or
//! an amount element outside the place leash reads them from, an element of
//! another namespace that a namespace-blind bank would read as a pain.001
//! one, and `NbOfTxs` / `CtrlSum` that disagree with the transactions (the
//! XSD does not check them; a bank may trust them) are all *ambiguous*.

use rust_decimal::Decimal;

use super::xml::{self, Element, XML_SPACE};
use super::{ReadError, Transfer};
use crate::money::{Currency, Money};

/// The namespace of every pain.001 version; the version follows.
pub const NS_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.";

/// The pain.001 versions leash reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V03,
    V09,
}

impl Version {
    pub fn namespace(self) -> &'static str {
        match self {
            Version::V03 => "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03",
            Version::V09 => "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09",
        }
    }
}

/// A pain.001 document, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pain001 {
    pub version: Version,
    /// `GrpHdr/MsgId`.
    pub message_id: Option<String>,
    pub transfers: Vec<Transfer>,
}

/// Most fraction digits of an amount (`ActiveOrHistoricCurrencyAndAmount`:
/// `fractionDigits 5`) and of `CtrlSum` (`DecimalNumber`: 17).
const AMOUNT_FRACTION: usize = 5;
const CTRL_SUM_FRACTION: usize = 17;
/// `totalDigits 18` for both.
const TOTAL_DIGITS: usize = 18;

/// Whether `bytes` look like an XML document (what a raw upload is sniffed
/// by when its Content-Type does not say).
pub fn looks_like_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

/// Reads a pain.001 document. A well-formed document that is not pain.001
/// at all is [`ReadError::NotPain`]; another pain.001 version is
/// [`ReadError::UnknownVersion`].
pub fn read(bytes: &[u8]) -> Result<Pain001, ReadError> {
    let root = xml::parse(bytes).map_err(|e| {
        if e.is_ambiguous() {
            ReadError::Ambiguous(e.to_string())
        } else {
            ReadError::Unreadable(e.to_string())
        }
    })?;
    let ns = root.ns.as_deref().unwrap_or("");
    let version = match ns.strip_prefix(NS_PREFIX) {
        Some("03") => Version::V03,
        Some("09") => Version::V09,
        Some(other) if root.name == "Document" => {
            return Err(ReadError::UnknownVersion(format!(
                "pain.001.001.{} is a version leash does not read (it reads .03 and .09)",
                short(other)
            )))
        }
        _ => {
            return Err(ReadError::NotPain(format!(
                "the XML root is {{{}}}{}, not a pain.001 Document",
                short(ns),
                short(&root.name)
            )))
        }
    };
    if root.name != "Document" {
        return Err(ReadError::NotPain(format!(
            "the XML root is {}, not Document",
            short(&root.name)
        )));
    }
    let ns = version.namespace();
    check_namespaces(&root, ns)?;

    let initiation = exactly_one(&root, ns, "CstmrCdtTrfInitn")?;
    let header = exactly_one(initiation, ns, "GrpHdr")?;
    let message_id = optional(header, ns, "MsgId")?
        .map(value)
        .transpose()?
        .map(str::to_owned);
    let declared_count = count(
        value(exactly_one(header, ns, "NbOfTxs")?)?,
        "GrpHdr/NbOfTxs",
    )?;
    let declared_sum = optional(header, ns, "CtrlSum")?
        .map(|e| decimal(value(e)?, CTRL_SUM_FRACTION, "GrpHdr/CtrlSum"))
        .transpose()?;

    let mut transfers = Vec::new();
    let blocks: Vec<&Element> = initiation.children_named(ns, "PmtInf").collect();
    if blocks.is_empty() {
        return Err(ReadError::Unreadable(
            "the pain.001 document has no PmtInf".into(),
        ));
    }
    for (b, block) in blocks.iter().enumerate() {
        let block_id = optional(block, ns, "PmtInfId")?
            .map(value)
            .transpose()?
            .map(str::to_owned);
        let at_block = || match &block_id {
            Some(id) => format!("PmtInf {} ({})", b + 1, short(id)),
            None => format!("PmtInf {}", b + 1),
        };
        let txs: Vec<&Element> = block.children_named(ns, "CdtTrfTxInf").collect();
        if txs.is_empty() {
            return Err(ReadError::Unreadable(format!(
                "{} has no CdtTrfTxInf",
                at_block()
            )));
        }
        let mut block_sum = Decimal::ZERO;
        for (t, tx) in txs.iter().enumerate() {
            let at = format!("{}, CdtTrfTxInf {}", at_block(), t + 1);
            let transfer = transaction(tx, ns, &at, block_id.as_deref())?;
            block_sum = block_sum
                .checked_add(transfer.amount.amount)
                .ok_or_else(|| ReadError::Unreadable(format!("{at}: the amounts overflow")))?;
            transfers.push(transfer);
        }
        if let Some(n) = optional(block, ns, "NbOfTxs")? {
            let n = count(value(n)?, "PmtInf/NbOfTxs")?;
            if n != txs.len() as u64 {
                return Err(ReadError::Ambiguous(format!(
                    "{}: NbOfTxs says {n} transactions, the block has {}",
                    at_block(),
                    txs.len()
                )));
            }
        }
        if let Some(sum) = optional(block, ns, "CtrlSum")? {
            let sum = decimal(value(sum)?, CTRL_SUM_FRACTION, "PmtInf/CtrlSum")?;
            if sum != block_sum {
                return Err(ReadError::Ambiguous(format!(
                    "{}: CtrlSum says {sum}, the transactions add up to {block_sum}",
                    at_block()
                )));
            }
        }
    }
    if declared_count != transfers.len() as u64 {
        return Err(ReadError::Ambiguous(format!(
            "GrpHdr/NbOfTxs says {declared_count} transactions, the document has {}",
            transfers.len()
        )));
    }
    if let Some(declared) = declared_sum {
        let mut total = Decimal::ZERO;
        for t in &transfers {
            total = total
                .checked_add(t.amount.amount)
                .ok_or_else(|| ReadError::Unreadable("the amounts overflow".into()))?;
        }
        if declared != total {
            return Err(ReadError::Ambiguous(format!(
                "GrpHdr/CtrlSum says {declared}, the transactions add up to {total}"
            )));
        }
    }
    // Whatever a bank might find by name anywhere in the document must be
    // what leash read: a CdtTrfTxInf or an amount somewhere else (inside
    // RmtInf, a second CstmrCdtTrfInitn) would be paid by a bank that
    // searches the tree, and was not read here.
    let all = root.descendants();
    for (name, read) in [
        ("CstmrCdtTrfInitn", 1),
        ("PmtInf", blocks.len()),
        ("CdtTrfTxInf", transfers.len()),
        (
            "InstdAmt",
            transfers.iter().filter(|t| !t.equivalent).count(),
        ),
        ("EqvtAmt", transfers.iter().filter(|t| t.equivalent).count()),
    ] {
        let found = all
            .iter()
            .filter(|e| e.name == name && e.ns.as_deref() == Some(ns))
            .count();
        if found != read {
            return Err(ReadError::Ambiguous(format!(
                "the document has {found} {name} elements, {read} where pain.001 puts them"
            )));
        }
    }
    Ok(Pain001 {
        version,
        message_id,
        transfers,
    })
}

/// One `CdtTrfTxInf`.
fn transaction(
    tx: &Element,
    ns: &str,
    at: &str,
    block_id: Option<&str>,
) -> Result<Transfer, ReadError> {
    let in_tx = |e: ReadError| e.at(at);
    let amt = exactly_one(tx, ns, "Amt").map_err(in_tx)?;
    let instructed = optional(amt, ns, "InstdAmt").map_err(in_tx)?;
    let equivalent = optional(amt, ns, "EqvtAmt").map_err(in_tx)?;
    let (amount_element, equivalent, transfer_currency) = match (instructed, equivalent) {
        (Some(_), Some(_)) => {
            return Err(ReadError::Ambiguous(format!(
                "{at}: Amt holds both InstdAmt and EqvtAmt"
            )))
        }
        (None, None) => {
            return Err(ReadError::Unreadable(format!(
                "{at}: Amt holds neither InstdAmt nor EqvtAmt"
            )))
        }
        (Some(e), None) => (e, false, None),
        (None, Some(eq)) => {
            let amount = exactly_one(eq, ns, "Amt").map_err(in_tx)?;
            let ccy = value(exactly_one(eq, ns, "CcyOfTrf").map_err(in_tx)?).map_err(in_tx)?;
            (amount, true, Some(ccy.to_owned()))
        }
    };
    let amount = amount_of(amount_element).map_err(in_tx)?;

    let beneficiary = match optional(tx, ns, "CdtrAcct").map_err(in_tx)? {
        None => None,
        Some(account) => {
            let id = exactly_one(account, ns, "Id").map_err(in_tx)?;
            let iban = optional(id, ns, "IBAN").map_err(in_tx)?;
            let other = optional(id, ns, "Othr").map_err(in_tx)?;
            match (iban, other) {
                (Some(_), Some(_)) => {
                    return Err(ReadError::Ambiguous(format!(
                        "{at}: CdtrAcct/Id holds both IBAN and Othr"
                    )))
                }
                (Some(iban), None) => Some(
                    super::normalize_iban(value(iban).map_err(in_tx)?).map_err(|e| {
                        ReadError::Unreadable(format!("{at}: CdtrAcct/Id/IBAN {e}"))
                    })?,
                ),
                (None, Some(other)) => {
                    let id = value(exactly_one(other, ns, "Id").map_err(in_tx)?).map_err(in_tx)?;
                    if id.is_empty() {
                        return Err(ReadError::Unreadable(format!(
                            "{at}: CdtrAcct/Id/Othr/Id is empty"
                        )));
                    }
                    Some(id.to_owned())
                }
                (None, None) => {
                    return Err(ReadError::Unreadable(format!(
                        "{at}: CdtrAcct/Id holds neither IBAN nor Othr"
                    )))
                }
            }
        }
    };
    let creditor_name = match optional(tx, ns, "Cdtr").map_err(in_tx)? {
        Some(cdtr) => optional(cdtr, ns, "Nm")
            .map_err(in_tx)?
            .map(value)
            .transpose()
            .map_err(in_tx)?
            .map(str::to_owned),
        None => None,
    };
    let end_to_end_id = match optional(tx, ns, "PmtId").map_err(in_tx)? {
        Some(id) => optional(id, ns, "EndToEndId")
            .map_err(in_tx)?
            .map(value)
            .transpose()
            .map_err(in_tx)?
            .map(str::to_owned),
        None => None,
    };
    Ok(Transfer {
        amount,
        beneficiary,
        creditor_name,
        end_to_end_id,
        block_id: block_id.map(str::to_owned),
        at: at.to_owned(),
        equivalent,
        transfer_currency,
    })
}

/// An amount element: `Ccy` attribute and decimal text.
fn amount_of(e: &Element) -> Result<Money, ReadError> {
    let mut ccy = e.attributes_named("Ccy");
    let (Some(attr), None) = (ccy.next(), ccy.next()) else {
        return Err(ReadError::Ambiguous(format!(
            "{} needs exactly one Ccy attribute",
            e.name
        )));
    };
    if attr.prefixed {
        return Err(ReadError::Ambiguous(format!(
            "{}'s Ccy attribute carries a namespace prefix",
            e.name
        )));
    }
    let code = attr.value.as_str();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ReadError::Unreadable(format!(
            "{} Ccy {:?} is not three capital letters",
            e.name,
            short(code)
        )));
    }
    let currency = Currency::parse(code)
        .map_err(|err| ReadError::Unreadable(format!("{} Ccy: {err}", e.name)))?;
    let amount = decimal(value(e)?, AMOUNT_FRACTION, &e.name)?;
    let amount = match currency.iso_exponent() {
        Some(exp) if amount.scale() < exp => {
            let mut a = amount;
            a.rescale(exp);
            a
        }
        _ => amount,
    };
    Ok(Money::new(amount, currency))
}

/// An `xs:decimal` (whitespace collapsed, an optional `+`, leading zeros,
/// `5.` and `.5` all legal), never negative, at most `fraction`
/// significant fraction digits and [`TOTAL_DIGITS`] digits, trailing zeros
/// dropped: `+0010.12000` is 10.12.
pub fn decimal(text: &str, fraction: usize, what: &str) -> Result<Decimal, ReadError> {
    let bad = |why: &str| ReadError::Unreadable(format!("{what} {:?} {why}", short(text)));
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.starts_with('-') || text.starts_with('-') {
        return Err(bad("is negative"));
    }
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("is not a decimal number"));
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if frac.len() > fraction {
        return Err(bad(&format!("has more than {fraction} fraction digits")));
    }
    if int.len() + frac.len() > TOTAL_DIGITS {
        return Err(bad(&format!("has more than {TOTAL_DIGITS} digits")));
    }
    let mantissa: i128 = format!("0{int}{frac}")
        .parse()
        .map_err(|_| bad("is not a decimal number"))?;
    let scale = u32::try_from(frac.len()).map_err(|_| bad("is too long"))?;
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| bad("is too large"))
}

/// `Max15NumericText`: one to fifteen digits.
fn count(text: &str, what: &str) -> Result<u64, ReadError> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ReadError::Unreadable(format!(
            "{what} {:?} is not one to fifteen digits",
            short(text)
        )));
    }
    text.parse()
        .map_err(|_| ReadError::Unreadable(format!("{what} is not a number")))
}

/// The text of a simple element, whitespace-trimmed (every pain.001 value
/// type collapses or forbids surrounding whitespace).
fn value(e: &Element) -> Result<&str, ReadError> {
    if !e.children.is_empty() {
        return Err(ReadError::Unreadable(format!(
            "{} holds elements where a value belongs",
            e.name
        )));
    }
    if e.interrupted && !e.text.trim_matches(XML_SPACE).is_empty() {
        return Err(ReadError::Ambiguous(format!(
            "{}'s value is split by a comment or processing instruction",
            e.name
        )));
    }
    Ok(e.text.trim_matches(XML_SPACE))
}

fn optional<'e>(
    parent: &'e Element,
    ns: &'e str,
    name: &'e str,
) -> Result<Option<&'e Element>, ReadError> {
    let mut found = parent.children_named(ns, name);
    let first = found.next();
    if found.next().is_some() {
        return Err(ReadError::Ambiguous(format!(
            "{} holds more than one {name}",
            parent.name
        )));
    }
    Ok(first)
}

fn exactly_one<'e>(
    parent: &'e Element,
    ns: &'e str,
    name: &'e str,
) -> Result<&'e Element, ReadError> {
    optional(parent, ns, name)?
        .ok_or_else(|| ReadError::Unreadable(format!("{} has no {name}", parent.name)))
}

/// Every element must be in the document's namespace, except inside a
/// supplementary-data envelope (`SplmtryData/Envlp`, `xs:any`): a bank that
/// ignores namespaces would read `<x:InstdAmt xmlns:x="urn:other">` as an
/// amount, and leash would not.
fn check_namespaces(e: &Element, ns: &str) -> Result<(), ReadError> {
    if e.ns.as_deref() != Some(ns) {
        return Err(ReadError::Ambiguous(format!(
            "the element {} is in the namespace {:?}, not the document's",
            short(&e.name),
            short(e.ns.as_deref().unwrap_or(""))
        )));
    }
    if e.name == "Envlp" {
        return Ok(());
    }
    e.children.iter().try_for_each(|c| check_namespaces(c, ns))
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}
