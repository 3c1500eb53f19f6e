//! CreateCustomer: CUS-1 profile, CUS-2 duplicate detection, CUS-3 first
//! registration wins, CUS-9 referral.

use crm_proto::customers::v1 as pb;
use tonic::Code;

use crm_testkit::Role;

use crate::helpers::{App, assert_invalid, org, reason, rid};

fn full_profile() -> pb::Customer {
    pb::Customer {
        kind: pb::PartyKind::Organization as i32,
        display_name: " 北京燃气集团 ".into(),
        legal_name: "北京市燃气集团有限责任公司".into(),
        registration_number: "91110000-101234567X".into(),
        industry: "utilities".into(),
        size_band: pb::SizeBand::Large as i32,
        region: "CN-BJ".into(),
        summary: "城市燃气供应，覆盖朝阳、海淀。".into(),
        source_channel: pb::SourceChannel::TradeShow as i32,
        tags: vec!["燃气".into(), "key-account".into(), "燃气".into()],
        phone: "010-6552 1234".into(),
        email: "Info@BJGas.com.CN".into(),
        contacts: vec![pb::Contact {
            name: "王经理".into(),
            position: "采购部经理".into(),
            phones: vec!["138 0013 8000".into()],
            email: "wang@bjgas.com.cn".into(),
            decision_maker: true,
            ..Default::default()
        }],
        addresses: vec![pb::Address {
            kind: pb::AddressKind::HeadOffice as i32,
            province: "北京市".into(),
            city: "北京市".into(),
            district: "朝阳区".into(),
            street: "建国路 88 号".into(),
            postal_code: "100022".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn registers_a_full_profile_owned_by_the_salesperson() {
    let app = App::new().await;
    let mut sales = app.sales("s1").await;
    let resp = sales
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(full_profile()),
            confirm_not_duplicate: false,
        })
        .await
        .expect("create")
        .into_inner();
    assert!(resp.duplicate_candidates.is_empty());
    let c = resp.customer.expect("customer");
    assert_eq!(c.display_name, "北京燃气集团", "trimmed, Chinese kept as typed");
    assert_eq!(c.registration_number, "91110000101234567X");
    assert_eq!(c.phone, "+861065521234", "phones are stored in E.164");
    assert_eq!(c.email, "info@bjgas.com.cn");
    assert_eq!(c.tags, vec!["燃气".to_string(), "key-account".to_string()]);
    assert_eq!(c.owner_id, "s1", "CUS-3: the registrar owns the customer");
    assert_eq!(c.branch, "bj");
    assert_eq!(c.stage, pb::LifecycleStage::Prospect as i32);
    assert_eq!(c.grade, pb::DemandGrade::C as i32);
    assert_eq!(c.value_tier, pb::ValueTier::Potential as i32);
    assert_eq!(c.service_level, pb::ServiceLevel::General as i32);
    assert_eq!(c.contacts.len(), 1);
    assert_eq!(c.contacts[0].phones, vec!["+8613800138000".to_string()]);
    assert!(c.contacts[0].decision_maker);
    assert_eq!(c.addresses[0].district, "朝阳区");
    assert!(!c.etag.is_empty() && c.create_time.is_some());

    // What Get returns is what Create returned.
    assert_eq!(app.get(&c.id).await, c);
    assert_eq!(app.count("ownership_history").await, 1);
    assert_eq!(app.count("stage_history").await, 1);
}

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_is_written() {
    let app = App::new().await;
    let mut sales = app.sales("s1").await;
    let bad = pb::Customer {
        kind: 0,
        display_name: "   ".into(),
        registration_number: "12".into(),
        phone: "12345".into(),
        email: "not-an-email".into(),
        size_band: 99,
        tags: vec!["".into()],
        referred_by_customer_id: "nope".into(),
        contacts: vec![pb::Contact { name: "".into(), phones: vec!["x".into()], ..Default::default() }],
        addresses: vec![pb::Address { kind: 0, street: "".into(), ..Default::default() }],
        ..Default::default()
    };
    let err = sales
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(bad),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("invalid");
    for field in [
        "customer.kind",
        "customer.display_name",
        "customer.registration_number",
        "customer.phone",
        "customer.email",
        "customer.size_band",
        "customer.tags",
        "customer.referred_by_customer_id",
        "customer.contacts[0].name",
        "customer.contacts[0].phones",
    ] {
        assert_invalid(&err, field);
    }
    // An answer names at most 10 fields (X-4: bounded errors) and counts the rest.
    assert!(err.message().ends_with("; and 2 more"), "{}", err.message());
    let bad_address = pb::Customer {
        addresses: vec![pb::Address { kind: 0, street: "".into(), ..Default::default() }],
        ..org("北京燃气集团", "CN-BJ")
    };
    let err = sales
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(bad_address),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("invalid address");
    for field in ["customer.addresses[0].kind", "customer.addresses[0].street"] {
        assert_invalid(&err, field);
    }
    assert_eq!(app.count("customers").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);

    let missing = sales
        .create_customer(pb::CreateCustomerRequest { request_id: rid(), customer: None, confirm_not_duplicate: false })
        .await
        .expect_err("no customer");
    assert_invalid(&missing, "customer");
    let no_key = sales
        .create_customer(pb::CreateCustomerRequest {
            request_id: String::new(),
            customer: Some(org("甲", "CN-BJ")),
            confirm_not_duplicate: false,
        })
        .await
        .expect_err("no request id");
    assert_invalid(&no_key, "request_id");
    assert_eq!(app.count("customers").await, 0);
}

#[tokio::test]
async fn similar_names_are_reported_and_nothing_is_created_until_confirmed() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let first = app.create(&mut s1, full_profile()).await;

    let mut s2 = app.sales("s2").await;
    // A similar name in the same region, with a phone of its own.
    let again =
        pb::Customer {
            display_name: "北京燃气集团公司".into(), phone: "+86 10 6552 9999".into(), ..org("", "CN-BJ")
        };
    let key = rid();
    let resp = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: key.clone(),
            customer: Some(again.clone()),
            confirm_not_duplicate: false,
        })
        .await
        .expect("answered")
        .into_inner();
    assert!(resp.customer.is_none(), "nothing created");
    assert_eq!(resp.duplicate_candidates.len(), 1);
    let cand = &resp.duplicate_candidates[0];
    assert_eq!(cand.customer_id, first.id);
    assert_eq!(cand.owner_id, "s1");
    assert_eq!(cand.reasons, vec![pb::DuplicateReason::SimilarName as i32]);
    assert_eq!(app.count("customers").await, 1);

    // The same key may now be used with confirmation: nothing was kept.
    let created = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: key,
            customer: Some(again),
            confirm_not_duplicate: true,
        })
        .await
        .expect("confirmed")
        .into_inner();
    assert_eq!(created.customer.expect("created").owner_id, "s2");
    assert_eq!(app.count("customers").await, 2);
}

