//! DSP-2 over gRPC: creation with the customer checked, every kind, the
//! approval rules, the whole lifecycle with who and when, cancellation,
//! validation that writes nothing, idempotent retries and stale etags.

use crm_proto::{customers::v1 as cpb, dispatch::v1 as pb};
use tonic::Code;

use crate::helpers::{
    App, assert_invalid, assert_rule, checklist, installation, maintenance, reason, repair, rid, working_day,
};

#[tokio::test]
async fn an_installation_request_is_one_order_with_a_line_per_vehicle() {
    let app = App::new().await;
    let cust = app.customer("顺丰物流", None).await;
    let w = app.create(installation(&cust, &["京A12345", "京b54321", "京C00001"])).await;
    assert_eq!(w.state, pb::WorkOrderState::Draft as i32);
    assert_eq!(w.kind, pb::WorkOrderKind::Installation as i32);
    assert_eq!(w.customer_name, "顺丰物流");
    assert_eq!(w.created_by, "disp-1");
    let inst = w.installation.as_ref().unwrap();
    let plates: Vec<&str> = inst.vehicles.iter().map(|v| v.plate.as_str()).collect();
    assert_eq!(plates, ["京A12345", "京B54321", "京C00001"]);
    assert_eq!(app.count("work_orders").await, 1);
    assert_eq!(app.count("work_order_lines").await, 3);
    assert_eq!(app.get(&w.id).await, w);
}

#[tokio::test]
async fn priority_follows_urgency_and_the_customers_service_level() {
    let app = App::new().await;
    let general = app.customer("甲", None).await;
    let key = app.customer("乙", Some(cpb::ServiceLevel::Key)).await;
    let mut urgent = repair(&key);
    urgent.urgency = pb::Urgency::Urgent as i32;
    let w = app.create(urgent).await;
    assert_eq!(w.service_level, pb::ServiceLevel::Key as i32);
    assert_eq!(w.priority, pb::Priority::Critical as i32);
    let w = app.create(maintenance(&general)).await;
    assert_eq!(w.service_level, pb::ServiceLevel::General as i32);
    assert_eq!(w.priority, pb::Priority::Low as i32);
}

