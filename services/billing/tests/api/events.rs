//! flows into billing: events from dispatch and complaints, built by
//! hand and delivered through billing's own consumers, with their effect
//! checked through the billing API; what billing publishes in its outbox.

use chrono::{DateTime, TimeZone, Utc};
use crm_events::{Outcome, Payload, pb as ev};
use crm_proto::{billing::v1 as pb, common::v1 as common};
use crm_testkit::Role;
use prost::Message;
use uuid::Uuid;

use crate::helpers::{App, amount, cny, reason, rid};

/// Billing's consumers over the test database, fed by hand.
pub type Feed = crm_testkit::HandFeed;

pub fn feed(app: &App) -> Feed {
    Feed::new("billing", app.pool.clone(), crm_billing::events::subscriptions)
}

/// Billing's outbox events of `kind`, decoded, oldest first.
pub async fn published(app: &App, kind: &str) -> Vec<ev::Event> {
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM billing.outbox WHERE event_type = $1 ORDER BY seq")
        .bind(kind)
        .fetch_all(&app.pool)
        .await
        .expect("outbox");
    bodies.iter().map(|b| ev::Event::decode(b.as_slice()).expect("protobuf body")).collect()
}

fn money(amount_minor: i64) -> Option<common::Money> {
    cny(amount_minor)
}

fn part(code: &str, name: &str, quantity: i32, price: i64) -> ev::PartUsed {
    ev::PartUsed { part_code: code.into(), name: name.into(), quantity, unit_price: money(price), vat_rate_bp: 0 }
}

pub(crate) fn completed(
    customer: &str,
    work_order: &str,
    parts: Vec<ev::PartUsed>,
    due: i64,
    collected: i64,
) -> Payload {
    Payload::WorkOrderCompleted(ev::WorkOrderCompleted {
        work_order_id: work_order.into(),
        customer_id: customer.into(),
        kind: "repair".into(),
        technician_id: "tech1".into(),
        in_warranty: false,
        parts,
        amount_due: money(due),
        collected_on_site: money(collected),
        completed_by: "tech1".into(),
        ..Default::default()
    })
}

async fn invoices(app: &App, account: &str) -> Vec<pb::Invoice> {
    app.finance()
        .await
        .list_invoices(pb::ListInvoicesRequest { account_id: account.into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .invoices
}

async fn account(app: &App, id: &str) -> pb::Account {
    app.finance()
        .await
        .get_account(pb::GetAccountRequest { account_id: id.into(), customer_id: String::new() })
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account")
}

pub async fn outbox_size(app: &App) -> i64 {
    app.count("outbox").await
}

#[tokio::test]
async fn completed_paid_work_is_invoiced_and_paid_on_site_once() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("维修客户").await;
    let wo = Uuid::now_v7().to_string();
    // 2 × 45.00 + 1 × 20.00 = 110.00 of parts; 130.00 due: 20.00 is the remainder.
    let parts = vec![part("gps-t1", "GPS 终端", 2, 4_500), part("SIM", "SIM card", 1, 2_000)];
    let e = feed.event("dispatch", &wo, completed(&a.customer_id, &wo, parts, 13_000, 13_000));
    assert_eq!(feed.deliver(&e).await, Outcome::Applied);

    let invs = invoices(&app, &a.id).await;
    assert_eq!(invs.len(), 1);
    let inv = &invs[0];
    assert_eq!(amount(&inv.total), 13_000);
    assert_eq!(inv.status, pb::InvoiceStatus::Paid as i32);
    assert!(inv.number.starts_with("SVC-"), "{}", inv.number);
    let lines: Vec<(&str, &str, i64, i64)> = inv
        .lines
        .iter()
        .map(|l| (l.catalogue_code.as_str(), l.description.as_str(), l.quantity_milli, amount(&l.net)))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("GPS-T1", "GPS 终端", 2_000, 9_000),
            ("SIM", "SIM card", 1_000, 2_000),
            ("", "labour/call-out", 1_000, 2_000)
        ]
    );
    assert_eq!(amount(&account(&app, &a.id).await.balance), 0);

    let issued = published(&app, "invoice.issued").await;
    assert_eq!(issued.len(), 1);
    let Some(Payload::InvoiceIssued(i)) = &issued[0].payload else { panic!("payload") };
    assert_eq!(
        (i.work_order_id.as_str(), i.customer_id.as_str(), amount(&i.total)),
        (wo.as_str(), a.customer_id.as_str(), 13_000)
    );
    let paid = published(&app, "payment.received").await;
    let Some(Payload::PaymentReceived(p)) = &paid[0].payload else { panic!("payload") };
    assert_eq!((p.method.as_str(), p.work_order_id.as_str(), amount(&p.amount)), ("on_site", wo.as_str(), 13_000));
    // Charged and paid in one transaction: the account is clear again.
    assert_eq!(published(&app, "account.cleared").await.len(), 1);

    // At least once in, exactly once in effect.
    let before = outbox_size(&app).await;
    assert_eq!(feed.deliver(&e).await, Outcome::Duplicate);
    // The same work order in another event is not invoiced twice either.
    let again = feed.event("dispatch", &wo, completed(&a.customer_id, &wo, vec![], 13_000, 13_000));
    assert_eq!(feed.deliver(&again).await, Outcome::Applied);
    assert_eq!(invoices(&app, &a.id).await.len(), 1);
    assert_eq!(outbox_size(&app).await, before);
    assert_eq!(app.count("funds").await, 1);
    assert_eq!(app.mismatches().await, 0);
}

