//! BIL-8 cash desk RPCs: shifts and the daily summary.

use std::collections::BTreeMap;

use chrono::Utc;
use crm_domain::{Role, text};
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::billing::v1 as pb;
use uuid::Uuid;

use super::{BillingApi, Caller, check_etag, convert};
use crate::{
    error::{Error, Result},
    model::{PaymentMethod, RuleViolation, etag},
    store::{self, IDEMPOTENCY_TABLE, Shift},
};

fn method_amounts(pairs: &[(String, i64)], currency: &str) -> Vec<pb::MethodAmount> {
    pairs
        .iter()
        .filter_map(|(m, a)| {
            PaymentMethod::from_db(m).map(|m| pb::MethodAmount {
                method: convert::payment_method_pb(m),
                amount: Some(convert::money(*a, currency)),
            })
        })
        .collect()
}

impl BillingApi {
    /// A shift as its cashier (or finance) sees it.
    async fn shift_view(&self, conn: &mut sqlx::PgConnection, s: &Shift) -> Result<pb::Shift> {
        let counts = store::shift_counts(conn, s.id).await?;
        let status = match s.status.as_str() {
            "open" => pb::ShiftStatus::Open,
            "closed" => pb::ShiftStatus::Closed,
            _ => pb::ShiftStatus::HandedOver,
        };
        let pick = |f: fn(&(String, i64, i64)) -> i64| -> Vec<(String, i64)> {
            counts.iter().map(|c| (c.0.clone(), f(c))).collect()
        };
        Ok(pb::Shift {
            id: s.id.to_string(),
            cashier_id: s.cashier_id.clone(),
            status: status as i32,
            float: Some(convert::money(s.float_minor, &s.currency)),
            open_time: Some(crm_platform::proto_time::to_proto(s.opened_at)),
            close_time: s.closed_at.map(crm_platform::proto_time::to_proto),
            expected: method_amounts(&pick(|c| c.1), &s.currency),
            counted: method_amounts(&pick(|c| c.2), &s.currency),
            differences: method_amounts(&pick(|c| c.2 - c.1), &s.currency),
            handed_over_to: s.handed_over_to.clone().unwrap_or_default(),
            hand_over_time: s.handed_over_at.map(crm_platform::proto_time::to_proto),
            hand_over_note: s.hand_over_note.clone(),
            etag: etag(s.version),
        })
    }

    /// The caller's own shift, locked; another cashier's does not exist for them.
    async fn own_shift(
        &self,
        conn: &mut sqlx::PgConnection,
        who: &Caller,
        id: &str,
        given_etag: &str,
    ) -> Result<Shift> {
        let id = convert::uuid("shift_id", id)?;
        let s = store::load_shift(conn, id, true)
            .await?
            .filter(|s| s.cashier_id == who.sub)
            .ok_or_else(|| Error::NotFound { resource: "shift", id: id.to_string() })?;
        check_etag(s.version, given_etag)?;
        Ok(s)
    }

