//! TEMPORARY stub
use crate::intent::{Classification, RequestView};
pub trait VendorAdapter: Send + Sync {
    fn name(&self) -> &'static str;
    fn claims_host(&self, host: &str) -> bool;
    fn classify(&self, req: &RequestView<'_>) -> Classification;
}
struct Stripe;
impl VendorAdapter for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }
    fn claims_host(&self, host: &str) -> bool {
        host.eq_ignore_ascii_case("api.stripe.com")
    }
    fn classify(&self, req: &RequestView<'_>) -> Classification {
        Classification::Safe {
            operation: req.path.to_string(),
        }
    }
}
pub struct Vendors {
    adapters: Vec<Box<dyn VendorAdapter>>,
}
impl Vendors {
    pub fn builtin() -> Self {
        Self {
            adapters: vec![Box::new(Stripe)],
        }
    }
    pub fn for_host(&self, host: &str) -> Option<&dyn VendorAdapter> {
        self.adapters
            .iter()
            .find(|a| a.claims_host(host))
            .map(|a| a.as_ref())
    }
}
