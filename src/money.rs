//! Exact money: currencies, amounts, and the strict parsers that turn wire
//! strings into them.
//!
//! Every amount leash reasons about is a [`rust_decimal::Decimal`] in *major*
//! units (12.50 EUR, 1500 JPY, 1.250 KWD). Nothing here ever goes through a
//! float: a float cannot represent 0.10 exactly, and a policy that compares
//! `spent + amount > cap` must not be wrong by one cent at the boundary.
//!
//! The parsers are deliberately stricter than the APIs whose strings they read.
//! leash sits in front of a payment API and decides whether money may move; if
//! leash and the upstream could read the same string as two different numbers,
//! an agent could show leash one amount and be charged another. So anything
//! that some parser somewhere reads differently (a sign, whitespace, `1e3`, a
//! leading zero that Ruby's `Integer()` takes as octal, a `+`) is an error here,
//! and the caller turns that error into "unreadable" rather than guessing.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest scale a `Decimal` can carry (`rust_decimal` stores up to 28
/// fractional digits). An exponent beyond it could not be represented exactly.
const MAX_SCALE: u32 = 28;

/// The largest mantissa a `Decimal` can hold: 2^96 - 1.
const MAX_MANTISSA: u128 = (1u128 << 96) - 1;

/// Longest input echoed back inside an error message. Errors end up in audit
/// logs and agent-facing messages; a 1 MiB "amount" must not be copied there.
const SNIPPET_LEN: usize = 32;

/// Why a currency code or an amount string was refused.
///
/// Every variant says what was wrong, so that the reason shown to a human
/// approver ("amount \"-5\" must contain only the digits 0-9") is enough to act
/// on without reading leash's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount string was empty.
    #[error("amount is empty")]
    Empty,
    /// A minor-unit amount contained something other than ASCII digits.
    #[error(
        "amount {0:?} must contain only the digits 0-9 (no sign, spaces, decimal point or exponent)"
    )]
    NotDigits(String),
    /// The amount had a leading zero (`"012"`). Some parsers read that as
    /// octal (Ruby's `Integer("012") == 10`), so its value is ambiguous.
    #[error("amount {0:?} has a leading zero, which some parsers read as octal")]
    LeadingZero(String),
    /// The amount is larger than an exact decimal can hold.
    #[error("amount {0:?} is too large to represent exactly")]
    Overflow(String),
    /// The exponent is beyond the 28 fractional digits a `Decimal` can carry.
    #[error("exponent {0} exceeds the 28 decimal places an exact amount can carry")]
    ExponentTooLarge(u32),
    /// A decimal amount string was malformed; the `&'static str` says how.
    #[error("decimal amount {0:?} is malformed: {1}")]
    BadDecimal(String, &'static str),
    /// The code is not an ISO 4217 currency leash knows.
    #[error("currency {0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    /// The code is not usable as a non-ISO asset code.
    #[error("asset code {0:?} is invalid: {1}")]
    BadAssetCode(String, &'static str),
}

/// A short, printable copy of untrusted input for error messages.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(SNIPPET_LEN).collect();
    if s.chars().nth(SNIPPET_LEN).is_some() {
        out.push('…');
    }
    out
}

/// ISO 4217 alphabetic codes with their minor-unit exponents.
///
/// Source: ISO 4217 "list one" as published by the maintenance agency (SIX,
/// <https://www.six-group.com/en/products-services/financial-information/data-standards.html>),
/// including the 2024–2025 additions ZWG (Zimbabwe Gold) and XCG (Caribbean
/// guilder). Codes whose minor unit is "N.A." (XAU, XAG, XPT, XPD, XDR, XSU,
/// XUA, XBA–XBD, XTS, XXX) are left out on purpose: they have no exponent, so
/// no minor-unit amount in them can be read, and no card API charges in them.
///
/// A few codes recently withdrawn from list one are kept because payment
/// processors still accept them during the changeover (ANG until XCG takes
/// over, HRK, SLL, ZWL, CUC). Accepting a code only means leash can *read* an
/// amount in it; whether a vendor charges in it is the vendor's business.
///
/// This is data, not logic: a sorted table searched by binary search.
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HRK", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SLL", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
    ("ZWL", 2),
];

