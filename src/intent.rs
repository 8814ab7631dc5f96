//! TEMPORARY stub
use crate::money::Money;
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Fingerprint(pub [u8; 32]);
impl Fingerprint {
    pub fn of(_m: &str, _h: &str, _p: &str, _b: &[u8]) -> Self {
        Fingerprint([0; 32])
    }
}
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}
#[derive(Debug, Clone, serde::Serialize)]
pub struct Intent {
    pub agent: String,
    pub vendor: String,
    pub operation: String,
    pub amount: Option<Money>,
    pub beneficiary: Option<String>,
    pub category: String,
    pub idempotency_key: Option<String>,
    pub fingerprint: Fingerprint,
    pub at: chrono::DateTime<chrono::Utc>,
}
#[derive(Debug, Clone)]
pub struct IntentDraft {
    pub vendor: String,
    pub operation: String,
    pub amount: Option<Money>,
    pub beneficiary: Option<String>,
    pub category: String,
    pub idempotency_key: Option<String>,
}
impl IntentDraft {
    pub fn into_intent(
        self,
        agent: &str,
        fingerprint: Fingerprint,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Intent {
        Intent {
            agent: agent.into(),
            vendor: self.vendor,
            operation: self.operation,
            amount: self.amount,
            beneficiary: self.beneficiary,
            category: self.category,
            idempotency_key: self.idempotency_key,
            fingerprint,
            at,
        }
    }
}
#[derive(Debug, Clone)]
pub enum Classification {
    Safe { operation: String },
    Spend(Vec<IntentDraft>),
    Unknown { operation: String, reason: String },
    Unreadable { operation: String, reason: String },
}
impl Classification {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Safe { .. } => "safe",
            Self::Spend(_) => "spend",
            Self::Unknown { .. } => "unknown",
            Self::Unreadable { .. } => "unreadable",
        }
    }
}
pub struct RequestView<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub body: &'a [u8],
}
