//! ImportCustomers (CUS-14): rows checked as registrations, bad rows reported
//! by row and field without stopping good ones, duplicates skipped or
//! reported, rights checked per row, and a re-sent import creating nothing
//! twice.

use crm_proto::customers::v1 as pb;
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, assert_invalid, company, import, import_options, reason, rid};

fn book(n: usize) -> Vec<pb::Customer> {
    (0..n).map(|i| company(&format!("杭州第{i}燃气有限公司"), "CN-ZJ", &format!("138{i:08}"), "hz")).collect()
}

#[tokio::test]
async fn good_rows_are_created_and_bad_rows_reported_by_row_and_field() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let mut rows = book(5);
    rows[1].display_name = String::new(); // row 3: no name
    rows[3].phone = "12".into(); // row 5: a phone that is none
    rows[3].email = "not-an-email".into();
    let r = import(&mut admin, import_options(pb::ImportDuplicatePolicy::Skip), rows, 2).await.expect("imported");
    assert_eq!((r.rows, r.created, r.invalid, r.duplicates), (5, 3, 2, 0));
    let errors: Vec<(i64, &str)> = r.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(errors, [(3, "customer.display_name"), (5, "customer.phone"), (5, "customer.email")]);
    assert_eq!(r.error_count, 3);
    assert_eq!(app.count("customers").await, 3);
    // What was created is a customer like any other: found, read, audited.
    let names: Vec<String> = sqlx::query_scalar("SELECT display_name FROM customers.customers ORDER BY import_row")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(names, ["杭州第0燃气有限公司", "杭州第2燃气有限公司", "杭州第4燃气有限公司"]);
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers.outbox WHERE event_type = 'customer.registered'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(registered, 3);
    let inserts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customers.audit_log WHERE action = 'ImportCustomers' AND operation = 'insert' \
         AND table_name = 'customers' AND actor = 'admin'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(inserts, 3);
    let hits = admin
        .search_customers(pb::SearchCustomersRequest { query: "第2燃气".into(), ..Default::default() })
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(
        hits.first().and_then(|h| h.customer.as_ref()).map(|c| c.display_name.as_str()),
        Some("杭州第2燃气有限公司")
    );
}

#[tokio::test]
async fn a_re_sent_import_creates_nothing_twice() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let options = import_options(pb::ImportDuplicatePolicy::Report);
    let first = import(&mut admin, options.clone(), book(1_200), 300).await.expect("first send");
    assert_eq!(first.created, 1_200);
    let again = import(&mut admin, options.clone(), book(1_200), 300).await.expect("re-sent");
    assert_eq!(again.created, 1_200, "the summary is the import's, replayed");
    assert_eq!(again.duplicates, 0);
    assert_eq!(again.already_settled, 1_200, "every re-sent row was settled by the first send");
    assert_eq!(app.count("customers").await, 1_200);
}

#[tokio::test]
async fn an_interrupted_import_resumes_where_it_stopped() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let options = import_options(pb::ImportDuplicatePolicy::Report);
    // The client goes away after sending 1500 rows: the first batch of 1000
    // is in, the next 500 were still being gathered.
    let rows = book(2_500);
    let mut messages = vec![pb::ImportCustomersRequest { options: Some(options.clone()), customers: vec![] }];
    for chunk in rows[..1_500].chunks(500) {
        messages.push(pb::ImportCustomersRequest { options: None, customers: chunk.to_vec() });
    }
    let mut cut_client = admin.clone();
    let call = tokio::spawn(async move {
        use tokio_stream::StreamExt;
        cut_client.import_customers(tokio_stream::iter(messages).chain(tokio_stream::pending())).await
    });
    let started = std::time::Instant::now();
    while app.count("customers").await < 1_000 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the first batch was not written");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    call.abort();
    let _ = call.await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.count("customers").await, 1_000, "whole batches only");
    // The same import sent again, from the start.
    let done = import(&mut admin, options, rows, 500).await.expect("resumed");
    assert_eq!(done.already_settled, 1_000);
    assert_eq!(done.created, 2_500);
    assert_eq!(done.rows, 2_500);
    assert_eq!(app.count("customers").await, 2_500);
    let distinct_rows: i64 = sqlx::query_scalar("SELECT count(DISTINCT import_row) FROM customers.customers")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(distinct_rows, 2_500);
}

