//! The RPCs of `crm.customers.v1.CustomerService`.

use crm_domain::{
    PageSize, RankedPageToken, Role,
    ids::{AddressId, ContactId, CustomerId},
};
use crm_platform::edge::Page;
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::customers::v1::{self as pb, customer_service_server::CustomerService};
use prost::Message;
use sqlx::{Postgres, Transaction};
use tonic::{Request, Response, Status};

use crm_events::{Payload, pb as ev};

use super::{Caller, CustomersApi, Opened, convert};
use crate::{
    error::{Error, Result},
    model::{
        Address, Classification, Contact, Customer, DuplicateReason, RuleViolation,
        access::{self, CLASSIFIERS, EDITORS, MANAGERS, READERS, Scope},
        contact_rules::{self, Reassignment},
        input,
        search::{self, SearchQuery},
    },
    store::{self, IDEMPOTENCY_TABLE},
    usecases::publish::emit,
};

/// Likely duplicates shown to a registrar at most, strongest first.
const MAX_DUPLICATES_SHOWN: usize = 20;

/// A change to one existing customer, opened under its row lock.
enum Change<R> {
    Replay(R),
    Fresh(Transaction<'static, Postgres>, Box<Customer>),
}

impl CustomersApi {
    /// Claims the key, locks the customer (NOT_FOUND outside the caller's
    /// scope), checks the etag and refuses changes to terminated customers.
    async fn begin_change<R: Message + Default>(
        &self,
        call: &IdempotentCall,
        who: &Caller,
        allowed: &[Role],
        id: CustomerId,
        etag: &str,
    ) -> Result<Change<R>> {
        let scope = Scope::of(who, allowed)?;
        let mut tx = match self.open::<R>(call, who).await? {
            Opened::Replay(r) => return Ok(Change::Replay(r)),
            Opened::Fresh(tx) => tx,
        };
        let c = store::load_for_change(&mut tx, id, &scope, convert::etag(etag)).await?;
        c.check_changeable()?;
        Ok(Change::Fresh(tx, Box::new(c)))
    }

    /// Reads the customer back as stored, stores its read document, builds
    /// the response, stores it with the key and commits.
    async fn finish_change<R: Message>(
        call: IdempotentCall,
        mut tx: Transaction<'static, Postgres>,
        id: CustomerId,
        respond: impl FnOnce(&Customer) -> R,
    ) -> Result<R> {
        let c = refresh_doc(&mut tx, id).await?;
        let response = respond(&c);
        call.commit(tx, &response).await?;
        Ok(response)
    }

    /// Fills in who holds a registration number after a unique violation.
    async fn explain(&self, e: Error, registration_number: Option<&str>) -> Error {
        match (e, registration_number) {
            (Error::AlreadyRegistered { customer_id: None, .. }, Some(reg)) => match self.pool.acquire().await {
                Ok(mut conn) => match store::registered_as(&mut conn, reg).await {
                    Ok(Some((id, owner))) => Error::AlreadyRegistered {
                        customer_id: Some(id.to_string()),
                        owner_id: Some(owner),
                        matched: vec!["registration_number"],
                    },
                    Ok(None) | Err(_) => Error::AlreadyRegistered {
                        customer_id: None,
                        owner_id: None,
                        matched: vec!["registration_number"],
                    },
                },
                Err(e) => Error::Db(e),
            },
            (e, _) => e,
        }
    }

    /// A referral may point at any existing customer, also one the caller
    /// cannot see: referrals cross owners and branches. Ids are UUIDs, so
    /// this reveals nothing the caller did not already hold.
    async fn check_referral(tx: &mut sqlx::PgConnection, referral: CustomerId, field: &'static str) -> Result<()> {
        if store::exists(tx, referral).await? {
            Ok(())
        } else {
            Err(Error::InvalidField { field, reason: format!("no customer {referral}") })
        }
    }

