//! Money moved between balances: transfer reversals, application fee
//! refunds, payout reversals, customer balance transactions, Treasury
//! outbound payments and transfers, and the one amount a SetupIntent can
//! carry.

use std::collections::BTreeMap;

use super::lookups::{
    application_fee_path, payout_path, spend_from_object, transfer_path, Fallback, FromObject,
};
use super::{draft, integer, safe, scalar, shown, stripe_currency, to_money, unreadable, Call, Op};
use crate::intent::Classification;

pub(super) const TREASURY_OUTBOUND_PAYMENT: Op = Op {
    name: "treasury.outbound_payment.create",
    // Money leaves Stripe for a third party's account.
    category: "payout",
};
pub(super) const TREASURY_OUTBOUND_TRANSFER: Op = Op {
    name: "treasury.outbound_transfer.create",
    // Money leaves the financial account for its owner's own account.
    category: "transfer",
};
/// Where a Treasury outbound payment goes: the saved payment method, one
/// given inline (a financial account), or the customer it belongs to.
pub(super) const TREASURY_PAYMENT_BENEFICIARY: &[&str] = &[
    "destination_payment_method",
    "destination_payment_method_data[financial_account]",
    "customer",
];
pub(super) const TREASURY_TRANSFER_BENEFICIARY: &[&str] = &[
    "destination_payment_method",
    "destination_payment_method_data[financial_account]",
];

const TRANSFER_REVERSAL: Op = Op {
    name: "transfer.reversal",
    category: "transfer_reversal",
};
const APPLICATION_FEE_REFUND: Op = Op {
    name: "application_fee.refund",
    category: "refund",
};
const PAYOUT_REVERSE: Op = Op {
    name: "payout.reverse",
    category: "payout_reversal",
};
/// A negative customer balance transaction: credit the customer gets
/// towards future invoices, value the business gives away (like a refund).
const CUSTOMER_CREDIT: Op = Op {
    name: "customer_balance_transaction.create",
    category: "customer_credit",
};
/// A positive one: a debit added to the customer's next invoice (like an
/// invoice item).
const CUSTOMER_DEBIT: Op = Op {
    name: "customer_balance_transaction.create",
    category: "invoice",
};

pub(super) const SETUP_CREATE: Op = Op {
    name: "setup_intent.create",
    category: "payment",
};
pub(super) const SETUP_UPDATE: Op = Op {
    name: "setup_intent.update",
    category: "payment",
};
pub(super) const SETUP_CONFIRM: Op = Op {
    name: "setup_intent.confirm",
    category: "payment",
};

/// `POST /v1/transfers/{id}/reversals`: `amount`, else all not yet reversed
/// (`amount` − `amount_reversed`), in the transfer's currency. Money comes
/// back from the connected account to the platform; the beneficiary is the
/// transfer it is drawn from, as a refund's is its charge.
pub(super) fn transfer_reversal(c: &Call<'_>, transfer: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: TRANSFER_REVERSAL,
            object: "transfer",
            kind: "transfer",
            path: transfer_path(transfer),
            amount_field: Some("amount"),
            fallback: Fallback::Left("amount", "amount_reversed"),
            need_given: "`amount` is given, but a reversal carries no `currency` (Stripe uses \
                         the transfer's), so the amount cannot be scaled",
            need_missing: "a reversal without `amount` reverses all of the transfer not yet \
                           reversed, which is not in the request",
            request_beneficiary: &[],
            object_beneficiary: &[],
            fixed_beneficiary: Some(transfer),
            splits: false,
        },
    )
}

/// `POST /v1/application_fees/{id}/refunds` (and the legacy `/refund`):
/// `amount`, else all not yet refunded, in the fee's currency, back to the
/// connected account that paid it (`account`), else the fee.
pub(super) fn application_fee_refund(c: &Call<'_>, fee: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: APPLICATION_FEE_REFUND,
            object: "application fee",
            kind: "application_fee",
            path: application_fee_path(fee),
            amount_field: Some("amount"),
            fallback: Fallback::Left("amount", "amount_refunded"),
            need_given: "`amount` is given, but a fee refund carries no `currency` (Stripe uses \
                         the fee's), so the amount cannot be scaled",
            need_missing: "a fee refund without `amount` refunds all of the fee not yet \
                           refunded, which is not in the request",
            request_beneficiary: &[],
            object_beneficiary: &["/account"],
            fixed_beneficiary: Some(fee),
            splits: false,
        },
    )
}

