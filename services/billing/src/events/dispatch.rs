//! From dispatch: work_order.completed → an invoice and the on-site
//! payment (DSP-6), meter.read → a usage reading (DSP-7, BIL-3).

use crm_domain::WorkingCalendar;
use crm_events::{ApplyError, ApplyFuture, Handler, Payload, consumer::read, pb};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{actor, amount, poison};
use crate::{
    model::{
        AccountStatus, InvoiceStatus, PaymentMethod,
        field_work::{self, PartUsed},
        usage::{ReadingKind, Verdict, judge},
    },
    store::{self, Fund, Invoice, NewReading},
    usecases::posting,
};

/// The numbering series of invoices for parts and services.
const SERIES: &str = "SVC";
/// Days after issue a work order's invoice is due (as CreateInvoice's default).
const DUE_IN_DAYS: i32 = 15;

pub struct Dispatch {
    /// The business calendar: a reading's date is its local date.
    pub calendar: WorkingCalendar,
}

impl Handler for Dispatch {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            match &event.payload {
                Some(Payload::WorkOrderCompleted(e)) => self.invoice_work_order(conn, e).await,
                Some(Payload::MeterRead(e)) => self.record_reading(conn, e).await,
                // CUS-11: dispatch's part of a termination is done; its list of
                // billable work is what billing waits for before closing.
                Some(Payload::TerminationStepReported(e)) if e.participant == "dispatch" => {
                    let saga = read::id("saga_id", &e.saga_id)?;
                    let customer = read::id("customer_id", &e.customer_id)?;
                    let billable = e
                        .billable_work_order_ids
                        .iter()
                        .map(|w| read::id("billable_work_order_ids", w))
                        .collect::<Result<Vec<_>, _>>()?;
                    crate::usecases::termination::dispatch_reported(conn, saga, customer, &billable)
                        .await
                        .map_err(ApplyError::of)
                }
                _ => Err(read::wrong(event)),
            }
        })
    }
}

impl Dispatch {
    /// X-2 "completed paid work → invoice": out of warranty with an amount
    /// due, one issued invoice (lines from `model::field_work`, total =
    /// amount_due) on the customer's account, marked with the work order so
    /// it is invoiced at most once; money collected on site is an on-site
    /// payment in the same transaction, paying that invoice first. A
    /// suspended account is still invoiced — the work is done and owed, as
    /// the billing run bills suspended accounts — a closed one is refused.
    async fn invoice_work_order(&self, conn: &mut PgConnection, e: &pb::WorkOrderCompleted) -> Result<(), ApplyError> {
        let work_order = read::id("work_order_id", &e.work_order_id)?;
        let customer = read::id("customer_id", &e.customer_id)?;
        let due_given = e.amount_due.as_ref().map_or(0, |m| m.amount_minor);
        let collected_given = e.collected_on_site.as_ref().map_or(0, |m| m.amount_minor);
        if due_given == 0 && collected_given == 0 {
            // DSP-6: in warranty (or nothing charged) — nothing to bill.
            return Ok(());
        }
        if e.in_warranty && due_given > 0 {
            return Err(poison(format!("work order {work_order} is in warranty but has an amount due")));
        }
        if let Some(invoice) = store::invoice_of_work_order(conn, work_order).await.map_err(ApplyError::of)? {
            tracing::info!(%work_order, %invoice, "work order already invoiced");
            return Ok(());
        }
        let account = store::lock_account_of_customer(conn, customer)
            .await
            .map_err(ApplyError::of)?
            .ok_or_else(|| poison(format!("customer {customer} has no billing account to invoice")))?;
        if account.status == AccountStatus::Closed {
            return Err(poison(format!("ACCOUNT_CLOSED: account {} is closed", account.id)));
        }
        let due = amount("amount_due", e.amount_due.as_ref(), &account.currency)?.unwrap_or(0);
        let collected = amount("collected_on_site", e.collected_on_site.as_ref(), &account.currency)?.unwrap_or(0);
        let by = actor("dispatch", if e.completed_by.trim().is_empty() { &e.technician_id } else { &e.completed_by });
        let mut invoice = None;
        if due > 0 {
            let mut parts = Vec::with_capacity(e.parts.len());
            for (i, p) in e.parts.iter().enumerate() {
                let price = amount(&format!("parts[{i}].unit_price"), p.unit_price.as_ref(), &account.currency)?;
                parts.push(PartUsed {
                    code: p.part_code.clone(),
                    name: p.name.clone(),
                    quantity: p.quantity,
                    unit_price_minor: price.unwrap_or(0),
                    vat_rate_bp: p.vat_rate_bp,
                });
            }
            let lines =
                field_work::invoice_lines(&parts, due).map_err(|m| poison(format!("work order {work_order}: {m}")))?;
            let net_minor = lines.iter().map(|l| l.net_minor).sum();
            let vat_minor = lines.iter().map(|l| l.vat_minor).sum();
            let mut inv = Invoice {
                id: Uuid::now_v7(),
                account_id: account.id,
                series: SERIES.to_string(),
                number: None,
                status: InvoiceStatus::Draft,
                currency: account.currency.clone(),
                lines,
                net_minor,
                vat_minor,
                total_minor: due,
                paid_minor: 0,
                due_in_days: DUE_IN_DAYS,
                due_on: None,
                issued_at: None,
                void_reason: None,
                version: 1,
                work_order_id: Some(work_order),
            };
            store::insert_invoice(conn, &inv, &by).await.map_err(ApplyError::of)?;
            posting::issue_invoice(conn, &self.calendar, &account, &mut inv, &by).await.map_err(ApplyError::of)?;
            invoice = Some(inv.id);
        }
        if collected > 0 {
            let fund = Fund {
                id: Uuid::now_v7(),
                account_id: account.id,
                kind: "payment",
                method: Some(PaymentMethod::OnSite),
                amount_minor: collected,
                reference: format!("work order {work_order}"),
                reason: String::new(),
                invoice_id: None,
                complaint_id: None,
                work_order_id: Some(work_order),
            };
            posting::receive_payment(conn, &account, &fund, invoice, &by).await.map_err(ApplyError::of)?;
        }
        Ok(())
    }

