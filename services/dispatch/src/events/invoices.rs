//! invoice.payment_changed: the invoice billing raised for a completed
//! work order, and how much of it is paid, shown on the work order (the
//! technician who collects on site and the dispatcher see it there).

use crm_events::{ApplyError, ApplyFuture, Handler, Payload, consumer::read, pb};
use sqlx::PgConnection;

pub(super) struct InvoicePaymentChanged;

impl Handler for InvoicePaymentChanged {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let Some(Payload::InvoicePaymentChanged(e)) = &event.payload else { return Err(read::wrong(event)) };
            let work_order = read::id("work_order_id", &e.work_order_id)?;
            let invoice = read::id("invoice_id", &e.invoice_id)?;
            let (Some(total), Some(paid)) = (&e.total, &e.paid) else {
                return Err(ApplyError::Poison("total and paid are required".into()));
            };
            if !matches!(e.status.as_str(), "issued" | "partly_paid" | "paid") {
                return Err(ApplyError::Poison(format!("unknown invoice status {:?}", e.status)));
            }
            let updated = sqlx::query(
                "UPDATE dispatch.work_orders SET invoice_id = $2, invoice_number = $3, invoice_status = $4, \
                 invoice_total_minor = $5, invoice_paid_minor = $6, invoice_currency = $7 WHERE id = $1",
            )
            .bind(work_order)
            .bind(invoice)
            .bind(&e.number)
            .bind(&e.status)
            .bind(total.amount_minor)
            .bind(paid.amount_minor)
            .bind(&total.currency_code)
            .execute(&mut *conn)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(ApplyError::Poison(format!("no work order {work_order}")));
            }
            Ok(())
        })
    }
}
