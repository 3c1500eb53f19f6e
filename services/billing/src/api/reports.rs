//! Reports (BIL-6, BIL-7): an account's statement with running balances,
//! and overdue invoices with their ageing per currency.

use chrono::Utc;
use crm_platform::Violations;
use crm_proto::billing::v1 as pb;
use uuid::Uuid;

use super::{BillingApi, Caller, convert};
use crate::{
    error::{Error, Result},
    model::{EntryKind, ageing},
    store,
};

impl BillingApi {
    pub(super) async fn get_statement(
        &self,
        _who: &Caller,
        req: pb::GetStatementRequest,
    ) -> Result<pb::GetStatementResponse> {
        let account_id = convert::uuid("account_id", &req.account_id)?;
        let mut v = Violations::default();
        let from = convert::time(&mut v, "start_time", req.start_time.as_ref());
        let to = convert::time(&mut v, "end_time", req.end_time.as_ref());
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            v.add("end_time", "must be after start_time");
        }
        let (from, to) = v.finish_with((from, to))?;
        let mut conn = self.pool.acquire().await?;
        let account = store::load_account(&mut conn, account_id, false)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "account", id: account_id.to_string() })?;
        let (opening, entries) = store::statement(&mut conn, account_id, from, to).await?;
        let mut running = opening;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            running = running
                .checked_add(e.amount_minor)
                .ok_or_else(|| Error::Corrupt(format!("account {account_id}: the running balance overflows")))?;
            out.push(pb::LedgerEntry {
                id: e.id,
                kind: EntryKind::from_db(&e.kind).map(convert::entry_kind_pb).unwrap_or_default(),
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

    pub(super) async fn list_overdue(
        &self,
        _who: &Caller,
        req: pb::ListOverdueRequest,
    ) -> Result<pb::ListOverdueResponse> {
        let as_of = match &req.as_of {
            Some(_) => {
                let mut v = Violations::default();
                let d = convert::date(&mut v, "as_of", req.as_of.as_ref());
                v.finish_with(d)?
            }
            None => self.calendar.local_date(Utc::now()),
        };
        let mut conn = self.pool.acquire().await?;
        let rows = store::overdue(&mut conn, as_of).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let steps = store::last_dunning_steps(&mut conn, &ids).await?;
        let buckets = ageing::buckets(rows.iter().map(|r| (r.days_overdue, r.outstanding_minor, r.currency.as_str())))?;
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
            buckets: buckets
                .into_iter()
                .map(|b| pb::AgeingBucket {
                    label: b.label.to_string(),
                    invoices: b.invoices,
                    outstanding: Some(convert::money(b.outstanding_minor, &b.currency)),
                })
                .collect(),
        })
    }
}