/// Longest asset code accepted by [`Currency::asset`] ("USDC" is 4; some
/// tickers are longer). Kept small so a `Currency` stays `Copy`.
const MAX_CODE_LEN: usize = 10;

/// Is this an ISO currency (with an exponent) or a non-ISO asset?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Iso { exponent: u32 },
    Asset,
}

/// A currency or asset code, always stored uppercase.
///
/// Two kinds exist, and they never mix:
/// - ISO 4217 currencies, made only by [`Currency::parse`], which refuses any
///   code not in the table. They carry their ISO exponent.
/// - Non-ISO assets (BTC, ETH, USDC), made only by [`Currency::asset`]. They
///   have no exponent: their amounts arrive as decimal strings
///   ([`parse_decimal_amount`]), never as minor units, so there is nothing to
///   scale by and inventing an exponent would be a bug waiting to happen.
///
/// The code is kept inline (not a `String`) so that `Currency` is `Copy` and
/// can be compared and hashed cheaply on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; MAX_CODE_LEN],
    len: u8,
    kind: Kind,
}

impl Currency {
    /// Parses an ISO 4217 alphabetic code, in any letter case (`"eur"`,
    /// `"EUR"`, `"Eur"`). No surrounding whitespace is accepted: an API that
    /// receives `" eur"` would refuse it, and so does leash.
    ///
    /// ```
    /// use leash::money::{Currency, Money};
    /// let kwd = Currency::parse("kwd").unwrap();
    /// assert_eq!(kwd.iso_exponent(), Some(3));
    /// let m = Money::new(leash::money::minor_units_to_major("1250", 3).unwrap(), kwd);
    /// assert_eq!(m.to_string(), "1.250 KWD");
    /// assert!(Currency::parse("XYZ").is_err());
    /// ```
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::UnknownCurrency(snippet(code)));
        }
        let upper = code.to_ascii_uppercase();
        match ISO_4217.binary_search_by(|(c, _)| (*c).cmp(upper.as_str())) {
            Ok(i) => match ISO_4217.get(i) {
                Some((_, exponent)) => Ok(Currency::build(
                    upper.as_bytes(),
                    Kind::Iso {
                        exponent: *exponent,
                    },
                )),
                None => Err(MoneyError::UnknownCurrency(snippet(code))),
            },
            Err(_) => Err(MoneyError::UnknownCurrency(snippet(code))),
        }
    }

    /// Makes a non-ISO asset code (crypto, stablecoins): 2 to 10 ASCII letters
    /// or digits, stored uppercase.
    ///
    /// An ISO 4217 code is refused here, so that `EUR` can only ever be the
    /// ISO currency and never a second, unequal "asset EUR".
    pub fn asset(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() < 2 || bytes.len() > MAX_CODE_LEN {
            return Err(MoneyError::BadAssetCode(
                snippet(code),
                "must be 2 to 10 characters long",
            ));
        }
        if !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(MoneyError::BadAssetCode(
                snippet(code),
                "must contain only ASCII letters and digits",
            ));
        }
        if Currency::parse(code).is_ok() {
            return Err(MoneyError::BadAssetCode(
                snippet(code),
                "is an ISO 4217 currency; use Currency::parse",
            ));
        }
        Ok(Currency::build(
            &code.to_ascii_uppercase().into_bytes(),
            Kind::Asset,
        ))
    }

    fn build(upper: &[u8], kind: Kind) -> Currency {
        let mut code = [0u8; MAX_CODE_LEN];
        let len = upper.len().min(MAX_CODE_LEN);
        for (dst, src) in code.iter_mut().zip(upper.iter()) {
            *dst = *src;
        }
        Currency {
            code,
            // `len` is at most MAX_CODE_LEN (10), so it always fits in a u8.
            len: u8::try_from(len).unwrap_or(0),
            kind,
        }
    }

    /// The uppercase code (`"EUR"`, `"BTC"`).
    pub fn code(&self) -> &str {
        let bytes = self.code.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only ASCII alphanumerics are ever stored, so this cannot fail.
        std::str::from_utf8(bytes).unwrap_or("")
    }

    /// The ISO 4217 minor-unit exponent (EUR 2, JPY 0, KWD 3), or `None` for
    /// a non-ISO asset, which has none.
    ///
    /// Note that a *vendor* may scale differently from ISO: a card API may
    /// send ISK and UGX with two decimals although ISO says zero. Vendor
    /// adapters keep their own table and use this only as a default.
    pub fn iso_exponent(&self) -> Option<u32> {
        match self.kind {
            Kind::Iso { exponent } => Some(exponent),
            Kind::Asset => None,
        }
    }

    /// True for ISO 4217 currencies, false for assets.
    pub fn is_iso(&self) -> bool {
        matches!(self.kind, Kind::Iso { .. })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    /// An ISO code if the string is one, otherwise an asset code.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s)
            .or_else(|_| Currency::asset(&s))
            .map_err(serde::de::Error::custom)
    }
}

