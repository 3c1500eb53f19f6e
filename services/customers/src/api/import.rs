//! `ImportCustomers` (CUS-14): a customer book streamed in, checked row by
//! row as registrations are, written a thousand rows to a transaction.
//! Nothing is held while the client is between messages but the rows of the
//! batch being gathered and the bounded summary.

use std::collections::{HashMap, HashSet};

use crm_domain::ids::CustomerId;
use crm_events::Payload;
use crm_platform::{
    error::{invalid_argument, with_reason},
    proto_time::now,
};
use crm_proto::customers::v1 as pb;
use prost::Message;
use tonic::{Code, Streaming};
use tonic_types::StatusExt;
use uuid::Uuid;

use super::{Caller, CustomersApi, convert};
use crate::{
    error::{Error, Result},
    model::{
        Customer, DuplicateReason, access, contact_rules,
        import::{BATCH_ROWS, Identity, MAX_LISTED, SameAs, duplicates_in_batch},
    },
    store::{self, ImportedCustomer},
    usecases::publish::SCHEMA,
};

/// A row as received: its number and the customer message.
type Row = (i64, pb::Customer);

struct Import {
    id: Uuid,
    policy: pb::ImportDuplicatePolicy,
    principal: String,
    /// The encoded options: another send of the import must bring the same.
    options: Vec<u8>,
}

impl Import {
    /// The import's state in `tx`, registering it on its first write; an id
    /// that names another caller's import, or other options, is refused.
    async fn claim(&self, tx: &mut sqlx::PgConnection) -> Result<store::ImportState> {
        let empty = pb::ImportCustomersResponse::default().encode_to_vec();
        let state = store::claim_import(tx, self.id, &self.principal, &self.options, &empty).await?;
        self.check(&state)?;
        Ok(state)
    }

    fn check(&self, state: &store::ImportState) -> Result<()> {
        if state.principal != self.principal || state.options != self.options {
            return Err(with_reason(
                Code::InvalidArgument,
                "REQUEST_ID_REUSED",
                "this request_id names another import (another caller or other options); use a new request_id",
                &[("request_id", self.id.to_string())],
            )
            .into());
        }
        Ok(())
    }
}

impl CustomersApi {
    pub(super) async fn import(
        &self,
        who: &Caller,
        stream: &mut Streaming<pb::ImportCustomersRequest>,
    ) -> Result<pb::ImportCustomersResponse> {
        // A caller who could register no customer at all (a manager whose
        // token has no branch) is told once, not on every row.
        access::Scope::of(who, access::REGISTRARS)?;
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Error::InvalidField { field: "options", reason: "the stream is empty".into() })?;
        let mut options = first.options.clone().ok_or_else(|| Error::InvalidField {
            field: "options",
            reason: "the first message must carry the import's options".into(),
        })?;
        let id = crm_domain::ids::RequestId::parse(&options.request_id)
            .map_err(|e| invalid_argument("options.request_id", e.reason))?
            .0;
        let policy = match pb::ImportDuplicatePolicy::try_from(options.duplicate_policy) {
            Ok(p @ (pb::ImportDuplicatePolicy::Skip | pb::ImportDuplicatePolicy::Report)) => p,
            _ => return Err(invalid_argument("options.duplicate_policy", "must be SKIP or REPORT").into()),
        };
        if options.first_row_number < 0 {
            return Err(invalid_argument("options.first_row_number", "must not be negative").into());
        }
        // 0 is the default, 1: the same import either way.
        options.first_row_number = options.first_row_number.max(1);
        let import = Import { id, policy, principal: who.sub.clone(), options: options.encode_to_vec() };
        let mut conn = self.pool.acquire().await?;
        let found = store::find_import(&mut conn, id).await?;
        drop(conn);
        if let Some(state) = found {
            import.check(&state)?;
            if state.finished {
                // A finished import answers its summary again; every row of
                // the re-send was settled by the earlier one.
                let mut summary = decode_summary(&state.summary)?;
                let mut resent = first.customers.len();
                while let Some(m) = stream.message().await? {
                    resent += m.customers.len();
                }
                summary.already_settled = i64::try_from(resent).unwrap_or(i64::MAX);
                return Ok(summary);
            }
        }