/// `POST /v1/payouts/{id}/reverse`: a spend of the payout's whole `amount`
/// in its currency. The money comes back from the bank account into the
/// Stripe balance; that is still money moved at the agent's asking (as a
/// top-up is), so the policy decides, and a spend is never mistaken for
/// safe. No beneficiary: it lands in the account's own balance.
pub(super) fn payout_reverse(c: &Call<'_>, payout: &str) -> Classification {
    spend_from_object(
        c,
        &FromObject {
            op: PAYOUT_REVERSE,
            object: "payout",
            kind: "payout",
            path: payout_path(payout),
            amount_field: None,
            fallback: Fallback::First(&["amount"]),
            need_given: "",
            need_missing: "reversing a payout brings back its whole `amount`, in its currency, \
                           which the request does not carry",
            request_beneficiary: &[],
            object_beneficiary: &[],
            fixed_beneficiary: None,
            splits: false,
        },
    )
}

/// `POST /v1/customers/{id}/balance_transactions`: `amount` + `currency`,
/// to the customer in the path.
///
/// The one signed amount leash reads: Stripe documents a negative `amount`
/// as a credit to the customer (it lowers what their next invoice charges,
/// value the business gives away, category `customer_credit`) and a
/// positive one as a debit (it is added to their next invoice, category
/// `invoice`). Either way the intent's amount is the size of the
/// adjustment, never negative, and `sources["amount"]` says which it is.
/// `-0` is refused: a sign on zero is not a canonical number.
pub(super) fn customer_balance_transaction(c: &Call<'_>, customer: &str) -> Classification {
    let form = match c.form() {
        Ok(form) => form,
        Err(reason) => return unreadable(CUSTOMER_DEBIT, reason),
    };
    let amount = match scalar(form, "amount") {
        Ok(Some(amount)) => amount,
        Ok(None) => return unreadable(CUSTOMER_DEBIT, "no `amount`".to_owned()),
        Err(reason) => return unreadable(CUSTOMER_DEBIT, reason),
    };
    let (op, digits) = match amount.strip_prefix('-') {
        Some(digits) => (CUSTOMER_CREDIT, digits),
        None => (CUSTOMER_DEBIT, amount),
    };
    if op.category == CUSTOMER_CREDIT.category && digits == "0" {
        return unreadable(op, "`amount` is -0".to_owned());
    }
    let minor = match integer("amount", digits) {
        Ok(minor) => minor,
        Err(reason) => return unreadable(op, reason),
    };
    let currency = match scalar(form, "currency") {
        Ok(Some(c)) if !c.is_empty() => c,
        Ok(_) => return unreadable(op, "no `currency`".to_owned()),
        Err(reason) => return unreadable(op, reason),
    };
    let money = match stripe_currency("currency", currency)
        .and_then(|(currency, exp)| to_money("amount", minor, currency, exp))
    {
        Ok(money) => money,
        Err(reason) => return unreadable(op, reason),
    };
    let what = if op.category == CUSTOMER_CREDIT.category {
        format!("the request's `amount` is negative: a credit of {money} towards the customer's future invoices")
    } else {
        format!("the request's `amount` is positive: a debit of {money} added to the customer's next invoice")
    };
    let mut draft = draft(&c.req, op, money, Some(customer.to_owned()));
    draft.sources = BTreeMap::from([("amount".to_owned(), what)]);
    Classification::spend(op.name, vec![draft])
}