#[tokio::test]
async fn an_on_site_payment_pays_its_own_invoice_first() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("老欠款").await;
    let older = app.invoice(&a.id, 1_000).await;
    let wo = Uuid::now_v7().to_string();
    let e =
        feed.event("dispatch", &wo, completed(&a.customer_id, &wo, vec![part("P1", "pump", 1, 8_000)], 8_000, 5_000));
    assert_eq!(feed.deliver(&e).await, Outcome::Applied);
    let invs = invoices(&app, &a.id).await;
    let own = invs.iter().find(|i| i.id != older.id).expect("work order invoice");
    assert_eq!((own.status, amount(&own.paid)), (pb::InvoiceStatus::PartlyPaid as i32, 5_000));
    let old = invs.iter().find(|i| i.id == older.id).expect("older");
    assert_eq!((old.status, amount(&old.paid)), (pb::InvoiceStatus::Issued as i32, 0));
    assert_eq!(amount(&account(&app, &a.id).await.balance), 4_000);
    assert!(published(&app, "account.cleared").await.is_empty());
}

#[tokio::test]
async fn work_for_a_customer_without_an_account_is_parked() {
    let app = App::new().await;
    let feed = feed(&app);
    let customer = app.customer("无账户").await;
    let wo = Uuid::now_v7().to_string();
    let e = feed.event("dispatch", &wo, completed(&customer, &wo, vec![], 5_000, 0));
    assert_eq!(feed.deliver(&e).await, Outcome::Parked);
    let error: String = sqlx::query_scalar("SELECT error FROM billing.events_parked WHERE event_id = $1")
        .bind(Uuid::parse_str(&e.id).expect("id"))
        .fetch_one(&app.pool)
        .await
        .expect("parked");
    assert!(error.contains("has no billing account"), "{error}");
    let parked = feed.consumers().parked(false, 10).await.expect("parked list");
    assert_eq!(parked.len(), 1);
    assert_eq!(app.count("invoices").await, 0);
    // Parts adding up to more than is due are inconsistent, never guessed at.
    let a = app.account("多算").await;
    let wo = Uuid::now_v7().to_string();
    let e = feed.event("dispatch", &wo, completed(&a.customer_id, &wo, vec![part("X", "x", 3, 1_000)], 2_000, 0));
    assert_eq!(feed.deliver(&e).await, Outcome::Parked);
    assert_eq!(app.count("invoices").await, 0);
}

#[tokio::test]
async fn warranty_work_bills_nothing() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("保修").await;
    let wo = Uuid::now_v7().to_string();
    let mut p = completed(&a.customer_id, &wo, vec![part("X", "x", 1, 1_000)], 0, 0);
    if let Payload::WorkOrderCompleted(w) = &mut p {
        w.in_warranty = true;
    }
    assert_eq!(feed.deliver(&feed.event("dispatch", &wo, p)).await, Outcome::Applied);
    assert!(invoices(&app, &a.id).await.is_empty());
}

fn meter_read(customer: &str, meter: &str, at: DateTime<Utc>, litres: i64) -> Payload {
    Payload::MeterRead(ev::MeterRead {
        reading_id: Uuid::now_v7().to_string(),
        meter_id: meter.into(),
        meter_number: "M-0001".into(),
        customer_id: customer.into(),
        period: "2026-11".into(),
        read_at: Some(crm_platform::proto_time::to_proto(at)),
        reading_litres: litres,
        ..Default::default()
    })
}