    pub(super) async fn open_shift(&self, who: &Caller, req: pb::OpenShiftRequest) -> Result<pb::OpenShiftResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "OpenShift", who, &req.request_id, &req)?;
        let float =
            req.float.clone().unwrap_or(crm_proto::common::v1::Money { amount_minor: 0, currency_code: "CNY".into() });
        let mut v = Violations::default();
        let currency = v.check(
            "float.currency_code",
            crm_domain::Currency::parse(&float.currency_code)
                .map(|c| c.code().to_string())
                .map_err(|e| crm_domain::Invalid::new(e.to_string())),
        );
        if float.amount_minor < 0 {
            v.add("float.amount_minor", "must not be negative");
        }
        let currency = v.finish_with(currency)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        if let Some(open) = store::open_shift_of(&mut tx, &who.sub).await? {
            return Err(Error::ShiftAlreadyOpen { shift_id: Some(open.id.to_string()) });
        }
        let id = Uuid::now_v7();
        if let Err(e) = store::open_shift(&mut tx, id, &who.sub, &currency, float.amount_minor).await {
            drop(tx);
            return Err(match e {
                // A concurrent open won the race: name its shift.
                Error::ShiftAlreadyOpen { shift_id: None } => match self.current_shift(&who.sub).await {
                    Ok(Some(open)) => Error::ShiftAlreadyOpen { shift_id: Some(open.id.to_string()) },
                    _ => Error::ShiftAlreadyOpen { shift_id: None },
                },
                e => e,
            });
        }
        let s = store::load_shift(&mut tx, id, false).await?.ok_or_else(|| Error::Corrupt("shift vanished".into()))?;
        let resp = pb::OpenShiftResponse { shift: Some(self.shift_view(&mut tx, &s).await?) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn close_shift(&self, who: &Caller, req: pb::CloseShiftRequest) -> Result<pb::CloseShiftResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CloseShift", who, &req.request_id, &req)?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let s = self.own_shift(&mut tx, who, &req.shift_id, &req.etag).await?;
        if s.status != "open" {
            return Err(RuleViolation::new("SHIFT_NOT_OPEN", "the shift is already closed").into());
        }
        let mut v = Violations::default();
        let mut counted: BTreeMap<String, i64> = BTreeMap::new();
        for (i, c) in req.counted.iter().enumerate() {
            let at = |f: &str| format!("counted[{i}].{f}");
            let method = v.check(&at("method"), convert::required(convert::payment_method(c.method)));
            let amount = match &c.amount {
                Some(m) if m.currency_code == s.currency && m.amount_minor >= 0 => Some(m.amount_minor),
                Some(_) => {
                    v.add(&at("amount"), format!("must be a non-negative amount in {}", s.currency));
                    None
                }
                None => {
                    v.add(&at("amount"), "is required");
                    None
                }
            };
            if let (Some(m), Some(a)) = (method, amount)
                && counted.insert(m.as_str().to_string(), a).is_some()
            {
                v.add(&at("method"), "is listed twice");
            }
        }
        v.finish()?;
        // Expected: what was taken per method, plus the float in the cash drawer.
        let mut expected: BTreeMap<String, i64> = store::shift_takings(&mut tx, s.id).await?.into_iter().collect();
        *expected.entry("cash".into()).or_default() += s.float_minor;
        let methods: std::collections::BTreeSet<String> = expected.keys().chain(counted.keys()).cloned().collect();
        let counts: Vec<(String, i64, i64)> = methods
            .into_iter()
            .map(|m| {
                let e = expected.get(&m).copied().unwrap_or(0);
                let c = counted.get(&m).copied().unwrap_or(0);
                (m, e, c)
            })
            .collect();
        store::close_shift(&mut tx, s.id, &counts).await?;
        let s =
            store::load_shift(&mut tx, s.id, false).await?.ok_or_else(|| Error::Corrupt("shift vanished".into()))?;
        let resp = pb::CloseShiftResponse { shift: Some(self.shift_view(&mut tx, &s).await?) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn hand_over_shift(
        &self,
        who: &Caller,
        req: pb::HandOverShiftRequest,
    ) -> Result<pb::HandOverShiftResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "HandOverShift", who, &req.request_id, &req)?;
        let to = text::required(&req.to_cashier_id, 100).map_err(|e| invalid_argument("to_cashier_id", e.reason))?;
        let note = text::optional(&req.note, 1000).map_err(|e| invalid_argument("note", e.reason))?;
        if to == who.sub {
            return Err(invalid_argument("to_cashier_id", "hand over to another cashier").into());
        }
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let s = self.own_shift(&mut tx, who, &req.shift_id, &req.etag).await?;
        if s.status != "closed" {
            return Err(RuleViolation::new("SHIFT_NOT_CLOSED", "close and count the shift before handing over").into());
        }
        store::hand_over(&mut tx, s.id, &to, &note).await?;
        let s =
            store::load_shift(&mut tx, s.id, false).await?.ok_or_else(|| Error::Corrupt("shift vanished".into()))?;
        let resp = pb::HandOverShiftResponse { shift: Some(self.shift_view(&mut tx, &s).await?) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn get_shift(&self, who: &Caller, req: pb::GetShiftRequest) -> Result<pb::GetShiftResponse> {
        let id = convert::uuid("shift_id", &req.shift_id)?;
        let mut conn = self.pool.acquire().await?;
        let all = who.has_any(&[Role::Finance, Role::Admin, Role::Auditor]);
        let s = store::load_shift(&mut conn, id, false)
            .await?
            .filter(|s| all || s.cashier_id == who.sub)
            .ok_or_else(|| Error::NotFound { resource: "shift", id: id.to_string() })?;
        Ok(pb::GetShiftResponse { shift: Some(self.shift_view(&mut conn, &s).await?) })
    }

    /// BIL-8: the calling cashier's open shift, for a till that lost its id.
    pub(super) async fn get_current_shift(
        &self,
        who: &Caller,
        _req: pb::GetCurrentShiftRequest,
    ) -> Result<pb::GetCurrentShiftResponse> {
        let s = self
            .current_shift(&who.sub)
            .await?
            .ok_or_else(|| Error::NotFound { resource: "open shift of", id: who.sub.clone() })?;
        let mut conn = self.pool.acquire().await?;
        Ok(pb::GetCurrentShiftResponse { shift: Some(self.shift_view(&mut conn, &s).await?) })
    }

    async fn current_shift(&self, cashier: &str) -> Result<Option<store::Shift>> {
        let mut conn = self.pool.acquire().await?;
        store::current_shift_of(&mut conn, cashier).await
    }

    pub(super) async fn get_daily_summary(
        &self,
        _who: &Caller,
        req: pb::GetDailySummaryRequest,
    ) -> Result<pb::GetDailySummaryResponse> {
        let day = match &req.day {
            Some(_) => {
                let mut v = Violations::default();
                let d = convert::date(&mut v, "day", req.day.as_ref());
                v.finish_with(d)?
            }
            None => self.calendar.local_date(Utc::now()),
        };
        let from = self.calendar.start_of_day(day);
        let to = self.calendar.start_of_day(day.succ_opt().unwrap_or(day));
        let mut conn = self.pool.acquire().await?;
        let (count, total, litres) = store::invoiced_between(&mut conn, from, to).await?;
        let taken = store::taken_between(&mut conn, from, to).await?;
        Ok(pb::GetDailySummaryResponse {
            invoices_issued: count,
            invoiced: Some(convert::money(total, "CNY")),
            volume_litres: litres,
            taken: method_amounts(&taken, "CNY"),
        })
    }
}