/// Issue 14 (CUS-2/CUS-3): the same phone is the same customer. The second
/// registration is refused, confirmed or not, naming the record and its
/// owner; the salesperson claims it and a sales manager decides.
#[tokio::test]
async fn an_identity_match_is_refused_and_claimed_and_a_manager_decides() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let first = app.create(&mut s1, full_profile()).await;
    let mut s2 = app.sales("s2").await;
    // The same phone typed differently, under another name.
    let again =
        pb::Customer {
            display_name: "燃气集团北京分部".into(), phone: "+86 10 6552 1234".into(), ..org("", "CN-BJ")
        };
    for confirm in [false, true] {
        let err = s2
            .create_customer(pb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(again.clone()),
                confirm_not_duplicate: confirm,
            })
            .await
            .expect_err("the same customer");
        assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "CUSTOMER_ALREADY_REGISTERED"));
        let info = tonic_types::StatusExt::get_details_error_info(&err).expect("info");
        assert_eq!(info.metadata.get("customer_id"), Some(&first.id));
        assert_eq!(info.metadata.get("owner_id").map(String::as_str), Some("s1"));
        assert_eq!(info.metadata.get("matched").map(String::as_str), Some("phone"));
        assert!(err.message().contains(&first.id) && err.message().contains("s1"), "{}", err.message());
    }
    // A contact's email is an identity too.
    let by_email = pb::Customer { email: "WANG@bjgas.com.cn".into(), ..org("完全不同的公司", "CN-SH") };
    let err = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(by_email),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("the same customer");
    assert_eq!(reason(&err), "CUSTOMER_ALREADY_REGISTERED");
    assert_eq!(app.count("customers").await, 1, "nothing created");

    // s2 claims it; a second claim while the first is pending is refused.
    let claim = |why: &str| pb::FileOwnershipClaimRequest {
        request_id: rid(),
        customer_id: first.id.clone(),
        reason: why.into(),
    };
    let filed =
        s2.file_ownership_claim(claim("上月已拜访并报价")).await.expect("claim").into_inner().claim.expect("claim");
    assert_eq!(
        (filed.state, filed.owner_id.as_str(), filed.claimant_id.as_str()),
        (pb::OwnershipClaimState::Pending as i32, "s1", "s2")
    );
    let err = s2.file_ownership_claim(claim("again")).await.expect_err("pending");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "CLAIM_PENDING"));
    assert!(err.message().contains(&filed.id), "{}", err.message());
    let err = s1.file_ownership_claim(claim("mine")).await.expect_err("own");
    assert_eq!(reason(&err), "CLAIM_OWN_CUSTOMER");
    let err = s2.file_ownership_claim(claim(" ")).await.expect_err("no reason");
    assert_invalid(&err, "reason");

    // Salespeople do not decide; the branch's sales manager does, with a reason.
    let decide = |grant: bool, why: &str| pb::DecideOwnershipClaimRequest {
        request_id: rid(),
        claim_id: filed.id.clone(),
        grant,
        reason: why.into(),
        etag: String::new(),
    };
    let err = s2.decide_ownership_claim(decide(true, "self-service")).await.expect_err("sales");
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut mgr = app.manager().await;
    let err = mgr.decide_ownership_claim(decide(true, "")).await.expect_err("no reason");
    assert_invalid(&err, "reason");
    assert_eq!(app.get(&first.id).await.owner_id, "s1", "nothing moved");

    // The claims are listed for the claimant and the manager, not for s1.
    let list = |c: &mut crate::helpers::Client| {
        let mut c = c.clone();
        async move {
            c.list_ownership_claims(pb::ListOwnershipClaimsRequest::default()).await.expect("list").into_inner().claims
        }
    };
    assert_eq!(list(&mut s2).await.len(), 1);
    assert_eq!(list(&mut mgr).await.len(), 1);
    assert!(list(&mut s1).await.is_empty());

    let decided = mgr
        .decide_ownership_claim(decide(true, "s2 的首次拜访在先"))
        .await
        .expect("grant")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!((decided.state, decided.decided_by.as_str()), (pb::OwnershipClaimState::Granted as i32, "mgr-bj"));
    let now = app.get(&first.id).await;
    assert_eq!(now.owner_id, "s2");
    s2.get_customer(pb::GetCustomerRequest { id: first.id.clone() }).await.expect("the new owner sees it");
    let err = mgr.decide_ownership_claim(decide(false, "changed my mind")).await.expect_err("decided");
    assert_eq!(reason(&err), "CLAIM_DECIDED");
    let history = mgr
        .list_ownership_history(pb::ListOwnershipHistoryRequest { customer_id: first.id.clone() })
        .await
        .expect("history")
        .into_inner()
        .records;
    let last = history.last().expect("the grant");
    assert_eq!(last.owner_id, "s2");
    assert!(last.reason.contains("s2 的首次拜访在先"), "{}", last.reason);
    assert!(last.first_contact_override, "s1 was in contact: the decision overrode it");
}

