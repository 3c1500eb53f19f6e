//! BIL-3 usage: bulk meter readings and the billing run.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate, Utc};
use crm_platform::{Violations, idempotency::IdempotentCall};
use crm_proto::billing::v1 as pb;
use tonic::Streaming;
use uuid::Uuid;

use super::{BillingApi, Caller, convert};
use crm_events::{Payload, pb as ev};

use crate::{
    error::{Error, Result},
    model::{
        CustomerClass, RuleViolation,
        usage::{ReadingKind, Segment, Verdict, judge, period_charge},
    },
    store::{self, IDEMPOTENCY_TABLE, NewReading, Tariff, UsageInvoice},
    usecases::posting,
};

/// Readings validated and stored per transaction.
const BATCH: usize = 10_000;

/// Rejections reported in full; beyond it they are only counted, so what a
/// stream of millions of bad readings keeps in memory stays bounded.
const MAX_REJECTIONS_REPORTED: usize = 1_000;

struct Tally {
    accepted: i64,
    duplicates: i64,
    rejected_count: i64,
    /// Of the batch being checked; moved to `reported` (up to the limit) in
    /// stream order once the batch is done.
    rejected: Vec<pb::RejectedReading>,
    reported: Vec<pb::RejectedReading>,
}

impl Tally {
    /// Reports the batch's rejections in stream order, up to the limit.
    fn close_batch(&mut self) {
        self.rejected.sort_by_key(|r| r.index);
        let room = MAX_REJECTIONS_REPORTED.saturating_sub(self.reported.len());
        self.reported.extend(self.rejected.drain(..).take(room));
    }
}

fn reject(t: &mut Tally, index: i64, meter: &str, reason: &str, message: impl Into<String>) {
    t.rejected_count += 1;
    if t.reported.len() >= MAX_REJECTIONS_REPORTED {
        return;
    }
    t.rejected.push(pb::RejectedReading {
        index,
        meter_id: meter.to_string(),
        reason: reason.into(),
        message: message.into(),
    });
}

/// A reading as received, parsed; `Err` is the rejection message.
fn parse(r: &pb::MeterReading) -> std::result::Result<(Uuid, String, NaiveDate, i64, ReadingKind), String> {
    let account = Uuid::try_parse(r.account_id.trim()).map_err(|_| "account_id must be a UUID".to_string())?;
    let meter = r.meter_id.trim();
    if meter.is_empty() || meter.len() > 64 {
        return Err("meter_id must be 1 to 64 characters".into());
    }
    let mut v = Violations::default();
    let day =
        convert::date(&mut v, "read_on", r.read_on.as_ref()).ok_or_else(|| "read_on is not a date".to_string())?;
    if r.reading_litres < 0 {
        return Err("reading_litres must not be negative".into());
    }
    let kind = match pb::ReadingKind::try_from(r.kind) {
        Ok(pb::ReadingKind::Normal) => ReadingKind::Normal,
        Ok(pb::ReadingKind::Replacement) if r.old_meter_final_litres >= 0 => {
            ReadingKind::Replacement { old_meter_final: r.old_meter_final_litres }
        }
        Ok(pb::ReadingKind::Rollover) if r.meter_max_litres > 0 => {
            ReadingKind::Rollover { meter_max: r.meter_max_litres }
        }
        Ok(pb::ReadingKind::Replacement) => return Err("old_meter_final_litres must not be negative".into()),
        Ok(pb::ReadingKind::Rollover) => return Err("meter_max_litres is required for a roll-over".into()),
        _ => return Err("kind is required".into()),
    };
    Ok((account, meter.to_string(), day, r.reading_litres, kind))
}

/// The days of `(start, end]` each tariff version of `class` was in force.
fn segments<'a>(
    tariffs: &'a [Tariff],
    class: CustomerClass,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<Segment<'a>>> {
    let mut versions: Vec<&Tariff> = tariffs.iter().filter(|t| t.customer_class == class).collect();
    versions.sort_by_key(|t| t.effective_from);
    let mut out: Vec<(i64, &Tariff)> = Vec::new();
    let mut day = start.succ_opt().unwrap_or(start);
    while day <= end {
        let t = versions.iter().rev().find(|t| t.effective_from <= day).ok_or_else(|| {
            RuleViolation::new("NO_TARIFF", format!("no {} tariff is in force on {day}", class.as_str()))
        })?;
        match out.last_mut() {
            Some((days, last)) if last.id == t.id => *days += 1,
            _ => out.push((1, t)),
        }
        day = day.succ_opt().unwrap_or(end + chrono::Days::new(1));
    }
    Ok(out.into_iter().map(|(days, t)| Segment { days, blocks: &t.blocks, vat_rate_bp: t.vat_rate_bp }).collect())
}

