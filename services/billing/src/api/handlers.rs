//! The RPCs of `crm.billing.v1.BillingService`.

use std::time::Duration;

use chrono::Utc;
use crm_domain::text;
use crm_platform::{Violations, client, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::{
    billing::v1::{self as pb, billing_service_server::BillingService},
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
};
use sqlx::PgConnection;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use super::{BillingApi, Caller, Opened, convert};
use crate::{
    error::{Error, Result},
    model::{
        AccountStatus, EntryKind, InvoiceStatus, RuleViolation, etag,
        pricing::{self, div_half_up},
        states::{AccountEvent, InvoiceEvent},
    },
    posting,
    store::{self, Account, Fund, IDEMPOTENCY_TABLE, Invoice, Line},
};

const CUSTOMER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a mutating call or returns its stored first response.
macro_rules! open_or_replay {
    ($self:ident, $call:ident) => {
        match $self.open(&$call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx,
        }
    };
}
pub(super) use open_or_replay;

pub(super) fn check_etag(version: i64, given: &str) -> Result<()> {
    match convert::opt_etag(given) {
        Some(e) if e != etag(version) => Err(Error::StaleEtag { current: etag(version) }),
        _ => Ok(()),
    }
}

async fn account_locked(conn: &mut PgConnection, id: Uuid) -> Result<Account> {
    store::load_account(conn, id, true)
        .await?
        .ok_or_else(|| Error::NotFound { resource: "account", id: id.to_string() })
}

async fn reload_account(conn: &mut PgConnection, id: Uuid) -> Result<Account> {
    store::load_account(conn, id, false).await?.ok_or_else(|| Error::Corrupt(format!("account {id} vanished")))
}

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

    async fn open_account(&self, who: &Caller, req: pb::OpenAccountRequest) -> Result<pb::OpenAccountResponse> {
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
        v.finish()?;
        let (Some(customer), Some(kind), Some(class), Some(currency)) = (customer, kind, class, currency) else {
            return Err(Error::Corrupt("validated account incomplete".into()));
        };
        // A retry that went through is answered without asking customers again.
        match self.open::<pb::OpenAccountResponse>(&call).await? {
            Opened::Replay(r) => return Ok(r),
            Opened::Fresh(tx) => tx.rollback().await?,
        }
        let customer = self.check_customer(customer, who.request_id.as_deref()).await?;
        let mut tx = open_or_replay!(self, call);
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

    async fn get_account(&self, _who: &Caller, req: pb::GetAccountRequest) -> Result<pb::GetAccountResponse> {
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
        let mut tx = open_or_replay!(self, call);
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

    async fn suspend(&self, who: &Caller, req: pb::SuspendAccountRequest) -> Result<pb::SuspendAccountResponse> {
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

    async fn reactivate(
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

    async fn close(&self, who: &Caller, req: pb::CloseAccountRequest) -> Result<pb::CloseAccountResponse> {
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

    async fn create_tariff(&self, who: &Caller, req: pb::CreateTariffRequest) -> Result<pb::CreateTariffResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateTariff", who, &req.request_id, &req)?;
        let given = req.tariff.clone().ok_or_else(|| invalid_argument("tariff", "is required"))?;
        let (class, from, vat, blocks, currency) = convert::tariff_in(&given)?;
        // Past versions are immutable: a new version cannot reach back
        // before today and change what was in force (BIL-2).
        let today = self.calendar.local_date(Utc::now());
        if from < today {
            return Err(invalid_argument(
                "tariff.effective_from",
                "must not be in the past: past tariffs never change",
            )
            .into());
        }
        let mut tx = open_or_replay!(self, call);
        let t = store::Tariff {
            id: Uuid::now_v7(),
            customer_class: class,
            effective_from: from,
            vat_rate_bp: vat,
            currency,
            blocks,
            created_by: who.sub.clone(),
        };
        store::insert_tariff(&mut tx, &t).await?;
        let resp = pb::CreateTariffResponse { tariff: Some(convert::tariff(&t)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn list_tariffs(&self, _who: &Caller, req: pb::ListTariffsRequest) -> Result<pb::ListTariffsResponse> {
        let class =
            convert::customer_class(req.customer_class).map_err(|e| invalid_argument("customer_class", e.reason))?;
        let mut conn = self.pool.acquire().await?;
        let tariffs = store::list_tariffs(&mut conn, class).await?;
        Ok(pb::ListTariffsResponse { tariffs: tariffs.iter().map(convert::tariff).collect() })
    }

    async fn quote_usage(&self, _who: &Caller, req: pb::QuoteUsageRequest) -> Result<pb::QuoteUsageResponse> {
        let mut v = Violations::default();
        let class = v.check("customer_class", convert::required(convert::customer_class(req.customer_class)));
        if req.volume_litres < 0 {
            v.add("volume_litres", "must not be negative");
        }
        let on = convert::date(&mut v, "on", req.on.as_ref());
        v.finish()?;
        let (Some(class), Some(on)) = (class, on) else {
            return Err(Error::Corrupt("validated quote incomplete".into()));
        };
        let mut conn = self.pool.acquire().await?;
        let t = store::tariff_in_force(&mut conn, class, on).await?.ok_or_else(|| {
            RuleViolation::new("NO_TARIFF", format!("no {} tariff is in force on {on}", class.as_str()))
        })?;
        let blocks = pricing::tiered_charge(&t.blocks, req.volume_litres);
        let net: i64 = blocks.iter().map(|b| b.amount_minor).sum();
        let vat = i64::try_from(div_half_up(i128::from(net) * i128::from(t.vat_rate_bp), 10_000)).unwrap_or(i64::MAX);
        Ok(pb::QuoteUsageResponse {
            tariff_id: t.id.to_string(),
            blocks: blocks
                .iter()
                .map(|b| pb::BlockCharge {
                    volume_litres: b.volume_litres,
                    price_minor_per_m3: b.price_minor_per_m3,
                    amount_minor: b.amount_minor,
                })
                .collect(),
            net: Some(convert::money(net, &t.currency)),
            vat: Some(convert::money(vat, &t.currency)),
            total: Some(convert::money(net + vat, &t.currency)),
        })
    }

    async fn set_item(&self, who: &Caller, req: pb::SetCatalogueItemRequest) -> Result<pb::SetCatalogueItemResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SetCatalogueItem", who, &req.request_id, &req)?;
        let item = convert::item_in(&req.item.clone().unwrap_or_default())?;
        let mut tx = open_or_replay!(self, call);
        let revision = store::upsert_item(&mut tx, &item).await?;
        crate::catalogue::publish(&mut tx, &item, revision).await?;
        let resp = pb::SetCatalogueItemResponse { item: Some(convert::item(&item)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn list_items(
        &self,
        _who: &Caller,
        _req: pb::ListCatalogueItemsRequest,
    ) -> Result<pb::ListCatalogueItemsResponse> {
        let mut conn = self.pool.acquire().await?;
        Ok(pb::ListCatalogueItemsResponse {
            items: store::list_items(&mut conn).await?.iter().map(convert::item).collect(),
        })
    }

    async fn create_invoice(&self, who: &Caller, req: pb::CreateInvoiceRequest) -> Result<pb::CreateInvoiceResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateInvoice", who, &req.request_id, &req)?;
        let given = req.invoice.clone().ok_or_else(|| invalid_argument("invoice", "is required"))?;
        let account_id = convert::uuid("invoice.account_id", &given.account_id)?;
        let mut v = Violations::default();
        let series = given.series.trim().to_string();
        if !(2..=8).contains(&series.len()) || !series.chars().all(|c| c.is_ascii_uppercase()) {
            v.add("invoice.series", "must be 2 to 8 capital letters, e.g. SVC");
        }
        let due_in_days = if given.due_in_days == 0 { 15 } else { given.due_in_days };
        if !(0..=365).contains(&due_in_days) {
            v.add("invoice.due_in_days", "must be 0 to 365");
        }
        if given.lines.is_empty() || given.lines.len() > 200 {
            v.add("invoice.lines", "give 1 to 200 lines");
        }
        v.finish()?;
        let mut tx = open_or_replay!(self, call);
        let account = account_locked(&mut tx, account_id).await?;
        account.status.may_bill()?;
        let mut v = Violations::default();
        let mut lines = Vec::with_capacity(given.lines.len());
        for (i, l) in given.lines.iter().enumerate() {
            let at = |f: &str| format!("invoice.lines[{i}].{f}");
            if l.quantity_milli <= 0 {
                v.add(&at("quantity_milli"), "must be positive");
                continue;
            }
            let (code, description, price, vat) = if l.catalogue_code.trim().is_empty() {
                let d = v.check(&at("description"), text::required(&l.description, 300));
                let price =
                    convert::positive_amount(&mut v, &at("unit_price"), l.unit_price.as_ref(), &account.currency);
                let vat = convert::vat_rate(&mut v, &at("vat_rate_bp"), l.vat_rate_bp);
                match (d, price, vat) {
                    (Some(d), Some(p), Some(vat)) => (None, d, p, vat),
                    _ => continue,
                }
            } else {
                let code = l.catalogue_code.trim().to_uppercase();
                match store::item(&mut tx, &code).await? {
                    Some(item) if item.active && item.currency == account.currency => {
                        let d = if l.description.trim().is_empty() {
                            item.description.clone()
                        } else {
                            l.description.trim().to_string()
                        };
                        (Some(code), d, item.unit_price_minor, item.vat_rate_bp)
                    }
                    Some(item) if item.active => {
                        v.add(
                            &at("catalogue_code"),
                            format!("priced in {}, the account is in {}", item.currency, account.currency),
                        );
                        continue;
                    }
                    _ => {
                        v.add(&at("catalogue_code"), "no active catalogue item with this code");
                        continue;
                    }
                }
            };
            match pricing::line_amounts(l.quantity_milli, price, vat) {
                Some((net, vat_minor)) => lines.push(Line {
                    catalogue_code: code,
                    description,
                    quantity_milli: l.quantity_milli,
                    unit_price_minor: price,
                    vat_rate_bp: vat,
                    net_minor: net,
                    vat_minor,
                }),
                None => v.add(&at("quantity_milli"), "the line amount is out of range"),
            }
        }
        v.finish()?;
        let net: i64 = lines.iter().map(|l| l.net_minor).sum();
        let vat: i64 = lines.iter().map(|l| l.vat_minor).sum();
        let inv = Invoice {
            id: Uuid::now_v7(),
            account_id,
            series,
            number: None,
            status: InvoiceStatus::Draft,
            currency: account.currency.clone(),
            lines,
            net_minor: net,
            vat_minor: vat,
            total_minor: net + vat,
            paid_minor: 0,
            due_in_days,
            due_on: None,
            issued_at: None,
            void_reason: None,
            version: 1,
            work_order_id: None,
        };
        store::insert_invoice(&mut tx, &inv, &who.sub).await?;
        let saved = store::load_invoice(&mut tx, inv.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt("invoice vanished".into()))?;
        let resp = pb::CreateInvoiceResponse { invoice: Some(convert::invoice(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn invoice_locked(&self, conn: &mut PgConnection, id: &str, given_etag: &str) -> Result<Invoice> {
        let id = convert::uuid("invoice_id", id)?;
        let inv = store::load_invoice(conn, id, true)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "invoice", id: id.to_string() })?;
        check_etag(inv.version, given_etag)?;
        Ok(inv)
    }

    async fn issue_invoice(&self, who: &Caller, req: pb::IssueInvoiceRequest) -> Result<pb::IssueInvoiceResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "IssueInvoice", who, &req.request_id, &req)?;
        convert::uuid("invoice_id", &req.invoice_id)?;
        let mut tx = open_or_replay!(self, call);
        let mut inv = self.invoice_locked(&mut tx, &req.invoice_id, &req.etag).await?;
        let account = account_locked(&mut tx, inv.account_id).await?;
        inv.status.transition(InvoiceEvent::Issue)?;
        account.status.may_bill()?;
        posting::issue_invoice(&mut tx, &self.calendar, &account, &mut inv, &who.sub).await?;
        let saved = store::load_invoice(&mut tx, inv.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt("invoice vanished".into()))?;
        let resp = pb::IssueInvoiceResponse { invoice: Some(convert::invoice(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn void_invoice(&self, who: &Caller, req: pb::VoidInvoiceRequest) -> Result<pb::VoidInvoiceResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "VoidInvoice", who, &req.request_id, &req)?;
        convert::uuid("invoice_id", &req.invoice_id)?;
        let reason = convert::reason("reason", &req.reason)?;
        let mut tx = open_or_replay!(self, call);
        let mut inv = self.invoice_locked(&mut tx, &req.invoice_id, &req.etag).await?;
        let was = inv.status;
        inv.status = inv.status.transition(InvoiceEvent::Void { paid_minor: inv.paid_minor })?;
        inv.void_reason = Some(reason.clone());
        store::save_invoice(&mut tx, &inv).await?;
        if was != InvoiceStatus::Draft {
            // The charge stays in the ledger; a reversing entry takes it back.
            let number = inv.number.clone().unwrap_or_default();
            store::post(
                &mut tx,
                inv.account_id,
                EntryKind::Adjustment,
                -inv.total_minor,
                &format!("void {number}: {reason}"),
                Some(inv.id),
                None,
                &who.sub,
            )
            .await?;
            let account = reload_account(&mut tx, inv.account_id).await?;
            posting::report_if_cleared(&mut tx, &account, crm_platform::proto_time::now()).await?;
        }
        let saved = store::load_invoice(&mut tx, inv.id, false)
            .await?
            .ok_or_else(|| Error::Corrupt("invoice vanished".into()))?;
        let resp = pb::VoidInvoiceResponse { invoice: Some(convert::invoice(&saved)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn get_invoice(&self, _who: &Caller, req: pb::GetInvoiceRequest) -> Result<pb::GetInvoiceResponse> {
        let id = convert::uuid("invoice_id", &req.invoice_id)?;
        let mut conn = self.pool.acquire().await?;
        let inv = store::load_invoice(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "invoice", id: id.to_string() })?;
        Ok(pb::GetInvoiceResponse { invoice: Some(convert::invoice(&inv)) })
    }

    async fn list_invoices(&self, _who: &Caller, req: pb::ListInvoicesRequest) -> Result<pb::ListInvoicesResponse> {
        let account = convert::uuid("account_id", &req.account_id)?;
        let status = convert::invoice_status(req.status).map_err(|e| invalid_argument("status", e.reason))?;
        let mut conn = self.pool.acquire().await?;
        let invoices = store::list_invoices(&mut conn, account, status).await?;
        Ok(pb::ListInvoicesResponse { invoices: invoices.iter().map(convert::invoice).collect() })
    }

    async fn record_payment(&self, who: &Caller, req: pb::RecordPaymentRequest) -> Result<pb::RecordPaymentResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RecordPayment", who, &req.request_id, &req)?;
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let method =
            convert::required(convert::payment_method(req.method)).map_err(|e| invalid_argument("method", e.reason))?;
        let reference = text::single_line(&req.reference, 100).map_err(|e| invalid_argument("reference", e.reason))?;
        let mut tx = open_or_replay!(self, call);
        let account = account_locked(&mut tx, account_id).await?;
        let mut v = Violations::default();
        let amount = convert::positive_amount(&mut v, "amount", req.amount.as_ref(), &account.currency);
        v.finish()?;
        let amount = amount.ok_or_else(|| Error::Corrupt("validated amount missing".into()))?;
        let fund = Fund {
            id: Uuid::now_v7(),
            account_id,
            kind: "payment",
            method: Some(method),
            amount_minor: amount,
            reference,
            reason: String::new(),
            invoice_id: None,
            complaint_id: None,
            work_order_id: None,
        };
        let (allocations, credit) = posting::receive_payment(&mut tx, &account, &fund, None, &who.sub).await?;
        // BIL-8: a cashier takes payments in their open shift.
        if who.has(crm_domain::Role::Cashier)
            && !who.has_any(&[crm_domain::Role::Finance, crm_domain::Role::Admin, crm_domain::Role::System])
        {
            let shift = store::open_shift_of(&mut tx, &who.sub)
                .await?
                .ok_or_else(|| RuleViolation::new("NO_OPEN_SHIFT", "open a cash-desk shift before taking payments"))?;
            store::set_fund_shift(&mut tx, fund.id, shift.id).await?;
        }
        let resp = pb::RecordPaymentResponse {
            payment_id: fund.id.to_string(),
            allocations: allocations.iter().map(convert::allocation).collect(),
            credit: Some(convert::money(credit, &account.currency)),
            account: Some(convert::account(&reload_account(&mut tx, account_id).await?)),
        };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn refund_credit(&self, who: &Caller, req: pb::RefundCreditRequest) -> Result<pb::RefundCreditResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RefundCredit", who, &req.request_id, &req)?;
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let reason = convert::reason("reason", &req.reason)?;
        let mut tx = open_or_replay!(self, call);
        let account = account_locked(&mut tx, account_id).await?;
        let mut v = Violations::default();
        let amount = convert::positive_amount(&mut v, "amount", req.amount.as_ref(), &account.currency);
        v.finish()?;
        let amount = amount.ok_or_else(|| Error::Corrupt("validated amount missing".into()))?;
        if account.status == AccountStatus::Closed {
            return Err(RuleViolation::new("ACCOUNT_CLOSED", "the account is closed").into());
        }
        let funds = store::open_funds(&mut tx, account_id, true).await?;
        let available: i64 = funds.iter().map(|f| f.1).sum();
        if amount > available {
            return Err(RuleViolation::new(
                "INSUFFICIENT_CREDIT",
                format!("only {available} (minor units) of credit is available"),
            )
            .into());
        }
        let mut left = amount;
        for (fund, free) in funds {
            if left == 0 {
                break;
            }
            let take = free.min(left);
            store::take_from_fund(&mut tx, fund, take).await?;
            left -= take;
        }
        store::post(&mut tx, account_id, EntryKind::Refund, amount, &format!("refund: {reason}"), None, None, &who.sub)
            .await?;
        posting::report_if_cleared(&mut tx, &account, crm_platform::proto_time::now()).await?;
        let resp =
            pb::RefundCreditResponse { account: Some(convert::account(&reload_account(&mut tx, account_id).await?)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn credit_note(&self, who: &Caller, req: pb::IssueCreditNoteRequest) -> Result<pb::IssueCreditNoteResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "IssueCreditNote", who, &req.request_id, &req)?;
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let reason = convert::reason("reason", &req.reason)?;
        let invoice =
            if req.invoice_id.trim().is_empty() { None } else { Some(convert::uuid("invoice_id", &req.invoice_id)?) };
        let complaint = if req.complaint_id.trim().is_empty() {
            None
        } else {
            Some(convert::uuid("complaint_id", &req.complaint_id)?)
        };
        if invoice.is_some() && complaint.is_some() {
            return Err(
                invalid_argument("complaint_id", "a credit note settles an invoice or a complaint, not both").into()
            );
        }
        let mut tx = open_or_replay!(self, call);
        let account = account_locked(&mut tx, account_id).await?;
        let mut v = Violations::default();
        let amount = convert::positive_amount(&mut v, "amount", req.amount.as_ref(), &account.currency);
        v.finish()?;
        let amount = amount.ok_or_else(|| Error::Corrupt("validated amount missing".into()))?;
        let fund = Fund {
            id: Uuid::now_v7(),
            account_id,
            kind: "credit_note",
            method: None,
            amount_minor: amount,
            reference: String::new(),
            reason,
            invoice_id: invoice,
            complaint_id: complaint,
            work_order_id: None,
        };
        let allocations = posting::issue_credit_note(&mut tx, &account, &fund, &who.sub).await?;
        let resp = pb::IssueCreditNoteResponse {
            credit_note_id: fund.id.to_string(),
            allocations: allocations.iter().map(convert::allocation).collect(),
            account: Some(convert::account(&reload_account(&mut tx, account_id).await?)),
        };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    async fn statement(&self, _who: &Caller, req: pb::GetStatementRequest) -> Result<pb::GetStatementResponse> {
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let mut v = Violations::default();
        let from = convert::time(&mut v, "start_time", req.start_time.as_ref());
        let to = convert::time(&mut v, "end_time", req.end_time.as_ref());
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            v.add("end_time", "must be after start_time");
        }
        v.finish()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(Error::Corrupt("validated period incomplete".into()));
        };
        let mut conn = self.pool.acquire().await?;
        let account = store::load_account(&mut conn, account_id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "account", id: account_id.to_string() })?;
        let (opening, entries) = store::statement(&mut conn, account_id, from, to).await?;
        let mut running = opening;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            running += e.amount_minor;
            out.push(pb::LedgerEntry {
                id: e.id,
                kind: crate::model::EntryKind::from_db(&e.kind).map(convert::entry_kind_pb).unwrap_or_default(),
                amount: Some(convert::money(e.amount_minor, &account.currency)),
                description: e.description,
                occur_time: Some(crm_platform::proto_time::to_proto(e.occurred_at)),
                running_balance: Some(convert::money(running, &account.currency)),
            });
        }
        Ok(pb::GetStatementResponse {
            opening_balance: Some(convert::money(opening, &account.currency)),
            entries: out,
            closing_balance: Some(convert::money(running, &account.currency)),
        })
    }

    async fn overdue(&self, _who: &Caller, req: pb::ListOverdueRequest) -> Result<pb::ListOverdueResponse> {
        let as_of = match &req.as_of {
            Some(_) => {
                let mut v = Violations::default();
                let d = convert::date(&mut v, "as_of", req.as_of.as_ref());
                v.finish()?;
                d.ok_or_else(|| Error::Corrupt("validated date missing".into()))?
            }
            None => self.calendar.local_date(Utc::now()),
        };
        let mut conn = self.pool.acquire().await?;
        let rows = store::overdue(&mut conn, as_of).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let steps = store::last_dunning_steps(&mut conn, &ids).await?;
        let labels = ["0-30", "31-60", "61-90", ">90"];
        let mut buckets: Vec<(i64, i64)> = vec![(0, 0); 4];
        let bucket = |days: i32| match days {
            ..=30 => 0,
            31..=60 => 1,
            61..=90 => 2,
            _ => 3,
        };
        for r in &rows {
            let b = &mut buckets[bucket(r.days_overdue)];
            b.0 += 1;
            b.1 += r.outstanding_minor;
        }
        let currency = rows.first().map_or_else(|| "CNY".to_string(), |r| r.currency.clone());
        Ok(pb::ListOverdueResponse {
            invoices: rows
                .iter()
                .map(|r| pb::OverdueInvoice {
                    invoice_id: r.id.to_string(),
                    number: r.number.clone().unwrap_or_default(),
                    account_id: r.account_id.to_string(),
                    due_date: Some(convert::date_pb(r.due_on)),
                    days_overdue: r.days_overdue,
                    outstanding: Some(convert::money(r.outstanding_minor, &r.currency)),
                    dunning_step: steps.iter().find(|(id, _)| *id == r.id).map(|(_, s)| s.clone()).unwrap_or_default(),
                })
                .collect(),
            buckets: labels
                .iter()
                .zip(buckets)
                .map(|(l, (n, amount))| pb::AgeingBucket {
                    label: (*l).to_string(),
                    invoices: n,
                    outstanding: Some(convert::money(amount, &currency)),
                })
                .collect(),
        })
    }
}

macro_rules! rpc {
    ($($name:ident($req:ty) -> $resp:ty => $inner:ident;)+) => {
        #[tonic::async_trait]
        impl BillingService for BillingApi {
            async fn record_meter_readings(
                &self,
                request: Request<tonic::Streaming<pb::RecordMeterReadingsRequest>>,
            ) -> std::result::Result<Response<pb::RecordMeterReadingsResponse>, Status> {
                let caller = Caller::of(&request)?;
                let mut stream = request.into_inner();
                Ok(Response::new(self.record_readings(&caller, &mut stream).await?))
            }
            $(
                async fn $name(&self, request: Request<$req>) -> std::result::Result<Response<$resp>, Status> {
                    let caller = Caller::of(&request)?;
                    Ok(Response::new(self.$inner(&caller, request.into_inner()).await?))
                }
            )+
        }
    };
}

rpc! {
    open_account(pb::OpenAccountRequest) -> pb::OpenAccountResponse => open_account;
    get_account(pb::GetAccountRequest) -> pb::GetAccountResponse => get_account;
    suspend_account(pb::SuspendAccountRequest) -> pb::SuspendAccountResponse => suspend;
    reactivate_account(pb::ReactivateAccountRequest) -> pb::ReactivateAccountResponse => reactivate;
    close_account(pb::CloseAccountRequest) -> pb::CloseAccountResponse => close;
    create_tariff(pb::CreateTariffRequest) -> pb::CreateTariffResponse => create_tariff;
    list_tariffs(pb::ListTariffsRequest) -> pb::ListTariffsResponse => list_tariffs;
    quote_usage(pb::QuoteUsageRequest) -> pb::QuoteUsageResponse => quote_usage;
    set_catalogue_item(pb::SetCatalogueItemRequest) -> pb::SetCatalogueItemResponse => set_item;
    list_catalogue_items(pb::ListCatalogueItemsRequest) -> pb::ListCatalogueItemsResponse => list_items;
    create_invoice(pb::CreateInvoiceRequest) -> pb::CreateInvoiceResponse => create_invoice;
    issue_invoice(pb::IssueInvoiceRequest) -> pb::IssueInvoiceResponse => issue_invoice;
    void_invoice(pb::VoidInvoiceRequest) -> pb::VoidInvoiceResponse => void_invoice;
    get_invoice(pb::GetInvoiceRequest) -> pb::GetInvoiceResponse => get_invoice;
    list_invoices(pb::ListInvoicesRequest) -> pb::ListInvoicesResponse => list_invoices;
    record_payment(pb::RecordPaymentRequest) -> pb::RecordPaymentResponse => record_payment;
    refund_credit(pb::RefundCreditRequest) -> pb::RefundCreditResponse => refund_credit;
    issue_credit_note(pb::IssueCreditNoteRequest) -> pb::IssueCreditNoteResponse => credit_note;
    get_statement(pb::GetStatementRequest) -> pb::GetStatementResponse => statement;
    list_overdue(pb::ListOverdueRequest) -> pb::ListOverdueResponse => overdue;
    open_shift(pb::OpenShiftRequest) -> pb::OpenShiftResponse => open_shift;
    close_shift(pb::CloseShiftRequest) -> pb::CloseShiftResponse => close_shift;
    hand_over_shift(pb::HandOverShiftRequest) -> pb::HandOverShiftResponse => hand_over_shift;
    get_shift(pb::GetShiftRequest) -> pb::GetShiftResponse => get_shift;
    get_current_shift(pb::GetCurrentShiftRequest) -> pb::GetCurrentShiftResponse => get_current_shift;
    get_daily_summary(pb::GetDailySummaryRequest) -> pb::GetDailySummaryResponse => daily_summary;
    run_billing(pb::RunBillingRequest) -> pb::RunBillingResponse => run_billing;
}