    async fn create_customer(
        &self,
        who: &Caller,
        req: pb::CreateCustomerRequest,
    ) -> Result<pb::CreateCustomerResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateCustomer", who, &req.request_id, &req)?;
        let new = convert::new_customer(&req)?;
        let (owner, branch) = access::registration_owner(who, new.owner_id.as_deref(), new.branch.as_deref())?;
        if branch.is_empty() {
            // A customer without a branch would be invisible to every branch role.
            return Err(Error::InvalidField {
                field: "customer.branch",
                reason: "is required: your token carries no branch, so name the customer's branch".into(),
            });
        }
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call, who).await?);
        if let Some(r) = new.referred_by {
            Self::check_referral(&mut tx, r, "customer.referred_by_customer_id").await?;
        }
        let probe = new.probe();
        // Concurrent registrations of the same phone or email take turns, so
        // the second sees the first (CUS-2).
        store::lock_identities(&mut tx, probe.phones.iter().chain(&probe.emails)).await?;
        let candidates = store::find_duplicates(&mut tx, &probe, MAX_DUPLICATES_SHOWN).await?;
        // CUS-2/CUS-3: an identity match is the same customer, registered
        // first: refused whatever the caller confirms (candidates come
        // strongest first). Only similar names can be confirmed as different.
        if let Some(first) = candidates.iter().find(|d| d.is_identity()) {
            let matched = first
                .reasons
                .iter()
                .filter_map(|r| match r {
                    DuplicateReason::RegistrationNumber => Some("registration_number"),
                    DuplicateReason::Phone => Some("phone"),
                    DuplicateReason::Email => Some("email"),
                    DuplicateReason::SimilarName => None,
                })
                .collect();
            return Err(Error::AlreadyRegistered {
                customer_id: Some(first.customer_id.to_string()),
                owner_id: Some(first.owner_id.clone()),
                matched,
            });
        }
        if !candidates.is_empty() && !req.confirm_not_duplicate {
            // Nothing is created and the key is not kept: the caller looks at
            // the candidates and may send the request again with confirmation.
            tx.rollback().await?;
            return Ok(pb::CreateCustomerResponse {
                customer: None,
                duplicate_candidates: candidates.iter().map(convert::duplicate).collect(),
            });
        }
        let registration = new.registration_number.clone();
        let mut c = Customer::register(new, owner, branch, &who.sub, now());
        // CUS-5: entered more than 2 working days after it was collected.
        c.entry_late = c.collected_at.is_some_and(|at| contact_rules::entry_late(&self.calendar, at, c.created_at));
        // The registration is answered from the model as written (version 1),
        // which is also its read document: no read-back.
        let created = convert::customer(&c);
        let result = async {
            store::insert_customer(&mut tx, &c, &created.encode_to_vec()).await?;
            let contacts: Vec<_> = c.contacts.iter().map(|k| (c.id, k)).collect();
            store::insert_contacts(&mut tx, &contacts).await?;
            let addresses: Vec<_> = c.addresses.iter().map(|a| (c.id, a)).collect();
            store::insert_addresses(&mut tx, &addresses).await?;
            store::record_registrations(&mut tx, &[&c], &who.sub).await?;
            emit(&mut tx, c.id.0, crate::usecases::publish::registered(&c, &who.sub)).await
        }
        .await;
        if let Err(e) = result {
            drop(tx);
            return Err(self.explain(e, registration.as_deref()).await);
        }
        let response = pb::CreateCustomerResponse { customer: Some(created), duplicate_candidates: vec![] };
        call.commit(tx, &response).await?;
        Ok(response)
    }

    async fn update_customer(
        &self,
        who: &Caller,
        req: pb::UpdateCustomerRequest,
    ) -> Result<pb::UpdateCustomerResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "UpdateCustomer", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer.id", req.customer.as_ref().map(|c| c.id.as_str()).unwrap_or(""))?;
        let patch = convert::customer_patch(&req)?;
        let (mut tx, mut c) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        if let Some(Some(r)) = patch.referred_by {
            if r == id {
                return Err(Error::InvalidField {
                    field: "customer.referred_by_customer_id",
                    reason: "a customer cannot refer itself".into(),
                });
            }
            Self::check_referral(&mut tx, r, "customer.referred_by_customer_id").await?;
        }
        c.apply(patch);
        if let Err(e) = store::save_customer(&mut tx, &c).await {
            drop(tx);
            return Err(self.explain(e, c.registration_number.as_deref()).await);
        }
        let fields = req.update_mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default();
        updated(&mut tx, id, fields, who).await?;
        Self::finish_change(call, tx, id, |c| pb::UpdateCustomerResponse { customer: Some(convert::customer(c)) }).await
    }

    async fn add_contact(&self, who: &Caller, req: pb::AddContactRequest) -> Result<pb::AddContactResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AddContact", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let mut v = Violations::default();
        let new = match &req.contact {
            Some(k) => convert::new_contact(&mut v, "contact", k),
            None => {
                v.add("contact", "is required");
                None
            }
        };
        let contact = Contact::new(v.finish_with(new)?);
        let (mut tx, c) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        c.check_room_for_contact()?;
        store::insert_contact(&mut tx, id, &contact).await?;
        store::touch(&mut tx, id).await?;
        updated(&mut tx, id, vec!["contacts".into()], who).await?;
        let added = convert::contact(&contact);
        Self::finish_change(call, tx, id, |c| pb::AddContactResponse {
            customer: Some(convert::customer(c)),
            contact: Some(added),
        })
        .await
    }

    async fn update_contact(&self, who: &Caller, req: pb::UpdateContactRequest) -> Result<pb::UpdateContactResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "UpdateContact", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let given = req.contact.clone().unwrap_or_default();
        let contact_id = ContactId::parse(&given.id).map_err(|e| invalid_argument("contact.id", e.reason))?;
        let patch = convert::contact_patch(req.update_mask.as_ref(), &given)?;
        let (mut tx, mut c) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        let contact = c
            .contacts
            .iter_mut()
            .find(|k| k.id == contact_id)
            .ok_or_else(|| Error::NotFound { resource: "contact", id: contact_id.to_string() })?;
        contact.apply(patch);
        store::save_contact(&mut tx, id, contact).await?;
        store::touch(&mut tx, id).await?;
        updated(&mut tx, id, vec!["contacts".into()], who).await?;
        Self::finish_change(call, tx, id, |c| pb::UpdateContactResponse { customer: Some(convert::customer(c)) }).await
    }

    async fn remove_contact(&self, who: &Caller, req: pb::RemoveContactRequest) -> Result<pb::RemoveContactResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RemoveContact", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let contact_id = ContactId::parse(&req.contact_id).map_err(|e| invalid_argument("contact_id", e.reason))?;
        let (mut tx, id) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c.id),
        };
        if !store::delete_contact(&mut tx, id, contact_id).await? {
            return Err(Error::NotFound { resource: "contact", id: contact_id.to_string() });
        }
        store::touch(&mut tx, id).await?;
        updated(&mut tx, id, vec!["contacts".into()], who).await?;
        Self::finish_change(call, tx, id, |c| pb::RemoveContactResponse { customer: Some(convert::customer(c)) }).await
    }

    async fn add_address(&self, who: &Caller, req: pb::AddAddressRequest) -> Result<pb::AddAddressResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AddAddress", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let mut v = Violations::default();
        let new = match &req.address {
            Some(a) => convert::new_address(&mut v, "address", a),
            None => {
                v.add("address", "is required");
                None
            }
        };
        let address = Address::new(v.finish_with(new)?);
        let (mut tx, c) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        c.check_room_for_address()?;
        store::insert_address(&mut tx, id, &address).await?;
        store::touch(&mut tx, id).await?;
        updated(&mut tx, id, vec!["addresses".into()], who).await?;
        let added = convert::address(&address);
        Self::finish_change(call, tx, id, |c| pb::AddAddressResponse {
            customer: Some(convert::customer(c)),
            address: Some(added),
        })
        .await
    }

    async fn update_address(&self, who: &Caller, req: pb::UpdateAddressRequest) -> Result<pb::UpdateAddressResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "UpdateAddress", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let given = req.address.clone().unwrap_or_default();
        let address_id = AddressId::parse(&given.id).map_err(|e| invalid_argument("address.id", e.reason))?;
        let patch = convert::address_patch(req.update_mask.as_ref(), &given)?;
        let (mut tx, mut c) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        let address = c
            .addresses
            .iter_mut()
            .find(|a| a.id == address_id)
            .ok_or_else(|| Error::NotFound { resource: "address", id: address_id.to_string() })?;
        address.apply(patch);
        store::save_address(&mut tx, id, address).await?;
        store::touch(&mut tx, id).await?;
        updated(&mut tx, id, vec!["addresses".into()], who).await?;
        Self::finish_change(call, tx, id, |c| pb::UpdateAddressResponse { customer: Some(convert::customer(c)) }).await
    }

    async fn remove_address(&self, who: &Caller, req: pb::RemoveAddressRequest) -> Result<pb::RemoveAddressResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RemoveAddress", who, &req.request_id, &req)?;
        let id = convert::customer_id("customer_id", &req.customer_id)?;
        let address_id = AddressId::parse(&req.address_id).map_err(|e| invalid_argument("address_id", e.reason))?;
        let (mut tx, id) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c.id),
        };
        if !store::delete_address(&mut tx, id, address_id).await? {
            return Err(Error::NotFound { resource: "address", id: address_id.to_string() });
        }
        store::touch(&mut tx, id).await?;
        updated(&mut tx, id, vec!["addresses".into()], who).await?;
        Self::finish_change(call, tx, id, |c| pb::RemoveAddressResponse { customer: Some(convert::customer(c)) }).await
    }

    async fn change_stage(&self, who: &Caller, req: pb::ChangeStageRequest) -> Result<pb::ChangeStageResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ChangeStage", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = v.check("customer_id", CustomerId::parse(&req.customer_id));
        let to = v.check("stage", convert::required(convert::stage(req.stage)));
        let reason = v.check("reason", crm_domain::text::optional(&req.reason, 1000));
        let (id, to, reason) = v.finish_with((id, to, reason))?;
        let (mut tx, mut c) = match self.begin_change(&call, who, EDITORS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        let from = c.stage;
        c.stage = from.transition(to)?;
        store::save_customer(&mut tx, &c).await?;
        store::record_stage(&mut tx, id, Some(from), c.stage, &who.sub, &reason).await?;
        emit(
            &mut tx,
            id.0,
            Payload::CustomerStageChanged(ev::CustomerStageChanged {
                customer_id: id.to_string(),
                from_stage: from.as_str().into(),
                to_stage: c.stage.as_str().into(),
                changed_by: who.sub.clone(),
            }),
        )
        .await?;
        Self::finish_change(call, tx, id, |c| pb::ChangeStageResponse { customer: Some(convert::customer(c)) }).await
    }

    async fn set_classification(
        &self,
        who: &Caller,
        req: pb::SetClassificationRequest,
    ) -> Result<pb::SetClassificationResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SetClassification", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = v.check("customer_id", CustomerId::parse(&req.customer_id));
        // A field left unset keeps its value; set to UNSPECIFIED it is refused.
        let grade = req.grade.and_then(|g| v.check("grade", convert::required(convert::grade(g))));
        let tier = req.value_tier.and_then(|t| v.check("value_tier", convert::required(convert::value_tier(t))));
        let level =
            req.service_level.and_then(|l| v.check("service_level", convert::required(convert::service_level(l))));
        if req.grade.is_none() && req.value_tier.is_none() && req.service_level.is_none() {
            v.add("grade", "set at least one of grade, value_tier, service_level");
        }
        let reason = v.check("reason", input::reason(&req.reason));
        let (id, reason) = v.finish_with((id, reason))?;
        let (mut tx, mut c) = match self.begin_change(&call, who, CLASSIFIERS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        let before = c.classification;
        c.classification = Classification {
            grade: grade.unwrap_or(before.grade),
            value_tier: tier.unwrap_or(before.value_tier),
            service_level: level.unwrap_or(before.service_level),
        };
        if c.classification == before {
            return Err(
                RuleViolation::new("CLASSIFICATION_UNCHANGED", "the customer already has this classification").into()
            );
        }
        store::save_customer(&mut tx, &c).await?;
        store::record_classification(&mut tx, &c, &who.sub, &reason).await?;
        if c.classification.value_tier != before.value_tier {
            let tier = crate::usecases::publish::tier_changed(
                id,
                before.value_tier,
                c.classification.value_tier,
                false,
                &who.sub,
            );
            emit(&mut tx, id.0, tier).await?;
        }
        let mut fields = vec![];
        if c.classification.grade != before.grade {
            fields.push("grade".to_string());
        }
        if c.classification.service_level != before.service_level {
            fields.push("service_level".to_string());
        }
        if !fields.is_empty() {
            updated(&mut tx, id, fields, who).await?;
        }
        Self::finish_change(call, tx, id, |c| pb::SetClassificationResponse { customer: Some(convert::customer(c)) })
            .await
    }

    async fn assign_owner(&self, who: &Caller, req: pb::AssignOwnerRequest) -> Result<pb::AssignOwnerResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "AssignOwner", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let id = v.check("customer_id", CustomerId::parse(&req.customer_id));
        let owner = v.check("owner_id", input::owner_id(&req.owner_id));
        let branch = v.check("branch", crm_domain::text::single_line(&req.branch, 100));
        // CUS-4: a reason is needed unless the first contact is overdue (below).
        let reason = v.check("reason", crm_domain::text::optional(&req.reason, 1000));
        let (id, owner, branch, reason) = v.finish_with((id, owner, branch, reason))?;
        let (mut tx, mut c) = match self.begin_change(&call, who, MANAGERS, id, &req.etag).await? {
            Change::Replay(r) => return Ok(r),
            Change::Fresh(tx, c) => (tx, c),
        };
        // A merged id resolves to its survivor (CUS-2): act on the survivor.
        let id = c.id;
        let branch = (!branch.is_empty()).then_some(branch);
        let (owner, branch) = access::reassignment(who, &c, &owner, branch.as_deref()).map_err(|e| match e {
            access::ReassignError::Denied(d) => Error::Denied(d),
            access::ReassignError::Rule(r) => Error::Rule(r),
        })?;
        let now = now();
        let new_owner = owner != c.owner_id;
        // CUS-4: inside the window or after contact only an override with a
        // reason moves the customer; an overdue one moves freely. A change
        // of branch alone is no reassignment.
        let kind = if new_owner {
            Some(contact_rules::may_reassign(&c, now, req.override_first_contact_window)?)
        } else {
            None
        };
        let overridden = kind == Some(Reassignment::Override);
        let reason = match kind {
            Some(Reassignment::Free) if reason.is_empty() => {
                format!(
                    "first contact overdue since {}",
                    c.first_contact_due.map(|d| d.to_rfc3339()).unwrap_or_default()
                )
            }
            _ if reason.is_empty() => {
                return Err(Error::InvalidField {
                    field: "reason",
                    reason: "is required: only a customer whose first contact is overdue moves without one (CUS-4)"
                        .into(),
                });
            }
            _ => reason,
        };
        c.owner_id = owner;
        c.branch = branch;
        if new_owner {
            // CUS-4: the new owner's 7-day first-contact clock starts now.
            *c = c.with_assignment_clock(&who.sub, now);
        }
        store::save_customer(&mut tx, &c).await?;
        store::record_owner(&mut tx, &c, &who.sub, &reason, overridden).await?;
        updated(&mut tx, id, vec!["owner_id".into(), "branch".into()], who).await?;
        Self::finish_change(call, tx, id, |c| pb::AssignOwnerResponse { customer: Some(convert::customer(c)) }).await
    }

    /// One primary-key lookup of the read document (a merged id follows
    /// its survivor); the read of contact details is in the audit trail
    /// before the answer leaves (CUS-13).
    async fn get_customer(&self, who: &Caller, req: pb::GetCustomerRequest) -> Result<pb::GetCustomerResponse> {
        let id = convert::customer_id("id", &req.id)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let not_found = || Error::NotFound { resource: "customer", id: id.to_string() };
        let mut row = store::read_doc(&mut conn, id).await?.ok_or_else(not_found)?;
        if let Some(survivor) = row.merged_into {
            row = store::read_doc(&mut conn, CustomerId(survivor)).await?.ok_or_else(not_found)?;
        }
        if !scope.covers_owner(&row.branch, &row.owner_id) {
            return Err(not_found());
        }
        let customer = self.document(&mut conn, &row).await?.ok_or_else(not_found)?;
        drop(conn);
        self.reads.record(&who.sub, "GetCustomer", vec![row.id], who.request_id.clone()).await?;
        Ok(pb::GetCustomerResponse { customer: Some(customer) })
    }

    /// The customer of `row` as the API returns it: its stored document, or
    /// (when the row changed since it was built, or the document cannot be
    /// read as this customer's) rebuilt from the tables and stored again.
    async fn document(&self, conn: &mut sqlx::PgConnection, row: &store::DocRow) -> Result<Option<pb::Customer>> {
        if let Some(doc) = &row.doc {
            match pb::Customer::decode(doc.as_slice()) {
                Ok(c) if c.id == row.id.to_string() => return Ok(Some(c)),
                // Written by hand or by a tool that did not build it: the
                // tables are the truth, so rebuild it as for a stale one.
                Ok(_) => tracing::warn!(customer = %row.id, "stored document names another customer; rebuilt"),
                Err(e) => tracing::warn!(customer = %row.id, error = %e, "stored document unreadable; rebuilt"),
            }
        }
        let Some(c) = store::load(conn, CustomerId(row.id), &Scope::All, false).await? else {
            return Ok(None);
        };
        let customer = convert::customer(&c);
        store::write_doc(conn, c.id, c.version, &customer.encode_to_vec()).await?;
        Ok(Some(customer))
    }

    async fn list_customers(&self, who: &Caller, req: pb::ListCustomersRequest) -> Result<pb::ListCustomersResponse> {
        let (filter, fingerprint) = convert::list_filter(&req)?;
        let page = Page::parse(req.page_size, &req.page_token, 50, 1000, fingerprint)?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list(&mut conn, &scope, &filter, page.after, page.size).await?;
        drop(conn);
        let (rows, next_page_token) = page.finish(rows, |last| last.id.0);
        let ids: Vec<_> = rows.iter().map(|c| c.id.0).collect();
        self.reads.record(&who.sub, "ListCustomers", ids, who.request_id.clone()).await?;
        Ok(pb::ListCustomersResponse { customers: rows.iter().map(convert::customer).collect(), next_page_token })
    }

    /// Ranked search (CUS-1): candidates from one index lookup per
    /// condition, scored here, paged by (score, id).
    async fn search_customers(
        &self,
        who: &Caller,
        req: pb::SearchCustomersRequest,
    ) -> Result<pb::SearchCustomersResponse> {
        let mut v = Violations::default();
        let query = v.check("query", crm_domain::text::required(&req.query, 100));
        let query = query.and_then(|q| v.check("query", SearchQuery::parse(&q)));
        let size = v.check("page_size", PageSize::parse(req.page_size, 20, 100));
        let (q, size) = v.finish_with((query, size))?;
        let token = RankedPageToken::decode(&req.page_token, q.fingerprint)
            .map_err(|e| invalid_argument("page_token", e.to_string()))?;
        let scope = Scope::of(who, READERS)?;
        let mut conn = self.pool.acquire().await?;
        let freq = self.term_frequencies(&mut conn).await;
        let candidates = store::search_candidates(&mut conn, &scope, &q, &freq).await?;
        let mut ranked: Vec<(f64, CustomerId)> = candidates
            .iter()
            .map(|(id, c)| (search::score(&q, c), *id))
            .filter(|(s, id)| *s >= search::MIN_SCORE && token.is_none_or(|t| t.precedes(*s, id.0)))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.0.cmp(&b.1.0)));
        let more = ranked.len() > size.0 as usize;
        ranked.truncate(size.0 as usize);
        let ids: Vec<CustomerId> = ranked.iter().map(|(_, id)| *id).collect();
        let mut docs = std::collections::HashMap::new();
        for row in store::read_docs(&mut conn, &ids).await? {
            if let Some(c) = self.document(&mut conn, &row).await? {
                docs.insert(row.id, c);
            }
        }
        drop(conn);
        self.reads
            .record(&who.sub, "SearchCustomers", ids.iter().map(|i| i.0).collect(), who.request_id.clone())
            .await?;
        let next_page_token = match ranked.last() {
            Some((score, id)) if more => RankedPageToken { score: *score, after: id.0, filter: q.fingerprint }.encode(),
            _ => String::new(),
        };
        Ok(pb::SearchCustomersResponse {
            hits: ranked
                .iter()
                .filter_map(|(score, id)| {
                    docs.remove(&id.0).map(|c| pb::SearchHit { customer: Some(c), score: *score })
                })
                .collect(),
            next_page_token,
        })
    }
}

