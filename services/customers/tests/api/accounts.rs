//! CUS-10 satisfaction surveys and CUS-12 key-account plans over gRPC.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use crm_proto::{common::v1 as common, customers::v1 as pb};
use tonic::Code;

use crate::helpers::{App, assert_invalid, org, reason, rid};

fn d(date: NaiveDate) -> common::Date {
    common::Date { year: date.year(), month: date.month() as i32, day: date.day() as i32 }
}

async fn classify(app: &App, id: &str, tier: pb::ValueTier) {
    app.manager()
        .await
        .set_classification(pb::SetClassificationRequest {
            request_id: rid(),
            customer_id: id.into(),
            grade: None,
            value_tier: Some(tier as i32),
            service_level: None,
            reason: "test".into(),
            etag: String::new(),
        })
        .await
        .expect("classify");
}

#[tokio::test]
async fn satisfaction_is_the_share_of_satisfied_answers_against_the_target_with_its_trend() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let vip = app.create(&mut s1, org("大客户", "R")).await;
    let small = app.create(&mut s1, org("小客户", "R")).await;
    classify(&app, &vip.id, pb::ValueTier::Vip).await;
    let today = Utc::now().date_naive();
    let answer = |c: &str, score: i32, days_ago: i64| pb::RecordSurveyRequest {
        request_id: rid(),
        answer: Some(pb::SurveyAnswer {
            customer_id: c.into(),
            score,
            channel: "phone".into(),
            answer_date: Some(d(today - Duration::days(days_ago))),
            comments: "服务及时".into(),
            ..Default::default()
        }),
    };
    // This month (last 10 days): 3 of 4 satisfied; the 10 days before: 1 of 2.
    for (c, score, ago) in
        [(&vip.id, 5, 1), (&vip.id, 4, 2), (&small.id, 2, 3), (&small.id, 5, 4), (&vip.id, 5, 12), (&small.id, 1, 15)]
    {
        s1.record_survey(answer(c, score, ago)).await.expect("record");
    }
    let period = pb::GetSatisfactionRequest {
        start_date: Some(d(today - Duration::days(9))),
        end_date: Some(d(today)),
        value_tier: 0,
    };
    let mut mgr = app.manager().await;
    let r = mgr.get_satisfaction(period).await.expect("report").into_inner();
    assert_eq!((r.answers, r.satisfied), (4, 3));
    assert!((r.satisfaction_rate - 0.75).abs() < 1e-9);
    assert!((r.previous_satisfaction_rate - 0.5).abs() < 1e-9);
    assert!((r.trend - 0.25).abs() < 1e-9);
    let year = today.year();
    assert!((r.target_rate - (0.95 + 0.005 * f64::from(year - 2026))).abs() < 1e-9);
    assert!(!r.meets_target);
    let vip_only = mgr
        .get_satisfaction(pb::GetSatisfactionRequest { value_tier: pb::ValueTier::Vip as i32, ..period })
        .await
        .expect("vip")
        .into_inner();
    assert_eq!((vip_only.answers, vip_only.satisfied), (2, 2));
    assert!(vip_only.meets_target);

    let err = s1
        .record_survey(pb::RecordSurveyRequest {
            request_id: rid(),
            answer: Some(pb::SurveyAnswer {
                customer_id: vip.id.clone(),
                score: 6,
                answer_date: Some(d(today + Duration::days(3))),
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad");
    assert_invalid(&err, "answer.score");
    assert_invalid(&err, "answer.answer_date");
    let err = mgr
        .get_satisfaction(pb::GetSatisfactionRequest {
            start_date: Some(d(today)),
            end_date: Some(d(today - Duration::days(1))),
            value_tier: 0,
        })
        .await
        .expect_err("backwards");
    assert_invalid(&err, "end_date");
    assert_eq!(app.count("surveys").await, 6);
}

#[tokio::test]
async fn key_accounts_get_an_annual_plan_that_moves_through_the_contract_stages() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("重点客户", "R")).await;
    let plan = |year: i32| pb::CreateAccountPlanRequest {
        request_id: rid(),
        plan: Some(pb::AccountPlan {
            customer_id: c.id.clone(),
            year,
            strategy: "扩大工业用气份额".into(),
            activities: vec!["技术交流会".into(), "安全培训".into()],
            targets: vec![pb::PlanTarget {
                description: "年合同额".into(),
                amount: Some(common::Money { amount_minor: 500_000_000, currency_code: "CNY".into() }),
            }],
            ..Default::default()
        }),
    };
    let err = s1.create_account_plan(plan(2027)).await.expect_err("not a key account");
    assert_eq!(reason(&err), "NOT_KEY_ACCOUNT");
    classify(&app, &c.id, pb::ValueTier::Key).await;
    let p = s1.create_account_plan(plan(2027)).await.expect("plan").into_inner().plan.expect("plan");
    assert_eq!(p.contract_stage, pb::ContractStage::DataCollection as i32);
    assert_eq!(p.targets[0].amount.as_ref().map(|m| m.amount_minor), Some(500_000_000));
    let err = s1.create_account_plan(plan(2027)).await.expect_err("one per year");
    assert_eq!(reason(&err), "PLAN_EXISTS");

    let advance = |stage: pb::ContractStage| pb::AdvanceContractStageRequest {
        request_id: rid(),
        plan_id: p.id.clone(),
        stage: stage as i32,
        etag: String::new(),
    };
    let err = s1.advance_contract_stage(advance(pb::ContractStage::Negotiation)).await.expect_err("skip");
    assert_eq!(reason(&err), "ILLEGAL_CONTRACT_STAGE");
    for s in [
        pb::ContractStage::BusinessReview,
        pb::ContractStage::Discussion,
        pb::ContractStage::DraftContract,
        pb::ContractStage::Negotiation,
        pb::ContractStage::Signed,
    ] {
        let got = s1.advance_contract_stage(advance(s)).await.expect("advance").into_inner().plan.expect("plan");
        assert_eq!(got.contract_stage, s as i32);
    }
    let err = s1.advance_contract_stage(advance(pb::ContractStage::Signed)).await.expect_err("done");
    assert_eq!(reason(&err), "CONTRACT_SIGNED");

    // Quarterly reviews are the managers'.
    let review = |q: i32| pb::ReviewAccountPlanRequest {
        request_id: rid(),
        plan_id: p.id.clone(),
        quarter: q,
        summary: "进度符合预期".into(),
        etag: String::new(),
    };
    assert_eq!(s1.review_account_plan(review(1)).await.expect_err("sales").code(), Code::PermissionDenied);
    let mut mgr = app.manager().await;
    let reviewed = mgr.review_account_plan(review(1)).await.expect("q1").into_inner().plan.expect("plan");
    assert_eq!(reviewed.reviews.len(), 1);
    assert_eq!(reviewed.reviews[0].reviewed_by, "mgr-bj");
    let err = mgr.review_account_plan(review(5)).await.expect_err("q5");
    assert_invalid(&err, "quarter");
    let listed = s1
        .list_account_plans(pb::ListAccountPlansRequest { customer_id: c.id.clone() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.plans, vec![reviewed]);
}
