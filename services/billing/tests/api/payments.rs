//! BIL-5 payments, BIL-6 credit notes, BIL-7 arrears, BIL-9 ledger and statement.

use chrono::{Datelike, Duration, Utc};
use crm_proto::{billing::v1 as pb, common::v1 as common};
use tonic::Code;

use crate::helpers::{App, amount, assert_invalid, cny, reason, rid};

fn pay(account: &str, fen: i64) -> pb::RecordPaymentRequest {
    pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: account.into(),
        method: pb::PaymentMethod::Cash as i32,
        amount: cny(fen),
        reference: "收据 0001".into(),
    }
}

#[tokio::test]
async fn payments_go_to_the_oldest_invoices_and_the_rest_is_credit_used_by_the_next_invoice() {
    let app = App::new().await;
    let a = app.account("甲").await;
    let first = app.invoice(&a.id, 10_000).await;
    let second = app.invoice(&a.id, 5_000).await;
    let mut cashier = app.client(crm_testkit::Role::Cashier, "c1").await;
    cashier.open_shift(pb::OpenShiftRequest { request_id: rid(), float: cny(0) }).await.expect("shift");
    let r = cashier.record_payment(pay(&a.id, 12_000)).await.expect("pay").into_inner();
    let got: Vec<(String, i64)> = r.allocations.iter().map(|x| (x.invoice_id.clone(), amount(&x.amount))).collect();
    assert_eq!(got, vec![(first.id.clone(), 10_000), (second.id.clone(), 2_000)]);
    assert_eq!(amount(&r.credit), 0);
    assert_eq!(amount(&r.account.as_ref().expect("account").balance), 3_000);

    let r = cashier.record_payment(pay(&a.id, 5_000)).await.expect("overpay").into_inner();
    assert_eq!(amount(&r.credit), 2_000, "overpayment becomes credit");
    let acc = r.account.expect("account");
    assert_eq!((amount(&acc.balance), amount(&acc.available_credit)), (-2_000, 2_000));
    let mut fin = app.finance().await;
    let statuses: Vec<i32> = fin
        .list_invoices(pb::ListInvoicesRequest { account_id: a.id.clone(), status: 0 })
        .await
        .expect("list")
        .into_inner()
        .invoices
        .iter()
        .map(|i| i.status)
        .collect();
    assert_eq!(statuses, vec![pb::InvoiceStatus::Paid as i32, pb::InvoiceStatus::Paid as i32]);

    // The credit pays the next invoice as it is issued.
    let third = app.invoice(&a.id, 3_000).await;
    assert_eq!((third.status, amount(&third.paid)), (pb::InvoiceStatus::PartlyPaid as i32, 2_000));
    assert_eq!(app.mismatches().await, 0);
}