#[tokio::test]
async fn duplicates_of_registered_customers_and_of_earlier_rows_are_skipped_or_reported() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let existing = app.create(&mut admin, company("杭州华润燃气有限公司", "CN-ZJ", "0571-8888 1234", "hz")).await;
    let rows = vec![
        company("华润燃气(杭州)", "CN-ZJ", "+86 571 8888 1234", "hz"), // row 2: the registered customer's phone
        company("杭州天然气", "CN-ZJ", "13900139000", "hz"),           // row 3: new
        company("杭州天然气公司", "CN-ZJ", "139 0013 9000", "hz"),     // row 4: repeats row 3
        pb::Customer { registration_number: "91330100MA2A".into(), ..company("余杭水务", "CN-ZJ", "", "hz") }, // row 5
        pb::Customer {
            registration_number: "91330100-MA2A".into(), ..company("余杭水务集团", "CN-ZJ", "", "hz")
        }, // row 6
    ];
    let skip =
        import(&mut admin, import_options(pb::ImportDuplicatePolicy::Skip), rows.clone(), 10).await.expect("skip");
    assert_eq!((skip.created, skip.duplicates), (2, 3));
    assert!(skip.duplicate_rows.is_empty(), "SKIP counts but does not list");
    assert_eq!(app.count("customers").await, 3);

    let report = import(&mut admin, import_options(pb::ImportDuplicatePolicy::Report), rows, 10).await.expect("report");
    assert_eq!((report.created, report.duplicates), (0, 5), "everything is there now");
    let first = &report.duplicate_rows[0];
    assert_eq!((first.row, first.customer_id.as_str()), (2, existing.id.as_str()));
    assert_eq!(first.reasons, [pb::DuplicateReason::Phone as i32]);
    let reg = report.duplicate_rows.iter().find(|d| d.row == 6).expect("row 6");
    assert!(reg.reasons.contains(&(pb::DuplicateReason::RegistrationNumber as i32)));
    assert_eq!(app.count("customers").await, 3);
}

#[tokio::test]
async fn rows_are_owned_as_the_importer_may_register_them() {
    let app = App::new().await;
    // A sales manager of branch bj may import for bj only.
    let mut manager = app.manager().await;
    let rows = vec![
        company("北京燃气集团", "CN-BJ", "010-6552 1234", ""), // row 2: defaults to bj
        company("上海燃气", "CN-SH", "021-6555 1234", "sh"),   // row 3: another branch
        pb::Customer { owner_id: "s9".into(), ..company("北京热力", "CN-BJ", "", "bj") }, // row 4: owned by s9
    ];
    let r = import(&mut manager, import_options(pb::ImportDuplicatePolicy::Skip), rows, 10).await.expect("imported");
    assert_eq!((r.created, r.invalid), (2, 1));
    assert_eq!((r.errors[0].row, r.errors[0].field.as_str()), (3, "customer.branch"));
    let owners: Vec<(String, String)> =
        sqlx::query_as("SELECT owner_id, branch FROM customers.customers ORDER BY import_row")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(owners, [("mgr-bj".to_string(), "bj".to_string()), ("s9".to_string(), "bj".to_string())]);

    // A salesperson may not import at all.
    let mut sales = app.sales("s1").await;
    let err =
        import(&mut sales, import_options(pb::ImportDuplicatePolicy::Skip), book(1), 1).await.expect_err("denied");
    assert_eq!(err.code(), Code::PermissionDenied);
    // A manager whose token names no branch is refused once, for the call.
    let mut lost = app.client(&[Role::SalesManager], "mgr-none", None).await;
    let err =
        import(&mut lost, import_options(pb::ImportDuplicatePolicy::Skip), book(3), 1).await.expect_err("no branch");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "BRANCH_REQUIRED");
    assert_eq!(app.count("customers").await, 2);
}

#[tokio::test]
async fn bad_options_are_refused_and_change_nothing() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    // No options in the first message.
    let err = admin
        .import_customers(tokio_stream::iter(vec![pb::ImportCustomersRequest { options: None, customers: book(1) }]))
        .await
        .expect_err("no options");
    assert_invalid(&err, "options");
    // Options again in a later message: refused, and the import leaves no trace.
    let opts = import_options(pb::ImportDuplicatePolicy::Skip);
    let err = admin
        .import_customers(tokio_stream::iter(vec![
            pb::ImportCustomersRequest { options: Some(opts.clone()), customers: book(2) },
            pb::ImportCustomersRequest { options: Some(opts), customers: vec![] },
        ]))
        .await
        .expect_err("options twice");
    assert_invalid(&err, "options");
    assert_eq!(app.count("imports").await, 0, "a refused import registers nothing");
    let mut options = import_options(pb::ImportDuplicatePolicy::Unspecified);
    let err = import(&mut admin, options.clone(), book(1), 1).await.expect_err("no policy");
    assert_invalid(&err, "options.duplicate_policy");
    options.duplicate_policy = pb::ImportDuplicatePolicy::Skip as i32;
    options.request_id = "not-a-uuid".into();
    let err = import(&mut admin, options.clone(), book(1), 1).await.expect_err("bad id");
    assert_invalid(&err, "options.request_id");
    // A request id already used by an import with other options.
    options.request_id = rid();
    import(&mut admin, options.clone(), book(1), 1).await.expect("first");
    // first_row_number 0 and 1 are the same import (rows start at 1)...
    let mut same = options.clone();
    same.request_id = rid();
    same.first_row_number = 0;
    import(&mut admin, same.clone(), book(1), 1).await.expect("first of another import");
    same.first_row_number = 1;
    let replayed = import(&mut admin, same, book(1), 1).await.expect("0 and 1 are the same options");
    assert_eq!(replayed.already_settled, 1);
    // ...but another first row is another import.
    let mut changed = options.clone();
    changed.first_row_number = options.first_row_number + 1;
    let err = import(&mut admin, changed, book(2), 1).await.expect_err("reused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
    // Nor may another principal send the same import.
    let mut other = app.client(&[Role::Admin], "admin-2", None).await;
    let err = import(&mut other, options, book(2), 1).await.expect_err("someone else's import");
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
    assert_eq!(app.count("customers").await, 1, "the other import's row was a duplicate of the first");
}
