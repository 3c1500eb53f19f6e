//! CUS-2 across the services: a merge in customers re-points the merged-away
//! customer's complaints, work orders and billing accounts (with their
//! invoices) to the survivor, exactly once, and an id sent afterwards still
//! lands on the survivor.

use std::time::Duration;

use crm_flows::{System, bpb, cpb, dpb, eventually, kpb, maintenance, rid};
use crm_testkit::Role;

#[tokio::test]
async fn a_merge_moves_complaints_work_orders_and_invoices_to_the_survivor() {
    let sys = System::start().await;
    let survivor = sys.customer("华润燃气有限公司").await;
    let merged = sys.customer("华润燃气(北京)有限公司").await;
    // Both are billed: the survivor's account stays its own, the merged
    // one's is kept beside it with its invoice.
    let own = sys.account(&survivor).await;
    let side = sys.account(&merged).await;
    let tech = sys.field_team("t-merge", &[("GT06", 35_000)]).await;
    let w = sys.approved_order(&merged).await;
    sys.complete(&w, &tech, &[("GT06", 1)], 0).await;
    let invoice = eventually("the merged customer's invoice", Duration::from_secs(20), || async {
        sys.invoices(&side.id).await.into_iter().next()
    })
    .await;
    let complaint = sys.complaint(&merged).await;

    sys.customers(&[Role::SalesManager], "mgr-bj")
        .await
        .merge_customers(cpb::MergeCustomersRequest {
            request_id: rid(),
            survivor_id: survivor.clone(),
            merged_id: merged.clone(),
            reason: "同一客户重复登记".into(),
        })
        .await
        .expect("merge");
    for schema in ["complaints", "dispatch", "billing"] {
        sys.caught_up(schema, "customers", &["customer.merged"]).await;
    }

    // Complaints: found under the survivor, none under the merged id.
    let mut qm = sys.complaints(&[Role::QualityManager], "qm-1").await;
    let list = |customer: &str| kpb::ListComplaintsRequest { customer_id: customer.into(), ..Default::default() };
    let under = qm.list_complaints(list(&survivor)).await.expect("list").into_inner().complaints;
    assert_eq!(under.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec![complaint.id.as_str()]);
    assert!(qm.list_complaints(list(&merged)).await.expect("list").into_inner().complaints.is_empty());

    // Dispatch: the work order is the survivor's.
    let mut d = sys.dispatch(&[Role::Dispatcher], "disp-1").await;
    let orders = d
        .list_work_orders(dpb::ListWorkOrdersRequest { customer_id: survivor.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .work_orders;
    assert_eq!(orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), vec![w.id.as_str()]);

    // Billing: the survivor's own account, and the merged one beside it
    // with its invoice; the merged id finds the survivor's account.
    let mut fin = sys.billing(&[Role::Finance], "fin1").await;
    let by_customer = |customer: &str| bpb::GetAccountRequest { customer_id: customer.into(), ..Default::default() };
    let got = fin.get_account(by_customer(&survivor)).await.expect("account").into_inner();
    assert_eq!(got.account.as_ref().map(|a| a.id.as_str()), Some(own.id.as_str()));
    assert_eq!(got.side_accounts.len(), 1);
    let moved = &got.side_accounts[0];
    assert_eq!((moved.id.as_str(), moved.customer_id.as_str()), (side.id.as_str(), survivor.as_str()));
    assert_eq!(moved.merged_from_customer_id, merged);
    assert!(moved.side_account);
    assert_eq!(sys.invoices(&moved.id).await.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), vec![invoice.id]);
    let via_old = fin.get_account(by_customer(&merged)).await.expect("old id").into_inner();
    assert_eq!(via_old.account.map(|a| a.id), Some(own.id.clone()));

    // A request with the merged id after the merge lands on the survivor.
    let late = d.create_work_order(maintenance(&merged)).await.expect("late order").into_inner().work_order;
    assert_eq!(late.map(|o| o.customer_id), Some(survivor.clone()));
    let late = sys.complaint(&merged).await;
    assert_eq!(late.customer_id, survivor);

    // Exactly once: one application recorded, and the complaint moved by
    // one version (applying it twice would have made two).
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM complaints.events_applied WHERE event_type = 'customer.merged'")
            .fetch_one(&sys.pool)
            .await
            .expect("applied");
    assert_eq!(applied, 1);
    let now = qm
        .get_complaint(kpb::GetComplaintRequest { id: complaint.id.clone(), number: String::new() })
        .await
        .expect("complaint")
        .into_inner()
        .complaint
        .expect("complaint");
    let version = |etag: &str| etag.trim_matches('"').parse::<i64>().unwrap_or(-1);
    assert_eq!(version(&now.etag), version(&complaint.etag) + 1, "{} then {}", complaint.etag, now.etag);
}

/// A survivor without an account takes the merged customer's as its own.
#[tokio::test]
async fn a_survivor_without_an_account_takes_the_merged_one() {
    let sys = System::start().await;
    let survivor = sys.customer("西湖物业").await;
    let merged = sys.customer("西湖物业管理").await;
    let account = sys.account(&merged).await;
    sys.customers(&[Role::SalesManager], "mgr-bj")
        .await
        .merge_customers(cpb::MergeCustomersRequest {
            request_id: rid(),
            survivor_id: survivor.clone(),
            merged_id: merged.clone(),
            reason: "重复".into(),
        })
        .await
        .expect("merge");
    sys.caught_up("billing", "customers", &["customer.merged"]).await;
    let got = sys
        .billing(&[Role::Finance], "fin1")
        .await
        .get_account(bpb::GetAccountRequest { customer_id: survivor.clone(), ..Default::default() })
        .await
        .expect("account")
        .into_inner();
    let a = got.account.expect("account");
    assert_eq!(
        (a.id.as_str(), a.customer_id.as_str(), a.side_account),
        (account.id.as_str(), survivor.as_str(), false)
    );
    assert_eq!(a.merged_from_customer_id, merged);
    assert!(got.side_accounts.is_empty());
    // BIL-1 still holds: the survivor has its account now.
    let err = sys
        .billing(&[Role::Finance], "fin1")
        .await
        .open_account(bpb::OpenAccountRequest {
            request_id: rid(),
            customer_id: survivor.clone(),
            kind: bpb::AccountKind::Postpaid as i32,
            customer_class: bpb::CustomerClass::Commercial as i32,
            currency_code: String::new(),
        })
        .await
        .expect_err("one account per customer");
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
}
