//! the feed serves a service's outbox in order, resumes from any seq,
//! wakes on commit, and holds back what a running transaction might still
//! put before it.

use std::time::Duration;

use crm_events::{Payload, emit, pb};
use crm_flows::System;
use tokio_stream::StreamExt;
use uuid::Uuid;

fn cleared(n: u32) -> Payload {
    Payload::AccountCleared(pb::AccountCleared { account_id: format!("acc-{n}"), customer_id: Uuid::nil().to_string() })
}

async fn write(pool: &sqlx::PgPool, n: u32) -> Uuid {
    let mut tx = pool.begin().await.unwrap();
    let id = emit(&mut tx, "billing", Uuid::now_v7(), crm_platform::proto_time::now(), cleared(n)).await.unwrap();
    tx.commit().await.unwrap();
    id
}

fn account(e: &pb::Event) -> String {
    match &e.payload {
        Some(Payload::AccountCleared(a)) => a.account_id.clone(),
        other => panic!("unexpected payload {other:?}"),
    }
}

#[tokio::test]
async fn feed_streams_in_order_resumes_and_wakes_on_commit() {
    let sys = System::start().await;
    for n in 1..=3 {
        write(&sys.pool, n).await;
    }
    let mut feed = sys.feed("billing").await;
    let mut stream = feed
        .subscribe(pb::SubscribeRequest { after_seq: 0, types: vec!["account.cleared".into()] })
        .await
        .unwrap()
        .into_inner();
    let mut seen = vec![];
    for _ in 0..3 {
        let e = stream.next().await.unwrap().unwrap().event.unwrap();
        assert_eq!(e.r#type, "account.cleared");
        assert_eq!(e.source, "billing");
        assert_eq!(e.schema_version, 1);
        seen.push(e);
    }
    let order: Vec<(String, i64, String)> = seen.iter().map(|e| (account(e), e.seq, e.id.clone())).collect();
    assert_eq!(seen.iter().map(account).collect::<Vec<_>>(), ["acc-1", "acc-2", "acc-3"], "{order:?}");
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq));

    // A commit wakes the open stream (LISTEN/NOTIFY), no polling interval.
    write(&sys.pool, 4).await;
    let e = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap().event.unwrap();
    assert_eq!(account(&e), "acc-4");

    // Resuming after the first event's seq yields the rest, in order.
    let mut again =
        feed.subscribe(pb::SubscribeRequest { after_seq: seen[0].seq, types: vec![] }).await.unwrap().into_inner();
    let mut rest = vec![];
    for _ in 0..3 {
        rest.push(account(&again.next().await.unwrap().unwrap().event.unwrap()));
    }
    assert_eq!(rest, ["acc-2", "acc-3", "acc-4"]);
}

#[tokio::test]
async fn a_running_transaction_holds_back_later_commits() {
    let sys = System::start().await;
    // T1 takes the lower seq but commits last.
    let mut t1 = sys.pool.begin().await.unwrap();
    emit(&mut t1, "billing", Uuid::now_v7(), crm_platform::proto_time::now(), cleared(1)).await.unwrap();
    write(&sys.pool, 2).await;

    let mut feed = sys.feed("billing").await;
    let mut stream = feed.subscribe(pb::SubscribeRequest { after_seq: 0, types: vec![] }).await.unwrap().into_inner();
    // Nothing is served while T1 runs: serving event 2 first would let a
    // subscriber's cursor pass event 1 for ever.
    assert!(tokio::time::timeout(Duration::from_millis(400), stream.next()).await.is_err());
    t1.commit().await.unwrap();
    let first = account(&stream.next().await.unwrap().unwrap().event.unwrap());
    let second = account(&stream.next().await.unwrap().unwrap().event.unwrap());
    let mut both = [first, second];
    both.sort();
    assert_eq!(both, ["acc-1", "acc-2"]);
}

#[tokio::test]
async fn bad_subscriptions_are_refused() {
    let sys = System::start().await;
    let mut feed = sys.feed("billing").await;
    for (req, field) in [
        (pb::SubscribeRequest { after_seq: -1, types: vec![] }, "after_seq"),
        (pb::SubscribeRequest { after_seq: 999, types: vec![] }, "after_seq"),
        (pb::SubscribeRequest { after_seq: 0, types: vec!["nope".into()] }, "types[0]"),
    ] {
        let err = feed.subscribe(req).await.expect_err("refused");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(err.message().contains(field) || field.starts_with("types"), "{}", err.message());
    }
    // Staff without a system or admin role cannot read the feed.
    let channel = sys.group.get("billing").channel().await;
    let mut as_sales = pb::event_feed_service_client::EventFeedServiceClient::with_interceptor(
        channel,
        sys.group.get("billing").bearer(&[crm_testkit::Role::Sales], "s1", Some("bj")),
    );
    let err = as_sales.subscribe(pb::SubscribeRequest::default()).await.expect_err("denied");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn delivery_follows_the_transaction_order_as_numbers() {
    let sys = System::start().await;
    let ids = [write(&sys.pool, 1).await, write(&sys.pool, 2).await, write(&sys.pool, 3).await];
    // Put the rows in transactions 10, 9 and 11 (long finished): across a
    // digit boundary, where sorting the position's text form would give
    // "10" < "11" < "9" and move a subscriber's position backwards.
    for (id, tx) in ids.iter().zip(["10", "9", "11"]) {
        sqlx::query("UPDATE billing.outbox SET tx = $2::xid8 WHERE id = $1")
            .bind(id)
            .bind(tx)
            .execute(&sys.pool)
            .await
            .unwrap();
    }
    let mut feed = sys.feed("billing").await;
    let mut stream = feed.subscribe(pb::SubscribeRequest { after_seq: 0, types: vec![] }).await.unwrap().into_inner();
    let mut got = vec![];
    for _ in 0..3 {
        got.push(account(&stream.next().await.unwrap().unwrap().event.unwrap()));
    }
    assert_eq!(got, ["acc-2", "acc-1", "acc-3"]);
    // Nothing comes twice.
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.next()).await.is_err());
}