    /// X-2 "meter readings → usage charges": the reading of the customer's
    /// account, keyed by dispatch's meter id (stable across a meter
    /// replacement, which the consumption rules need), dated on its local
    /// business day, judged by the same rule as RecordMeterReadings. The same
    /// reading again is a no-op; another value for a recorded day, a
    /// reading out of order or below the previous one is poison.
    async fn record_reading(&self, conn: &mut PgConnection, e: &pb::MeterRead) -> Result<(), ApplyError> {
        let customer = read::id("customer_id", &e.customer_id)?;
        let meter = e.meter_id.trim();
        if meter.is_empty() || meter.len() > 64 {
            return Err(poison("meter_id must be 1 to 64 characters"));
        }
        let read_at = e
            .read_at
            .as_ref()
            .ok_or_else(|| poison("read_at is missing"))
            .and_then(|t| crm_platform::proto_time::from_proto(t).map_err(|i| poison(format!("read_at: {i}"))))?;
        let day = self.calendar.local_date(read_at);
        let litres = e.reading_litres;
        if litres < 0 {
            return Err(poison("reading_litres is negative"));
        }
        let kind = match (e.meter_replaced, e.rolled_over) {
            (true, true) => return Err(poison("a reading is either a replacement or a roll-over, not both")),
            (true, false) if e.old_meter_final_litres >= 0 => {
                ReadingKind::Replacement { old_meter_final: e.old_meter_final_litres }
            }
            (true, false) => return Err(poison("old_meter_final_litres is negative")),
            (false, true) if e.meter_max_litres > 0 => ReadingKind::Rollover { meter_max: e.meter_max_litres },
            (false, true) => return Err(poison("meter_max_litres is required for a roll-over")),
            (false, false) => ReadingKind::Normal,
        };
        let account = store::account_of_customer(conn, customer)
            .await
            .map_err(ApplyError::of)?
            .ok_or_else(|| poison(format!("UNKNOWN_ACCOUNT: customer {customer} has no billing account")))?;
        if let Some(recorded) = store::reading_on(conn, meter, day).await.map_err(ApplyError::of)? {
            if recorded == litres {
                return Ok(());
            }
            return Err(poison(format!(
                "meter {meter} already has a reading of {recorded} L on {day}, not {litres} L"
            )));
        }
        let latest = store::latest_readings(conn, &[meter.to_string()])
            .await
            .map_err(ApplyError::of)?
            .into_iter()
            .next()
            .map(|(_, d, l)| (d, l));
        match judge(latest, false, day, litres, kind) {
            Verdict::Accept | Verdict::Duplicate => {}
            Verdict::Reject { reason, message } => {
                return Err(poison(format!("{reason}: meter {meter} on {day}: {message}")));
            }
        }
        store::insert_readings(conn, &[NewReading::of(meter.to_string(), day, account.id, litres, kind)])
            .await
            .map_err(ApplyError::of)?;
        Ok(())
    }
}
