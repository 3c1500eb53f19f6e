//! Building and changing customers: pure functions from validated input to
//! the next state, which the store then persists.

use chrono::{DateTime, Utc};
use crm_domain::ids::{AddressId, ContactId, CustomerId};

use super::{
    Address, Classification, Contact, Customer, Stage,
    input::{AddressPatch, ContactPatch, CustomerPatch, NewAddress, NewContact, NewCustomer},
};

impl Customer {
    /// A newly registered customer: a prospect with the initial
    /// classification, owned by `owner` (CUS-3, CUS-8, CUS-9).
    pub fn register(n: NewCustomer, owner: String, branch: String, by: &str, now: DateTime<Utc>) -> Customer {
        Customer {
            id: CustomerId::new(),
            kind: n.kind,
            display_name: n.display_name,
            legal_name: n.legal_name,
            registration_number: n.registration_number,
            industry: n.industry,
            size_band: n.size_band,
            region: n.region,
            summary: n.summary,
            source_channel: n.source_channel,
            tags: n.tags,
            phone: n.phone,
            email: n.email,
            owner_id: owner,
            branch,
            classification: Classification::INITIAL,
            stage: Stage::Prospect,
            referred_by: n.referred_by,
            contacts: n.contacts.into_iter().map(Contact::new).collect(),
            addresses: n.addresses.into_iter().map(Address::new).collect(),
            created_by: by.to_string(),
            created_at: now,
            updated_at: now,
            version: 1,
            collected_at: Some(n.collected_at.unwrap_or(now)),
            entry_late: false,
            assigned_at: None,
            first_contact_due: None,
            first_contact_at: None,
            merged_from: Vec::new(),
        }
        .with_assignment_clock(by, now)
    }

    /// CUS-4: a customer given to someone other than the person acting starts
    /// that owner's 7-day first-contact clock.
    pub fn with_assignment_clock(mut self, by: &str, now: DateTime<Utc>) -> Customer {
        if self.owner_id != by {
            self.assigned_at = Some(now);
            self.first_contact_due = Some(super::contact_rules::first_contact_due(now));
            self.first_contact_at = None;
        }
        self
    }

    /// CUS-2: what the survivor of a merge takes over from the merged record —
    /// profile fields it lacks, and the union of tags. Contacts, addresses and
    /// history move in the store.
    pub fn absorb(&mut self, merged: &Customer) {
        fill(&mut self.legal_name, &merged.legal_name);
        fill(&mut self.industry, &merged.industry);
        fill(&mut self.summary, &merged.summary);
        fill(&mut self.region, &merged.region);
        self.registration_number = self.registration_number.take().or_else(|| merged.registration_number.clone());
        self.size_band = self.size_band.or(merged.size_band);
        self.source_channel = self.source_channel.or(merged.source_channel);
        self.phone = self.phone.take().or_else(|| merged.phone.clone());
        self.email = self.email.take().or_else(|| merged.email.clone());
        self.referred_by = self.referred_by.or(merged.referred_by).filter(|r| *r != self.id);
        for t in &merged.tags {
            if !self.tags.contains(t) && self.tags.len() < super::input::MAX_TAGS {
                self.tags.push(t.clone());
            }
        }
    }

    pub fn apply(&mut self, p: CustomerPatch) {
        let CustomerPatch {
            kind,
            display_name,
            legal_name,
            registration_number,
            industry,
            size_band,
            region,
            summary,
            source_channel,
            tags,
            phone,
            email,
            referred_by,
        } = p;
        set(&mut self.kind, kind);
        set(&mut self.display_name, display_name);
        set(&mut self.legal_name, legal_name);
        set(&mut self.registration_number, registration_number);
        set(&mut self.industry, industry);
        set(&mut self.size_band, size_band);
        set(&mut self.region, region);
        set(&mut self.summary, summary);
        set(&mut self.source_channel, source_channel);
        set(&mut self.tags, tags);
        set(&mut self.phone, phone);
        set(&mut self.email, email);
        set(&mut self.referred_by, referred_by);
    }
}

impl Contact {
    pub fn new(n: NewContact) -> Contact {
        Contact {
            id: ContactId::new(),
            name: n.name,
            position: n.position,
            phones: n.phones,
            email: n.email,
            decision_maker: n.decision_maker,
        }
    }

    pub fn apply(&mut self, p: ContactPatch) {
        set(&mut self.name, p.name);
        set(&mut self.position, p.position);
        set(&mut self.phones, p.phones);
        set(&mut self.email, p.email);
        set(&mut self.decision_maker, p.decision_maker);
    }
}

impl Address {
    pub fn new(n: NewAddress) -> Address {
        Address {
            id: AddressId::new(),
            kind: n.kind,
            province: n.province,
            city: n.city,
            district: n.district,
            street: n.street,
            postal_code: n.postal_code,
        }
    }

    pub fn apply(&mut self, p: AddressPatch) {
        set(&mut self.kind, p.kind);
        set(&mut self.province, p.province);
        set(&mut self.city, p.city);
        set(&mut self.district, p.district);
        set(&mut self.street, p.street);
        set(&mut self.postal_code, p.postal_code);
    }
}

fn fill(field: &mut String, from: &str) {
    if field.is_empty() {
        *field = from.to_string();
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PartyKind;

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let n = NewCustomer {
            kind: PartyKind::Organization,
            display_name: "北京燃气".into(),
            legal_name: "北京燃气集团有限责任公司".into(),
            registration_number: None,
            industry: "gas".into(),
            size_band: None,
            region: "CN-BJ".into(),
            summary: String::new(),
            source_channel: None,
            tags: vec!["a".into()],
            phone: Some("+861065521234".into()),
            email: None,
            owner_id: None,
            branch: None,
            referred_by: None,
            contacts: vec![],
            addresses: vec![],
            collected_at: None,
        };
        let mut c = Customer::register(n, "u1".into(), "bj".into(), "u1", Utc::now());
        assert_eq!(c.stage, Stage::Prospect);
        assert_eq!(c.classification, Classification::INITIAL);
        let before = c.clone();
        c.apply(CustomerPatch { region: Some("CN-SH".into()), phone: Some(None), ..Default::default() });
        assert_eq!(c.region, "CN-SH");
        assert_eq!(c.phone, None);
        assert_eq!(c.display_name, before.display_name);
        assert_eq!(c.tags, before.tags);
    }
}