#[tokio::test]
async fn unknown_and_terminated_customers_get_no_work() {
    let app = App::new().await;
    let err = app
        .dispatcher()
        .await
        .create_work_order(maintenance(&uuid::Uuid::now_v7().to_string()))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let cust = app.customer("丙", None).await;
    sqlx::query("UPDATE customers.customers SET stage = 'terminated' WHERE id = $1::uuid")
        .bind(&cust)
        .execute(&app.pool)
        .await
        .unwrap();
    let err = app.dispatcher().await.create_work_order(repair(&cust)).await.expect_err("terminated");
    assert_rule(&err, "CUSTOMER_TERMINATED");
    assert_eq!(app.count("work_orders").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_write_nothing() {
    let app = App::new().await;
    let cust = app.customer("丁", None).await;
    let mut d = app.dispatcher().await;
    let cases: Vec<(pb::CreateWorkOrderRequest, &str)> = vec![
        (
            {
                let mut r = maintenance(&cust);
                r.customer_id = "nope".into();
                r
            },
            "customer_id",
        ),
        (
            {
                let mut r = maintenance(&cust);
                r.kind = 0;
                r
            },
            "kind",
        ),
        (
            {
                let mut r = maintenance(&cust);
                r.urgency = 9;
                r
            },
            "urgency",
        ),
        (
            {
                let mut r = maintenance(&cust);
                r.contact_phone = "12".into();
                r
            },
            "contact_phone",
        ),
        (
            {
                let mut r = maintenance(&cust);
                r.site_address = " ".into();
                r
            },
            "site_address",
        ),
        (
            {
                let mut r = maintenance(&cust);
                r.description = String::new();
                r
            },
            "description",
        ),
        (
            {
                let mut r = repair(&cust);
                r.repair = None;
                r
            },
            "repair",
        ),
        (
            {
                let mut r = repair(&cust);
                r.repair.as_mut().unwrap().fault = String::new();
                r
            },
            "repair.fault",
        ),
        (installation(&cust, &[]), "installation.vehicles"),
        (installation(&cust, &["京A1", "京a1"]), "installation.vehicles[1].plate"),
        (
            {
                let mut r = installation(&cust, &["京A1"]);
                r.repair = repair(&cust).repair;
                r
            },
            "repair",
        ),
        (
            {
                let mut r = maintenance(&cust);
                r.request_id = "x".into();
                r
            },
            "request_id",
        ),
    ];
    for (req, field) in cases {
        let err = d.create_work_order(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    assert_eq!(app.count("work_orders").await, 0);
    assert_eq!(app.count("work_order_lines").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[tokio::test]
async fn a_retried_creation_returns_the_first_order_and_writes_one() {
    let app = App::new().await;
    let cust = app.customer("戊", None).await;
    let req = installation(&cust, &["京A1", "京A2"]);
    let first = app.create(req.clone()).await;
    let again = app.create(req.clone()).await;
    assert_eq!(first, again);
    assert_eq!(app.count("work_orders").await, 1);
    assert_eq!(app.count("work_order_lines").await, 2);
    // The same key for a different body is refused.
    let mut other = req;
    other.territory = "south".into();
    let err = app.dispatcher().await.create_work_order(other).await.expect_err("reused");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn repairs_need_the_service_managers_approval() {
    let app = App::new().await;
    let cust = app.customer("己", None).await;
    let w = app.create(repair(&cust)).await;
    let approve = |etag: &str| pb::ApproveWorkOrderRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: etag.into(),
        note: "".into(),
    };
    // Not submitted yet: even the manager cannot skip the request.
    let err = app.manager().await.approve_work_order(approve("")).await.expect_err("draft");
    assert_rule(&err, "APPROVAL_NOT_REQUESTED");
    let submitted = app
        .dispatcher()
        .await
        .submit_work_order(pb::SubmitWorkOrderRequest { request_id: rid(), id: w.id.clone(), etag: w.etag.clone() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(submitted.state, pb::WorkOrderState::PendingApproval as i32);
    // Assigning before approval names the rule.
    let tech = app.technician("t1", &["gps"], "north", 3).await;
    let err = app
        .dispatcher()
        .await
        .assign_work_order(crate::helpers::assignment(&submitted, &tech.id))
        .await
        .expect_err("not approved");
    assert_rule(&err, "WORK_ORDER_NOT_APPROVED");
    // A dispatcher may not approve a repair.
    let err = app.dispatcher().await.approve_work_order(approve("")).await.expect_err("dispatcher");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "SERVICE_MANAGER_APPROVAL_REQUIRED");
    // A stale etag is ABORTED and changes nothing.
    let err = app.manager().await.approve_work_order(approve(&w.etag)).await.expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "STALE_ETAG");
    let approved = app.manager().await.approve_work_order(approve(&submitted.etag)).await.unwrap();
    let approved = approved.into_inner().work_order.unwrap();
    assert_eq!(approved.state, pb::WorkOrderState::Approved as i32);
    // A normal repair has no parts target.
    assert!(approved.parts_due_at.is_none());
    let last = approved.history.last().unwrap();
    assert_eq!((last.action.as_str(), last.actor.as_str()), ("approved", "mgr-1"));
}

#[tokio::test]
async fn dispatchers_release_maintenance_directly() {
    let app = App::new().await;
    let cust = app.customer("庚", None).await;
    let w = app.approved_maintenance(&cust).await;
    assert_eq!(w.state, pb::WorkOrderState::Approved as i32);
    let actions: Vec<&str> = w.history.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["created", "approved"]);
    assert_eq!(w.history[1].actor, "disp-1");
}

#[tokio::test]
async fn the_whole_way_to_closed_records_who_and_when() {
    let app = App::new().await;
    let cust = app.customer("辛", None).await;
    let tech = app.technician("tech-a", &["gps"], "north", 3).await;
    let w = app.approved_repair(&cust).await;
    let w = app.assign(&w, &tech.id).await;
    assert_eq!(w.state, pb::WorkOrderState::Assigned as i32);
    assert_eq!(w.technician_id, tech.id);
    assert_eq!(w.scheduled_on, Some(crate::helpers::date(working_day())));
    let mut t = app.tech("tech-a").await;
    // DSP-3: no departure without the checklist.
    let err = t
        .start_travel(pb::StartTravelRequest { request_id: rid(), id: w.id.clone(), etag: String::new() })
        .await
        .expect_err("checklist");
    assert_rule(&err, "CHECKLIST_NOT_CONFIRMED");
    let mut partial = checklist();
    partial.spare_parts_checked = false;
    let err = t
        .confirm_checklist(pb::ConfirmChecklistRequest {
            request_id: rid(),
            id: w.id.clone(),
            etag: String::new(),
            checklist: Some(partial),
        })
        .await
        .expect_err("partial");
    assert_invalid(&err, "checklist.spare_parts_checked");
    let w = t
        .confirm_checklist(pb::ConfirmChecklistRequest {
            request_id: rid(),
            id: w.id.clone(),
            etag: w.etag.clone(),
            checklist: Some(checklist()),
        })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(w.checklist_confirmed_by, "tech-a");
    assert!(w.checklist_confirmed_at.is_some());
    let w = t
        .start_travel(pb::StartTravelRequest { request_id: rid(), id: w.id.clone(), etag: w.etag.clone() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(w.state, pb::WorkOrderState::EnRoute as i32);
    let w = t
        .arrive_on_site(pb::ArriveOnSiteRequest { request_id: rid(), id: w.id.clone(), etag: w.etag.clone() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(w.state, pb::WorkOrderState::OnSite as i32);
    assert_eq!(w.history.last().unwrap().note, "parts target met");
    let err = t
        .complete_work_order(pb::CompleteWorkOrderRequest {
            request_id: rid(),
            id: w.id.clone(),
            etag: String::new(),
            work_done: String::new(),
            signed_off_by: "王经理".into(),
            ..Default::default()
        })
        .await
        .expect_err("no work done");
    assert_invalid(&err, "work_done");
    let w = t
        .complete_work_order(pb::CompleteWorkOrderRequest {
            request_id: rid(),
            id: w.id.clone(),
            etag: w.etag.clone(),
            work_done: "更换主板".into(),
            signed_off_by: "王经理".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(w.state, pb::WorkOrderState::Completed as i32);
    assert_eq!((w.work_done.as_str(), w.signed_off_by.as_str()), ("更换主板", "王经理"));
    // Bought 2025-03-01 with no registered device: a year's cover has ended,
    // and with no parts nothing is due.
    assert!(!w.in_warranty);
    assert_eq!(w.amount_due.as_ref().map(|m| m.amount_minor), Some(0));
    // Completed work is not cancelled.
    let err = app
        .manager()
        .await
        .cancel_work_order(pb::CancelWorkOrderRequest {
            request_id: rid(),
            id: w.id.clone(),
            etag: String::new(),
            reason: "late".into(),
        })
        .await
        .expect_err("completed");
    assert_rule(&err, "ILLEGAL_TRANSITION");
    let w = app
        .dispatcher()
        .await
        .close_work_order(pb::CloseWorkOrderRequest { request_id: rid(), id: w.id.clone(), etag: w.etag.clone() })
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(w.state, pb::WorkOrderState::Closed as i32);
    let steps: Vec<(&str, &str)> = w.history.iter().map(|s| (s.action.as_str(), s.actor.as_str())).collect();
    assert_eq!(
        steps,
        [
            ("created", "disp-1"),
            ("submitted for approval", "disp-1"),
            ("approved", "mgr-1"),
            ("assigned", "disp-1"),
            ("checklist confirmed", "tech-a"),
            ("travel started", "tech-a"),
            ("arrived on site", "tech-a"),
            ("completed", "tech-a"),
            ("closed", "disp-1"),
        ]
    );
    assert!(w.history.iter().all(|s| s.at.is_some()));
    assert!(w.history.windows(2).all(|p| p[0].at.as_ref().unwrap().seconds <= p[1].at.as_ref().unwrap().seconds));
    // Closed is read-only.
    let err = app
        .dispatcher()
        .await
        .close_work_order(pb::CloseWorkOrderRequest { request_id: rid(), id: w.id.clone(), etag: String::new() })
        .await
        .expect_err("closed");
    assert_rule(&err, "WORK_ORDER_CLOSED");
}

#[tokio::test]
async fn cancelling_needs_a_reason_and_gives_the_slot_back() {
    let app = App::new().await;
    let cust = app.customer("壬", None).await;
    let tech = app.technician("tech-b", &["gps"], "north", 1).await;
    let w = app.approved_maintenance(&cust).await;
    let w = app.assign(&w, &tech.id).await;
    let cancel = |reason: &str| pb::CancelWorkOrderRequest {
        request_id: rid(),
        id: w.id.clone(),
        etag: w.etag.clone(),
        reason: reason.into(),
    };
    let err = app.manager().await.cancel_work_order(cancel(" ")).await.expect_err("no reason");
    assert_invalid(&err, "reason");
    let c = app.manager().await.cancel_work_order(cancel("客户取消")).await.unwrap().into_inner().work_order.unwrap();
    assert_eq!(c.state, pb::WorkOrderState::Cancelled as i32);
    assert_eq!(c.cancel_reason, "客户取消");
    let booked: i32 =
        sqlx::query_scalar("SELECT booked FROM dispatch.technician_days").fetch_one(&app.pool).await.unwrap();
    assert_eq!(booked, 0);
    // The freed slot takes another order, though capacity is 1.
    let other = app.approved_maintenance(&cust).await;
    app.assign(&other, &tech.id).await;
    let err = app
        .dispatcher()
        .await
        .submit_work_order(pb::SubmitWorkOrderRequest { request_id: rid(), id: w.id.clone(), etag: String::new() })
        .await
        .expect_err("cancelled");
    assert_rule(&err, "WORK_ORDER_CANCELLED");
}

#[tokio::test]
async fn lists_page_through_filters_stably() {
    let app = App::new().await;
    let a = app.customer("甲", None).await;
    let b = app.customer("乙", None).await;
    let mut ids = vec![];
    for _ in 0..5 {
        ids.push(app.create(maintenance(&a)).await.id);
    }
    app.create(repair(&b)).await;
    let mut d = app.dispatcher().await;
    let mut seen = vec![];
    let mut token = String::new();
    loop {
        let page = d
            .list_work_orders(pb::ListWorkOrdersRequest {
                page_size: 2,
                page_token: token.clone(),
                customer_id: a.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.work_orders.len() <= 2);
        seen.extend(page.work_orders.into_iter().map(|w| w.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids);
    let repairs = d
        .list_work_orders(pb::ListWorkOrdersRequest { kind: pb::WorkOrderKind::Repair as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repairs.work_orders.len(), 1);
    // A token is bound to its filter.
    let first = d
        .list_work_orders(pb::ListWorkOrdersRequest { page_size: 1, customer_id: a.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let err = d
        .list_work_orders(pb::ListWorkOrdersRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("other filter");
    assert_invalid(&err, "page_token");
    let err = d
        .list_work_orders(pb::ListWorkOrdersRequest { page_size: -1, ..Default::default() })
        .await
        .expect_err("negative");
    assert_invalid(&err, "page_size");
}
