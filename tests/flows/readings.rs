//! meter readings taken by dispatch's readers reach billing as usage
//! readings on the customer's account — the normal route; billing's own
//! RecordMeterReadings stays for manual corrections.

use std::time::Duration;

use chrono::Utc;
use crm_flows::{System, date, dpb, eventually, rid};
use crm_testkit::Role;

#[tokio::test]
async fn readings_flow_from_dispatch_to_billing() {
    let sys = System::start().await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let route = sys
        .dispatch(&[Role::ServiceManager], "mgr-1")
        .await
        .create_route(dpb::CreateRouteRequest {
            request_id: rid(),
            route: Some(dpb::Route {
                name: "朝阳商业".into(),
                schedule: dpb::RouteSchedule::CommercialMonthly as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .route
        .unwrap();
    sys.dispatch(&[Role::Dispatcher], "disp-1")
        .await
        .register_meter(dpb::RegisterMeterRequest {
            request_id: rid(),
            meter: Some(dpb::Meter {
                customer_id: customer.clone(),
                route_id: route.id.clone(),
                number: "G-001".into(),
                kind: dpb::MeterKind::Gas as i32,
                installed_on: Some(date(chrono::NaiveDate::from_ymd_opt(2019, 5, 1).unwrap())),
                flow_direction: dpb::FlowDirection::Forward as i32,
                site_address: "北京市朝阳区 8 号".into(),
                meter_class: dpb::MeterClass::Commercial as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut reader = sys.dispatch(&[Role::MeterReader], "mr-1").await;
    let reading = |days_ago: i64, volume: i64| dpb::MeterReading {
        reading_id: rid(),
        meter_number: "G-001".into(),
        read_at: Some(crm_platform::proto_time::to_proto(
            Utc::now() - chrono::Duration::days(days_ago) - chrono::Duration::hours(1),
        )),
        outcome: dpb::ReadingOutcome::Read as i32,
        base_reading: 0,
        cumulative_volume: volume,
        ..Default::default()
    };
    let sent = reader
        .record_readings(tokio_stream::iter(vec![dpb::RecordReadingsRequest {
            readings: vec![reading(40, 12_000), reading(10, 15_500)],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.accepted, 2, "{sent:?}");

    let rows: Vec<i64> = eventually("usage readings in billing", Duration::from_secs(20), || async {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT reading_litres FROM billing.meter_readings WHERE account_id = $1 ORDER BY read_on",
        )
        .bind(uuid::Uuid::parse_str(&account.id).unwrap())
        .fetch_all(&sys.pool)
        .await
        .unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await;
    assert_eq!(rows, [12_000, 15_500]);
    assert_eq!(sys.cursor("billing", "dispatch").await, sys.last_seq("dispatch", &["meter.read"]).await);
}
