//! DSP-3/DSP-4 over gRPC: technicians, ranked proposals, assignment rules,
//! capacity under concurrent assignment, auto-assignment, the assigned
//! technician's steps and the urgent-parts watch list.

use crm_proto::dispatch::v1 as pb;
use tonic::Code;

use crate::helpers::{
    App, assert_invalid, assert_rule, assignment, checklist, date, maintenance, reason, rid, saturday, working_day,
};

#[tokio::test]
async fn technicians_are_registered_once_per_user_and_validated() {
    let app = App::new().await;
    let t = app.technician("u-1", &["GPS", "can"], "north", 4).await;
    assert_eq!(t.skills, ["can", "gps"]);
    let mut m = app.manager().await;
    let dup = pb::CreateTechnicianRequest {
        request_id: rid(),
        technician: Some(pb::Technician {
            user_sub: "u-1".into(),
            display_name: "again".into(),
            territory: "south".into(),
            daily_capacity: 2,
            ..Default::default()
        }),
    };
    assert_eq!(m.create_technician(dup).await.expect_err("dup").code(), Code::AlreadyExists);
    let bad = pb::CreateTechnicianRequest {
        request_id: rid(),
        technician: Some(pb::Technician {
            user_sub: "u-2".into(),
            display_name: "x".into(),
            territory: "north".into(),
            daily_capacity: 0,
            ..Default::default()
        }),
    };
    assert_invalid(&m.create_technician(bad).await.expect_err("capacity"), "technician.daily_capacity");
    assert_eq!(app.count("technicians").await, 1);
    let got = m.get_technician(pb::GetTechnicianRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.technician.unwrap(), t);
    let listed = m
        .list_technicians(pb::ListTechniciansRequest { territory: "north".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.technicians, [t]);
}

#[tokio::test]
async fn proposals_rank_qualified_local_and_free_technicians_first() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let w = app.approved_maintenance(&cust).await; // needs gps, north, low priority
    let busy_local = app.technician("busy", &["gps"], "north", 2).await;
    let free_local = app.technician("free", &["gps"], "north", 2).await;
    let far = app.technician("far", &["gps"], "south", 2).await;
    let unskilled = app.technician("none", &["meter"], "north", 2).await;
    let full = app.technician("full", &["gps"], "north", 1).await;
    app.assign(&app.approved_maintenance(&cust).await, &busy_local.id).await;
    app.assign(&app.approved_maintenance(&cust).await, &full.id).await;
    let got = app
        .dispatcher()
        .await
        .propose_technicians(pb::ProposeTechniciansRequest {
            work_order_id: w.id.clone(),
            day: Some(date(working_day())),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .candidates;
    let order: Vec<&str> = got.iter().map(|c| c.technician.as_ref().unwrap().id.as_str()).collect();
    assert_eq!(order, [free_local.id.as_str(), busy_local.id.as_str(), far.id.as_str(), unskilled.id.as_str()]);
    assert!(got[0].qualified && got[0].same_territory && got[0].booked == 0);
    assert_eq!((got[1].booked, got[1].capacity), (1, 2));
    assert!(!got[3].qualified);
    // Weekends and past days are not planned.
    let err = app
        .dispatcher()
        .await
        .propose_technicians(pb::ProposeTechniciansRequest {
            work_order_id: w.id.clone(),
            day: Some(date(saturday())),
            limit: 0,
        })
        .await
        .expect_err("weekend");
    assert_rule(&err, "NOT_A_WORKING_DAY");
}

#[tokio::test]
async fn assignment_checks_skills_day_and_capacity() {
    let app = App::new().await;
    let cust = app.customer("乙", None).await;
    let meter = app.technician("m", &["meter"], "north", 3).await;
    let gps = app.technician("g", &["gps"], "north", 1).await;
    let w = app.approved_maintenance(&cust).await;
    let mut d = app.dispatcher().await;
    assert_rule(&d.assign_work_order(assignment(&w, &meter.id)).await.expect_err("skills"), "SKILLS_MISSING");
    let mut weekend = assignment(&w, &gps.id);
    weekend.day = Some(date(saturday()));
    assert_rule(&d.assign_work_order(weekend).await.expect_err("weekend"), "NOT_A_WORKING_DAY");
    let mut past = assignment(&w, &gps.id);
    past.day = Some(date(chrono::Utc::now().date_naive() - chrono::Days::new(3)));
    assert_rule(&d.assign_work_order(past).await.expect_err("past"), "DAY_IN_PAST");
    let mut no_day = assignment(&w, &gps.id);
    no_day.day = None;
    assert_invalid(&d.assign_work_order(no_day).await.expect_err("day"), "day");
    let err = d.assign_work_order(assignment(&w, &uuid::Uuid::now_v7().to_string())).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.count("technician_days").await, 0);
    // A retried assignment is answered from its key and books once.
    let req = assignment(&w, &gps.id);
    let first = d.assign_work_order(req.clone()).await.unwrap().into_inner();
    let again = d.assign_work_order(req).await.unwrap().into_inner();
    assert_eq!(first, again);
    let booked: i32 =
        sqlx::query_scalar("SELECT booked FROM dispatch.technician_days").fetch_one(&app.pool).await.unwrap();
    assert_eq!(booked, 1);
    let other = app.approved_maintenance(&cust).await;
    assert_rule(&d.assign_work_order(assignment(&other, &gps.id)).await.expect_err("full"), "TECHNICIAN_FULLY_BOOKED");
    assert_eq!(app.get(&other.id).await.state, pb::WorkOrderState::Approved as i32);
}

#[tokio::test]
async fn concurrent_assignments_never_exceed_capacity() {
    let app = App::new().await;
    let cust = app.customer("丙", None).await;
    let tech = app.technician("busy", &["gps"], "north", 3).await;
    let mut orders = vec![];
    for _ in 0..8 {
        orders.push(app.approved_maintenance(&cust).await);
    }
    let mut tasks = vec![];
    for w in orders {
        let mut d = app.dispatcher().await;
        let req = assignment(&w, &tech.id);
        tasks.push(tokio::spawn(async move { d.assign_work_order(req).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(reason(&e), "TECHNICIAN_FULLY_BOOKED", "{e:?}"),
        }
    }
    assert_eq!(ok, 3);
    let booked: i32 =
        sqlx::query_scalar("SELECT booked FROM dispatch.technician_days").fetch_one(&app.pool).await.unwrap();
    assert_eq!(booked, 3);
    let assigned: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.work_orders WHERE state = 'assigned'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(assigned, 3);
}

#[tokio::test]
async fn auto_assign_takes_the_best_candidate_with_room() {
    let app = App::new().await;
    let cust = app.customer("丁", None).await;
    let near = app.technician("near", &["gps"], "north", 1).await;
    let far = app.technician("far", &["gps"], "south", 1).await;
    app.technician("unskilled", &["meter"], "north", 5).await;
    let auto = |w: &pb::WorkOrder| pb::AutoAssignRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: w.etag.clone(),
        day: Some(date(working_day())),
    };
    let mut d = app.dispatcher().await;
    let first = app.approved_maintenance(&cust).await;
    let r = d.auto_assign(auto(&first)).await.unwrap().into_inner();
    assert_eq!(r.work_order.unwrap().technician_id, near.id);
    assert_eq!(r.chosen.unwrap().booked, 1);
    let second = app.approved_maintenance(&cust).await;
    let r = d.auto_assign(auto(&second)).await.unwrap().into_inner();
    assert_eq!(r.work_order.unwrap().technician_id, far.id);
    let third = app.approved_maintenance(&cust).await;
    assert_rule(&d.auto_assign(auto(&third)).await.expect_err("none left"), "NO_TECHNICIAN_AVAILABLE");
    assert_eq!(app.get(&third.id).await.state, pb::WorkOrderState::Approved as i32);
}

#[tokio::test]
async fn only_the_assigned_technician_works_the_order() {
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let mine = app.technician("mine", &["gps"], "north", 3).await;
    app.technician("other", &["gps"], "north", 3).await;
    let w = app.assign(&app.approved_maintenance(&cust).await, &mine.id).await;
    let confirm = || pb::ConfirmChecklistRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: String::new(),
        checklist: Some(checklist()),
    };
    let err = app.tech("other").await.confirm_checklist(confirm()).await.expect_err("other");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "NOT_ASSIGNED_TECHNICIAN");
    // A dispatcher cannot take field steps for the technician.
    let err = app.dispatcher().await.confirm_checklist(confirm()).await.expect_err("dispatcher");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(app.get(&w.id).await.checklist_confirmed_at.is_none());
    app.tech("mine").await.confirm_checklist(confirm()).await.unwrap();
}