impl BillingApi {
    pub(super) async fn record_readings(
        &self,
        _who: &Caller,
        stream: &mut Streaming<pb::RecordMeterReadingsRequest>,
    ) -> Result<pb::RecordMeterReadingsResponse> {
        let mut tally =
            Tally { accepted: 0, duplicates: 0, rejected_count: 0, rejected: Vec::new(), reported: Vec::new() };
        let mut batch: Vec<(i64, pb::MeterReading)> = Vec::with_capacity(BATCH);
        let mut index: i64 = 0;
        while let Some(msg) = stream.message().await? {
            for r in msg.readings {
                batch.push((index, r));
                index += 1;
                if batch.len() >= BATCH {
                    self.store_batch(std::mem::take(&mut batch), &mut tally).await?;
                    tally.close_batch();
                }
            }
        }
        self.store_batch(batch, &mut tally).await?;
        tally.close_batch();
        Ok(pb::RecordMeterReadingsResponse {
            accepted: tally.accepted,
            duplicates: tally.duplicates,
            rejected: tally.reported,
            rejected_count: tally.rejected_count,
        })
    }

    /// Validates a batch against what is recorded (meters in date order,
    /// readings never going back except by replacement or roll-over) and
    /// stores the good ones in one statement.
    async fn store_batch(&self, batch: Vec<(i64, pb::MeterReading)>, t: &mut Tally) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut parsed = Vec::with_capacity(batch.len());
        for (i, r) in &batch {
            match parse(r) {
                Ok(p) => parsed.push((*i, p)),
                Err(m) => reject(t, *i, &r.meter_id, "INVALID", m),
            }
        }
        let mut tx = self.pool.begin().await?;
        let accounts: Vec<Uuid> = parsed.iter().map(|(_, p)| p.0).collect::<HashSet<_>>().into_iter().collect();
        let known: HashSet<Uuid> = store::existing_accounts(&mut tx, &accounts).await?.into_iter().collect();
        let meters: Vec<String> = parsed.iter().map(|(_, p)| p.1.clone()).collect::<HashSet<_>>().into_iter().collect();
        let mut last: HashMap<String, (NaiveDate, i64)> =
            store::latest_readings(&mut tx, &meters).await?.into_iter().map(|(m, d, l)| (m, (d, l))).collect();
        // Readings dated on or before a meter's latest are either already
        // recorded (duplicates: a resent stream) or out of order.
        let (old_meters, old_days): (Vec<String>, Vec<NaiveDate>) = parsed
            .iter()
            .filter(|(_, p)| last.get(&p.1).is_some_and(|(d, _)| p.2 <= *d))
            .map(|(_, p)| (p.1.clone(), p.2))
            .unzip();
        let seen: HashSet<(String, NaiveDate)> =
            store::recorded(&mut tx, &old_meters, &old_days).await?.into_iter().collect();
        parsed.sort_by(|a, b| (&a.1.1, a.1.2).cmp(&(&b.1.1, b.1.2)));
        let mut rows = Vec::with_capacity(parsed.len());
        for (i, (account, meter, day, litres, kind)) in parsed {
            if !known.contains(&account) {
                reject(t, i, &meter, "UNKNOWN_ACCOUNT", format!("no billing account {account}"));
                continue;
            }
            let previous = last.get(&meter).copied();
            match judge(previous, seen.contains(&(meter.clone(), day)), day, litres, kind) {
                Verdict::Accept => {}
                Verdict::Duplicate => {
                    t.duplicates += 1;
                    continue;
                }
                Verdict::Reject { reason, message } => {
                    reject(t, i, &meter, reason, message);
                    continue;
                }
            }
            last.insert(meter.clone(), (day, litres));
            rows.push(NewReading::of(meter, day, account, litres, kind));
        }
        let inserted = i64::try_from(store::insert_readings(&mut tx, &rows).await?).unwrap_or(0);
        tx.commit().await?;
        t.accepted += inserted;
        t.duplicates += i64::try_from(rows.len()).unwrap_or(0) - inserted;
        Ok(())
    }

    pub(super) async fn run_billing(&self, who: &Caller, req: pb::RunBillingRequest) -> Result<pb::RunBillingResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "RunBilling", who, &req.request_id, &req)?;
        let mut v = Violations::default();
        let start = convert::date(&mut v, "period_start", req.period_start.as_ref());
        let end = convert::date(&mut v, "period_end", req.period_end.as_ref());
        if let (Some(s), Some(e)) = (start, end)
            && (e <= s || (e - s).num_days() > 366)
        {
            v.add("period_end", "must be after period_start, at most 366 days later");
        }
        let (start, end) = v.finish_with((start, end))?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let resp = bill_period(&mut tx, &self.calendar, start, end, &who.sub).await?;
        call.commit(tx, &resp).await?;
        Ok(resp)
    }
}