/// SetupIntents (create, update, confirm) move no money: they save a
/// payment method, which authorises future charges without an amount, so
/// they stay safe. Two things change that:
///
/// - `single_use[amount]` + `single_use[currency]`: the customer agrees to
///   one future charge of up to that amount. leash reads it as a spend of
///   that amount (category `payment`): the authorisation is what the agent
///   asks for now, and a later PaymentIntent against it is read again (a
///   policy cap may count both, an over-count a human can release).
/// - any `payment_method_options[…][amount]` (mandate options that cap
///   future debits): an amount leash does not read, so unreadable.
///
/// A body that cannot be read at all is unreadable too: it could carry
/// either.
pub(super) fn setup_intent(c: &Call<'_>, op: Op) -> Classification {
    let form = match c.form() {
        Ok(form) => form,
        Err(reason) => return unreadable(op, reason),
    };
    if let Some((field, _)) = form
        .with_prefix("payment_method_options[")
        .find(|(name, _)| name.ends_with("[amount]"))
    {
        return unreadable(
            op,
            format!(
                "{} sets a mandate amount, which authorises future charges leash does not read",
                shown(field)
            ),
        );
    }
    if !form.has_root("single_use") {
        return safe(op.name);
    }
    let field = |name: &str| match scalar(form, name) {
        Ok(Some(v)) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!("`single_use` is given without `{name}`")),
        Err(reason) => Err(reason),
    };
    let money = field("single_use[amount]")
        .and_then(|amount| integer("single_use[amount]", amount))
        .and_then(|minor| {
            let (currency, exp) =
                stripe_currency("single_use[currency]", field("single_use[currency]")?)?;
            to_money("single_use[amount]", minor, currency, exp)
        });
    match money {
        Ok(money) => {
            let who = form
                .get("customer")
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            let mut draft = draft(&c.req, op, money, who);
            draft.sources = BTreeMap::from([(
                "amount".to_owned(),
                "`single_use[amount]` (request): the most one future charge may take; nothing \
                 is charged now"
                    .to_owned(),
            )]);
            Classification::spend(op.name, vec![draft])
        }
        Err(reason) => unreadable(op, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{amount, assert_is, decided, lookups_for, one, post_with, source};
    use crate::intent::Classification;

    #[test]
    fn a_transfer_reversal_is_in_the_transfers_currency() {
        let path = "/v1/transfers/tr_1/reversals";
        let transfer = r#"{"id":"tr_1","object":"transfer","amount":10000,"amount_reversed":2500,"currency":"eur","destination":"acct_1"}"#;
        let at = "/v1/transfers/tr_1";
        assert_eq!(lookups_for(path, "amount=500", &[]), [at]);
        // stripe.Transfer.create_reversal("tr_1", amount=500)
        let c = decided(path, "amount=500", &[(at, transfer)]);
        assert_eq!(amount(&c), "5.00 EUR");
        let d = one(&c);
        assert_eq!(
            (d.operation.as_str(), d.category.as_str()),
            ("transfer.reversal", "transfer_reversal")
        );
        assert_eq!(d.beneficiary.as_deref(), Some("tr_1"));
        // All not yet reversed.
        let c = decided(path, "", &[(at, transfer)]);
        assert_eq!(amount(&c), "75.00 EUR");
        assert!(source(&c, "amount").contains("`amount` − `amount_reversed`"));
        assert_is(
            &decided(path, "amount=500", &[]),
            "unreadable",
            &["no `currency`", "404"],
        );
    }

    #[test]
    fn an_application_fee_refund_goes_back_to_the_account_that_paid_it() {
        let path = "/v1/application_fees/fee_1/refunds";
        let at = "/v1/application_fees/fee_1";
        let fee = r#"{"id":"fee_1","object":"application_fee","account":"acct_4","amount":300,"amount_refunded":100,"currency":"usd"}"#;
        assert_eq!(lookups_for(path, "", &[]), [at]);
        let c = decided(path, "", &[(at, fee)]);
        assert_eq!(amount(&c), "2.00 USD");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("acct_4"));
        assert_eq!(one(&c).category, "refund");
        assert!(source(&c, "beneficiary").contains("`account`"));
        let c = decided(
            "/v1/application_fees/fee_1/refund",
            "amount=50",
            &[(at, r#"{"object":"application_fee","currency":"usd"}"#)],
        );
        assert_eq!(amount(&c), "0.50 USD");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("fee_1"));
        assert_is(&decided(path, "", &[]), "unreadable", &["404"]);
    }

    #[test]
    fn a_payout_reversal_is_the_payouts_amount_huf() {
        let path = "/v1/payouts/po_1/reverse";
        let at = "/v1/payouts/po_1";
        assert_eq!(lookups_for(path, "metadata[why]=x", &[]), [at]);
        // HUF payouts are whole forints (divisible by 100) in a two-decimal
        // representation: 100000 is 1000.00 HUF.
        let payout = r#"{"id":"po_1","object":"payout","amount":100000,"currency":"huf","destination":"ba_1"}"#;
        let c = decided(path, "", &[(at, payout)]);
        assert_eq!(amount(&c), "1000.00 HUF");
        let d = one(&c);
        assert_eq!(
            (d.operation.as_str(), d.category.as_str()),
            ("payout.reverse", "payout_reversal")
        );
        assert_eq!(d.beneficiary, None);
        assert_is(
            &decided(path, "", &[]),
            "unreadable",
            &["whole `amount`", "404"],
        );
        // A HUF payout is read as written; Stripe itself refuses one not
        // divisible by 100.
        let c = post_with("/v1/payouts", "amount=1050&currency=huf", &[]);
        assert_eq!(amount(&c), "10.50 HUF");
    }

    #[test]
    fn customer_balance_transactions_credit_or_debit() {
        let path = "/v1/customers/cus_1/balance_transactions";
        // stripe.Customer.create_balance_transaction("cus_1", amount=-500, currency="eur")
        let c = post_with(path, "amount=-500&currency=eur&description=goodwill", &[]);
        assert_eq!(amount(&c), "5.00 EUR");
        let d = one(&c);
        assert_eq!(d.category, "customer_credit");
        assert_eq!(d.operation, "customer_balance_transaction.create");
        assert_eq!(d.beneficiary.as_deref(), Some("cus_1"));
        assert!(source(&c, "amount").contains("a credit of 5.00 EUR"));
        let c = post_with(path, "amount=1500&currency=jpy", &[]);
        assert_eq!(amount(&c), "1500 JPY");
        assert_eq!(one(&c).category, "invoice");
        assert!(source(&c, "amount").contains("a debit"));
        for (body, needle) in [
            ("amount=-0&currency=eur", "-0"),
            ("amount=--5&currency=eur", "digits"),
            ("amount=-05&currency=eur", "leading zero"),
            ("amount=5", "no `currency`"),
            ("currency=eur", "no `amount`"),
            ("amount=5&currency=xyz", "currency"),
        ] {
            assert_is(&post_with(path, body, &[]), "unreadable", &[needle]);
        }
        assert_eq!(
            post_with(
                "/v1/customers/cus_1/balance_transactions/cbtxn_1",
                "metadata[a]=1",
                &[]
            ),
            Classification::Safe {
                operation: "customer_balance_transaction.update".into()
            }
        );
    }

    #[test]
    fn treasury_outbound_payments_and_transfers() {
        let c = post_with(
            "/v1/treasury/outbound_payments",
            "financial_account=fa_1&amount=10000&currency=usd&destination_payment_method=pm_1&customer=cus_1",
            &[],
        );
        assert_eq!(amount(&c), "100.00 USD");
        assert_eq!(one(&c).category, "payout");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("pm_1"));
        let c = post_with(
            "/v1/treasury/outbound_transfers",
            "financial_account=fa_1&amount=2500&currency=usd&destination_payment_method_data[type]=financial_account&destination_payment_method_data[financial_account]=fa_2",
            &[],
        );
        assert_eq!(amount(&c), "25.00 USD");
        assert_eq!(one(&c).operation, "treasury.outbound_transfer.create");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("fa_2"));
        assert_is(
            &post_with(
                "/v1/treasury/outbound_payments",
                "financial_account=fa_1&currency=usd",
                &[],
            ),
            "unreadable",
            &["no `amount`"],
        );
        assert_eq!(
            post_with("/v1/treasury/outbound_payments/obp_1/cancel", "", &[]).kind(),
            "safe"
        );
    }

    #[test]
    fn a_setup_intent_is_safe_unless_it_carries_an_amount() {
        let safe = |op: &str| Classification::Safe {
            operation: op.into(),
        };
        assert_eq!(
            post_with(
                "/v1/setup_intents",
                "customer=cus_1&usage=off_session&payment_method_types[0]=card",
                &[]
            ),
            safe("setup_intent.create")
        );
        assert_eq!(
            post_with(
                "/v1/setup_intents/seti_1/confirm",
                "payment_method=pm_1",
                &[]
            ),
            safe("setup_intent.confirm")
        );
        // single_use caps one future charge: a spend of that amount.
        let c = post_with(
            "/v1/setup_intents",
            "customer=cus_1&single_use[amount]=5000&single_use[currency]=eur",
            &[],
        );
        assert_eq!(amount(&c), "50.00 EUR");
        assert_eq!(one(&c).operation, "setup_intent.create");
        assert_eq!(one(&c).beneficiary.as_deref(), Some("cus_1"));
        assert!(source(&c, "amount").contains("nothing is charged now"));
        for (body, needle) in [
            ("single_use[amount]=5000", "single_use[currency]"),
            ("single_use[currency]=eur", "single_use[amount]"),
            ("single_use[amount]=1.5&single_use[currency]=eur", "digits"),
            (
                "payment_method_options[acss_debit][mandate_options][amount]=100",
                "mandate amount",
            ),
            ("a=%zz", "percent-escape"),
        ] {
            assert_is(
                &post_with("/v1/setup_intents", body, &[]),
                "unreadable",
                &[needle],
            );
        }
    }
}