/// An exact amount of one currency, in major units.
///
/// Serialized as `{"amount":"12.50","currency":"EUR"}`: the amount is a
/// string, never a JSON number, because JSON numbers are read as floats by
/// most consumers of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Major units (12.50 for twelve euros fifty). Never negative when made by
    /// leash's parsers.
    pub amount: Decimal,
    /// The currency or asset of `amount`.
    pub currency: Currency,
}

impl Money {
    /// Pairs an amount with its currency.
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// The amount as text, padded to at least the currency's ISO exponent
    /// (`12.50`, `1500`, `1.250`) and never rounded: an amount with more
    /// digits than the exponent (from a decimal source) keeps all of them.
    pub fn amount_string(&self) -> String {
        let exp = self.currency.iso_exponent().unwrap_or(0);
        let scale = self.amount.scale().max(exp);
        // `scale` is at most 28, so the conversion cannot fail.
        let precision = usize::try_from(scale).unwrap_or(0);
        format!("{:.*}", precision, self.amount)
    }
}

impl fmt::Display for Money {
    /// `12.50 EUR`, `1500 JPY`, `1.250 KWD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Money", 2)?;
        st.serialize_field("amount", &self.amount_string())?;
        st.serialize_field("currency", &self.currency)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Money {
    /// Reads back what `Serialize` writes; the amount string goes through the
    /// same strict [`parse_decimal_amount`] as any wire amount.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            amount: String,
            currency: Currency,
        }
        let raw = Raw::deserialize(d)?;
        let amount = parse_decimal_amount(&raw.amount).map_err(serde::de::Error::custom)?;
        Ok(Money {
            amount,
            currency: raw.currency,
        })
    }
}

/// Parses a minor-unit integer string strictly: ASCII digits only, no leading
/// zero (except `"0"` itself), and no value beyond what a `Decimal` holds.
///
/// Exposed separately from [`minor_units_to_major`] so that adapters can do
/// exact integer arithmetic (unit amount × quantity, sums of line items)
/// before scaling once.
pub fn parse_minor_digits(minor: &str) -> Result<u128, MoneyError> {
    let bytes = minor.as_bytes();
    if bytes.is_empty() {
        return Err(MoneyError::Empty);
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return Err(MoneyError::NotDigits(snippet(minor)));
    }
    if bytes.len() > 1 && bytes.first() == Some(&b'0') {
        return Err(MoneyError::LeadingZero(snippet(minor)));
    }
    let mut value: u128 = 0;
    for b in bytes {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .filter(|v| *v <= MAX_MANTISSA)
            .ok_or_else(|| MoneyError::Overflow(snippet(minor)))?;
    }
    Ok(value)
}

