//! DSP-1 installed base over gRPC: registration with unique numbers, SIMs
//! unique among active devices, decommissioning, reads and lists.

use chrono::NaiveDate;
use crm_proto::dispatch::v1 as pb;
use tonic::Code;

use crate::helpers::{App, assert_invalid, assert_rule, device, rid};

fn end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 9).unwrap()
}

#[tokio::test]
async fn devices_are_registered_with_unique_numbers() {
    let app = App::new().await;
    let cust = app.customer("甲", None).await;
    let d = app.device(&cust, "860000000000001", "89860000000000000001", end()).await;
    assert_eq!(d.status, pb::DeviceStatus::Active as i32);
    assert_eq!(d.vehicle_plate, "京A12345");
    assert_eq!(d.registered_by, "disp-1");
    let mut disp = app.dispatcher().await;
    let got = disp.get_device(pb::GetDeviceRequest { id: d.id.clone() }).await.unwrap().into_inner().device.unwrap();
    assert_eq!(got, d);
    // The same terminal number twice, or an active SIM twice: ALREADY_EXISTS.
    let req = |serial: &str, sim: &str| pb::RegisterDeviceRequest {
        request_id: rid(),
        device: Some(device(&cust, serial, sim, end())),
    };
    let err = disp.register_device(req("860000000000001", "")).await.expect_err("serial");
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = disp.register_device(req("860000000000002", "89860000000000000001")).await.expect_err("sim");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(app.count("devices").await, 1);
    // A retired device frees its SIM for another.
    let retired = disp
        .decommission_device(pb::DecommissionDeviceRequest {
            request_id: rid(),
            id: d.id.clone(),
            etag: d.etag.clone(),
            reason: "车辆报废".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .device
        .unwrap();
    assert_eq!(retired.status, pb::DeviceStatus::Decommissioned as i32);
    disp.register_device(req("860000000000002", "89860000000000000001")).await.unwrap();
    // Stale etags and second retirements are refused.
    let again =
        pb::DecommissionDeviceRequest { request_id: rid(), id: d.id.clone(), etag: d.etag.clone(), reason: "x".into() };
    assert_eq!(disp.decommission_device(again).await.expect_err("stale").code(), Code::Aborted);
    let again =
        pb::DecommissionDeviceRequest { request_id: rid(), id: d.id.clone(), etag: String::new(), reason: "x".into() };
    assert_rule(&disp.decommission_device(again).await.expect_err("retired"), "DEVICE_DECOMMISSIONED");
    let listed = disp
        .list_devices(pb::ListDevicesRequest { customer_id: cust.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.devices.len(), 2);
}

#[tokio::test]
async fn bad_devices_name_the_field_and_write_nothing() {
    let app = App::new().await;
    let cust = app.customer("乙", None).await;
    let mut disp = app.dispatcher().await;
    let cases: Vec<(pb::Device, &str)> = vec![
        (
            {
                let mut d = device(&cust, "S1", "", end());
                d.customer_id = "x".into();
                d
            },
            "device.customer_id",
        ),
        (
            {
                let mut d = device(&cust, "S1", "", end());
                d.serial_number = " ".into();
                d
            },
            "device.serial_number",
        ),
        (
            {
                let mut d = device(&cust, "S1", "", end());
                d.model = String::new();
                d
            },
            "device.model",
        ),
        (
            {
                let mut d = device(&cust, "S1", "", end());
                d.vehicle_plate = String::new();
                d
            },
            "device.vehicle_plate",
        ),
        (
            {
                let mut d = device(&cust, "S1", "", end());
                d.purchase_date = None;
                d
            },
            "device.purchase_date",
        ),
        (device(&cust, "S1", "", NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()), "device.warranty_end"),
    ];
    for (d, field) in cases {
        let err = disp.register_device(pb::RegisterDeviceRequest { request_id: rid(), device: Some(d) }).await;
        assert_invalid(&err.expect_err(field), field);
    }
    // Devices are for customers being served.
    let err = disp
        .register_device(pb::RegisterDeviceRequest {
            request_id: rid(),
            device: Some(device(&uuid::Uuid::now_v7().to_string(), "S1", "", end())),
        })
        .await
        .expect_err("unknown customer");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.count("devices").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
    // A retried registration answers from its key and registers once.
    let req = pb::RegisterDeviceRequest { request_id: rid(), device: Some(device(&cust, "S2", "", end())) };
    let a = disp.register_device(req.clone()).await.unwrap().into_inner();
    let b = disp.register_device(req).await.unwrap().into_inner();
    assert_eq!(a, b);
    assert_eq!(app.count("devices").await, 1);
    // Technicians register what they install; finance does not.
    let mut fin = app.client(&[crm_testkit::Role::Finance], "fin").await;
    let err = fin
        .register_device(pb::RegisterDeviceRequest { request_id: rid(), device: Some(device(&cust, "S3", "", end())) })
        .await
        .expect_err("finance");
    assert_eq!(err.code(), Code::PermissionDenied);
    app.tech("t-1")
        .await
        .register_device(pb::RegisterDeviceRequest { request_id: rid(), device: Some(device(&cust, "S3", "", end())) })
        .await
        .unwrap();
}