        let mut next_row = options.first_row_number;
        let mut batch: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
        let mut already_settled = 0i64;
        for c in first.customers {
            batch.push((next_row, c));
            next_row += 1;
        }
        loop {
            if batch.len() >= BATCH_ROWS {
                already_settled += self.import_batch(who, &import, std::mem::take(&mut batch)).await?;
            }
            match stream.message().await? {
                Some(m) => {
                    if m.options.is_some() {
                        return Err(invalid_argument("options", "only the first message carries options").into());
                    }
                    for c in m.customers {
                        batch.push((next_row, c));
                        next_row += 1;
                    }
                }
                None => break,
            }
        }
        already_settled += self.import_batch(who, &import, batch).await?;
        let mut tx = self.pool.begin().await?;
        let state = import.claim(&mut tx).await?;
        store::save_import(&mut tx, id, state.rows_done, &state.summary, true).await?;
        tx.commit().await?;
        let mut summary = decode_summary(&state.summary)?;
        summary.already_settled = already_settled;
        Ok(summary)
    }

    /// Checks and writes one batch in one transaction; returns how many of
    /// its rows an earlier send already settled.
    async fn import_batch(&self, who: &Caller, import: &Import, rows: Vec<Row>) -> Result<i64> {
        let Some(last_row) = rows.last().map(|r| r.0) else {
            return Ok(0);
        };
        let at = now();
        // Check every row as CreateCustomer would, before any database work.
        let mut errors: Vec<pb::ImportRowError> = Vec::new();
        let mut invalid_rows: HashSet<i64> = HashSet::new();
        let mut good: Vec<(i64, Customer)> = Vec::with_capacity(rows.len());
        for (row, message) in rows {
            match self.checked_row(who, &message, at) {
                Ok(c) => good.push((row, c)),
                Err(violations) => {
                    invalid_rows.insert(row);
                    errors.extend(violations.into_iter().map(|(field, description)| pb::ImportRowError {
                        row,
                        field,
                        description,
                    }));
                }
            }
        }

        let mut tx = self.pool.begin().await?;
        store::set_actor(&mut tx, &who.sub, "ImportCustomers", who.request_id.as_deref()).await?;
        let state = import.claim(&mut tx).await?;
        let settled = |row: i64| row <= state.rows_done;
        let already =
            good.iter().filter(|(r, _)| settled(*r)).count() + invalid_rows.iter().filter(|r| settled(**r)).count();
        good.retain(|(r, _)| !settled(*r));
        errors.retain(|e| !settled(e.row));
        invalid_rows.retain(|r| !settled(*r));

        // Referrals must name an existing customer.
        let referrals: Vec<Uuid> = good.iter().filter_map(|(_, c)| c.referred_by.map(|r| r.0)).collect();
        let existing: HashSet<Uuid> = store::existing_customers(&mut tx, &referrals).await?.into_iter().collect();
        good.retain(|(row, c)| match c.referred_by {
            Some(r) if !existing.contains(&r.0) => {
                invalid_rows.insert(*row);
                errors.push(pb::ImportRowError {
                    row: *row,
                    field: "customer.referred_by_customer_id".into(),
                    description: format!("no customer {r}"),
                });
                false
            }
            _ => true,
        });

        // Identity duplicates: registered customers, then earlier rows.
        let mut points = Vec::new();
        let mut registrations = Vec::new();
        for (_, c) in &good {
            for id in Identity::all_of(c) {
                match id {
                    Identity::Phone(v) | Identity::Email(v) => points.push(v),
                    Identity::RegistrationNumber(v) => registrations.push(v),
                }
            }
        }
        let mut registered: HashMap<Identity, (Uuid, Option<i64>)> = HashMap::new();
        for (value, kind, customer, row) in store::identities_taken(&mut tx, &points, &registrations, import.id).await?
        {
            let identity = match kind.as_str() {
                "phone" => Identity::Phone(value),
                "email" => Identity::Email(value),
                _ => Identity::RegistrationNumber(value),
            };
            registered.entry(identity).or_insert((customer, row));
        }
        let refs: Vec<(i64, &Customer)> = good.iter().map(|(r, c)| (*r, c)).collect();
        let dups = duplicates_in_batch(&refs, &registered);
        let mut duplicate_rows: Vec<pb::ImportDuplicate> = Vec::new();
        let mut create: Vec<(i64, &Customer)> = Vec::with_capacity(refs.len());
        for (i, (row, c)) in refs.into_iter().enumerate() {
            match dups.get(&i) {
                Some((same, reasons)) => duplicate_rows.push(duplicate(row, same, reasons)),
                None => create.push((row, c)),
            }
        }

        let imported: Vec<ImportedCustomer> = create
            .iter()
            .map(|(row, c)| ImportedCustomer { customer: c, doc: convert::customer(c).encode_to_vec(), row: *row })
            .collect();
        let inserted: HashSet<Uuid> =
            store::insert_imported(&mut tx, import.id, &imported).await?.into_iter().collect();
        // A registration number taken between the check and the insert (a
        // concurrent registration) is a duplicate too.
        for (row, c) in &create {
            if !inserted.contains(&c.id.0) {
                duplicate_rows.push(pb::ImportDuplicate {
                    row: *row,
                    customer_id: String::new(),
                    duplicate_of_row: 0,
                    reasons: vec![pb::DuplicateReason::RegistrationNumber as i32],
                });
            }
        }
        let created: Vec<&Customer> = create.iter().map(|(_, c)| *c).filter(|c| inserted.contains(&c.id.0)).collect();
        let contacts: Vec<(CustomerId, &crate::model::Contact)> =
            created.iter().flat_map(|c| c.contacts.iter().map(move |k| (c.id, k))).collect();
        store::insert_contacts(&mut tx, &contacts).await?;
        let addresses: Vec<(CustomerId, &crate::model::Address)> =
            created.iter().flat_map(|c| c.addresses.iter().map(move |a| (c.id, a))).collect();
        store::insert_addresses(&mut tx, &addresses).await?;
        store::record_registrations(&mut tx, &created, &who.sub).await?;
        let events: Vec<(Uuid, Payload)> =
            created.iter().map(|c| (c.id.0, crate::usecases::publish::registered(c, &who.sub))).collect();
        crm_events::emit_many(&mut tx, SCHEMA, at, events).await?;

        let mut summary = decode_summary(&state.summary)?;
        let settled_now = i64::try_from(invalid_rows.len() + duplicate_rows.len() + created.len()).unwrap_or(i64::MAX);
        summary.rows += settled_now;
        summary.created += i64::try_from(created.len()).unwrap_or(i64::MAX);
        summary.invalid += i64::try_from(invalid_rows.len()).unwrap_or(i64::MAX);
        summary.duplicates += i64::try_from(duplicate_rows.len()).unwrap_or(i64::MAX);
        summary.error_count += i64::try_from(errors.len()).unwrap_or(i64::MAX);
        errors.sort_by_key(|e| e.row);
        let room = MAX_LISTED.saturating_sub(summary.errors.len());
        summary.errors.extend(errors.into_iter().take(room));
        if import.policy == pb::ImportDuplicatePolicy::Report {
            duplicate_rows.sort_by_key(|d| d.row);
            let room = MAX_LISTED.saturating_sub(summary.duplicate_rows.len());
            summary.duplicate_rows.extend(duplicate_rows.into_iter().take(room));
        }
        store::save_import(&mut tx, import.id, last_row, &summary.encode_to_vec(), false).await?;
        tx.commit().await?;
        metrics::counter!("crm_customers_imported_total").increment(created.len() as u64);
        Ok(i64::try_from(already).unwrap_or(i64::MAX))
    }

    /// A row checked as a registration: its fields, then who may own it.
    fn checked_row(
        &self,
        who: &Caller,
        message: &pb::Customer,
        at: chrono::DateTime<chrono::Utc>,
    ) -> std::result::Result<Customer, Vec<(String, String)>> {
        let new = convert::customer_input(Some(message)).map_err(|status| {
            status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|v| (v.field, v.description)).collect())
                .unwrap_or_else(|| vec![("customer".to_string(), status.message().to_string())])
        })?;
        let (owner, branch) =
            access::registration_owner(who, new.owner_id.as_deref(), new.branch.as_deref()).map_err(|d| {
                let field = if d.reason == "OTHER_BRANCH" { "customer.branch" } else { "customer.owner_id" };
                vec![(field.to_string(), d.message)]
            })?;
        if branch.is_empty() {
            return Err(vec![(
                "customer.branch".to_string(),
                "is required: your token carries no branch, so name the customer's branch".to_string(),
            )]);
        }
        let mut c = Customer::register(new, owner, branch, &who.sub, at);
        c.entry_late = c.collected_at.is_some_and(|t| contact_rules::entry_late(&self.calendar, t, c.created_at));
        Ok(c)
    }
}

fn duplicate(row: i64, same: &SameAs, reasons: &[DuplicateReason]) -> pb::ImportDuplicate {
    let (customer_id, duplicate_of_row) = match same {
        SameAs::Registered { customer_id, row } => (customer_id.to_string(), row.unwrap_or(0)),
        SameAs::Row(r) => (String::new(), *r),
    };
    pb::ImportDuplicate {
        row,
        customer_id,
        duplicate_of_row,
        reasons: reasons.iter().map(|r| convert::duplicate_reason(*r)).collect(),
    }
}

fn decode_summary(bytes: &[u8]) -> Result<pb::ImportCustomersResponse> {
    pb::ImportCustomersResponse::decode(bytes).map_err(|e| Error::Corrupt(format!("import summary: {e}")))
}
