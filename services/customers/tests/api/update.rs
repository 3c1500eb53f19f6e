//! UpdateCustomer: field masks, etags, validation, CUS-3 uniqueness on update.

use crm_proto::customers::v1 as pb;
use tonic::Code;

use crate::helpers::{App, assert_invalid, mask, org, reason, rid};

fn update(id: &str, c: pb::Customer, paths: &[&str], etag: &str) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest {
        request_id: rid(),
        customer: Some(pb::Customer { id: id.to_string(), ..c }),
        update_mask: mask(paths),
        etag: etag.to_string(),
    }
}

#[tokio::test]
async fn changes_only_the_masked_fields_and_moves_the_etag() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, pb::Customer { industry: "gas".into(), ..org("甲公司", "CN-BJ") }).await;
    let changes = pb::Customer {
        display_name: "甲燃气有限公司".into(),
        phone: "+86 139 0013 9000".into(),
        tags: vec!["重点".into()],
        industry: "ignored: not in the mask".into(),
        size_band: pb::SizeBand::Medium as i32,
        ..Default::default()
    };
    let updated = s1
        .update_customer(update(&c.id, changes, &["display_name", "phone", "tags", "size_band"], &c.etag))
        .await
        .expect("update")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(updated.display_name, "甲燃气有限公司");
    assert_eq!(updated.phone, "+8613900139000");
    assert_eq!(updated.tags, vec!["重点".to_string()]);
    assert_eq!(updated.size_band, pb::SizeBand::Medium as i32);
    assert_eq!(updated.industry, "gas");
    assert_ne!(updated.etag, c.etag);
    assert_eq!(app.get(&c.id).await, updated);

    // Clearing an optional field.
    let cleared = s1
        .update_customer(update(&c.id, pb::Customer::default(), &["phone", "size_band"], ""))
        .await
        .expect("clear")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(cleared.phone, "");
    assert_eq!(cleared.size_band, 0);
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_changes_nothing() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "CN-BJ")).await;
    s1.update_customer(update(
        &c.id,
        pb::Customer { summary: "v2".into(), ..Default::default() },
        &["summary"],
        &c.etag,
    ))
    .await
    .expect("first writer");
    let before = app.get(&c.id).await;
    let err = s1
        .update_customer(update(
            &c.id,
            pb::Customer { summary: "v3".into(), ..Default::default() },
            &["summary"],
            &c.etag,
        ))
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "STALE_ETAG");
    assert_eq!(app.get(&c.id).await, before);
}

#[tokio::test]
async fn masks_must_name_known_profile_fields() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "CN-BJ")).await;
    for (paths, field) in [
        (vec![], "update_mask"),
        (vec!["nonsense"], "update_mask"),
        (vec!["owner_id"], "update_mask"),
        (vec!["stage"], "update_mask"),
        (vec!["grade"], "update_mask"),
        (vec!["id"], "update_mask"),
    ] {
        let err = s1.update_customer(update(&c.id, pb::Customer::default(), &paths, "")).await.expect_err("bad mask");
        assert_invalid(&err, field);
    }
    let err = s1
        .update_customer(update(
            &c.id,
            pb::Customer { display_name: " ".into(), email: "x@".into(), ..Default::default() },
            &["display_name", "email"],
            "",
        ))
        .await
        .expect_err("bad values");
    assert_invalid(&err, "customer.display_name");
    assert_invalid(&err, "customer.email");
    let err =
        s1.update_customer(update("not-a-uuid", pb::Customer::default(), &["summary"], "")).await.expect_err("bad id");
    assert_invalid(&err, "customer.id");
    let err = s1
        .update_customer(update(&uuid::Uuid::now_v7().to_string(), pb::Customer::default(), &["summary"], ""))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.get(&c.id).await, c, "nothing changed");
    assert_eq!(app.count("idempotency_keys").await, 1, "only the create's key");
}

#[tokio::test]
async fn registration_number_and_referral_rules_hold_on_update() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let a = app
        .create(&mut s1, pb::Customer { registration_number: "91110000AAAA00001X".into(), ..org("甲", "CN-BJ") })
        .await;
    let b = app.create(&mut s1, org("乙", "CN-SH")).await;
    let err = s1
        .update_customer(update(
            &b.id,
            pb::Customer { registration_number: "91110000AAAA00001X".into(), ..Default::default() },
            &["registration_number"],
            "",
        ))
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "CUSTOMER_ALREADY_REGISTERED");
    let err = s1
        .update_customer(update(
            &b.id,
            pb::Customer { referred_by_customer_id: b.id.clone(), ..Default::default() },
            &["referred_by_customer_id"],
            "",
        ))
        .await
        .expect_err("self referral");
    assert_invalid(&err, "customer.referred_by_customer_id");
    let ok = s1
        .update_customer(update(
            &b.id,
            pb::Customer { referred_by_customer_id: a.id.clone(), ..Default::default() },
            &["referred_by_customer_id"],
            "",
        ))
        .await
        .expect("referral")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(ok.referred_by_customer_id, a.id);
    assert_eq!(app.get(&b.id).await.registration_number, "");
}

#[tokio::test]
async fn a_terminated_customer_is_kept_unchanged() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲", "CN-BJ")).await;
    // Termination is a later process (CUS-11); put the row in that state directly.
    sqlx::query("UPDATE customers.customers SET stage = 'terminated' WHERE id = $1::uuid")
        .bind(&c.id)
        .execute(&app.pool)
        .await
        .expect("terminate");
    let before = app.get(&c.id).await;
    let err = s1
        .update_customer(update(&c.id, pb::Customer { summary: "x".into(), ..Default::default() }, &["summary"], ""))
        .await
        .expect_err("terminated");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "CUSTOMER_TERMINATED");
    assert_eq!(app.get(&c.id).await, before);
}
