//! SearchCustomers (CUS-1, CUS-13) on realistic Chinese data: name parts,
//! one wrong character, pinyin in full and by initials, phone and email
//! fragments of customers and their contacts, ranking, pages and scopes.

use crm_proto::customers::v1 as pb;
use crm_testkit::Role;

use crate::helpers::{App, Client, assert_invalid, company, import, import_options, mask, rid};

/// Many gas companies, so that a typo has lookalikes to lose against.
async fn gas_book(app: &App) -> Vec<pb::Customer> {
    let cities = ["杭州", "宁波", "温州", "绍兴", "嘉兴", "湖州"];
    let brands = ["华能", "华油", "华新", "中燃", "港华", "新奥", "昆仑", "天然", "长江", "东方"];
    let mut rows = Vec::new();
    for (i, city) in cities.iter().enumerate() {
        for (j, brand) in brands.iter().enumerate() {
            rows.push(company(
                &format!("{city}{brand}燃气有限公司"),
                "CN-ZJ",
                &format!("0571-8{i}{j}0 {i}{j}00"),
                "hz",
            ));
        }
    }
    rows.push(pb::Customer {
        legal_name: "杭州华润燃气有限公司".into(),
        email: "service@hzgas.com.cn".into(),
        contacts: vec![pb::Contact {
            name: "王经理".into(),
            phones: vec!["138 1234 5678".into()],
            email: "wang.li@crgas.cn".into(),
            ..Default::default()
        }],
        ..company("华润燃气", "CN-ZJ", "0571-8888 6666", "hz")
    });
    let mut admin = app.admin().await;
    let r =
        import(&mut admin, import_options(pb::ImportDuplicatePolicy::Report), rows.clone(), 100).await.expect("import");
    assert_eq!(r.created as usize, rows.len(), "{r:?}");
    rows
}

async fn search(c: &mut Client, q: &str) -> Vec<(String, f64)> {
    c.search_customers(pb::SearchCustomersRequest { query: q.to_string(), page_size: 20, ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("search {q}: {e:?}"))
        .into_inner()
        .hits
        .into_iter()
        .map(|h| (h.customer.map(|c| c.display_name).unwrap_or_default(), h.score))
        .collect()
}

fn top5(hits: &[(String, f64)]) -> Vec<&str> {
    hits.iter().take(5).map(|h| h.0.as_str()).collect()
}

#[tokio::test]
async fn a_typo_pinyin_and_name_parts_find_the_company() {
    let app = App::new().await;
    gas_book(&app).await;
    let mut admin = app.admin().await;
    for q in
        ["华润", "华润燃气", "华闰燃气", "化润燃气", "华润燃汽", "huarun", "hrrq", "HuaRun", "ｈｒｒｑ", "huarunranqi"]
    {
        let hits = search(&mut admin, q).await;
        assert!(top5(&hits).contains(&"华润燃气"), "{q}: {hits:?}");
    }
    // The exact name ranks first; the lookalikes come later or not at all.
    let hits = search(&mut admin, "华润燃气").await;
    assert_eq!(hits[0].0, "华润燃气");
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {hits:?}");
    assert!(search(&mut admin, "不存在的公司").await.is_empty());
}

#[tokio::test]
async fn phones_and_emails_of_customers_and_contacts_are_found_by_their_parts() {
    let app = App::new().await;
    gas_book(&app).await;
    let mut admin = app.admin().await;
    for q in [
        "13812345678",    // a contact's mobile, whole
        "138 1234",       // its first digits
        "5678",           // its last digits
        "0571-8888 6666", // the customer's landline, whole
        "8888 6666",      // the local number
        "wang.li@crgas.cn",
        "WANG.LI@",  // the start of an address
        "@crgas.cn", // its domain
        "hzgas.com.cn",
    ] {
        let hits = search(&mut admin, q).await;
        assert_eq!(hits.first().map(|h| h.0.as_str()), Some("华润燃气"), "{q}: {hits:?}");
    }
    assert_eq!(search(&mut admin, "13812345678").await[0].1, 1.0, "a whole number is a perfect match");
}

#[tokio::test]
async fn results_come_in_pages_without_repeats_or_gaps() {
    let app = App::new().await;
    let rows = gas_book(&app).await;
    let mut admin = app.admin().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = admin
            .search_customers(pb::SearchCustomersRequest { query: "燃气".into(), page_size: 7, page_token: token })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.hits.len() <= 7);
        seen.extend(page.hits.iter().map(|h| (h.customer.as_ref().map(|c| c.id.clone()).unwrap_or_default(), h.score)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), rows.len(), "every gas company once");
    assert_eq!(pages, rows.len().div_ceil(7));
    let mut ids: Vec<&String> = seen.iter().map(|s| &s.0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "no repeats");
    assert!(seen.windows(2).all(|w| w[0].1 >= w[1].1), "ranked across pages");

    // A token belongs to its query.
    let first = admin
        .search_customers(pb::SearchCustomersRequest {
            query: "燃气".into(), page_size: 7, page_token: String::new()
        })
        .await
        .expect("page")
        .into_inner();
    let err = admin
        .search_customers(pb::SearchCustomersRequest {
            query: "华润".into(),
            page_size: 7,
            page_token: first.next_page_token,
        })
        .await
        .expect_err("other query");
    assert_invalid(&err, "page_token");
}

