//! BIL-2 tariffs (versioned, tiered, VAT) and the price catalogue.

use chrono::{Datelike, Duration, Utc};
use crm_proto::{billing::v1 as pb, common::v1 as common};
use crm_testkit::Role;
use tonic::Code;

use crate::helpers::{App, amount, assert_invalid, cny, reason, rid};

fn day(offset: i64) -> Option<common::Date> {
    let d = (Utc::now() + chrono::Duration::hours(8)).date_naive() + Duration::days(offset);
    Some(common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 })
}

fn ladder(from: i64) -> pb::Tariff {
    pb::Tariff {
        customer_class: pb::CustomerClass::Residential as i32,
        effective_from: day(from),
        vat_rate_bp: 900,
        blocks: vec![
            pb::TariffBlock { up_to_m3: 300, price_minor_per_m3: 261 },
            pb::TariffBlock { up_to_m3: 600, price_minor_per_m3: 313 },
            pb::TariffBlock { up_to_m3: 0, price_minor_per_m3: 391 },
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn versions_take_effect_by_date_and_quotes_use_the_one_in_force() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    admin.create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(ladder(0)) }).await.expect("today");
    let mut dearer = ladder(30);
    dearer.blocks[0].price_minor_per_m3 = 300;
    admin.create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(dearer) }).await.expect("next month");
    let quote = |on| pb::QuoteUsageRequest {
        customer_class: pb::CustomerClass::Residential as i32,
        volume_litres: 650_000,
        on,
    };
    let mut fin = app.finance().await;
    let now = fin.quote_usage(quote(day(1))).await.expect("quote").into_inner();
    let blocks: Vec<i64> = now.blocks.iter().map(|b| b.amount_minor).collect();
    assert_eq!(blocks, vec![78_300, 93_900, 19_550]);
    assert_eq!(amount(&now.net), 191_750);
    assert_eq!(amount(&now.vat), 17_258, "9% of 1917.50 = 172.575 → 172.58 (half-up)");
    assert_eq!(amount(&now.total), 209_008);
    let later = fin.quote_usage(quote(day(31))).await.expect("later").into_inner();
    assert_eq!(later.blocks[0].amount_minor, 90_000);
    let err = fin.quote_usage(quote(day(-400))).await.expect_err("none");
    assert_eq!(reason(&err), "NO_TARIFF");
    let list = fin.list_tariffs(pb::ListTariffsRequest { customer_class: 0 }).await.expect("list").into_inner();
    assert_eq!(list.tariffs.len(), 2);
}

#[tokio::test]
async fn tariffs_are_admin_only_validated_and_never_rewritten() {
    let app = App::new().await;
    let mut fin = app.finance().await;
    let err = fin
        .create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(ladder(1)) })
        .await
        .expect_err("finance");
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut admin = app.admin().await;
    let err = admin
        .create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(ladder(-1)) })
        .await
        .expect_err("past");
    assert_invalid(&err, "tariff.effective_from");
    let mut bad = ladder(1);
    bad.blocks[2].up_to_m3 = 900;
    bad.vat_rate_bp = 20_000;
    bad.customer_class = 0;
    let err =
        admin.create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(bad) }).await.expect_err("bad");
    for f in ["tariff.blocks", "tariff.vat_rate_bp", "tariff.customer_class"] {
        assert_invalid(&err, f);
    }
    admin.create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(ladder(1)) }).await.expect("ok");
    let err = admin
        .create_tariff(pb::CreateTariffRequest { request_id: rid(), tariff: Some(ladder(1)) })
        .await
        .expect_err("same date");
    assert_eq!(reason(&err), "TARIFF_EXISTS");
    assert_eq!(app.count("tariffs").await, 1);
}

#[tokio::test]
async fn catalogue_items_price_invoice_lines() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    admin
        .set_catalogue_item(pb::SetCatalogueItemRequest {
            request_id: rid(),
            item: Some(pb::CatalogueItem {
                code: "gps-t100".into(),
                description: "GPS 终端 T100".into(),
                kind: pb::CatalogueKind::Part as i32,
                unit_price: cny(45_000),
                vat_rate_bp: 1300,
                active: true,
            }),
        })
        .await
        .expect("item");
    let mut tech = app.client(Role::Technician, "t1").await;
    let items = tech.list_catalogue_items(pb::ListCatalogueItemsRequest {}).await.expect("list").into_inner().items;
    assert_eq!(items[0].code, "GPS-T100");
    let a = app.account("丙").await;
    let mut fin = app.finance().await;
    let inv = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: a.id.clone(),
                series: "SVC".into(),
                lines: vec![pb::InvoiceLine {
                    catalogue_code: "GPS-T100".into(),
                    quantity_milli: 2000,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("invoice")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!((amount(&inv.net), amount(&inv.vat), amount(&inv.total)), (90_000, 11_700, 101_700));
    assert_eq!(inv.lines[0].description, "GPS 终端 T100");
    let err = fin
        .create_invoice(pb::CreateInvoiceRequest {
            request_id: rid(),
            invoice: Some(pb::Invoice {
                account_id: a.id.clone(),
                series: "SVC".into(),
                lines: vec![pb::InvoiceLine {
                    catalogue_code: "NOPE".into(),
                    quantity_milli: 1000,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown item");
    assert_invalid(&err, "invoice.lines[0].catalogue_code");
}
