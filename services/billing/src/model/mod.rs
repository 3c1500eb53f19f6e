//! The billing model: vocabulary, pricing and rounding, allocation of funds
//! to invoices, and the account and invoice state machines. Pure: no SQL, no
//! protobuf.

pub mod access;
pub mod allocation;
pub mod pricing;
pub mod states;
pub mod usage;

/// Declares a closed vocabulary stored as text in the database.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

vocabulary!(AccountKind { Prepaid = "prepaid", Postpaid = "postpaid" });
vocabulary!(AccountStatus { Active = "active", Suspended = "suspended", Closed = "closed" });
vocabulary!(CustomerClass { Residential = "residential", Commercial = "commercial", Industrial = "industrial" });
vocabulary!(InvoiceStatus { Draft = "draft", Issued = "issued", PartlyPaid = "partly_paid", Paid = "paid", Void = "void" });
vocabulary!(PaymentMethod {
    Cash = "cash",
    BankCard = "bank_card",
    Transfer = "transfer",
    OnSite = "on_site",
    PrepaidTopUp = "prepaid_top_up",
});
vocabulary!(EntryKind { Charge = "charge", Payment = "payment", Credit = "credit", Refund = "refund", Adjustment = "adjustment" });
vocabulary!(CatalogueKind { Part = "part", Service = "service" });

/// A business rule that refused a request: FAILED_PRECONDITION with `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleViolation {
    pub reason: &'static str,
    pub message: String,
}

impl RuleViolation {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// The opaque etag of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}