#[tokio::test]
async fn a_retried_payment_is_recorded_once_even_concurrently() {
    let app = App::new().await;
    let a = app.account("乙").await;
    app.invoice(&a.id, 10_000).await;
    let req = pay(&a.id, 4_000);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = app.finance().await;
        let r = req.clone();
        tasks.push(tokio::spawn(async move { c.record_payment(r).await.map(|r| r.into_inner()) }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task").expect("every retry answers").payment_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("funds").await, 1);
    let balance: i64 =
        sqlx::query_scalar("SELECT balance_minor FROM billing.accounts").fetch_one(&app.pool).await.expect("balance");
    assert_eq!(balance, 6_000);
    let err = app
        .finance()
        .await
        .record_payment(pb::RecordPaymentRequest { amount: cny(4_001), ..req })
        .await
        .expect_err("reused");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn bad_payments_change_nothing() {
    let app = App::new().await;
    let a = app.account("丙").await;
    let mut fin = app.finance().await;
    for (req, field) in [
        (pb::RecordPaymentRequest { amount: cny(0), ..pay(&a.id, 1) }, "amount.amount_minor"),
        (
            pb::RecordPaymentRequest {
                amount: Some(common::Money { amount_minor: 1, currency_code: "USD".into() }),
                ..pay(&a.id, 1)
            },
            "amount.currency_code",
        ),
        (pb::RecordPaymentRequest { method: 0, ..pay(&a.id, 1) }, "method"),
        (pb::RecordPaymentRequest { account_id: "x".into(), ..pay(&a.id, 1) }, "account_id"),
    ] {
        let err = fin.record_payment(req).await.expect_err("bad");
        assert_invalid(&err, field);
    }
    let mut desk = app.client(crm_testkit::Role::ServiceDesk, "d").await;
    assert_eq!(desk.record_payment(pay(&a.id, 1)).await.expect_err("role").code(), Code::PermissionDenied);
    assert_eq!(app.count("funds").await, 0);
    assert_eq!(app.count("ledger_entries").await, 0);
}

#[tokio::test]
async fn credit_notes_settle_invoices_or_complaints_and_credit_can_be_refunded() {
    let app = App::new().await;
    let a = app.account("丁").await;
    let inv = app.invoice(&a.id, 10_000).await;
    let mut fin = app.finance().await;
    let note = |amount_fen: i64, invoice: &str, complaint: &str| pb::IssueCreditNoteRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        amount: cny(amount_fen),
        reason: "计量误差更正".into(),
        invoice_id: invoice.into(),
        complaint_id: complaint.into(),
    };
    let err = fin.issue_credit_note(note(10_001, &inv.id, "")).await.expect_err("too much");
    assert_eq!(reason(&err), "CREDIT_EXCEEDS_OUTSTANDING");
    let r = fin.issue_credit_note(note(4_000, &inv.id, "")).await.expect("invoice credit").into_inner();
    assert_eq!(amount(&r.allocations[0].amount), 4_000);
    let complaint = uuid::Uuid::now_v7().to_string();
    let r = fin.issue_credit_note(note(9_000, "", &complaint)).await.expect("compensation").into_inner();
    assert_eq!(amount(&r.allocations[0].amount), 6_000, "the rest of the open invoice first");
    let acc = r.account.expect("account");
    assert_eq!((amount(&acc.balance), amount(&acc.available_credit)), (-3_000, 3_000));
    let err = fin.issue_credit_note(note(1, &inv.id, &complaint)).await.expect_err("both");
    assert_invalid(&err, "complaint_id");

    let refund = |fen| pb::RefundCreditRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        amount: cny(fen),
        reason: "退款".into(),
    };
    let err = fin.refund_credit(refund(3_001)).await.expect_err("more than credit");
    assert_eq!(reason(&err), "INSUFFICIENT_CREDIT");
    let acc = fin.refund_credit(refund(3_000)).await.expect("refund").into_inner().account.expect("account");
    assert_eq!((amount(&acc.balance), amount(&acc.available_credit)), (0, 0));
    assert_eq!(app.mismatches().await, 0);
}

#[tokio::test]
async fn the_statement_runs_from_opening_to_closing_balance() {
    let app = App::new().await;
    let a = app.account("戊").await;
    let start = Utc::now() - Duration::seconds(1);
    app.invoice(&a.id, 10_000).await;
    let mut fin = app.finance().await;
    fin.record_payment(pay(&a.id, 4_000)).await.expect("pay");
    app.invoice(&a.id, 1_000).await;
    let end = Utc::now() + Duration::seconds(1);
    let ts = |t: chrono::DateTime<Utc>| Some(crm_platform::proto_time::to_proto(t));
    let s = fin
        .get_statement(pb::GetStatementRequest { account_id: a.id.clone(), start_time: ts(start), end_time: ts(end) })
        .await
        .expect("statement")
        .into_inner();
    assert_eq!(amount(&s.opening_balance), 0);
    let running: Vec<i64> = s.entries.iter().map(|e| amount(&e.running_balance)).collect();
    assert_eq!(running, vec![10_000, 6_000, 7_000]);
    assert_eq!(amount(&s.closing_balance), 7_000);
    // A later window opens where the earlier one closed.
    let later = fin
        .get_statement(pb::GetStatementRequest {
            account_id: a.id.clone(),
            start_time: ts(end),
            end_time: ts(end + Duration::days(1)),
        })
        .await
        .expect("later")
        .into_inner();
    assert_eq!((amount(&later.opening_balance), later.entries.len()), (7_000, 0));
    let err = fin
        .get_statement(pb::GetStatementRequest { account_id: a.id.clone(), start_time: ts(end), end_time: ts(start) })
        .await
        .expect_err("backwards");
    assert_invalid(&err, "end_time");
}

#[tokio::test]
async fn overdue_invoices_are_aged_in_buckets() {
    let app = App::new().await;
    let a = app.account("己").await;
    let mut ids = Vec::new();
    for fen in [1_000, 2_000, 3_000, 4_000] {
        ids.push(app.invoice(&a.id, fen).await.id);
    }
    // Make them fall due 10, 45, 75 and 120 days ago.
    for (id, days) in ids.iter().zip([10, 45, 75, 120]) {
        sqlx::query("UPDATE billing.invoices SET due_on = current_date - $2::int WHERE id = $1::uuid")
            .bind(id)
            .bind(days)
            .execute(&app.pool)
            .await
            .expect("age");
    }
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let r = app
        .finance()
        .await
        .list_overdue(pb::ListOverdueRequest {
            as_of: Some(common::Date { year: today.year(), month: today.month() as i32, day: today.day() as i32 }),
        })
        .await
        .expect("overdue")
        .into_inner();
    let buckets: Vec<(String, i64, i64)> =
        r.buckets.iter().map(|b| (b.label.clone(), b.invoices, amount(&b.outstanding))).collect();
    assert_eq!(buckets.iter().map(|b| b.1).sum::<i64>(), 4);
    assert_eq!(buckets.iter().map(|b| b.2).sum::<i64>(), 10_000);
    assert_eq!(buckets[3], (">90".to_string(), 1, 4_000));
    assert_eq!(r.invoices.first().map(|i| i.invoice_id.clone()), Some(ids[3].clone()), "most overdue first");
}

/// Issue 18 (BIL-7 ageing per currency): amounts owed in different
/// currencies are aged side by side, never added together.
#[tokio::test]
async fn ageing_keeps_each_currency_apart() {
    let app = App::new().await;
    let cny_account = app.account("庚").await;
    let customer = app.customer("辛 Trading").await;
    let mut fin = app.finance().await;
    let usd_account = fin
        .open_account(pb::OpenAccountRequest {
            request_id: rid(),
            customer_id: customer,
            kind: pb::AccountKind::Postpaid as i32,
            customer_class: pb::CustomerClass::Commercial as i32,
            currency_code: "usd".into(),
        })
        .await
        .expect("USD account")
        .into_inner()
        .account
        .expect("account");
    let cny_invoice = app.invoice(&cny_account.id, 5_000).await;
    let usd_money = Some(common::Money { amount_minor: 700, currency_code: "USD".into() });
    let draft = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: usd_account.id.clone(),
                series: "SVC".into(),
                lines: vec![pb::InvoiceLine {
                    unit_price: usd_money,
                    ..crate::helpers::line("consulting", 1000, 0, 0)
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("USD draft")
        .into_inner()
        .invoice
        .expect("invoice");
    let usd_invoice = fin
        .issue_invoice(pb::IssueInvoiceRequest { request_id: rid(), invoice_id: draft.id, etag: String::new() })
        .await
        .expect("issue")
        .into_inner()
        .invoice
        .expect("invoice");
    for (id, days) in [(&cny_invoice.id, 40), (&usd_invoice.id, 40)] {
        sqlx::query("UPDATE billing.invoices SET due_on = current_date - $2::int WHERE id = $1::uuid")
            .bind(id)
            .bind(days)
            .execute(&app.pool)
            .await
            .expect("age");
    }
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let r = fin
        .list_overdue(pb::ListOverdueRequest {
            as_of: Some(common::Date { year: today.year(), month: today.month() as i32, day: today.day() as i32 }),
        })
        .await
        .expect("overdue")
        .into_inner();
    let owed: Vec<(String, String, i64, i64)> = r
        .buckets
        .iter()
        .filter(|b| b.invoices > 0)
        .map(|b| {
            let m = b.outstanding.clone().unwrap_or_default();
            (b.label.clone(), m.currency_code, b.invoices, m.amount_minor)
        })
        .collect();
    assert_eq!(
        owed,
        [("31-60".to_string(), "CNY".to_string(), 1, 5_000), ("31-60".to_string(), "USD".to_string(), 1, 700)]
    );
    assert_eq!(r.buckets.len(), 8, "four bands per currency");
}
