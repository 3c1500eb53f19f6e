//! BIL-8 cash desk and BIL-7 dunning.

use chrono::{Datelike, Duration, Utc};
use crm_proto::{billing::v1 as pb, common::v1 as common};
use crm_testkit::Role;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{App, amount, assert_invalid, cny, reason, rid};

fn pay(account: &str, method: pb::PaymentMethod, fen: i64) -> pb::RecordPaymentRequest {
    pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: account.into(),
        method: method as i32,
        amount: cny(fen),
        reference: String::new(),
    }
}

fn counted(method: pb::PaymentMethod, fen: i64) -> pb::MethodAmount {
    pb::MethodAmount { method: method as i32, amount: cny(fen) }
}

fn by_method(list: &[pb::MethodAmount]) -> Vec<(i32, i64)> {
    list.iter().map(|m| (m.method, amount(&m.amount))).collect()
}

#[tokio::test]
async fn a_shift_opens_with_a_float_takes_payments_closes_with_the_difference_and_is_handed_over() {
    let app = App::new().await;
    let a = app.account("甲").await;
    let mut c1 = app.client(Role::Cashier, "c1").await;
    let err = c1.record_payment(pay(&a.id, pb::PaymentMethod::Cash, 100)).await.expect_err("no shift");
    assert_eq!(reason(&err), "NO_OPEN_SHIFT");
    let shift = c1
        .open_shift(pb::OpenShiftRequest { request_id: rid(), float: cny(50_000) })
        .await
        .expect("open")
        .into_inner()
        .shift
        .expect("shift");
    let err = c1.open_shift(pb::OpenShiftRequest { request_id: rid(), float: cny(0) }).await.expect_err("second");
    assert_eq!((err.code(), reason(&err)), (Code::FailedPrecondition, "SHIFT_ALREADY_OPEN".to_string()));
    // Issue 14: the refusal names the open shift, and a till that lost its
    // id finds it again.
    let info = err.get_details_error_info().expect("error info");
    assert_eq!(info.metadata.get("shift_id"), Some(&shift.id));
    let current = c1.get_current_shift(pb::GetCurrentShiftRequest {}).await.expect("current").into_inner().shift;
    assert_eq!(current.as_ref().map(|s| s.id.as_str()), Some(shift.id.as_str()));
    let err = app.client(Role::Cashier, "c3").await.get_current_shift(pb::GetCurrentShiftRequest {}).await;
    assert_eq!(err.map(|_| ()).map_err(|e| e.code()), Err(Code::NotFound), "c3 has no open shift");
    c1.record_payment(pay(&a.id, pb::PaymentMethod::Cash, 12_000)).await.expect("cash");
    c1.record_payment(pay(&a.id, pb::PaymentMethod::BankCard, 8_000)).await.expect("card");
    c1.record_payment(pay(&a.id, pb::PaymentMethod::Cash, 3_000)).await.expect("cash");

    // Another cashier cannot see or close it.
    let mut c2 = app.client(Role::Cashier, "c2").await;
    let err = c2.get_shift(pb::GetShiftRequest { shift_id: shift.id.clone() }).await.expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);

    // 65 000 expected in cash (float 50 000 + 15 000); 64 900 counted.
    let closed = c1
        .close_shift(pb::CloseShiftRequest {
            request_id: rid(),
            shift_id: shift.id.clone(),
            counted: vec![counted(pb::PaymentMethod::Cash, 64_900), counted(pb::PaymentMethod::BankCard, 8_000)],
            etag: String::new(),
        })
        .await
        .expect("close")
        .into_inner()
        .shift
        .expect("shift");
    let cash = pb::PaymentMethod::Cash as i32;
    let card = pb::PaymentMethod::BankCard as i32;
    let mut expected = by_method(&closed.expected);
    expected.sort();
    assert_eq!(expected, vec![(cash, 65_000), (card, 8_000)]);
    let mut diff = by_method(&closed.differences);
    diff.sort();
    assert_eq!(diff, vec![(cash, -100), (card, 0)]);
    let err = c1.record_payment(pay(&a.id, pb::PaymentMethod::Cash, 1)).await.expect_err("closed shift");
    assert_eq!(reason(&err), "NO_OPEN_SHIFT");
    let err = c1.get_current_shift(pb::GetCurrentShiftRequest {}).await.expect_err("closed");
    assert_eq!(err.code(), Code::NotFound);

    let err = c1
        .hand_over_shift(pb::HandOverShiftRequest {
            request_id: rid(),
            shift_id: shift.id.clone(),
            to_cashier_id: " ".into(),
            note: String::new(),
            etag: String::new(),
        })
        .await
        .expect_err("to whom");
    assert_invalid(&err, "to_cashier_id");
    let handed = c1
        .hand_over_shift(pb::HandOverShiftRequest {
            request_id: rid(),
            shift_id: shift.id.clone(),
            to_cashier_id: "c2".into(),
            note: "抽屉现金 649 元".into(),
            etag: String::new(),
        })
        .await
        .expect("hand over")
        .into_inner()
        .shift
        .expect("shift");
    assert_eq!((handed.status, handed.handed_over_to.as_str()), (pb::ShiftStatus::HandedOver as i32, "c2"));
    // Finance sees every shift and the day's takings per method.
    let mut fin = app.finance().await;
    fin.get_shift(pb::GetShiftRequest { shift_id: shift.id.clone() }).await.expect("finance reads");
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let summary = fin
        .get_daily_summary(pb::GetDailySummaryRequest {
            day: Some(common::Date { year: today.year(), month: today.month() as i32, day: today.day() as i32 }),
        })
        .await
        .expect("summary")
        .into_inner();
    let mut taken = by_method(&summary.taken);
    taken.sort();
    assert_eq!(taken, vec![(cash, 15_000), (card, 8_000)]);
    let mut desk = app.client(Role::ServiceDesk, "d").await;
    assert_eq!(
        desk.get_daily_summary(pb::GetDailySummaryRequest::default()).await.expect_err("role").code(),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn dunning_steps_are_recorded_once_even_by_concurrent_passes() {
    let app = App::new().await;
    let a = app.account("乙").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.invoice(&a.id, 1_000).await.id);
    }
    for (id, days) in ids.iter().zip([5, 35, 65]) {
        sqlx::query("UPDATE billing.invoices SET due_on = current_date - $2::int WHERE id = $1::uuid")
            .bind(id)
            .bind(days)
            .execute(&app.pool)
            .await
            .expect("age");
    }
    let today =
        sqlx::query_scalar::<_, chrono::NaiveDate>("SELECT current_date").fetch_one(&app.pool).await.expect("today");
    let (p1, p2) = tokio::join!(
        crm_billing::usecases::dunning::run_once(&app.pool, today),
        crm_billing::usecases::dunning::run_once(&app.pool, today)
    );
    assert_eq!(p1.expect("pass 1") + p2.expect("pass 2"), 1 + 2 + 3, "each step once");
    assert_eq!(crm_billing::usecases::dunning::run_once(&app.pool, today).await.expect("again"), 0);
    let r = app
        .finance()
        .await
        .list_overdue(pb::ListOverdueRequest {
            as_of: Some(common::Date { year: today.year(), month: today.month() as i32, day: today.day() as i32 }),
        })
        .await
        .expect("overdue")
        .into_inner();
    let steps: Vec<String> = r.invoices.iter().map(|i| i.dunning_step.clone()).collect();
    assert_eq!(steps, vec!["final_notice".to_string(), "reminder_2".to_string(), "reminder_1".to_string()]);
}
