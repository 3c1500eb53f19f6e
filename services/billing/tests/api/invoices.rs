//! BIL-4 invoices: draft → issued → partly paid → paid, or void; issued
//! invoices immutable; gap-free numbers per series and year.

use std::collections::BTreeSet;

use chrono::Datelike;
use crm_proto::billing::v1 as pb;
use tonic::Code;

use crate::helpers::{App, amount, assert_invalid, line, reason, rid};

#[tokio::test]
async fn lines_are_rounded_half_up_and_issuing_numbers_and_charges() {
    let app = App::new().await;
    let a = app.account("甲").await;
    let mut fin = app.finance().await;
    let draft = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: a.id.clone(),
                series: "SVC".into(),
                // 1.5 × 3.33 = 4.995 → 5.00, VAT 13% → 0.65; 2 × 99.99 = 199.98, VAT 9% 17.9982 → 18.00.
                lines: vec![line("安装费", 1500, 333, 1300), line("SIM 卡", 2000, 9999, 900)],
                ..Default::default()
            }),
        })
        .await
        .expect("draft")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!(draft.status, pb::InvoiceStatus::Draft as i32);
    assert!(draft.number.is_empty());
    assert_eq!((amount(&draft.net), amount(&draft.vat), amount(&draft.total)), (20_498, 1_865, 22_363));
    assert_eq!(app.count("ledger_entries").await, 0, "a draft charges nothing");

    let issued = fin
        .issue_invoice(pb::IssueInvoiceRequest {
            request_id: rid(),
            invoice_id: draft.id.clone(),
            etag: draft.etag.clone(),
        })
        .await
        .expect("issue")
        .into_inner()
        .invoice
        .expect("invoice");
    let year = chrono::Utc::now().year();
    assert_eq!(issued.number, format!("SVC-{year}-000001"));
    assert_eq!(issued.status, pb::InvoiceStatus::Issued as i32);
    assert!(issued.due_date.is_some());
    let acc = fin
        .get_account(pb::GetAccountRequest { account_id: a.id.clone(), customer_id: String::new() })
        .await
        .expect("acc")
        .into_inner()
        .account
        .expect("acc");
    assert_eq!(amount(&acc.balance), 22_363);

    let err = fin
        .issue_invoice(pb::IssueInvoiceRequest { request_id: rid(), invoice_id: draft.id.clone(), etag: String::new() })
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "INVOICE_ISSUED");
    // The database itself refuses to change an issued invoice.
    let err =
        sqlx::query("UPDATE billing.invoices SET total_minor = 1, net_minor = 1, vat_minor = 0 WHERE id = $1::uuid")
            .bind(&issued.id)
            .execute(&app.pool)
            .await;
    assert!(err.is_err(), "issued invoices are immutable");
    let err = sqlx::query("DELETE FROM billing.ledger_entries").execute(&app.pool).await;
    assert!(err.is_err(), "ledger entries are immutable");
    assert_eq!(app.mismatches().await, 0);
}

#[tokio::test]
async fn concurrent_issues_get_gap_free_numbers() {
    let app = App::new().await;
    let a = app.account("乙").await;
    let mut fin = app.finance().await;
    let mut drafts = Vec::new();
    for i in 0..10 {
        drafts.push(
            fin.create_invoice(pb::CreateInvoiceRequest {
                request_id: rid(),
                invoice: Some(pb::Invoice {
                    account_id: a.id.clone(),
                    series: "USG".into(),
                    lines: vec![line("用气", 1000, 100 + i, 0)],
                    ..Default::default()
                }),
            })
            .await
            .expect("draft")
            .into_inner()
            .invoice
            .expect("invoice")
            .id,
        );
    }
    let mut tasks = Vec::new();
    for id in drafts {
        let mut c = app.finance().await;
        tasks.push(tokio::spawn(async move {
            c.issue_invoice(pb::IssueInvoiceRequest { request_id: rid(), invoice_id: id, etag: String::new() }).await
        }));
    }
    let mut numbers = BTreeSet::new();
    for t in tasks {
        numbers.insert(t.await.expect("task").expect("issued").into_inner().invoice.expect("invoice").number);
    }
    let year = chrono::Utc::now().year();
    let want: BTreeSet<String> = (1..=10).map(|n| format!("USG-{year}-{n:06}")).collect();
    assert_eq!(numbers, want);
}

#[tokio::test]
async fn voiding_reverses_the_charge_and_keeps_the_record() {
    let app = App::new().await;
    let a = app.account("丙").await;
    let inv = app.invoice(&a.id, 5_000).await;
    let mut fin = app.finance().await;
    let err = fin
        .void_invoice(pb::VoidInvoiceRequest {
            request_id: rid(),
            invoice_id: inv.id.clone(),
            reason: " ".into(),
            etag: String::new(),
        })
        .await
        .expect_err("no reason");
    assert_invalid(&err, "reason");
    let void = fin
        .void_invoice(pb::VoidInvoiceRequest {
            request_id: rid(),
            invoice_id: inv.id.clone(),
            reason: "开错了".into(),
            etag: String::new(),
        })
        .await
        .expect("void")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!(void.status, pb::InvoiceStatus::Void as i32);
    assert_eq!(void.number, inv.number, "the number stays taken: no gaps");
    let acc = fin
        .get_account(pb::GetAccountRequest { account_id: a.id.clone(), customer_id: String::new() })
        .await
        .expect("acc")
        .into_inner()
        .account
        .expect("acc");
    assert_eq!(amount(&acc.balance), 0);
    assert_eq!(app.count("ledger_entries").await, 2, "charge and reversal both kept");

    // An invoice something was paid on is settled with a credit note instead.
    let paid = app.invoice(&a.id, 5_000).await;
    fin.record_payment(pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        method: 1,
        amount: crate::helpers::cny(100),
        reference: String::new(),
    })
    .await
    .expect("pay");
    let err = fin
        .void_invoice(pb::VoidInvoiceRequest {
            request_id: rid(),
            invoice_id: paid.id.clone(),
            reason: "x".into(),
            etag: String::new(),
        })
        .await
        .expect_err("paid on");
    assert_eq!(reason(&err), "INVOICE_HAS_PAYMENTS");
    assert_eq!(app.mismatches().await, 0);
}

#[tokio::test]
async fn bad_invoices_are_refused_field_by_field() {
    let app = App::new().await;
    let a = app.account("丁").await;
    let mut fin = app.finance().await;
    let err = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: a.id.clone(),
                series: "svc1".into(),
                due_in_days: 999,
                lines: vec![],
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad");
    for f in ["invoice.series", "invoice.due_in_days", "invoice.lines"] {
        assert_invalid(&err, f);
    }
    let err = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: a.id.clone(),
                series: "SVC".into(),
                lines: vec![
                    line("", 0, 100, 0),
                    pb::InvoiceLine {
                        unit_price: Some(crm_proto::common::v1::Money {
                            amount_minor: 100,
                            currency_code: "USD".into(),
                        }),
                        ..line("x", 1000, 100, 20_000)
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad lines");
    assert_invalid(&err, "invoice.lines[0].quantity_milli");
    assert_invalid(&err, "invoice.lines[1].unit_price.currency_code");
    assert_invalid(&err, "invoice.lines[1].vat_rate_bp");
    let err = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: uuid::Uuid::now_v7().to_string(),
                series: "SVC".into(),
                lines: vec![line("x", 1000, 1, 0)],
                ..Default::default()
            }),
        })
        .await
        .expect_err("no account");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.count("invoices").await, 0);
}
