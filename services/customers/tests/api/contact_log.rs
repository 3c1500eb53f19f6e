//! CUS-5 timely entry, CUS-6 interactions and follow-ups over gRPC.

use chrono::{Duration, Utc};
use crm_platform::proto_time::to_proto;
use crm_proto::customers::v1 as pb;
use tonic::Code;

use crate::helpers::{App, assert_invalid, org, reason, rid};

#[tokio::test]
async fn late_entries_are_flagged_and_reported_per_salesperson() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    let on_time = app.create(&mut s1, org("当场录入", "R")).await;
    let late = app
        .create(
            &mut s1,
            pb::Customer {
                collect_time: Some(to_proto(Utc::now() - Duration::days(10))), ..org("十天前收集", "R")
            },
        )
        .await;
    app.create(&mut s2, org("乙录入", "R")).await;
    assert!(!on_time.entry_late);
    assert!(late.entry_late, "10 calendar days is more than 2 working days");

    let period = pb::GetEntryTimelinessRequest {
        start_time: Some(to_proto(Utc::now() - Duration::hours(1))),
        end_time: Some(to_proto(Utc::now() + Duration::hours(1))),
        owner_id: String::new(),
    };
    let mut mgr = app.manager().await;
    let rows = mgr.get_entry_timeliness(period.clone()).await.expect("report").into_inner().salespeople;
    let got: Vec<(String, i64, i64)> = rows.iter().map(|r| (r.salesperson_id.clone(), r.entries, r.late)).collect();
    assert_eq!(got, vec![("s1".into(), 2, 1), ("s2".into(), 1, 0)]);
    assert!((rows[0].on_time_rate - 0.5).abs() < 1e-9);
    // A salesperson sees only their own figures.
    let own = s2.get_entry_timeliness(period.clone()).await.expect("own").into_inner().salespeople;
    assert_eq!(own.iter().map(|r| r.salesperson_id.as_str()).collect::<Vec<_>>(), vec!["s2"]);

    let err = mgr
        .get_entry_timeliness(pb::GetEntryTimelinessRequest { end_time: None, ..period.clone() })
        .await
        .expect_err("no end");
    assert_invalid(&err, "end_time");
    let err = s1
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer {
                collect_time: Some(to_proto(Utc::now() + Duration::days(2))),
                ..org("未来", "R")
            }),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("future collection");
    assert_invalid(&err, "customer.collect_time");
}