#[tokio::test]
async fn meter_readings_become_usage_readings_on_their_local_day() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("抄表").await;
    let meter = Uuid::now_v7().to_string();
    // 17:30 UTC is 01:30 the next day in Asia/Shanghai, the service's calendar.
    let first = Utc.with_ymd_and_hms(2026, 11, 20, 17, 30, 0).single().expect("time");
    let e1 = feed.event("dispatch", &meter, meter_read(&a.customer_id, &meter, first, 1_000));
    assert_eq!(feed.deliver(&e1).await, Outcome::Applied);
    let second = first + chrono::Duration::days(1);
    let e2 = feed.event("dispatch", &meter, meter_read(&a.customer_id, &meter, second, 1_500));
    assert_eq!(feed.deliver(&e2).await, Outcome::Applied);
    assert_eq!(feed.deliver(&e2).await, Outcome::Duplicate);

    // The manual path sees them as recorded: resending them is a duplicate.
    let mut c = app.client(Role::MeterReader, "mr1").await;
    let day = |d: i32| Some(common::Date { year: 2026, month: 11, day: d });
    let resend = pb::RecordMeterReadingsRequest {
        readings: vec![
            pb::MeterReading {
                account_id: a.id.clone(),
                meter_id: meter.clone(),
                read_on: day(21),
                reading_litres: 1_000,
                kind: pb::ReadingKind::Normal as i32,
                ..Default::default()
            },
            pb::MeterReading {
                account_id: a.id.clone(),
                meter_id: meter.clone(),
                read_on: day(22),
                reading_litres: 1_500,
                kind: pb::ReadingKind::Normal as i32,
                ..Default::default()
            },
        ],
    };
    let r = c.record_meter_readings(tokio_stream::iter(vec![resend])).await.expect("stream").into_inner();
    assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (0, 2, 0));

    // Lower than the previous reading: billing refuses it, the event is parked with the reason.
    let third = second + chrono::Duration::days(1);
    let e3 = feed.event("dispatch", &meter, meter_read(&a.customer_id, &meter, third, 900));
    assert_eq!(feed.deliver(&e3).await, Outcome::Parked);
    let parked = feed.consumers().parked(false, 10).await.expect("parked");
    assert!(parked[0].error.contains("READING_BELOW_PREVIOUS"), "{}", parked[0].error);
    // A roll-over past the register's maximum is accepted.
    let mut rolled = meter_read(&a.customer_id, &meter, third, 200);
    if let Payload::MeterRead(m) = &mut rolled {
        m.rolled_over = true;
        m.meter_max_litres = 10_000;
    }
    assert_eq!(feed.deliver(&feed.event("dispatch", &meter, rolled)).await, Outcome::Applied);
    assert_eq!(app.count("meter_readings").await, 3);

    // No account: poison.
    let stranger = app.customer("没开户").await;
    let e4 = feed.event("dispatch", &meter, meter_read(&stranger, "other-meter", first, 5));
    assert_eq!(feed.deliver(&e4).await, Outcome::Parked);
}

fn compensation(customer: &str, complaint: &str, amount_minor: i64) -> Payload {
    Payload::CompensationAgreed(ev::CompensationAgreed {
        complaint_id: complaint.into(),
        customer_id: customer.into(),
        amount: money(amount_minor),
        approved_by: "qm1".into(),
    })
}

#[tokio::test]
async fn agreed_compensation_becomes_one_credit_note() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("投诉人").await;
    let inv = app.invoice(&a.id, 10_000).await;
    let complaint = Uuid::now_v7().to_string();
    let e = feed.event("complaints", &complaint, compensation(&a.customer_id, &complaint, 3_000));
    assert_eq!(feed.deliver(&e).await, Outcome::Applied);
    let after = invoices(&app, &a.id).await.into_iter().find(|i| i.id == inv.id).expect("invoice");
    assert_eq!((after.status, amount(&after.paid)), (pb::InvoiceStatus::PartlyPaid as i32, 3_000));
    assert_eq!(amount(&account(&app, &a.id).await.balance), 7_000);
    let notes = published(&app, "credit_note.issued").await;
    assert_eq!(notes.len(), 1);
    let Some(Payload::CreditNoteIssued(n)) = &notes[0].payload else { panic!("payload") };
    assert_eq!(
        (n.complaint_id.as_str(), n.customer_id.as_str(), amount(&n.amount)),
        (complaint.as_str(), a.customer_id.as_str(), 3_000)
    );

    assert_eq!(feed.deliver(&e).await, Outcome::Duplicate);
    // Another event for the same compensation: still one credit note.
    let same = feed.event("complaints", &complaint, compensation(&a.customer_id, &complaint, 3_000));
    assert_eq!(feed.deliver(&same).await, Outcome::Applied);
    // Another amount for an already credited complaint is for people to sort out.
    let other = feed.event("complaints", &complaint, compensation(&a.customer_id, &complaint, 4_000));
    assert_eq!(feed.deliver(&other).await, Outcome::Parked);
    assert_eq!(app.count("funds").await, 1);
    // Nor can the desk credit the complaint a second time.
    let err = app
        .finance()
        .await
        .issue_credit_note(pb::IssueCreditNoteRequest {
            request_id: rid(),
            account_id: a.id.clone(),
            amount: cny(100),
            reason: "again".into(),
            invoice_id: String::new(),
            complaint_id: complaint.clone(),
        })
        .await
        .expect_err("one per complaint");
    assert_eq!((err.code(), reason(&err).as_str()), (tonic::Code::AlreadyExists, "COMPLAINT_CREDITED"));
    assert_eq!(app.mismatches().await, 0);
}