#[tokio::test]
async fn urgent_repairs_are_at_risk_as_their_parts_deadline_nears_or_passes() {
    let app = App::new().await;
    let cust = app.customer("己", None).await;
    let routine = app.approved_maintenance(&cust).await;
    assert!(routine.parts_due_at.is_none());
    let w = app.approved_repair(&cust).await;
    let due = w.parts_due_at.expect("urgent repair has a parts deadline");
    let approved_at = w.history.last().unwrap().at.unwrap();
    assert_eq!(due.seconds - approved_at.seconds, 6 * 3600);
    let mut d = app.dispatcher().await;
    let list = |m: i32| pb::ListAtRiskRequest { within_minutes: m, ..Default::default() };
    assert!(d.list_at_risk(list(60)).await.unwrap().into_inner().work_orders.is_empty());
    let near = d.list_at_risk(list(7 * 60)).await.unwrap().into_inner().work_orders;
    assert_eq!(near.len(), 1);
    assert!(!near[0].overdue);
    sqlx::query("UPDATE dispatch.work_orders SET parts_due_at = now() - interval '1 minute' WHERE id = $1::uuid")
        .bind(&w.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let late = d.list_at_risk(list(0)).await.unwrap().into_inner().work_orders;
    assert_eq!(late.len(), 1);
    assert!(late[0].overdue);
    assert_invalid(&d.list_at_risk(list(-1)).await.expect_err("negative"), "within_minutes");
    // On site with the parts, it leaves the list (and records the miss).
    let tech = app.technician("fast", &["gps"], "north", 3).await;
    app.assign(&w, &tech.id).await;
    let mut t = app.tech("fast").await;
    let id = w.id.clone();
    t.confirm_checklist(pb::ConfirmChecklistRequest {
        request_id: rid(),
        id: id.clone(),
        etag: String::new(),
        checklist: Some(checklist()),
    })
    .await
    .unwrap();
    t.start_travel(pb::StartTravelRequest { request_id: rid(), id: id.clone(), etag: String::new() }).await.unwrap();
    assert_eq!(d.list_at_risk(list(0)).await.unwrap().into_inner().work_orders.len(), 1);
    let w = t
        .arrive_on_site(pb::ArriveOnSiteRequest { request_id: rid(), id: id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(w.history.last().unwrap().note, "parts target missed");
    assert!(d.list_at_risk(list(0)).await.unwrap().into_inner().work_orders.is_empty());
}

#[tokio::test]
async fn cancelled_drafts_are_not_proposed_for() {
    let app = App::new().await;
    let cust = app.customer("庚", None).await;
    let w = app.create(maintenance(&cust)).await;
    let err = app
        .dispatcher()
        .await
        .propose_technicians(pb::ProposeTechniciansRequest {
            work_order_id: w.id.clone(),
            day: Some(date(working_day())),
            limit: 0,
        })
        .await
        .expect_err("draft");
    assert_rule(&err, "WORK_ORDER_NOT_APPROVED");
}
