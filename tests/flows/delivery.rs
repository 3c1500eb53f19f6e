//! X-1 delivery guarantees end to end: redelivery changes nothing, a
//! consumer stopped between its effect and its cursor resumes without loss or
//! duplication, and a poison event is parked, visible and retried on request
//! without holding up the rest of the feed.

use std::time::Duration;

use crm_events::pb as ev;
use crm_flows::{System, cny, eventually};
use crm_testkit::Role;
use tonic::Code;

const COMPLETED: &[&str] = &["work_order.completed"];

async fn applied(sys: &System, schema: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {schema}.events_applied")))
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

async fn rewind(sys: &System, schema: &str, source: &str, to: i64) {
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {schema}.event_cursors SET after_seq = $2 WHERE source = $1")))
        .bind(source)
        .bind(to)
        .execute(&sys.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn redelivering_the_whole_feed_duplicates_nothing() {
    let mut sys = System::start().await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-1", &[("GT06", 35_000)]).await;
    for _ in 0..3 {
        let w = sys.approved_order(&customer).await;
        sys.complete(&w, &tech, &[("GT06", 1)], 35_000).await;
    }
    sys.caught_up("billing", "dispatch", COMPLETED).await;
    let before = (sys.invoices(&account.id).await, sys.get_account(&account.id).await, applied(&sys, "billing").await);
    assert_eq!(before.0.len(), 3);
    assert_eq!(before.1.balance, cny(0), "each invoice paid on site");

    // Billing restarts with its cursor lost: every event arrives again.
    sys.group.stop("billing").await;
    rewind(&sys, "billing", "dispatch", 0).await;
    sys.group.start("billing").await;
    sys.caught_up("billing", "dispatch", COMPLETED).await;
    let after = (sys.invoices(&account.id).await, sys.get_account(&account.id).await, applied(&sys, "billing").await);
    assert_eq!(after.0, before.0);
    assert_eq!(after.1.balance, before.1.balance);
    assert_eq!(after.2, before.2, "no event applied twice");
}

#[tokio::test]
async fn a_consumer_stopped_between_effect_and_cursor_resumes_without_loss_or_duplication() {
    let mut sys = System::start().await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-1", &[("GT06", 35_000)]).await;
    let first = sys.approved_order(&customer).await;
    sys.complete(&first, &tech, &[("GT06", 1)], 0).await;
    sys.caught_up("billing", "dispatch", COMPLETED).await;
    assert_eq!(sys.invoices(&account.id).await.len(), 1);
    let applied_seq = sys.cursor("billing", "dispatch").await;

    // Stop billing and put its cursor back before the event it applied: the
    // state a crash after the effect and before the cursor write would
    // leave. More work is completed while billing is down.
    sys.group.stop("billing").await;
    rewind(&sys, "billing", "dispatch", applied_seq - 1).await;
    let second = sys.approved_order(&customer).await;
    sys.complete(&second, &tech, &[("GT06", 2)], 0).await;
    sys.group.start("billing").await;

    sys.caught_up("billing", "dispatch", COMPLETED).await;
    let invoices = sys.invoices(&account.id).await;
    let mut totals: Vec<i64> = invoices.iter().map(|i| i.total.as_ref().unwrap().amount_minor).collect();
    totals.sort_unstable();
    assert_eq!(totals, [35_000, 70_000], "the first once, the second not lost");
    assert_eq!(sys.get_account(&account.id).await.balance, cny(105_000));
}

#[tokio::test]
async fn a_poison_event_is_parked_visible_and_retried_after_the_fix() {
    let sys = System::start().await;
    // No billing account yet: billing cannot invoice this customer's work.
    let orphan = sys.customer("无账户客户").await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-1", &[("GT06", 35_000)]).await;
    let w = sys.approved_order(&orphan).await;
    sys.complete(&w, &tech, &[("GT06", 1)], 0).await;
    // The feed does not stall behind it: later work is invoiced.
    let later = sys.approved_order(&customer).await;
    sys.complete(&later, &tech, &[("GT06", 1)], 0).await;
    eventually("the later invoice", Duration::from_secs(20), || async {
        (sys.invoices(&account.id).await.len() == 1).then_some(())
    })
    .await;

    let mut feed = sys.feed("billing").await;
    let parked = feed.list_parked_events(ev::ListParkedEventsRequest::default()).await.unwrap().into_inner().events;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let p = &parked[0];
    let event = p.event.clone().unwrap();
    assert_eq!((event.r#type.as_str(), event.source.as_str()), ("work_order.completed", "dispatch"));
    assert!(!p.error.is_empty());
    assert!(p.resolve_time.is_none());
    let consumers = feed.list_consumers(ev::ListConsumersRequest {}).await.unwrap().into_inner().consumers;
    let from_dispatch = consumers.iter().find(|c| c.source == "dispatch").unwrap();
    assert_eq!(from_dispatch.parked, 1);

    // Retrying before the cause is fixed fails and keeps it parked.
    let err = feed
        .retry_parked_event(ev::RetryParkedEventRequest { event_id: event.id.clone() })
        .await
        .expect_err("still failing");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Only an admin retries; ids are checked.
    let mut as_auditor = crm_proto::events::v1::event_feed_service_client::EventFeedServiceClient::with_interceptor(
        sys.group.get("billing").channel().await,
        sys.group.get("billing").bearer(&[Role::Auditor], "aud", None),
    );
    let err = as_auditor
        .retry_parked_event(ev::RetryParkedEventRequest { event_id: event.id.clone() })
        .await
        .expect_err("auditor");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        as_auditor.list_parked_events(ev::ListParkedEventsRequest::default()).await.unwrap().into_inner().events.len(),
        1
    );
    let err = feed
        .list_parked_events(ev::ListParkedEventsRequest { page_size: 501, include_resolved: false })
        .await
        .expect_err("page size");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = feed.retry_parked_event(ev::RetryParkedEventRequest { event_id: "x".into() }).await.expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = feed
        .retry_parked_event(ev::RetryParkedEventRequest { event_id: uuid::Uuid::now_v7().to_string() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    // Fix the cause (open the account), retry: applied once.
    let orphan_account = sys.account(&orphan).await;
    let retried = feed
        .retry_parked_event(ev::RetryParkedEventRequest { event_id: event.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert!(retried.resolve_time.is_some());
    assert_eq!(sys.invoices(&orphan_account.id).await.len(), 1);
    let open = feed.list_parked_events(ev::ListParkedEventsRequest::default()).await.unwrap().into_inner().events;
    assert!(open.is_empty());
    let err = feed
        .retry_parked_event(ev::RetryParkedEventRequest { event_id: event.id.clone() })
        .await
        .expect_err("resolved");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn two_replicas_of_a_consumer_apply_each_event_once() {
    let sys = System::start().await;
    // A second billing pod follows the same feeds with the same cursor table.
    let _second = sys.group.replica("billing").await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-1", &[("GT06", 35_000)]).await;
    for _ in 0..6 {
        let w = sys.approved_order(&customer).await;
        sys.complete(&w, &tech, &[("GT06", 1)], 10_000).await;
    }
    sys.caught_up("billing", "dispatch", COMPLETED).await;
    // Both replicas received every event; each was applied once.
    let invoices = sys.invoices(&account.id).await;
    assert_eq!(invoices.len(), 6);
    assert!(invoices.iter().all(|i| i.paid == cny(10_000)), "each paid once on site");
    assert_eq!(sys.get_account(&account.id).await.balance, cny(6 * 25_000));
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM billing.outbox WHERE event_type = 'payment.received'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(payments, 6);
}