#[tokio::test]
async fn account_cleared_is_reported_when_money_settles_everything() {
    let app = App::new().await;
    let a = app.account("结清").await;
    let inv = app.invoice(&a.id, 5_000).await;
    let mut fin = app.finance().await;
    let pay = |amount_minor: i64| pb::RecordPaymentRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        method: pb::PaymentMethod::Cash as i32,
        amount: cny(amount_minor),
        reference: String::new(),
    };
    fin.record_payment(pay(2_000)).await.expect("part");
    assert!(published(&app, "account.cleared").await.is_empty(), "3 000 still owed");
    fin.record_payment(pay(3_000)).await.expect("rest");
    let cleared = published(&app, "account.cleared").await;
    assert_eq!(cleared.len(), 1);
    let Some(Payload::AccountCleared(c)) = &cleared[0].payload else { panic!("payload") };
    assert_eq!((c.account_id.as_str(), c.customer_id.as_str()), (a.id.as_str(), a.customer_id.as_str()));
    // Overpaying a clear account leaves credit: not clear.
    fin.record_payment(pay(700)).await.expect("credit");
    assert_eq!(published(&app, "account.cleared").await.len(), 1);
    // Refunding the credit clears it again.
    fin.refund_credit(pb::RefundCreditRequest {
        request_id: rid(),
        account_id: a.id.clone(),
        amount: cny(700),
        reason: "overpaid".into(),
    })
    .await
    .expect("refund");
    assert_eq!(published(&app, "account.cleared").await.len(), 2);
    let paid = invoices(&app, &a.id).await.into_iter().find(|i| i.id == inv.id).expect("invoice");
    assert_eq!(paid.status, pb::InvoiceStatus::Paid as i32);
}

/// Issue 14 (one catalogue): dispatch prices parts at the catalogue's net
/// price plus VAT; the invoice shows each part line's net and VAT at the rate
/// it was priced at, the labour as the rest, and totals what was charged.
#[tokio::test]
async fn a_work_orders_invoice_carries_the_vat_its_parts_were_priced_with() {
    let app = App::new().await;
    let feed = feed(&app);
    let a = app.account("增值税客户").await;
    let wo = Uuid::now_v7().to_string();
    // 3 × 33.33 = 99.99 net + 13.00 VAT; 50.00 labour; 162.99 due.
    let taxed = ev::PartUsed { vat_rate_bp: 1_300, ..part("GT06", "GPS 终端", 3, 3_333) };
    let e = feed.event("dispatch", &wo, completed(&a.customer_id, &wo, vec![taxed.clone()], 16_299, 0));
    assert_eq!(feed.deliver(&e).await, Outcome::Applied);
    let invs = invoices(&app, &a.id).await;
    assert_eq!(invs.len(), 1);
    let inv = &invs[0];
    assert_eq!((amount(&inv.net), amount(&inv.vat), amount(&inv.total)), (14_999, 1_300, 16_299));
    let lines: Vec<(&str, i32, i64, i64)> =
        inv.lines.iter().map(|l| (l.catalogue_code.as_str(), l.vat_rate_bp, amount(&l.net), amount(&l.vat))).collect();
    assert_eq!(lines, [("GT06", 1_300, 9_999, 1_300), ("", 0, 5_000, 0)]);

    // Parts whose gross exceeds what dispatch charged are inconsistent: parked, nothing invoiced.
    let other = Uuid::now_v7().to_string();
    let e = feed.event("dispatch", &other, completed(&a.customer_id, &other, vec![taxed], 10_000, 0));
    assert_eq!(feed.deliver(&e).await, Outcome::Parked);
    assert_eq!(invoices(&app, &a.id).await.len(), 1);
}

