//! Berlin Group NextGenPSD2 (XS2A 1.3.8) JSON payment initiations
//! (research §4.3): `instructedAmount {currency, amount}` (a decimal string
//! in major units), `creditorAccount.iban`, `creditorName`; a bulk payment
//! lists them under `payments[]`.
//!
//! Fail closed: a single payment with `payments`, a bulk payment with a
//! top-level `instructedAmount`, or an amount that is not the spec's
//! `-?[0-9]{1,14}(\.[0-9]{1,3})?` (and not negative) is not guessed at.

use super::json::Json;
use super::{ReadError, Transfer};
use crate::money::{parse_decimal_amount, Currency, Money};

/// The payment service of a Berlin Group path (`/v1/{service}/{product}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Payments,
    BulkPayments,
    PeriodicPayments,
}

impl Service {
    pub fn parse(segment: &str) -> Option<Service> {
        Some(match segment {
            "payments" => Service::Payments,
            "bulk-payments" => Service::BulkPayments,
            "periodic-payments" => Service::PeriodicPayments,
            _ => return None,
        })
    }

    /// The operation name of an initiation.
    pub fn operation(self) -> &'static str {
        match self {
            Service::Payments => "payment.initiate",
            Service::BulkPayments => "bulk_payment.initiate",
            Service::PeriodicPayments => "periodic_payment.initiate",
        }
    }
}

/// The JSON payment products (the `pain.001-…` ones carry XML).
pub const JSON_PRODUCTS: &[&str] = &[
    "sepa-credit-transfers",
    "instant-sepa-credit-transfers",
    "target-2-payments",
    "cross-border-credit-transfers",
];

/// The credit transfers of a JSON initiation body.
pub fn read(service: Service, body: &Json) -> Result<Vec<Transfer>, ReadError> {
    let Json::Object(_) = body else {
        return Err(ReadError::Unreadable(
            "the payment body is not a JSON object".into(),
        ));
    };
    match service {
        Service::Payments | Service::PeriodicPayments => {
            if body.pointer("/payments").is_some() {
                return Err(ReadError::Unreadable(
                    "a single payment carries a payments list".into(),
                ));
            }
            Ok(vec![payment(body, "the payment")?])
        }
        Service::BulkPayments => {
            if body.pointer("/instructedAmount").is_some() {
                return Err(ReadError::Ambiguous(
                    "the bulk payment has an instructedAmount besides its payments".into(),
                ));
            }
            let Some(Json::Array(items)) = body.pointer("/payments") else {
                return Err(ReadError::Unreadable(
                    "the bulk payment has no payments list".into(),
                ));
            };
            if items.is_empty() {
                return Err(ReadError::Unreadable(
                    "the bulk payment's payments list is empty".into(),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| payment(item, &format!("payments[{i}]")))
                .collect()
        }
    }
}

fn payment(item: &Json, at: &str) -> Result<Transfer, ReadError> {
    let unreadable = |why: String| ReadError::Unreadable(format!("{at}: {why}"));
    let Json::Object(_) = item else {
        return Err(unreadable("not a JSON object".into()));
    };
    let Some(amount) = item.pointer("/instructedAmount") else {
        return Err(unreadable("no instructedAmount".into()));
    };
    let currency = amount
        .pointer("/currency")
        .and_then(Json::as_str)
        .ok_or_else(|| unreadable("no instructedAmount.currency string".into()))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(unreadable(format!(
            "instructedAmount.currency {:?} is not three capital letters",
            currency.chars().take(20).collect::<String>()
        )));
    }
    let currency = Currency::parse(currency)
        .map_err(|e| unreadable(format!("instructedAmount.currency: {e}")))?;
    let text = amount
        .pointer("/amount")
        .and_then(Json::scalar_text)
        .ok_or_else(|| unreadable("no instructedAmount.amount".into()))?;
    let value = parse_decimal_amount(text)
        .map_err(|e| unreadable(format!("instructedAmount.amount: {e}")))?;
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.len() > 14 || frac.len() > 3 {
        return Err(unreadable(format!(
            "instructedAmount.amount {:?} has more than 14 integer or 3 fraction digits",
            text.chars().take(30).collect::<String>()
        )));
    }
    let value = match currency.iso_exponent() {
        Some(exp) if value.scale() < exp => {
            let mut v = value;
            v.rescale(exp);
            v
        }
        _ => value,
    };
    let beneficiary = match item.pointer("/creditorAccount") {
        None => None,
        Some(account) => {
            let iban = account.pointer("/iban");
            let bban = account.pointer("/bban");
            match (iban, bban) {
                (Some(_), Some(_)) => {
                    return Err(ReadError::Ambiguous(format!(
                        "{at}: creditorAccount has both iban and bban"
                    )))
                }
                (Some(iban), None) => {
                    let iban = iban
                        .as_str()
                        .ok_or_else(|| unreadable("creditorAccount.iban is not a string".into()))?;
                    Some(
                        super::normalize_iban(iban)
                            .map_err(|e| unreadable(format!("creditorAccount.iban {e}")))?,
                    )
                }
                (None, Some(bban)) => {
                    let bban = bban
                        .as_str()
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| unreadable("creditorAccount.bban is not a string".into()))?;
                    Some(bban.to_owned())
                }
                // pan, maskedPan, msisdn: no IBAN to name the payee by.
                (None, None) => None,
            }
        }
    };
    let text_at = |pointer: &str| {
        item.pointer(pointer)
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    Ok(Transfer {
        amount: Money::new(value, currency),
        beneficiary,
        creditor_name: text_at("/creditorName"),
        end_to_end_id: text_at("/endToEndIdentification"),
        block_id: None,
        at: at.to_owned(),
        equivalent: false,
        transfer_currency: None,
    })
}
