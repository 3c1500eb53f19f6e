//! The customer model: vocabulary, validated inputs, who may see and change
//! what, and the lifecycle. Pure: no SQL, no protobuf.

pub mod access;
pub mod change;
pub mod claims;
pub mod contact_rules;
pub mod import;
pub mod input;
pub mod leads;
pub mod lifecycle;
pub mod plan;
pub mod records;
pub mod search;
pub mod termination;
pub mod tiering;
pub mod visit;

use chrono::{DateTime, Utc};
use crm_domain::ids::{AddressId, ContactId, CustomerId};

pub(crate) use crm_domain::vocabulary;

vocabulary!(PartyKind { Person = "person", Organization = "organization" });
vocabulary!(SizeBand { Micro = "micro", Small = "small", Medium = "medium", Large = "large" });
vocabulary!(SourceChannel {
    TradeShow = "trade_show",
    IndustryPress = "industry_press",
    Internet = "internet",
    IndustryAssociation = "industry_association",
    RetailBrandListing = "retail_brand_listing",
    PartnerReferral = "partner_referral",
    MarketingCampaign = "marketing_campaign",
    WalkIn = "walk_in",
});
vocabulary!(
    /// CUS-8 demand grade: A large and urgent, B ordinary, C latent.
    DemandGrade { A = "A", B = "B", C = "C" }
);
vocabulary!(
    /// CUS-8 value tier, from contribution.
    ValueTier { Potential = "potential", General = "general", Key = "key", Vip = "vip" }
);
vocabulary!(
    /// CUS-8 service level: drives complaint and work-order priority.
    ServiceLevel { General = "general", Key = "key", Special = "special" }
);
vocabulary!(
    /// CUS-9 lifecycle stage.
    Stage { Prospect = "prospect", Active = "active", Dormant = "dormant", Terminated = "terminated" }
);
vocabulary!(AddressKind { HeadOffice = "head_office", Branch = "branch", ServiceSite = "service_site", Home = "home" });

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub grade: DemandGrade,
    pub value_tier: ValueTier,
    pub service_level: ServiceLevel,
}

impl Classification {
    /// A newly registered customer: latent need, potential value, general service.
    pub const INITIAL: Classification = Classification {
        grade: DemandGrade::C,
        value_tier: ValueTier::Potential,
        service_level: ServiceLevel::General,
    };
}

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub kind: PartyKind,
    pub display_name: String,
    pub legal_name: String,
    pub registration_number: Option<String>,
    pub industry: String,
    pub size_band: Option<SizeBand>,
    pub region: String,
    pub summary: String,
    pub source_channel: Option<SourceChannel>,
    pub tags: Vec<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub owner_id: String,
    pub branch: String,
    pub classification: Classification,
    pub stage: Stage,
    pub referred_by: Option<CustomerId>,
    pub contacts: Vec<Contact>,
    pub addresses: Vec<Address>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// CUS-5: when the information was collected, and whether it was entered late.
    pub collected_at: Option<DateTime<Utc>>,
    pub entry_late: bool,
    /// CUS-4: the current assignment by someone else and its first contact.
    pub assigned_at: Option<DateTime<Utc>>,
    pub first_contact_due: Option<DateTime<Utc>>,
    pub first_contact_at: Option<DateTime<Utc>>,
    /// CUS-2: records merged into this one.
    pub merged_from: Vec<CustomerId>,
}

impl Customer {
    pub fn etag(&self) -> String {
        etag(self.version)
    }

    /// CUS-11: a terminated customer's record is kept unchanged.
    pub fn check_changeable(&self) -> Result<(), RuleViolation> {
        if self.stage == Stage::Terminated {
            return Err(RuleViolation::new(
                "CUSTOMER_TERMINATED",
                "the customer is terminated; its record is kept unchanged (CUS-11)",
            ));
        }
        Ok(())
    }

    /// CUS-11: a terminated customer is do-not-contact; no new work for it.
    pub fn check_contactable(&self) -> Result<(), RuleViolation> {
        if self.stage == Stage::Terminated {
            return Err(RuleViolation::new(
                "CUSTOMER_TERMINATED",
                "the customer is terminated and must not be contacted",
            ));
        }
        Ok(())
    }

    /// CUS-11: a termination is requested once, for a customer not yet
    /// terminated.
    pub fn check_terminable(&self) -> Result<(), RuleViolation> {
        if self.stage == Stage::Terminated {
            return Err(RuleViolation::new("CUSTOMER_TERMINATED", "the customer is already terminated"));
        }
        Ok(())
    }