fn item(code: &str, net: i64, vat_rate_bp: i32) -> pb::CatalogueItem {
    pb::CatalogueItem {
        code: code.into(),
        description: format!("配件 {code}"),
        kind: pb::CatalogueKind::Part as i32,
        unit_price: money(net),
        vat_rate_bp,
        active: true,
    }
}

/// Issue 14 (one catalogue, BIL-2/DSP-5): every change of an item is
/// published with the change, at a rising revision; a replayed request
/// publishes nothing more; a refused one publishes nothing.
#[tokio::test]
async fn catalogue_changes_are_published_at_rising_revisions() {
    let app = App::new().await;
    let mut admin = app.admin().await;
    let first = pb::SetCatalogueItemRequest { request_id: rid(), item: Some(item("gt06", 35_000, 1_300)) };
    admin.set_catalogue_item(first.clone()).await.expect("set");
    admin.set_catalogue_item(first).await.expect("replay");
    admin
        .set_catalogue_item(pb::SetCatalogueItemRequest {
            request_id: rid(),
            item: Some(pb::CatalogueItem { active: false, ..item("GT06", 36_000, 900) }),
        })
        .await
        .expect("change");
    let bad = pb::SetCatalogueItemRequest { request_id: rid(), item: Some(item("GT06", -1, 900)) };
    assert_eq!(admin.set_catalogue_item(bad).await.expect_err("negative").code(), tonic::Code::InvalidArgument);
    let mut fin = app.finance().await;
    let err = fin
        .set_catalogue_item(pb::SetCatalogueItemRequest { request_id: rid(), item: Some(item("X1", 1, 0)) })
        .await
        .expect_err("finance may not");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    let changes: Vec<ev::CatalogueItemChanged> = published(&app, "catalogue_item.changed")
        .await
        .into_iter()
        .map(|e| match e.payload {
            Some(Payload::CatalogueItemChanged(c)) => c,
            other => panic!("{other:?}"),
        })
        .collect();
    let seen: Vec<(&str, &str, i64, i32, bool, i64)> = changes
        .iter()
        .map(|c| (c.code.as_str(), c.kind.as_str(), amount(&c.unit_price), c.vat_rate_bp, c.active, c.revision))
        .collect();
    assert_eq!(seen, [("GT06", "part", 35_000, 1_300, true, 1), ("GT06", "part", 36_000, 900, false, 2)]);
    assert_eq!(changes[0].description, "配件 gt06");
    let aggregates: Vec<Uuid> =
        sqlx::query_scalar("SELECT aggregate_id FROM billing.outbox WHERE event_type = 'catalogue_item.changed'")
            .fetch_all(&app.pool)
            .await
            .expect("aggregates");
    assert_eq!(aggregates, [crm_billing::usecases::catalogue::aggregate_id("GT06"); 2]);
    assert_eq!(crm_billing::usecases::catalogue::announce_pending(&app.pool).await.expect("announce"), 0);
}

/// Items set before the catalogue was published are announced when billing
/// starts, exactly once whoever else runs the announcement.
#[tokio::test]
async fn items_set_before_publishing_are_announced_once_at_start() {
    let mut app = App::new().await;
    app.billing.stop().await;
    // As the migration leaves an item set by an earlier version.
    sqlx::query(
        "INSERT INTO billing.catalogue_items (code, description, kind, unit_price_minor, currency, vat_rate_bp) \
         VALUES ('LEGACY', '旧配件', 'part', 1200, 'CNY', 600)",
    )
    .execute(&app.pool)
    .await
    .expect("legacy item");
    let restarted =
        crm_testkit::TestService::spawn_on(&crm_billing::SERVICE, app.billing.db.clone(), Some(app.customers.url()))
            .await;
    let mut announced = vec![];
    for _ in 0..200 {
        announced = published(&app, "catalogue_item.changed").await;
        if !announced.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // Another announcer now finds nothing left to publish.
    assert_eq!(crm_billing::usecases::catalogue::announce_pending(&app.pool).await.expect("again"), 0);
    assert_eq!(published(&app, "catalogue_item.changed").await.len(), 1);
    let Some(Some(Payload::CatalogueItemChanged(c))) = announced.first().map(|e| &e.payload) else {
        panic!("not announced at start: {announced:?}")
    };
    assert_eq!((c.code.as_str(), amount(&c.unit_price), c.vat_rate_bp, c.revision), ("LEGACY", 1_200, 600, 1));
    drop(restarted);
}
