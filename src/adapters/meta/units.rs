//! Meta's currency **offsets** (research §2.4, [FB-CUR]): budgets and bids
//! are integers in a currency's smallest unit as *Meta* defines it, which
//! is not always ISO 4217's minor unit.
//!
//! "Each currency has an offset which specifies how the platform handles
//! its subdivisions. … If a currency has an offset of 100 then the minimum
//! bid equals 1/100 of the base currency unit … If a currency has an offset
//! of 1 then the minimum bid equals one base currency unit"
//! (<https://developers.facebook.com/docs/marketing-api/currencies>).
//! `daily_budget=2000` on a USD account is $20.00; on a JPY account ¥2000;
//! on a HUF account 2000 Ft (ISO would say 20.00 Ft); on a BHD account
//! 20.00 BHD (ISO would say 2.000 BHD).
//!
//! A currency Meta's table does not list is never guessed: the request is
//! unreadable (research §10, trap 14).

use crate::money::Currency;

/// Offset 1: the value is in whole units. COP, CRC, HUF, IDR and TWD have
/// two ISO decimals, ISK has none: Meta still counts whole units.
const OFFSET_1: &[&str] = &[
    "CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND",
];

/// Offset 100: the value is in hundredths. BHD and JOD have three ISO
/// decimals: Meta still counts hundredths. `FBZ` (Facebook credits) is in
/// Meta's list too but is no ISO currency, so leash cannot price it. LVL,
/// LTL, SKK, HRK and VEF are withdrawn ISO codes leash's table may not
/// know; they are listed for completeness.
const OFFSET_100: &[&str] = &[
    "DZD", "ARS", "AUD", "BHD", "BDT", "BOB", "BGN", "BRL", "GBP", "CAD", "CNY", "HRK", "CZK",
    "DKK", "EGP", "EUR", "GTQ", "HNL", "HKD", "INR", "ILS", "JOD", "KES", "LVL", "LTL", "MOP",
    "MYR", "MXN", "NZD", "NIO", "NGN", "NOK", "PKR", "PEN", "PHP", "PLN", "QAR", "RON", "RUB",
    "SAR", "RSD", "SGD", "SKK", "ZAR", "SEK", "CHF", "THB", "TRY", "AED", "UAH", "USD", "UYU",
    "VEF", "VES",
];

/// The decimal exponent of Meta's offset for `currency` (offset 1 → 0,
/// offset 100 → 2), or `None` when Meta lists no offset for it.
pub fn offset_exponent(currency: &Currency) -> Option<u32> {
    let code = currency.code();
    if !currency.is_iso() {
        None
    } else if OFFSET_1.contains(&code) {
        Some(0)
    } else if OFFSET_100.contains(&code) {
        Some(2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(code: &str) -> Option<u32> {
        offset_exponent(&Currency::parse(code).unwrap())
    }

    #[test]
    fn offsets_differ_from_iso_where_meta_says_so() {
        // ISO 2, Meta whole units.
        for code in ["COP", "CRC", "HUF", "IDR", "TWD"] {
            assert_eq!(Currency::parse(code).unwrap().iso_exponent(), Some(2));
            assert_eq!(exp(code), Some(0), "{code}");
        }
        // ISO 3, Meta hundredths.
        for code in ["BHD", "JOD"] {
            assert_eq!(Currency::parse(code).unwrap().iso_exponent(), Some(3));
            assert_eq!(exp(code), Some(2), "{code}");
        }
        assert_eq!(exp("EUR"), Some(2));
        assert_eq!(exp("USD"), Some(2));
        assert_eq!(exp("JPY"), Some(0));
        assert_eq!(exp("ISK"), Some(0));
    }

    #[test]
    fn an_unlisted_currency_has_no_offset() {
        // KWD and OMR: three ISO decimals, not in Meta's table.
        for code in ["KWD", "OMR", "TND", "XOF"] {
            assert_eq!(exp(code), None, "{code}");
        }
    }
}