fn call(customer: &str, summary: &str) -> pb::Interaction {
    pb::Interaction {
        customer_id: customer.into(),
        channel: pb::InteractionChannel::Phone as i32,
        summary: summary.into(),
        contact_name: "王经理".into(),
        outcome: "同意报价".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn interactions_are_logged_on_every_channel_and_listed_newest_first() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "R")).await;
    let channels = [
        pb::InteractionChannel::Phone,
        pb::InteractionChannel::Email,
        pb::InteractionChannel::Fax,
        pb::InteractionChannel::Letter,
        pb::InteractionChannel::ThankYouCard,
        pb::InteractionChannel::SeminarInvitation,
        pb::InteractionChannel::Visit,
    ];
    for (i, ch) in channels.iter().enumerate() {
        let got = s1
            .log_interaction(pb::LogInteractionRequest {
                request_id: rid(),
                interaction: Some(pb::Interaction { channel: *ch as i32, ..call(&c.id, &format!("第{i}次")) }),
                follow_up_id: String::new(),
            })
            .await
            .expect("log")
            .into_inner()
            .interaction
            .expect("interaction");
        assert_eq!((got.channel, got.recorded_by.as_str()), (*ch as i32, "s1"));
    }
    let page = s1
        .list_interactions(pb::ListInteractionsRequest {
            customer_id: c.id.clone(),
            page_size: 5,
            page_token: String::new(),
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.interactions.len(), 5);
    assert_eq!(page.interactions[0].summary, "第6次", "newest first");
    let rest = s1
        .list_interactions(pb::ListInteractionsRequest {
            customer_id: c.id.clone(),
            page_size: 5,
            page_token: page.next_page_token,
        })
        .await
        .expect("rest")
        .into_inner();
    assert_eq!(rest.interactions.len(), 2);
    assert!(rest.next_page_token.is_empty());

    let err = s1
        .log_interaction(pb::LogInteractionRequest {
            request_id: rid(),
            interaction: Some(pb::Interaction {
                channel: 0,
                summary: " ".into(),
                occur_time: Some(to_proto(Utc::now() + Duration::days(1))),
                ..call(&c.id, "")
            }),
            follow_up_id: "nope".into(),
        })
        .await
        .expect_err("bad");
    for f in ["interaction.channel", "interaction.summary", "interaction.occur_time", "follow_up_id"] {
        assert_invalid(&err, f);
    }
    assert_eq!(app.count("interactions").await, 7);
    // Another salesperson cannot log on s1's customer.
    let mut s2 = app.sales("s2").await;
    let err = s2
        .log_interaction(pb::LogInteractionRequest {
            request_id: rid(),
            interaction: Some(call(&c.id, "x")),
            follow_up_id: String::new(),
        })
        .await
        .expect_err("hidden");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn periodic_follow_ups_come_due_and_are_carried_out_by_an_interaction() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "R")).await;
    let f = s1
        .schedule_follow_up(pb::ScheduleFollowUpRequest {
            request_id: rid(),
            follow_up: Some(pb::FollowUp {
                customer_id: c.id.clone(),
                due_time: Some(to_proto(Utc::now() + Duration::days(1))),
                repeat_every_days: 30,
                note: "每月回访".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("schedule")
        .into_inner()
        .follow_up
        .expect("follow-up");
    assert_eq!(f.owner_id, "s1");
    let due = |before: chrono::DateTime<Utc>| pb::ListDueFollowUpsRequest {
        due_before: Some(to_proto(before)),
        ..Default::default()
    };
    assert!(s1.list_due_follow_ups(due(Utc::now())).await.expect("now").into_inner().follow_ups.is_empty());
    let listed = s1.list_due_follow_ups(due(Utc::now() + Duration::days(2))).await.expect("soon").into_inner();
    assert_eq!(listed.follow_ups.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), vec![f.id.clone()]);

    let done = s1
        .log_interaction(pb::LogInteractionRequest {
            request_id: rid(),
            interaction: Some(call(&c.id, "月度回访")),
            follow_up_id: f.id.clone(),
        })
        .await
        .expect("carry out")
        .into_inner();
    let next = done.next_follow_up.expect("periodic: the next one is scheduled");
    assert_eq!(next.repeat_every_days, 30);
    let next_due = next.due_time.expect("due").seconds;
    assert!((next_due - (Utc::now() + Duration::days(30)).timestamp()).abs() < 60);
    let open = s1.list_due_follow_ups(due(Utc::now() + Duration::days(40))).await.expect("later").into_inner();
    assert_eq!(open.follow_ups.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), vec![next.id.clone()]);

    let err = s1
        .log_interaction(pb::LogInteractionRequest {
            request_id: rid(),
            interaction: Some(call(&c.id, "again")),
            follow_up_id: f.id.clone(),
        })
        .await
        .expect_err("done already");
    assert_eq!(reason(&err), "FOLLOW_UP_DONE");
    let err = s1
        .schedule_follow_up(pb::ScheduleFollowUpRequest {
            request_id: rid(),
            follow_up: Some(pb::FollowUp { customer_id: c.id.clone(), repeat_every_days: -1, ..Default::default() }),
        })
        .await
        .expect_err("bad");
    assert_invalid(&err, "follow_up.due_time");
    assert_invalid(&err, "follow_up.repeat_every_days");
    assert_eq!(app.count("follow_ups").await, 2);
}

#[tokio::test]
async fn a_terminated_customer_is_not_contacted() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "R")).await;
    sqlx::query("UPDATE customers.customers SET stage = 'terminated' WHERE id = $1::uuid")
        .bind(&c.id)
        .execute(&app.pool)
        .await
        .expect("terminate");
    let err = s1
        .log_interaction(pb::LogInteractionRequest {
            request_id: rid(),
            interaction: Some(call(&c.id, "x")),
            follow_up_id: String::new(),
        })
        .await
        .expect_err("do not contact");
    assert_eq!(reason(&err), "CUSTOMER_TERMINATED");
    assert_eq!(app.count("interactions").await, 0);
}
