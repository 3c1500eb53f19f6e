//! GetCustomer, ListCustomers (filters, keyset pages) and SearchCustomers.

use std::collections::HashSet;

use crm_proto::customers::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, assert_invalid, org, reason, rid};

#[tokio::test]
async fn get_refuses_bad_and_unknown_ids() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let err = admin.get_customer(pb::GetCustomerRequest { id: "x".into() }).await.expect_err("bad id");
    assert_invalid(&err, "id");
    let err =
        admin.get_customer(pb::GetCustomerRequest { id: uuid::Uuid::now_v7().to_string() }).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "NOT_FOUND");
}

#[tokio::test]
async fn list_filters_by_every_field() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    let a = app
        .create(
            &mut s1,
            pb::Customer { industry: "gas".into(), tags: vec!["vip-prospect".into()], ..org("甲燃气", "CN-BJ") },
        )
        .await;
    let b = app.create(&mut s2, pb::Customer { industry: "water".into(), ..org("乙水务", "CN-SH") }).await;
    let mut mgr = app.manager().await;
    mgr.set_classification(pb::SetClassificationRequest {
        request_id: rid(),
        customer_id: b.id.clone(),
        grade: Some(pb::DemandGrade::A as i32),
        value_tier: Some(pb::ValueTier::Key as i32),
        service_level: Some(pb::ServiceLevel::Special as i32),
        reason: "large urgent tender".into(),
        etag: String::new(),
    })
    .await
    .expect("classify");
    mgr.change_stage(pb::ChangeStageRequest {
        request_id: rid(),
        customer_id: a.id.clone(),
        stage: pb::LifecycleStage::Active as i32,
        reason: "first order".into(),
        etag: String::new(),
    })
    .await
    .expect("activate");

    let ids = |r: pb::ListCustomersResponse| r.customers.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let base = pb::ListCustomersRequest::default();
    let cases: Vec<(pb::ListCustomersRequest, Vec<String>)> = vec![
        (pb::ListCustomersRequest { owner_id: "s1".into(), ..base.clone() }, vec![a.id.clone()]),
        (pb::ListCustomersRequest { grade: pb::DemandGrade::A as i32, ..base.clone() }, vec![b.id.clone()]),
        (pb::ListCustomersRequest { value_tier: pb::ValueTier::Key as i32, ..base.clone() }, vec![b.id.clone()]),
        (
            pb::ListCustomersRequest { service_level: pb::ServiceLevel::Special as i32, ..base.clone() },
            vec![b.id.clone()],
        ),
        (pb::ListCustomersRequest { stage: pb::LifecycleStage::Active as i32, ..base.clone() }, vec![a.id.clone()]),
        (pb::ListCustomersRequest { region: "CN-SH".into(), ..base.clone() }, vec![b.id.clone()]),
        (pb::ListCustomersRequest { industry: "gas".into(), ..base.clone() }, vec![a.id.clone()]),
        (pb::ListCustomersRequest { tag: "vip-prospect".into(), ..base.clone() }, vec![a.id.clone()]),
        (pb::ListCustomersRequest { branch: "bj".into(), ..base.clone() }, vec![a.id.clone(), b.id.clone()]),
        (pb::ListCustomersRequest { region: "CN-XX".into(), ..base.clone() }, vec![]),
        (base.clone(), vec![a.id.clone(), b.id.clone()]),
    ];
    let mut admin = app.admin().await;
    for (req, want) in cases {
        let got = ids(admin.list_customers(req.clone()).await.expect("list").into_inner());
        assert_eq!(got, want, "{req:?}");
    }

    let err = admin.list_customers(pb::ListCustomersRequest { grade: 42, ..base.clone() }).await.expect_err("bad enum");
    assert_invalid(&err, "grade");
    let err = admin.list_customers(pb::ListCustomersRequest { page_size: -1, ..base }).await.expect_err("negative");
    assert_invalid(&err, "page_size");
}