use crm_platform::proto_time::now;

/// `customer.updated`, naming the fields that changed (never their values:
/// CUS-13).
/// Reads the customer back as stored inside the change's transaction and
/// stores its read document.
pub(super) async fn refresh_doc(tx: &mut sqlx::PgConnection, id: CustomerId) -> Result<Customer> {
    let c = store::load(tx, id, &Scope::All, false)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("customer {id} vanished inside its transaction")))?;
    store::write_doc(tx, c.id, c.version, &convert::customer(&c).encode_to_vec()).await?;
    Ok(c)
}

pub(super) async fn updated(
    conn: &mut sqlx::PgConnection,
    id: CustomerId,
    fields: Vec<String>,
    who: &Caller,
) -> Result<()> {
    emit(
        conn,
        id.0,
        Payload::CustomerUpdated(ev::CustomerUpdated {
            customer_id: id.to_string(),
            fields,
            updated_by: who.sub.clone(),
        }),
    )
    .await
}

crm_platform::grpc_service! {
    impl CustomerService for CustomersApi {
        create_customer(pb::CreateCustomerRequest) -> pb::CreateCustomerResponse;
        get_customer(pb::GetCustomerRequest) -> pb::GetCustomerResponse;
        list_customers(pb::ListCustomersRequest) -> pb::ListCustomersResponse;
        search_customers(pb::SearchCustomersRequest) -> pb::SearchCustomersResponse;
        update_customer(pb::UpdateCustomerRequest) -> pb::UpdateCustomerResponse;
        add_contact(pb::AddContactRequest) -> pb::AddContactResponse;
        update_contact(pb::UpdateContactRequest) -> pb::UpdateContactResponse;
        remove_contact(pb::RemoveContactRequest) -> pb::RemoveContactResponse;
        add_address(pb::AddAddressRequest) -> pb::AddAddressResponse;
        update_address(pb::UpdateAddressRequest) -> pb::UpdateAddressResponse;
        remove_address(pb::RemoveAddressRequest) -> pb::RemoveAddressResponse;
        change_stage(pb::ChangeStageRequest) -> pb::ChangeStageResponse;
        set_classification(pb::SetClassificationRequest) -> pb::SetClassificationResponse;
        assign_owner(pb::AssignOwnerRequest) -> pb::AssignOwnerResponse;
        list_ownership_history(pb::ListOwnershipHistoryRequest) -> pb::ListOwnershipHistoryResponse;
        file_ownership_claim(pb::FileOwnershipClaimRequest) -> pb::FileOwnershipClaimResponse;
        decide_ownership_claim(pb::DecideOwnershipClaimRequest) -> pb::DecideOwnershipClaimResponse;
        list_ownership_claims(pb::ListOwnershipClaimsRequest) -> pb::ListOwnershipClaimsResponse;
        distribute_leads(pb::DistributeLeadsRequest) -> pb::DistributeLeadsResponse;
        list_overdue_first_contacts(pb::ListOverdueFirstContactsRequest) -> pb::ListOverdueFirstContactsResponse;
        get_entry_timeliness(pb::GetEntryTimelinessRequest) -> pb::GetEntryTimelinessResponse;
        log_interaction(pb::LogInteractionRequest) -> pb::LogInteractionResponse;
        list_interactions(pb::ListInteractionsRequest) -> pb::ListInteractionsResponse;
        schedule_follow_up(pb::ScheduleFollowUpRequest) -> pb::ScheduleFollowUpResponse;
        list_due_follow_ups(pb::ListDueFollowUpsRequest) -> pb::ListDueFollowUpsResponse;
        plan_visit(pb::PlanVisitRequest) -> pb::PlanVisitResponse;
        approve_visit(pb::ApproveVisitRequest) -> pb::ApproveVisitResponse;
        record_visit_done(pb::RecordVisitDoneRequest) -> pb::RecordVisitDoneResponse;
        submit_visit_minutes(pb::SubmitVisitMinutesRequest) -> pb::SubmitVisitMinutesResponse;
        review_visit_minutes(pb::ReviewVisitMinutesRequest) -> pb::ReviewVisitMinutesResponse;
        send_visit_minutes(pb::SendVisitMinutesRequest) -> pb::SendVisitMinutesResponse;
        confirm_visit_receipt(pb::ConfirmVisitReceiptRequest) -> pb::ConfirmVisitReceiptResponse;
        list_visits(pb::ListVisitsRequest) -> pb::ListVisitsResponse;
        record_survey(pb::RecordSurveyRequest) -> pb::RecordSurveyResponse;
        get_satisfaction(pb::GetSatisfactionRequest) -> pb::GetSatisfactionResponse;
        create_account_plan(pb::CreateAccountPlanRequest) -> pb::CreateAccountPlanResponse;
        review_account_plan(pb::ReviewAccountPlanRequest) -> pb::ReviewAccountPlanResponse;
        advance_contract_stage(pb::AdvanceContractStageRequest) -> pb::AdvanceContractStageResponse;
        list_account_plans(pb::ListAccountPlansRequest) -> pb::ListAccountPlansResponse;
        merge_customers(pb::MergeCustomersRequest) -> pb::MergeCustomersResponse;
        list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse;
        request_termination(pb::RequestTerminationRequest) -> pb::RequestTerminationResponse;
        approve_termination(pb::ApproveTerminationRequest) -> pb::ApproveTerminationResponse;
        reject_termination(pb::RejectTerminationRequest) -> pb::RejectTerminationResponse;
        get_termination(pb::GetTerminationRequest) -> pb::GetTerminationResponse;
        list_terminations(pb::ListTerminationsRequest) -> pb::ListTerminationsResponse;
        get_customer_behaviour(pb::GetCustomerBehaviourRequest) -> pb::GetCustomerBehaviourResponse;
        get_tier_policy(pb::GetTierPolicyRequest) -> pb::GetTierPolicyResponse;
        set_tier_policy(pb::SetTierPolicyRequest) -> pb::SetTierPolicyResponse;
    }
    streaming {
        async fn import_customers(
            &self,
            request: Request<tonic::Streaming<pb::ImportCustomersRequest>>,
        ) -> std::result::Result<Response<pb::ImportCustomersResponse>, Status> {
            let caller = Caller::of(&request)?;
            let mut stream = request.into_inner();
            Ok(Response::new(self.import(&caller, &mut stream).await?))
        }
    }
}
