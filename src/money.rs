//! TEMPORARY stub
#[derive(Debug, Clone, serde::Serialize)]
pub struct Money {
    pub amount: rust_decimal::Decimal,
    pub currency: String,
}
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}