/// Scales an integer count of minor units to major units, exactly:
/// `minor_value_to_major(1250, 3)` is `1.250`.
pub fn minor_value_to_major(minor: u128, exponent: u32) -> Result<Decimal, MoneyError> {
    if exponent > MAX_SCALE {
        return Err(MoneyError::ExponentTooLarge(exponent));
    }
    if minor > MAX_MANTISSA {
        return Err(MoneyError::Overflow(minor.to_string()));
    }
    let signed = i128::try_from(minor).map_err(|_| MoneyError::Overflow(minor.to_string()))?;
    Decimal::try_from_i128_with_scale(signed, exponent)
        .map_err(|_| MoneyError::Overflow(minor.to_string()))
}

/// Converts a minor-unit amount string (`"12345"` cents) to major units
/// (`123.45`) with the given exponent.
///
/// Strict by design, see the module docs: digits only (no sign, space, `+`,
/// decimal point or exponent), no leading zero, no overflow. The result is
/// exact: the digits become the mantissa and the exponent the scale.
///
/// ```
/// use leash::money::minor_units_to_major;
/// assert_eq!(minor_units_to_major("12345", 2).unwrap().to_string(), "123.45");
/// assert_eq!(minor_units_to_major("1250", 3).unwrap().to_string(), "1.250");
/// assert!(minor_units_to_major("-5", 2).is_err());
/// assert!(minor_units_to_major("012", 2).is_err());
/// ```
pub fn minor_units_to_major(minor: &str, exponent: u32) -> Result<Decimal, MoneyError> {
    if exponent > MAX_SCALE {
        return Err(MoneyError::ExponentTooLarge(exponent));
    }
    let value = parse_minor_digits(minor)?;
    minor_value_to_major(value, exponent)
}