    /// One more contact fits (at most `input::MAX_CONTACTS`).
    pub fn check_room_for_contact(&self) -> Result<(), RuleViolation> {
        if self.contacts.len() >= input::MAX_CONTACTS {
            return Err(RuleViolation::new("CONTACT_LIMIT", format!("at most {} contacts", input::MAX_CONTACTS)));
        }
        Ok(())
    }

    /// One more address fits (at most `input::MAX_ADDRESSES`).
    pub fn check_room_for_address(&self) -> Result<(), RuleViolation> {
        if self.addresses.len() >= input::MAX_ADDRESSES {
            return Err(RuleViolation::new("ADDRESS_LIMIT", format!("at most {} addresses", input::MAX_ADDRESSES)));
        }
        Ok(())
    }
}

pub use crm_domain::etag;

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    pub position: String,
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub decision_maker: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub id: AddressId,
    pub kind: AddressKind,
    pub province: String,
    pub city: String,
    pub district: String,
    pub street: String,
    pub postal_code: String,
}

/// Why a record was reported as a likely duplicate (CUS-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateReason {
    Phone,
    Email,
    RegistrationNumber,
    SimilarName,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateCandidate {
    pub customer_id: CustomerId,
    pub display_name: String,
    pub region: String,
    pub owner_id: String,
    pub reasons: Vec<DuplicateReason>,
    pub name_similarity: f64,
}

impl DuplicateCandidate {
    /// The same registration number, phone or email: the same customer
    /// (CUS-2), as opposed to a similar name only.
    pub fn is_identity(&self) -> bool {
        self.reasons.iter().any(|r| *r != DuplicateReason::SimilarName)
    }
}

pub use search::DUPLICATE_NAME_SIMILARITY;

pub use crm_domain::RuleViolation;

/// A customer for unit tests of the rules: `owner`'s own, in `branch`.
#[cfg(test)]
pub(crate) fn sample_customer(owner: &str, branch: &str) -> Customer {
    Customer {
        id: crm_domain::ids::CustomerId::new(),
        kind: PartyKind::Organization,
        display_name: "x".into(),
        legal_name: String::new(),
        registration_number: None,
        industry: String::new(),
        size_band: None,
        region: String::new(),
        summary: String::new(),
        source_channel: None,
        tags: vec![],
        phone: None,
        email: None,
        owner_id: owner.into(),
        branch: branch.into(),
        classification: Classification::INITIAL,
        stage: Stage::Active,
        referred_by: None,
        contacts: vec![],
        addresses: vec![],
        created_by: owner.into(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        version: 1,
        collected_at: None,
        entry_late: false,
        assigned_at: None,
        first_contact_due: None,
        first_contact_at: None,
        merged_from: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip_through_their_stored_form() {
        for s in Stage::ALL {
            assert_eq!(Stage::from_db(s.as_str()), Some(*s));
        }
        for t in ValueTier::ALL {
            assert_eq!(ValueTier::from_db(t.as_str()), Some(*t));
        }
        for k in AddressKind::ALL {
            assert_eq!(AddressKind::from_db(k.as_str()), Some(*k));
        }
        assert_eq!(DemandGrade::from_db("D"), None);
    }

    /// Issue 18: the terminated and size rules are the model's.
    #[test]
    fn terminated_customers_and_full_records_are_refused_by_the_model() {
        let mut c = sample_customer("s1", "bj");
        assert!(c.check_changeable().is_ok() && c.check_contactable().is_ok() && c.check_terminable().is_ok());
        let contact = Contact::new(input::NewContact {
            name: "王经理".into(),
            position: String::new(),
            phones: vec![],
            email: None,
            decision_maker: false,
        });
        c.contacts = vec![contact; input::MAX_CONTACTS - 1];
        assert!(c.check_room_for_contact().is_ok());
        c.contacts.push(c.contacts[0].clone());
        assert_eq!(c.check_room_for_contact().map_err(|e| e.reason), Err("CONTACT_LIMIT"));
        assert!(c.check_room_for_address().is_ok());
        c.stage = Stage::Terminated;
        for refused in [c.check_changeable(), c.check_contactable(), c.check_terminable()] {
            assert_eq!(refused.map_err(|e| e.reason), Err("CUSTOMER_TERMINATED"));
        }
    }

    #[test]
    fn etags_change_with_the_version() {
        assert_ne!(etag(1), etag(2));
    }
}