/// A rejected claim leaves the customer where it is.
#[tokio::test]
async fn a_rejected_claim_moves_nothing() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let first = app.create(&mut s1, full_profile()).await;
    let mut s2 = app.sales("s2").await;
    let filed = s2
        .file_ownership_claim(pb::FileOwnershipClaimRequest {
            request_id: rid(),
            customer_id: first.id.clone(),
            reason: "我也认识他们".into(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    let mut mgr = app.manager().await;
    let decided = mgr
        .decide_ownership_claim(pb::DecideOwnershipClaimRequest {
            request_id: rid(),
            claim_id: filed.id.clone(),
            grant: false,
            reason: "s1 登记在先且已联系".into(),
            etag: filed.etag.clone(),
        })
        .await
        .expect("reject")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(decided.state, pb::OwnershipClaimState::Rejected as i32);
    assert_eq!(app.get(&first.id).await.owner_id, "s1");
    let pending = mgr
        .list_ownership_claims(pb::ListOwnershipClaimsRequest {
            state: pb::OwnershipClaimState::Pending as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .claims;
    assert!(pending.is_empty());
    // A new claim may be filed once the first is decided.
    s2.file_ownership_claim(pb::FileOwnershipClaimRequest {
        request_id: rid(),
        customer_id: first.id.clone(),
        reason: "新的证据".into(),
    })
    .await
    .expect("a new claim");
}

#[tokio::test]
async fn duplicates_are_found_by_contact_email_and_by_width_folded_names() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    app.create(&mut s1, pb::Customer { display_name: "ＡＢＣ Logistics".into(), ..org("", "CN-SH") }).await;
    let mut c = org("Acme Trading", "CN-GD");
    c.contacts = vec![pb::Contact { name: "Li".into(), email: "li@acme.cn".into(), ..Default::default() }];
    app.create(&mut s1, c).await;

    let mut s2 = app.sales("s2").await;
    let by_name = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("abc logistics", "CN-SH")),
            confirm_not_duplicate: false,
        })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(by_name.duplicate_candidates.len(), 1, "full-width ＡＢＣ equals abc");

    let by_email = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer { email: "LI@acme.cn".into(), ..org("Totally Different Ltd", "CN-BJ") }),
            confirm_not_duplicate: false,
        })
        .await
        .expect_err("a contact's email is an identity (CUS-2)");
    assert_eq!(reason(&by_email), "CUSTOMER_ALREADY_REGISTERED");
    let info = tonic_types::StatusExt::get_details_error_info(&by_email).expect("info");
    assert_eq!(info.metadata.get("matched").map(String::as_str), Some("email"));

    // Same name in another region is not a duplicate.
    let other_region = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("ABC Logistics", "CN-BJ")),
            confirm_not_duplicate: false,
        })
        .await
        .expect("ok")
        .into_inner();
    assert!(other_region.customer.is_some());
}