/// Parses a plain decimal string in major units: `"12"`, `"12.5"`,
/// `"0.001"`.
///
/// Refused: empty, a sign, whitespace, an exponent (`1e3`), `NaN`/`inf`, a
/// bare point (`"12."`, `".5"`), more than one point, a leading zero before
/// other integer digits (`"012"`), more than 28 decimal places, and anything
/// too large for a `Decimal`. The scale of the input is kept (`"12.50"` stays
/// `12.50`).
pub fn parse_decimal_amount(s: &str) -> Result<Decimal, MoneyError> {
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int_part.is_empty() {
        return Err(MoneyError::BadDecimal(
            snippet(s),
            "needs a digit before the decimal point",
        ));
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::BadDecimal(
            snippet(s),
            "must contain only digits and one decimal point (no sign, spaces or exponent)",
        ));
    }
    if int_part.len() > 1 && int_part.starts_with('0') {
        return Err(MoneyError::LeadingZero(snippet(s)));
    }
    let frac = match frac_part {
        None => "",
        Some("") => {
            return Err(MoneyError::BadDecimal(
                snippet(s),
                "needs a digit after the decimal point",
            ))
        }
        Some(f) if !f.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(MoneyError::BadDecimal(
                snippet(s),
                "must contain only digits and one decimal point (no sign, spaces or exponent)",
            ))
        }
        Some(f) => f,
    };
    let scale = u32::try_from(frac.len())
        .ok()
        .filter(|n| *n <= MAX_SCALE)
        .ok_or_else(|| MoneyError::BadDecimal(snippet(s), "has more than 28 decimal places"))?;
    let mut mantissa: u128 = 0;
    for b in int_part.bytes().chain(frac.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .filter(|v| *v <= MAX_MANTISSA)
            .ok_or_else(|| MoneyError::Overflow(snippet(s)))?;
    }
    minor_value_to_major(mantissa, scale).map_err(|_| MoneyError::Overflow(snippet(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn iso_table_is_sorted_and_unique() {
        for pair in ISO_4217.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} !< {}", pair[0].0, pair[1].0);
        }
        for (code, exp) in ISO_4217 {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(*exp <= 4);
        }
    }

    #[test]
    fn currency_parse_any_case() {
        assert_eq!(Currency::parse("eur").unwrap().code(), "EUR");
        assert_eq!(Currency::parse("Jpy").unwrap().iso_exponent(), Some(0));
        assert_eq!(Currency::parse("KWD").unwrap().iso_exponent(), Some(3));
        assert_eq!(Currency::parse("clf").unwrap().iso_exponent(), Some(4));
        assert_eq!(
            Currency::parse("eur").unwrap(),
            Currency::parse("EUR").unwrap()
        );
    }

    #[test]
    fn currency_parse_rejects() {
        for bad in [
            "", "EU", "EURO", " eur", "eur ", "XXX", "XAU", "ABC", "e1r", "€", "usd\0", "ÉUR",
        ] {
            assert!(Currency::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn assets() {
        let btc = Currency::asset("btc").unwrap();
        assert_eq!(btc.code(), "BTC");
        assert_eq!(btc.iso_exponent(), None);
        assert!(!btc.is_iso());
        assert_eq!(Currency::asset("USDC").unwrap().to_string(), "USDC");
        assert!(Currency::asset("EUR").is_err());
        assert!(Currency::asset("B").is_err());
        assert!(Currency::asset("BTC-X").is_err());
        assert!(Currency::asset("ABCDEFGHIJK").is_err());
        assert_ne!(btc, Currency::asset("ETH").unwrap());
    }

    #[test]
    fn money_display_keeps_exponent_scale() {
        let eur = Currency::parse("EUR").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::new(dec("12.5"), eur).to_string(), "12.50 EUR");
        assert_eq!(Money::new(dec("12"), eur).to_string(), "12.00 EUR");
        assert_eq!(Money::new(dec("1500"), jpy).to_string(), "1500 JPY");
        assert_eq!(Money::new(dec("1.25"), kwd).to_string(), "1.250 KWD");
        // More digits than the exponent are shown, never rounded away.
        assert_eq!(Money::new(dec("0.125"), eur).to_string(), "0.125 EUR");
        let btc = Currency::asset("BTC").unwrap();
        assert_eq!(Money::new(dec("0.00012"), btc).to_string(), "0.00012 BTC");
    }

    #[test]
    fn money_serde() {
        let eur = Currency::parse("EUR").unwrap();
        let m = Money::new(dec("12.5"), eur);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"12.50","currency":"EUR"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Money::new(dec("12.50"), eur));
        let btc: Money = serde_json::from_str(r#"{"amount":"0.5","currency":"btc"}"#).unwrap();
        assert_eq!(btc.currency, Currency::asset("BTC").unwrap());
        assert!(serde_json::from_str::<Money>(r#"{"amount":12.5,"currency":"EUR"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"-1","currency":"EUR"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1e3","currency":"EUR"}"#).is_err());
    }

    #[test]
    fn minor_units_examples() {
        assert_eq!(minor_units_to_major("12345", 2).unwrap(), dec("123.45"));
        assert_eq!(minor_units_to_major("1500", 0).unwrap(), dec("1500"));
        assert_eq!(minor_units_to_major("1250", 3).unwrap(), dec("1.250"));
        assert_eq!(minor_units_to_major("1250", 3).unwrap().scale(), 3);
        assert_eq!(minor_units_to_major("0", 2).unwrap(), Decimal::ZERO);
        assert_eq!(minor_units_to_major("5", 2).unwrap(), dec("0.05"));
        let max = "79228162514264337593543950335";
        assert_eq!(minor_units_to_major(max, 0).unwrap(), Decimal::MAX);
    }

    #[test]
    fn minor_units_rejects() {
        let cases = [
            ("", MoneyError::Empty),
            ("-5", MoneyError::NotDigits("-5".into())),
            ("+5", MoneyError::NotDigits("+5".into())),
            (" 5", MoneyError::NotDigits(" 5".into())),
            ("5 ", MoneyError::NotDigits("5 ".into())),
            ("1.5", MoneyError::NotDigits("1.5".into())),
            ("1e3", MoneyError::NotDigits("1e3".into())),
            ("0x10", MoneyError::NotDigits("0x10".into())),
            ("1_000", MoneyError::NotDigits("1_000".into())),
            ("١٢", MoneyError::NotDigits("١٢".into())),
            ("012", MoneyError::LeadingZero("012".into())),
            ("00", MoneyError::LeadingZero("00".into())),
            (
                "79228162514264337593543950336",
                MoneyError::Overflow("79228162514264337593543950336".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(minor_units_to_major(input, 2), Err(want), "{input:?}");
        }
        assert!(matches!(
            minor_units_to_major(&"9".repeat(200), 2),
            Err(MoneyError::Overflow(_))
        ));
        assert_eq!(
            minor_units_to_major("1", 29),
            Err(MoneyError::ExponentTooLarge(29))
        );
    }

    #[test]
    fn error_messages_do_not_echo_huge_input() {
        let huge = "x".repeat(10_000);
        let msg = minor_units_to_major(&huge, 2).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn decimal_examples() {
        assert_eq!(parse_decimal_amount("12").unwrap(), dec("12"));
        assert_eq!(parse_decimal_amount("12.5").unwrap(), dec("12.5"));
        assert_eq!(parse_decimal_amount("12.50").unwrap().scale(), 2);
        assert_eq!(parse_decimal_amount("0.001").unwrap(), dec("0.001"));
        assert_eq!(parse_decimal_amount("0").unwrap(), Decimal::ZERO);
        for bad in [
            "", "-1", "+1", " 1", "1 ", "1e3", "1E3", "NaN", "inf", ".5", "5.", "1.2.3", "012",
            "1,5", "0x1", "1_0",
        ] {
            assert!(parse_decimal_amount(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_decimal_amount(&format!("0.{}", "1".repeat(29))).is_err());
        assert!(parse_decimal_amount("79228162514264337593543950336").is_err());
        assert!(parse_decimal_amount("7922816251426433759354395033.6").is_err());
        assert!(parse_decimal_amount("7922816251426433759354395033.5").is_ok());
    }

    proptest! {
        #[test]
        fn minor_round_trips_exactly(minor in 0u128..=MAX_MANTISSA, exp in 0u32..=3) {
            let major = minor_units_to_major(&minor.to_string(), exp).unwrap();
            // The digits become the mantissa and the exponent the scale, so
            // major * 10^exp == minor holds by construction...
            prop_assert_eq!(major.scale(), exp);
            prop_assert_eq!(major.mantissa(), i128::try_from(minor).unwrap());
            // ...and by arithmetic, whenever the product is representable.
            let ten = Decimal::from(10u32.pow(exp));
            if let Some(product) = major.checked_mul(ten) {
                prop_assert_eq!(product, Decimal::from_i128_with_scale(i128::try_from(minor).unwrap(), 0));
            }
        }

        #[test]
        fn minor_small_values_round_trip(minor in 0u64..1_000_000_000_000u64, exp in 0u32..=3) {
            let major = minor_units_to_major(&minor.to_string(), exp).unwrap();
            let ten = Decimal::from(10u64.pow(exp));
            prop_assert_eq!(major * ten, Decimal::from(minor));
        }

        #[test]
        fn minor_never_panics(s in ".*", exp in 0u32..40) {
            let _ = minor_units_to_major(&s, exp);
            let _ = parse_decimal_amount(&s);
            let _ = Currency::parse(&s);
            let _ = Currency::asset(&s);
        }

        #[test]
        fn non_digit_is_rejected(prefix in "[0-9]{0,5}", bad in "[^0-9]", suffix in "[0-9]{0,5}", exp in 0u32..=3) {
            let s = format!("{prefix}{bad}{suffix}");
            prop_assert!(minor_units_to_major(&s, exp).is_err());
        }

        #[test]
        fn decimal_round_trips(int in 0u64..1_000_000_000u64, frac in "[0-9]{0,8}") {
            let s = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
            let d = parse_decimal_amount(&s).unwrap();
            prop_assert_eq!(d.to_string(), s);
        }
    }
}
