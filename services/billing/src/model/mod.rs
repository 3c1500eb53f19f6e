//! The billing model: vocabulary, pricing and rounding, drafting invoices,
//! allocation of funds to invoices and refunds, ageing, the account and
//! invoice state machines, work-order invoice lines and where an account
//! stands (cleared, termination). Pure: no SQL, no protobuf.

pub mod access;
pub mod ageing;
pub mod allocation;
pub mod field_work;
pub mod invoicing;
pub mod pricing;
pub mod standing;
pub mod states;
pub mod usage;

pub(crate) use crm_domain::vocabulary;

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

pub use crm_domain::RuleViolation;

pub use crm_domain::etag;