#[tokio::test]
async fn the_first_registration_of_a_registration_number_wins() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let first = app.create(&mut s1, full_profile()).await;
    let mut s2 = app.sales("s2").await;
    let err = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer {
                registration_number: "91110000101234567x".into(),
                ..org("Another name", "CN-SH")
            }),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("already registered");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "CUSTOMER_ALREADY_REGISTERED");
    let info = tonic_types::StatusExt::get_details_error_info(&err).expect("info");
    assert_eq!(info.metadata.get("customer_id"), Some(&first.id));
    assert_eq!(info.metadata.get("owner_id").map(String::as_str), Some("s1"));
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn concurrent_registrations_of_one_registration_number_create_one_customer() {
    let app = App::new().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let mut client = app.sales(&format!("s{i}")).await;
        tasks.push(tokio::spawn(async move {
            client
                .create_customer(pb::CreateCustomerRequest {
                    request_id: rid(),
                    customer: Some(pb::Customer {
                        registration_number: "91310000MA1FL0000Q".into(),
                        ..org(&format!("公司{i}"), "CN-SH")
                    }),
                    confirm_not_duplicate: true,
                })
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists, "{e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn a_referral_must_name_an_existing_customer() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let referrer = app.create(&mut s1, org("推荐人公司", "CN-BJ")).await;
    let referred = app
        .create(&mut s1, pb::Customer { referred_by_customer_id: referrer.id.clone(), ..org("新客户", "CN-BJ") })
        .await;
    assert_eq!(referred.referred_by_customer_id, referrer.id);

    let err = s1
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer {
                referred_by_customer_id: uuid::Uuid::now_v7().to_string(),
                ..org("无推荐", "CN-BJ")
            }),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("unknown referrer");
    assert_invalid(&err, "customer.referred_by_customer_id");
    assert_eq!(app.count("customers").await, 2);
}

#[tokio::test]
async fn a_registration_number_match_wins_over_many_weaker_candidates() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let registered = app
        .create(&mut s1, pb::Customer { registration_number: "91440300MA5FAAAA1X".into(), ..org("深圳甲", "CN-GD") })
        .await;
    // Twelve records with a near-identical name, one of them with the phone:
    // more evidence than the registration number alone.
    for i in 0..12 {
        let phone = if i == 0 { "13700137000" } else { "" };
        app.create(&mut s1, pb::Customer { phone: phone.into(), ..org(&format!("广州物流{i}"), "CN-GD") }).await;
    }
    let mut s2 = app.sales("s2").await;
    let err = s2
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer {
                registration_number: "91440300MA5FAAAA1X".into(),
                phone: "13700137000".into(),
                ..org("广州物流", "CN-GD")
            }),
            confirm_not_duplicate: false,
        })
        .await
        .expect_err("registered");
    assert_eq!(err.code(), Code::AlreadyExists);
    let info = tonic_types::StatusExt::get_details_error_info(&err).expect("info");
    assert_eq!(info.metadata.get("customer_id"), Some(&registered.id));
}