/// The billing run of `(start, end]` inside the caller's transaction (postpaid
/// accounts, suspended ones too: consumption is owed either way): one
/// consumption query for every account, charges computed in memory, then
/// bulk writes. Runs of the same period are serialized by an advisory lock,
/// and accounts already billed for the period are skipped.
pub async fn bill_period(
    conn: &mut sqlx::PgConnection,
    calendar: &crm_domain::WorkingCalendar,
    start: NaiveDate,
    end: NaiveDate,
    by: &str,
) -> Result<pb::RunBillingResponse> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('billing.run'))").execute(&mut *conn).await?;
    let usage = store::period_usage(conn, start, end).await?;
    let skipped = i64::try_from(usage.iter().filter(|u| u.billed).count()).unwrap_or(0);
    let tariffs = store::list_tariffs(conn, None).await?;
    let mut by_class: HashMap<String, Vec<Segment<'_>>> = HashMap::new();
    let now = Utc::now();
    let today = calendar.local_date(now);
    let mut pending = Vec::new();
    for u in usage.iter().filter(|u| !u.billed) {
        if !by_class.contains_key(&u.customer_class) {
            let class = CustomerClass::from_db(&u.customer_class)
                .ok_or_else(|| Error::Corrupt(format!("unknown class {}", u.customer_class)))?;
            by_class.insert(u.customer_class.clone(), segments(&tariffs, class, start, end)?);
        }
        let segs = by_class.get(&u.customer_class).map(Vec::as_slice).unwrap_or(&[]);
        let (net, vat, _) = period_charge(segs, u.volume_litres.max(0))?;
        pending.push((u, net, vat));
    }
    let n = i64::try_from(pending.len()).unwrap_or(0);
    let first = if n > 0 { store::reserve_numbers(conn, "USG", today.year(), n).await? } else { 0 };
    let invoices: Vec<UsageInvoice> = pending
        .iter()
        .enumerate()
        .map(|(k, (u, net, vat))| UsageInvoice {
            id: Uuid::now_v7(),
            account_id: u.account_id,
            number: format!("USG-{}-{:06}", today.year(), first + i64::try_from(k).unwrap_or(0)),
            currency: u.currency.clone(),
            net_minor: *net,
            vat_minor: *vat,
            volume_litres: u.volume_litres,
            description: format!("usage {start}..{end}: {:.3} m³", u.volume_litres as f64 / 1000.0),
        })
        .collect();
    let due_on = today.checked_add_days(chrono::Days::new(15)).unwrap_or(today);
    store::insert_usage_invoices(conn, &invoices, start, end, due_on, now, by).await?;
    let customers: HashMap<Uuid, Uuid> = usage.iter().map(|u| (u.account_id, u.customer_id)).collect();
    // Accounts holding credit pay the new invoice from it at once.
    let accounts: Vec<Uuid> = invoices.iter().map(|i| i.account_id).collect();
    for account in store::accounts_with_credit(conn, &accounts).await? {
        let Some(inv) = invoices.iter().find(|i| i.account_id == account) else { continue };
        let mut invoice = store::load_invoice(conn, inv.id, true)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("invoice {} vanished", inv.id)))?;
        for (fund, available) in store::open_funds(conn, account, false).await? {
            let outstanding = invoice.total_minor - invoice.paid_minor;
            if outstanding == 0 {
                break;
            }
            let take = available.min(outstanding);
            store::allocate(conn, fund, invoice.id, take).await?;
            invoice.paid_minor += take;
            invoice.status = invoice.status.transition(crate::model::states::InvoiceEvent::Settle {
                paid_minor: invoice.paid_minor,
                total_minor: invoice.total_minor,
            })?;
            store::save_invoice(conn, &invoice).await?;
        }
        if invoice.total_minor != 0
            && let Some(customer) = customers.get(&account)
        {
            posting::report_if_cleared_by_id(conn, account, *customer, now).await?;
        }
    }
    // invoice.issued for each, in this transaction.
    let issued = invoices
        .iter()
        .map(|i| {
            let customer = customers.get(&i.account_id);
            (
                i.id,
                Payload::InvoiceIssued(ev::InvoiceIssued {
                    invoice_id: i.id.to_string(),
                    number: i.number.clone(),
                    account_id: i.account_id.to_string(),
                    customer_id: customer.map(|c| c.to_string()).unwrap_or_default(),
                    total: Some(posting::money(i.net_minor + i.vat_minor, &i.currency)),
                    work_order_id: String::new(),
                }),
            )
        })
        .collect();
    crm_events::emit_many(conn, posting::SOURCE, now, issued).await?;
    let total: i64 = invoices.iter().map(|i| i.net_minor + i.vat_minor).sum();
    Ok(pb::RunBillingResponse {
        accounts_billed: n,
        accounts_skipped: skipped,
        invoices_issued: n,
        invoiced: Some(convert::money(total, "CNY")),
    })
}
