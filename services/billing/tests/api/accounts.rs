//! BIL-1 accounts: one per customer, verified with the customers service.

use crm_proto::billing::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, amount, assert_invalid, cny, reason, rid};

fn open(customer: &str, kind: pb::AccountKind) -> pb::OpenAccountRequest {
    pb::OpenAccountRequest {
        request_id: rid(),
        customer_id: customer.into(),
        kind: kind as i32,
        customer_class: pb::CustomerClass::Residential as i32,
        currency_code: String::new(),
    }
}

#[tokio::test]
async fn one_account_per_customer_and_prepaid_ones_get_a_card() {
    let app = App::new().await;
    let customer = app.customer("张三").await;
    let mut fin = app.finance().await;
    let a = fin
        .open_account(open(&customer, pb::AccountKind::Prepaid))
        .await
        .expect("open")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(a.status, pb::AccountStatus::Active as i32);
    assert_eq!(a.card_number.len(), 12);
    assert_eq!(amount(&a.balance), 0);
    assert_eq!(a.balance.as_ref().map(|m| m.currency_code.as_str()), Some("CNY"));
    let err = fin.open_account(open(&customer, pb::AccountKind::Postpaid)).await.expect_err("second");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "ACCOUNT_EXISTS");
    let by_customer = fin
        .get_account(pb::GetAccountRequest { account_id: String::new(), customer_id: customer.clone() })
        .await
        .expect("by customer")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(by_customer, a);
    let post = app.account("李四").await;
    assert!(post.card_number.is_empty(), "postpaid accounts have no card");
}

#[tokio::test]
async fn unknown_customers_and_bad_requests_open_nothing() {
    let app = App::new().await;
    let mut fin = app.finance().await;
    let err = fin
        .open_account(open(&uuid::Uuid::now_v7().to_string(), pb::AccountKind::Postpaid))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = fin
        .open_account(pb::OpenAccountRequest {
            kind: 0,
            customer_class: 9,
            currency_code: "RMB1".into(),
            ..open("x", pb::AccountKind::Postpaid)
        })
        .await
        .expect_err("bad");
    for f in ["customer_id", "kind", "customer_class", "currency_code"] {
        assert_invalid(&err, f);
    }
    let customer = app.customer("王五").await;
    let mut desk = app.client(Role::ServiceDesk, "desk").await;
    assert_eq!(
        desk.open_account(open(&customer, pb::AccountKind::Postpaid)).await.expect_err("role").code(),
        Code::PermissionDenied
    );
    assert_eq!(app.count("accounts").await, 0);
}

#[tokio::test]
async fn an_account_closes_only_when_settled() {
    let app = App::new().await;
    let a = app.account("甲").await;
    let inv = app.invoice(&a.id, 10_000).await;
    let mut fin = app.finance().await;
    let close = |etag: &str| pb::CloseAccountRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        reason: "customer left".into(),
        etag: etag.into(),
    };
    let err = fin.close_account(close("")).await.expect_err("owes");
    assert_eq!(reason(&err), "BALANCE_NOT_ZERO");
    fin.record_payment(pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        method: pb::PaymentMethod::Transfer as i32,
        amount: cny(10_000),
        reference: "BANK-1".into(),
    })
    .await
    .expect("pay");
    let paid = fin
        .get_invoice(pb::GetInvoiceRequest { invoice_id: inv.id.clone() })
        .await
        .expect("inv")
        .into_inner()
        .invoice
        .expect("inv");
    assert_eq!(paid.status, pb::InvoiceStatus::Paid as i32);
    let err = fin.close_account(close("\"7\"")).await.expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    let closed = fin.close_account(close("")).await.expect("close").into_inner().account.expect("account");
    assert_eq!(closed.status, pb::AccountStatus::Closed as i32);
    let err = fin
        .record_payment(pb::RecordPaymentRequest {
            request_id: rid(),
            account_id: a.id.clone(),
            method: 1,
            amount: cny(1),
            reference: String::new(),
        })
        .await
        .expect_err("closed");
    assert_eq!(reason(&err), "ACCOUNT_CLOSED");
    let err = fin
        .issue_credit_note(pb::IssueCreditNoteRequest {
            request_id: rid(),
            account_id: a.id.clone(),
            amount: cny(1),
            reason: "late compensation".into(),
            invoice_id: String::new(),
            complaint_id: String::new(),
        })
        .await
        .expect_err("closed");
    assert_eq!(reason(&err), "ACCOUNT_CLOSED");
    let events = crate::events::published(&app, "account.closed").await;
    assert_eq!(events.len(), 1);
    let Some(crm_events::Payload::AccountClosed(closed)) = &events[0].payload else { panic!("payload") };
    assert_eq!((closed.account_id.as_str(), closed.customer_id.as_str()), (a.id.as_str(), a.customer_id.as_str()));
    assert!(closed.saga_id.is_empty(), "closed by hand, not by a termination");
}

#[tokio::test]
async fn a_suspended_account_takes_payments_but_no_new_invoices() {
    let app = App::new().await;
    let a = app.account("乙").await;
    let mut fin = app.finance().await;
    fin.suspend_account(pb::SuspendAccountRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        reason: "arrears".into(),
        etag: a.etag.clone(),
    })
    .await
    .expect("suspend");
    let err = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: a.id.clone(),
                series: "SVC".into(),
                lines: vec![crate::helpers::line("x", 1000, 100, 0)],
                ..Default::default()
            }),
        })
        .await
        .expect_err("suspended");
    assert_eq!(reason(&err), "ACCOUNT_NOT_ACTIVE");
    fin.record_payment(pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        method: 1,
        amount: cny(500),
        reference: String::new(),
    })
    .await
    .expect("payment while suspended");
    let err = fin
        .suspend_account(pb::SuspendAccountRequest {
            request_id: rid(),
            account_id: a.id.clone(),
            reason: "again".into(),
            etag: String::new(),
        })
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "ILLEGAL_ACCOUNT_CHANGE");
    fin.reactivate_account(pb::ReactivateAccountRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        etag: String::new(),
    })
    .await
    .expect("reactivate");
}
