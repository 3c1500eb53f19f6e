//! Accounts (BIL-1): opening one for a customer the customers service
//! knows, reading it (also through a merged-away customer id), and its
//! status changes.

use std::time::Duration;

use crm_platform::{Violations, client, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::{
    billing::v1 as pb,
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
};
use tonic::Code;
use uuid::Uuid;

use super::{BillingApi, Caller, Opened, account_locked, check_etag, convert, reload_account};
use crate::{
    error::{Error, Result},
    model::{AccountStatus, RuleViolation, states::AccountEvent},
    store::{self, Account, IDEMPOTENCY_TABLE},
    usecases::posting,
};

const CUSTOMER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

impl BillingApi {
    /// The customer as the customers service knows it: unknown is NOT_FOUND,
    /// terminated gets no new account (CUS-11). Returns its id: a merged-away
    /// id answers with its survivor's (CUS-2).
    async fn check_customer(&self, id: Uuid, request_id: Option<&str>) -> Result<Uuid> {
        let peer = self.customers.as_ref().map_err(|e| Error::CustomersUnavailable(e.clone()))?;
        let mut customers = CustomerServiceClient::with_interceptor(peer.channel.clone(), peer.auth.clone());
        let req = client::request(cpb::GetCustomerRequest { id: id.to_string() }, request_id, CUSTOMER_LOOKUP_TIMEOUT);
        match customers.get_customer(req).await {
            Ok(r) => {
                let c = r.into_inner().customer.ok_or_else(|| Error::Corrupt("GetCustomer returned nothing".into()))?;
                if c.stage == cpb::LifecycleStage::Terminated as i32 {
                    return Err(RuleViolation::new("CUSTOMER_TERMINATED", "the customer is terminated").into());
                }
                Uuid::try_parse(&c.id).map_err(|_| Error::Corrupt(format!("GetCustomer answered with id {:?}", c.id)))
            }
            Err(s) if s.code() == Code::NotFound => Err(Error::NotFound { resource: "customer", id: id.to_string() }),
            Err(s) => Err(Error::CustomersUnavailable(format!("{:?}: {}", s.code(), s.message()))),
        }
    }

    pub(super) async fn open_account(
        &self,
        who: &Caller,
        req: pb::OpenAccountRequest,
    ) -> Result<pb::OpenAccountResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "OpenAccount", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let customer = v.check(
            "customer_id",
            uuid::Uuid::try_parse(req.customer_id.trim()).map_err(|_| crm_domain::Invalid::new("must be a UUID")),
        );
        let kind = v.check("kind", convert::required(convert::account_kind(req.kind)));
        let class = v.check("customer_class", convert::required(convert::customer_class(req.customer_class)));
        let currency = if req.currency_code.is_empty() {
            Some("CNY".to_string())
        } else {
            v.check(
                "currency_code",
                crm_domain::Currency::parse(&req.currency_code)
                    .map(|c| c.code().to_string())
                    .map_err(|e| crm_domain::Invalid::new(e.to_string())),
            )
        };
        let (customer, kind, class, currency) = v.finish_with((customer, kind, class, currency))?;
        // A retry that went through is answered without asking customers again.
        match self.open::<pb::OpenAccountResponse>(&call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx.rollback().await?,
        }
        let customer = self.check_customer(customer, who.request_id.as_deref()).await?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        // The survivor, also when the merge was applied after the lookup (CUS-2).
        let customer = crm_events::aliases::resolve(&mut tx, "billing", customer).await?;
        let id = Uuid::now_v7();
        if let Err(e) = store::insert_account(&mut tx, id, customer, kind, class, &currency, &who.sub).await {
            drop(tx);
            return Err(match e {
                Error::AccountExists { .. } => {
                    let mut conn = self.pool.acquire().await?;
                    let existing = store::account_of_customer(&mut conn, customer).await?;
                    Error::AccountExists { account_id: existing.map(|a| a.id.to_string()) }
                }
                other => other,
            });
        }
        let resp = pb::OpenAccountResponse { account: Some(convert::account(&reload_account(&mut tx, id).await?)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn get_account(
        &self,
        _who: &Caller,
        req: pb::GetAccountRequest,
    ) -> Result<pb::GetAccountResponse> {
        let mut conn = self.pool.acquire().await?;
        let account = match (req.account_id.trim().is_empty(), req.customer_id.trim().is_empty()) {
            (false, true) => {
                store::load_account(&mut conn, convert::uuid("account_id", &req.account_id)?, false).await?
            }
            (true, false) => {
                store::account_of_customer(&mut conn, convert::uuid("customer_id", &req.customer_id)?).await?
            }
            _ => return Err(invalid_argument("account_id", "give exactly one of account_id and customer_id").into()),
        };
        let a = account.ok_or_else(|| Error::NotFound {
            resource: "account",
            id: format!("{}{}", req.account_id, req.customer_id),
        })?;
        let side_accounts = if req.customer_id.trim().is_empty() {
            vec![]
        } else {
            store::side_accounts_of_customer(&mut conn, a.customer_id).await?.iter().map(convert::account).collect()
        };
        Ok(pb::GetAccountResponse { account: Some(convert::account(&a)), side_accounts })
    }

    /// One account status change: key, lock, etag, state machine, save.
    async fn change_account<R: prost::Message + Default>(
        &self,
        call: IdempotentCall,
        account_id: &str,
        given_etag: &str,
        event: impl FnOnce(&Account, i64) -> AccountEvent,
        respond: impl FnOnce(pb::Account) -> R,
    ) -> Result<R> {
        let id = convert::uuid("account_id", account_id)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let a = account_locked(&mut tx, id).await?;
        check_etag(a.version, given_etag)?;
        // The same test as a termination's (model::standing): owed invoices.
        let open = store::standing(&mut tx, id).await?.open_invoices;
        let to = a.status.transition(event(&a, open))?;
        if to == AccountStatus::Closed {
            posting::close_account(&mut tx, &a, None).await?;
        } else {
            store::save_account_status(&mut tx, id, to).await?;
        }
        let resp = respond(convert::account(&reload_account(&mut tx, id).await?));
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn suspend_account(
        &self,
        who: &Caller,
        req: pb::SuspendAccountRequest,
    ) -> Result<pb::SuspendAccountResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SuspendAccount", who, &req.request_id, &req)?;
        convert::reason("reason", &req.reason)?;
        self.change_account(
            call,
            &req.account_id,
            &req.etag,
            |_, _| AccountEvent::Suspend,
            |a| pb::SuspendAccountResponse { account: Some(a) },
        )
        .await
    }

    pub(super) async fn reactivate_account(
        &self,
        who: &Caller,
        req: pb::ReactivateAccountRequest,
    ) -> Result<pb::ReactivateAccountResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "ReactivateAccount", who, &req.request_id, &req)?;
        self.change_account(
            call,
            &req.account_id,
            &req.etag,
            |_, _| AccountEvent::Reactivate,
            |a| pb::ReactivateAccountResponse { account: Some(a) },
        )
        .await
    }

    pub(super) async fn close_account(
        &self,
        who: &Caller,
        req: pb::CloseAccountRequest,
    ) -> Result<pb::CloseAccountResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CloseAccount", who, &req.request_id, &req)?;
        convert::reason("reason", &req.reason)?;
        self.change_account(
            call,
            &req.account_id,
            &req.etag,
            |a, open| AccountEvent::Close { balance_minor: a.balance_minor, open_invoices: open },
            |a| pb::CloseAccountResponse { account: Some(a) },
        )
        .await
    }
}
