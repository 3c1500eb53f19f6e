//! CUS-14 bulk import: what an import decides about each row, apart from
//! storage. A row is either refused for bad fields, a duplicate of a
//! registered customer or of an earlier row (the same phone, email or
//! registration number: CUS-2's identity), or created. The summary counts
//! every row and lists at most `MAX_LISTED` errors and duplicates, so an
//! import of millions of bad rows keeps bounded memory.

use std::collections::HashMap;

use crm_domain::Phone;

use super::{Customer, DuplicateReason};

/// Errors and duplicates listed in full; beyond it they are only counted.
pub const MAX_LISTED: usize = 1_000;

/// Rows checked and written per transaction.
pub const BATCH_ROWS: usize = 1_000;

/// What makes two customers the same (CUS-2 identity), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Phone(String),
    Email(String),
    RegistrationNumber(String),
}

impl Identity {
    pub fn reason(&self) -> DuplicateReason {
        match self {
            Identity::Phone(_) => DuplicateReason::Phone,
            Identity::Email(_) => DuplicateReason::Email,
            Identity::RegistrationNumber(_) => DuplicateReason::RegistrationNumber,
        }
    }

    /// Every identity of a customer: its phone and email, its contacts',
    /// and its registration number.
    pub fn all_of(c: &Customer) -> Vec<Identity> {
        let mut out = Vec::new();
        let line = |p: &String| Identity::Phone(Phone::line_of(p).to_string());
        out.extend(c.phone.iter().map(line));
        out.extend(c.email.iter().cloned().map(Identity::Email));
        for k in &c.contacts {
            out.extend(k.phones.iter().map(line));
            out.extend(k.email.iter().cloned().map(Identity::Email));
        }
        out.extend(c.registration_number.iter().cloned().map(Identity::RegistrationNumber));
        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out.dedup();
        out
    }
}

/// Who a duplicate row is the same customer as.
#[derive(Debug, Clone, PartialEq)]
pub enum SameAs {
    /// A registered customer (possibly one this import created earlier).
    Registered { customer_id: uuid::Uuid, row: Option<i64> },
    /// An earlier row of this batch.
    Row(i64),
}

/// Finds the rows of a batch that are the same customer as a registered one
/// (`registered`: identity → customer id and, if it came from this import,
/// its row) or as an earlier row of the batch. Rows are in import order;
/// returns, for each duplicate row's index, who it duplicates and why.
pub fn duplicates_in_batch(
    rows: &[(i64, &Customer)],
    registered: &HashMap<Identity, (uuid::Uuid, Option<i64>)>,
) -> HashMap<usize, (SameAs, Vec<DuplicateReason>)> {
    let mut seen: HashMap<&Identity, i64> = HashMap::new();
    let mut out: HashMap<usize, (SameAs, Vec<DuplicateReason>)> = HashMap::new();
    let identities: Vec<Vec<Identity>> = rows.iter().map(|(_, c)| Identity::all_of(c)).collect();
    for (i, ((row, _), ids)) in rows.iter().zip(&identities).enumerate() {
        let mut same: Option<SameAs> = None;
        let mut reasons = Vec::new();
        for id in ids {
            if let Some((customer_id, from_row)) = registered.get(id) {
                same.get_or_insert(SameAs::Registered { customer_id: *customer_id, row: *from_row });
                reasons.push(id.reason());
            } else if let Some(earlier) = seen.get(id) {
                same.get_or_insert(SameAs::Row(*earlier));
                reasons.push(id.reason());
            }
        }
        match same {
            Some(s) => {
                reasons.sort_by_key(|r| *r as u8);
                reasons.dedup();
                out.insert(i, (s, reasons));
            }
            // Only rows that will be created claim their identities.
            None => {
                for id in ids {
                    seen.entry(id).or_insert(*row);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartyKind, input::NewCustomer};

    fn customer(phone: Option<&str>, reg: Option<&str>) -> Customer {
        let n = NewCustomer {
            kind: PartyKind::Organization,
            display_name: "杭州华润燃气有限公司".into(),
            legal_name: String::new(),
            registration_number: reg.map(str::to_string),
            industry: String::new(),
            size_band: None,
            region: "CN-ZJ".into(),
            summary: String::new(),
            source_channel: None,
            tags: vec![],
            phone: phone.map(str::to_string),
            email: None,
            owner_id: None,
            branch: None,
            referred_by: None,
            contacts: vec![],
            addresses: vec![],
            collected_at: None,
        };
        Customer::register(n, "s1".into(), "hz".into(), "admin", chrono::Utc::now())
    }

    #[test]
    fn a_row_repeating_an_earlier_row_or_a_registered_customer_is_a_duplicate() {
        let a = customer(Some("+8657188886666"), None);
        let b = customer(Some("+8613800138000"), Some("91330100X"));
        let c = customer(Some("+8657188886666"), None);
        let d = customer(None, Some("91330100X"));
        let e = customer(Some("+8613900139000"), None);
        let registered_id = uuid::Uuid::now_v7();
        let mut registered = HashMap::new();
        registered.insert(Identity::Phone("+8613900139000".into()), (registered_id, Some(7)));
        let rows = [(2, &a), (3, &b), (4, &c), (5, &d), (6, &e)];
        let dups = duplicates_in_batch(&rows, &registered);
        assert_eq!(dups.len(), 3);
        assert_eq!(dups.get(&2), Some(&(SameAs::Row(2), vec![DuplicateReason::Phone])));
        assert_eq!(dups.get(&3), Some(&(SameAs::Row(3), vec![DuplicateReason::RegistrationNumber])));
        assert_eq!(
            dups.get(&4),
            Some(&(SameAs::Registered { customer_id: registered_id, row: Some(7) }, vec![DuplicateReason::Phone]))
        );
    }

    #[test]
    fn a_duplicate_row_claims_nothing_so_later_rows_are_judged_against_created_ones() {
        let first = customer(Some("+8613800138000"), None);
        let dup = customer(Some("+8613800138000"), Some("REG-1"));
        let later = customer(None, Some("REG-1"));
        let dups = duplicates_in_batch(&[(1, &first), (2, &dup), (3, &later)], &HashMap::new());
        assert!(dups.contains_key(&1));
        assert!(!dups.contains_key(&2), "REG-1 was never created, so row 3 is new");
    }
}