#[tokio::test]
async fn a_customer_always_gets_a_branch() {
    let app = App::new().await;
    let mut admin = app.admin().await; // company-wide, no branch in the token
    let err = admin
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("无分公司", "CN-BJ")),
            confirm_not_duplicate: true,
        })
        .await
        .expect_err("no branch");
    assert_invalid(&err, "customer.branch");
    assert_eq!(app.count("customers").await, 0);
    let c = app
        .create(&mut admin, pb::Customer { branch: "sh".into(), owner_id: "s7".into(), ..org("有分公司", "CN-SH") })
        .await;
    assert_eq!((c.branch.as_str(), c.owner_id.as_str()), ("sh", "s7"));
}

#[tokio::test]
async fn no_likely_duplicate_is_missed_among_hundreds_of_similar_names_and_identity_ranks_first() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    // 400 gas companies in one region, all sharing 燃气; the real duplicate
    // is registered last (the old check kept the first 200 by id).
    let mut rows: Vec<pb::Customer> = (0..400)
        .map(|i| pb::Customer {
            branch: "hz".into(),
            ..org(&format!("杭州{}{}燃气有限公司", (b'A' + (i % 26) as u8) as char, i), "CN-ZJ")
        })
        .collect();
    rows.push(pb::Customer {
        branch: "hz".into(),
        phone: "13900139000".into(),
        ..org("华润燃气(杭州)有限公司", "CN-ZJ")
    });
    let options = pb::ImportOptions {
        request_id: rid(),
        duplicate_policy: pb::ImportDuplicatePolicy::Skip as i32,
        first_row_number: 1,
    };
    let r = crate::helpers::import(&mut admin, options, rows, 200).await.expect("import");
    assert_eq!(r.created, 401);
    let phone_twin = app
        .create(
            &mut admin,
            pb::Customer { branch: "hz".into(), phone: "13700137000".into(), ..org("西湖物业", "CN-ZJ") },
        )
        .await;

    let mut s1 = app.client(&[Role::SalesManager], "m-hz", Some("hz")).await;
    // The phone match is an identity: the same customer, refused whatever
    // the name (CUS-2), naming that record.
    let err = s1
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(pb::Customer {
                phone: "137 0013 7000".into(), ..org("杭州华润燃气有限公司", "CN-ZJ")
            }),
            confirm_not_duplicate: false,
        })
        .await
        .expect_err("identity");
    assert_eq!(reason(&err), "CUSTOMER_ALREADY_REGISTERED");
    let info = tonic_types::StatusExt::get_details_error_info(&err).expect("info");
    assert_eq!(info.metadata.get("customer_id"), Some(&phone_twin.id));
    let resp = s1
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("杭州华润燃气有限公司", "CN-ZJ")),
            confirm_not_duplicate: false,
        })
        .await
        .expect("answered")
        .into_inner();
    assert!(resp.customer.is_none());
    let names: Vec<&str> = resp.duplicate_candidates.iter().map(|d| d.display_name.as_str()).collect();
    // Only the similar name; none of the 400 other gas companies is similar enough.
    assert_eq!(names, ["华润燃气(杭州)有限公司"], "{:?}", resp.duplicate_candidates);
    assert_eq!(resp.duplicate_candidates[0].reasons, [pb::DuplicateReason::SimilarName as i32]);
    assert!(resp.duplicate_candidates[0].name_similarity >= 0.99);
    // In another region the same name is not a likely duplicate.
    let elsewhere = s1
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(org("华润燃气有限公司", "CN-SH")),
            confirm_not_duplicate: false,
        })
        .await
        .expect("answered")
        .into_inner();
    assert!(elsewhere.customer.is_some(), "{:?}", elsewhere.duplicate_candidates);
}