#[tokio::test]
async fn pages_return_every_row_exactly_once_while_rows_are_inserted() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut expected = HashSet::new();
    for i in 0..23 {
        expected.insert(app.create(&mut s1, org(&format!("客户{i:02}"), &format!("R{i}"))).await.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut inserted = 0;
    loop {
        let page = s1
            .list_customers(pb::ListCustomersRequest { page_size: 5, page_token: token.clone(), ..Default::default() })
            .await
            .expect("page")
            .into_inner();
        assert!(page.customers.len() <= 5);
        seen.extend(page.customers.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // New customers arrive between pages.
        if inserted < 4 {
            expected.insert(app.create(&mut s1, org(&format!("新客户{inserted}"), "NEW")).await.id);
            inserted += 1;
        }
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert_eq!(unique, expected, "every row, including those inserted meanwhile");

    // A token is bound to the filter it was issued for.
    let first = s1
        .list_customers(pb::ListCustomersRequest { page_size: 2, ..Default::default() })
        .await
        .expect("page")
        .into_inner();
    let err = s1
        .list_customers(pb::ListCustomersRequest {
            page_size: 2,
            page_token: first.next_page_token,
            region: "NEW".into(),
            ..Default::default()
        })
        .await
        .expect_err("other filter");
    assert_invalid(&err, "page_token");
    let err = s1
        .list_customers(pb::ListCustomersRequest { page_token: "garbage!".into(), ..Default::default() })
        .await
        .expect_err("garbage");
    assert_invalid(&err, "page_token");
}

#[tokio::test]
async fn page_size_is_capped_at_1000() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    for i in 0..3 {
        app.create(&mut s1, org(&format!("c{i}"), "R")).await;
    }
    let page = s1
        .list_customers(pb::ListCustomersRequest { page_size: 5000, ..Default::default() })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(page.customers.len(), 3);
    assert!(page.next_page_token.is_empty());
}

#[tokio::test]
async fn fuzzy_search_finds_chinese_names_phones_and_emails() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let gas = app
        .create(
            &mut s1,
            pb::Customer {
                legal_name: "北京市燃气集团有限责任公司".into(),
                phone: "13800138000".into(),
                ..org("北京燃气集团", "CN-BJ")
            },
        )
        .await;
    let water = app
        .create(
            &mut s1,
            pb::Customer {
                contacts: vec![pb::Contact {
                    name: "张三".into(),
                    email: "zhang@shwater.cn".into(),
                    ..Default::default()
                }],
                ..org("上海自来水公司", "CN-SH")
            },
        )
        .await;
    let abc = app.create(&mut s1, org("ABC Logistics", "CN-GD")).await;

    let search = |q: &str| pb::SearchCustomersRequest { query: q.to_string(), ..Default::default() };
    let top = |r: pb::SearchCustomersResponse| r.hits.first().and_then(|h| h.customer.as_ref()).map(|c| c.id.clone());

    for (q, want) in [
        ("北京燃气", &gas.id),               // substring
        ("燃气集团", &gas.id),               // middle of the name
        ("北京燃汽集团", &gas.id),           // a wrong character
        ("北京市燃气集团有限公司", &gas.id), // legal name, slightly different
        ("自来水", &water.id),
        ("13800138000", &gas.id),        // exact phone
        ("0013 8000", &gas.id),          // part of a phone
        ("ZHANG@shwater.cn", &water.id), // a contact's email
        ("ａｂｃ logistic", &abc.id),    // full-width, case, partial
    ] {
        let r = s1.search_customers(search(q)).await.expect("search").into_inner();
        assert_eq!(top(r).as_ref(), Some(want), "query {q:?}");
    }
    let none = s1.search_customers(search("不存在的名字")).await.expect("search").into_inner();
    assert!(none.hits.is_empty());

    let err = s1.search_customers(search("  ")).await.expect_err("empty");
    assert_invalid(&err, "query");
    let err = s1
        .search_customers(pb::SearchCustomersRequest { query: "燃气".into(), page_size: -3, ..Default::default() })
        .await
        .expect_err("negative");
    assert_invalid(&err, "page_size");
}

#[tokio::test]
async fn search_only_returns_customers_the_caller_may_see() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    app.create(&mut s1, org("北京燃气集团", "CN-BJ")).await;
    let q = pb::SearchCustomersRequest { query: "北京燃气".into(), page_size: 10, ..Default::default() };
    assert_eq!(s1.search_customers(q.clone()).await.expect("s1").into_inner().hits.len(), 1);
    assert!(s2.search_customers(q.clone()).await.expect("s2").into_inner().hits.is_empty());
    let mut other_branch = app.client(&[Role::SalesManager], "mgr-sh", Some("sh")).await;
    assert!(other_branch.search_customers(q.clone()).await.expect("sh").into_inner().hits.is_empty());
    let mut auditor = app.client(&[Role::Auditor], "audit", None).await;
    assert_eq!(auditor.search_customers(q).await.expect("auditor").into_inner().hits.len(), 1);
}

/// The stored read document is a cache of the tables: one that cannot be
/// read as this customer's (bytes written by a tool, another customer's
/// document copied over) is rebuilt from the tables and stored again, never
/// served and never an error.
#[tokio::test]
async fn an_unreadable_or_foreign_read_document_is_rebuilt_from_the_tables() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let a = app.create(&mut s1, org("杭州华润燃气有限公司", "CN-ZJ")).await;
    let b = app.create(&mut s1, org("宁波港华燃气有限公司", "CN-ZJ")).await;
    for junk in [
        "UPDATE customers.customers SET doc = '\\x0a1b2c3d' WHERE id = $1::uuid",
        "UPDATE customers.customers SET doc = (SELECT doc FROM customers.customers WHERE id = $2::uuid) \
         WHERE id = $1::uuid",
    ] {
        sqlx::query(junk).bind(&a.id).bind(&b.id).execute(&app.pool).await.expect("spoil the document");
        let got = s1.get_customer(pb::GetCustomerRequest { id: a.id.clone() }).await.expect("read").into_inner();
        let got = got.customer.expect("customer");
        assert_eq!((got.id.as_str(), got.display_name.as_str()), (a.id.as_str(), "杭州华润燃气有限公司"));
        let stored: Vec<u8> = sqlx::query_scalar("SELECT doc FROM customers.customers WHERE id = $1::uuid")
            .bind(&a.id)
            .fetch_one(&app.pool)
            .await
            .expect("doc");
        let stored = <pb::Customer as prost::Message>::decode(stored.as_slice()).expect("rebuilt document");
        assert_eq!(stored.id, a.id, "stored again");
    }
}
