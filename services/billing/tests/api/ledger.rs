//! BIL-9: whatever happens to an account, its stored balance equals the sum of
//! its ledger, and its statement adds up to it. A randomized sequence of
//! invoices, payments, credit notes, refunds and voids (seeded, so a failure
//! replays) checks the invariant after every step.

use chrono::{Duration, Utc};
use crm_proto::billing::v1 as pb;

use crate::helpers::{App, amount, cny, rid};

/// A small deterministic generator (xorshift), so the sequence replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[tokio::test]
async fn the_balance_is_always_the_sum_of_the_ledger() {
    let app = App::new().await;
    let a = app.account("随机").await;
    let mut fin = app.finance().await;
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut invoices: Vec<String> = Vec::new();
    for step in 0..40 {
        let fen = i64::try_from(1 + rng.next(20_000)).unwrap_or(1);
        match rng.next(5) {
            0 | 1 => invoices.push(app.invoice(&a.id, fen).await.id),
            2 => {
                fin.record_payment(pb::RecordPaymentRequest {
                    request_id: rid(),
                    account_id: a.id.clone(),
                    method: 3,
                    amount: cny(fen),
                    reference: format!("step {step}"),
                })
                .await
                .expect("payment");
            }
            3 => {
                let _ = fin
                    .issue_credit_note(pb::IssueCreditNoteRequest {
                        request_id: rid(),
                        account_id: a.id.clone(),
                        amount: cny(fen),
                        reason: "random credit".into(),
                        invoice_id: String::new(),
                        complaint_id: uuid::Uuid::now_v7().to_string(),
                    })
                    .await
                    .expect("credit note");
            }
            _ => {
                // A refund of at most the credit there is, or a void of an
                // untouched invoice: refusals are fine, they change nothing.
                let _ = fin
                    .refund_credit(pb::RefundCreditRequest {
                        request_id: rid(),
                        account_id: a.id.clone(),
                        amount: cny(fen),
                        reason: "refund".into(),
                    })
                    .await;
                if let Some(id) = invoices.get(usize::try_from(rng.next(invoices.len().max(1) as u64)).unwrap_or(0)) {
                    let _ = fin
                        .void_invoice(pb::VoidInvoiceRequest {
                            request_id: rid(),
                            invoice_id: id.clone(),
                            reason: "random".into(),
                            etag: String::new(),
                        })
                        .await;
                }
            }
        }
        assert_eq!(app.mismatches().await, 0, "after step {step}");
    }
    let acc = fin
        .get_account(pb::GetAccountRequest { account_id: a.id.clone(), customer_id: String::new() })
        .await
        .expect("acc")
        .into_inner()
        .account
        .expect("acc");
    let ts = |t: chrono::DateTime<Utc>| Some(crm_platform::proto_time::to_proto(t));
    let s = fin
        .get_statement(pb::GetStatementRequest {
            account_id: a.id.clone(),
            start_time: ts(Utc::now() - Duration::days(1)),
            end_time: ts(Utc::now() + Duration::days(1)),
        })
        .await
        .expect("statement")
        .into_inner();
    let sum: i64 = s.entries.iter().map(|e| amount(&e.amount)).sum();
    assert_eq!(amount(&s.opening_balance) + sum, amount(&acc.balance));
    assert_eq!(amount(&s.closing_balance), amount(&acc.balance));
    // Open invoices never owe more than the positive balance plus the credit held.
    let open: i64 = fin
        .list_invoices(pb::ListInvoicesRequest { account_id: a.id.clone(), status: 0 })
        .await
        .expect("list")
        .into_inner()
        .invoices
        .iter()
        .filter(|i| i.status == pb::InvoiceStatus::Issued as i32 || i.status == pb::InvoiceStatus::PartlyPaid as i32)
        .map(|i| amount(&i.total) - amount(&i.paid))
        .sum();
    assert_eq!(open - amount(&acc.available_credit), amount(&acc.balance), "balance = owed on invoices − credit held");
}