/// The index of name grams follows the changes that decide who is a likely
/// duplicate (CUS-2): a customer moved to another region is compared there,
/// a merged-away record is no candidate any more.
#[tokio::test]
async fn similar_names_are_compared_in_the_region_a_customer_is_in_now() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let probe = |region: &str| pb::CreateCustomerRequest {
        request_id: rid(),
        customer: Some(org("华润燃气(分部)", region)),
        confirm_not_duplicate: false,
    };
    let candidates = |r: pb::CreateCustomerResponse| -> Vec<String> {
        assert!(r.customer.is_none() || r.duplicate_candidates.is_empty());
        r.duplicate_candidates.into_iter().map(|d| d.customer_id).collect()
    };
    let a = app.create(&mut s1, org("杭州华润燃气有限公司", "CN-ZJ")).await;
    let b = app.create(&mut s1, org("宁波华润燃气有限公司", "CN-SH")).await;
    let found = candidates(s1.create_customer(probe("CN-ZJ")).await.expect("probe").into_inner());
    assert_eq!(found, vec![a.id.clone()]);

    // b moves to Zhejiang: now both are candidates there.
    let etag = app.get(&b.id).await.etag;
    s1.update_customer(pb::UpdateCustomerRequest {
        request_id: rid(),
        customer: Some(pb::Customer { id: b.id.clone(), region: "CN-ZJ".into(), ..Default::default() }),
        update_mask: crate::helpers::mask(&["region"]),
        etag,
    })
    .await
    .expect("move");
    let mut found = candidates(s1.create_customer(probe("CN-ZJ")).await.expect("probe").into_inner());
    found.sort();
    let mut both = vec![a.id.clone(), b.id.clone()];
    both.sort();
    assert_eq!(found, both);
    assert!(candidates(s1.create_customer(probe("CN-SH")).await.expect("probe").into_inner()).is_empty());

    // Merged away: only the survivor is left to compare with.
    let mut mgr = app.manager().await;
    mgr.merge_customers(crate::helpers::merge(&a.id, &b.id)).await.expect("merge");
    let found = candidates(s1.create_customer(probe("CN-ZJ")).await.expect("probe").into_inner());
    assert_eq!(found, vec![a.id.clone()]);
    // Only the probe in Shanghai, which found no candidate, registered.
    assert_eq!(app.count("customers").await, 3);
}