#[tokio::test]
async fn every_scope_sees_only_its_customers() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    app.create(&mut s1, company("杭州华润燃气有限公司", "CN-ZJ", "", "")).await;
    app.create(&mut s2, company("宁波华润燃气有限公司", "CN-ZJ", "", "")).await;
    let mut sh_manager = app.client(&[Role::BranchManager], "bm-sh", Some("sh")).await;
    let mut bj_manager = app.client(&[Role::BranchManager], "bm-bj", Some("bj")).await;
    assert_eq!(search(&mut s1, "华润燃气").await.len(), 1);
    assert_eq!(search(&mut s1, "hrrq").await.len(), 1);
    assert_eq!(search(&mut bj_manager, "华润燃气").await.len(), 2);
    assert!(search(&mut sh_manager, "华润燃气").await.is_empty());
    let mut auditor = app.client(&[Role::Auditor], "audit", None).await;
    assert_eq!(search(&mut auditor, "华润").await.len(), 2);
}

/// The term index follows every change that decides who finds a customer:
/// a new owner or branch (CUS-13 scope), a new name, a merge (CUS-2: the
/// merged-away record is found no more), with nothing left behind.
#[tokio::test]
async fn search_follows_reassignment_renaming_and_merging() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let mut s2 = app.sales("s2").await;
    let a = app.create(&mut s1, company("杭州华润燃气有限公司", "CN-ZJ", "", "")).await;
    let b = app
        .create(
            &mut s1,
            pb::Customer {
                legal_name: "宁波新港物流有限公司".into(), ..company("新港物流", "CN-ZJ", "", "")
            },
        )
        .await;
    assert_eq!(search(&mut s1, "华润燃气").await.len(), 1);
    assert!(search(&mut s2, "华润燃气").await.is_empty());

    let mut mgr = app.manager().await;
    mgr.assign_owner(pb::AssignOwnerRequest {
        request_id: rid(),
        customer_id: a.id.clone(),
        owner_id: "s2".into(),
        branch: String::new(),
        reason: "territory change".into(),
        etag: String::new(),
        override_first_contact_window: true,
    })
    .await
    .expect("assign");
    assert!(search(&mut s1, "华润燃气").await.is_empty(), "the old owner no longer finds it");
    assert_eq!(search(&mut s2, "hrrq").await.len(), 1, "the new owner does");

    let etag = app.get(&b.id).await.etag;
    s1.update_customer(pb::UpdateCustomerRequest {
        request_id: rid(),
        customer: Some(pb::Customer {
            id: b.id.clone(), display_name: "宁波新奥物流".into(), ..Default::default()
        }),
        update_mask: mask(&["display_name"]),
        etag,
    })
    .await
    .expect("rename");
    assert_eq!(search(&mut s1, "新奥").await.len(), 1, "found by its new name");
    assert_eq!(search(&mut s1, "新港").await.len(), 1, "and by its legal name, unchanged");

    let mut admin = app.admin().await;
    assert_eq!(search(&mut admin, "新港物流").await.len(), 1);
    mgr.merge_customers(crate::helpers::merge(&a.id, &b.id)).await.expect("merge");
    // The survivor took the legal name it lacked; the merged record is gone.
    let hits = search(&mut admin, "新港物流").await;
    assert_eq!(top5(&hits), ["杭州华润燃气有限公司"], "{hits:?}");
    assert_eq!(search(&mut admin, "华润燃气").await.len(), 1, "the survivor is still found");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM customers.search_terms WHERE customer_id = $1::uuid")
        .bind(&b.id)
        .fetch_one(&app.pool)
        .await
        .expect("terms");
    assert_eq!(left, 0, "a merged-away record keeps no terms");
}

#[tokio::test]
async fn bad_queries_are_refused() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    for (q, size, token, field) in [
        ("华", 0, "", "query"),
        (" ", 0, "", "query"),
        ("华润", -1, "", "page_size"),
        ("华润", 0, "garbage", "page_token"),
    ] {
        let err = admin
            .search_customers(pb::SearchCustomersRequest { query: q.into(), page_size: size, page_token: token.into() })
            .await
            .expect_err("refused");
        assert_invalid(&err, field);
    }
    let long = "燃".repeat(101);
    let err = admin
        .search_customers(pb::SearchCustomersRequest { query: long, ..Default::default() })
        .await
        .expect_err("too long");
    assert_invalid(&err, "query");
}

#[tokio::test]
async fn rows_from_an_older_release_are_reindexed_and_then_found() {
    let app = App::new().await;
    gas_book(&app).await;
    // As if written before search terms existed.
    sqlx::query("UPDATE customers.customers SET search_grams = '{}', search_text = '', search_version = 0")
        .execute(&app.pool)
        .await
        .expect("age the rows");
    let mut admin = app.admin().await;
    assert!(search(&mut admin, "华润").await.is_empty());
    let mut done = 0;
    loop {
        let n = crm_customers::store::reindex_batch(&app.pool, 25).await.expect("reindex");
        if n == 0 {
            break;
        }
        done += n;
    }
    assert_eq!(done, 61);
    assert_eq!(search(&mut admin, "华闰燃气").await.first().map(|h| h.0.as_str()), Some("华润燃气"));
    // Re-indexing is not a change of the customer: nothing in the trail.
    let updates: i64 = sqlx::query_scalar("SELECT count(*) FROM customers.audit_log WHERE operation = 'update'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(updates, 0);
}
