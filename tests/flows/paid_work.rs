//! completed paid work → a one-off invoice in billing with the on-site
//! payment recorded against it → the customer's behaviour figures.

use std::time::Duration;

use crm_flows::{System, bpb, cny, dpb, eventually};
use crm_testkit::Role;

#[tokio::test]
async fn completed_paid_work_is_invoiced_and_the_cash_taken_on_site_pays_it() {
    let sys = System::start().await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-1", &[("GT06", 35_000), ("SIM", 2_050)]).await;
    let w = sys.approved_order(&customer).await;
    let done = sys.complete(&w, &tech, &[("GT06", 1), ("SIM", 2)], 30_000).await;
    assert_eq!(done.amount_due, cny(39_100));

    let invoices = eventually("the work order's invoice", Duration::from_secs(20), || async {
        let found = sys.invoices(&account.id).await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(invoices.len(), 1, "one invoice per completed work order");
    let inv = &invoices[0];
    // Raised, issued and — with the on-site payment in the same
    // transaction — partly paid.
    assert_eq!(inv.status, bpb::InvoiceStatus::PartlyPaid as i32);
    assert_eq!(inv.paid, cny(30_000));
    assert_eq!(inv.total, cny(39_100));
    assert!(!inv.number.is_empty(), "numbered at issue");
    let lines: Vec<(&str, i64)> = inv.lines.iter().map(|l| (l.description.as_str(), l.quantity_milli)).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(sys.get_account(&account.id).await.balance, cny(9_100));

    // Billing's events reach the customer's behaviour figures (CUS-8).
    let b = eventually("behaviour figures", Duration::from_secs(20), || async {
        let b = sys.behaviour(&customer).await;
        (b.purchases_last_year == 1 && b.lifetime_value == cny(30_000)).then_some(b)
    })
    .await;
    assert_eq!(b.purchase_amount_last_year, cny(39_100));
    assert_eq!(b.purchases_total, 1);

    // Issue 14: the work order shows its invoice and how much is paid,
    // to the technician who collected on site too; paying the rest shows it paid.
    let on_order = |status: &'static str| {
        let (sys, id, sub) = (&sys, w.id.clone(), tech.user_sub.clone());
        async move {
            let got = sys
                .dispatch(&[Role::Technician], &sub)
                .await
                .get_work_order(dpb::GetWorkOrderRequest { id })
                .await
                .expect("work order")
                .into_inner()
                .work_order
                .expect("order");
            got.invoice.filter(|i| i.status == status)
        }
    };
    let shown = eventually("the invoice on the work order", Duration::from_secs(20), || on_order("partly_paid")).await;
    assert_eq!((shown.invoice_id.as_str(), shown.number.as_str()), (inv.id.as_str(), inv.number.as_str()));
    assert_eq!((shown.total.clone(), shown.paid.clone()), (cny(39_100), cny(30_000)));
    sys.pay(&account.id, 9_100).await;
    let paid = eventually("the invoice paid on the work order", Duration::from_secs(20), || on_order("paid")).await;
    assert_eq!(paid.paid, cny(39_100));
}

#[tokio::test]
async fn free_work_raises_no_invoice() {
    let sys = System::start().await;
    let customer = sys.customer("上海水务").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-2", &[]).await;
    let w = sys.approved_order(&customer).await;
    let done = sys.complete(&w, &tech, &[], 0).await;
    assert_eq!(done.amount_due, cny(0));
    sys.caught_up("billing", "dispatch", &["work_order.completed"]).await;
    assert!(sys.invoices(&account.id).await.is_empty());
    assert_eq!(sys.get_account(&account.id).await.balance, cny(0));
}

/// Issue 14 (one parts catalogue, BIL-2/DSP-5): a price set in billing is the
/// price dispatch charges — net plus the catalogue's VAT — and the invoice
/// billing raises totals exactly what was charged, with the VAT on its part
/// line. A later price change reaches dispatch and leaves the invoice alone.
#[tokio::test]
async fn one_catalogue_prices_the_work_and_its_invoice() {
    let sys = System::start().await;
    let customer = sys.customer("杭州华润燃气").await;
    let account = sys.account(&customer).await;
    let tech = sys.field_team("t-3", &[]).await;
    // 2 × 350.00 net at 13 %: 700.00 + 91.00.
    sys.catalogue_part("GT06", 35_000, 1_300).await;
    let w = sys.approved_order(&customer).await;
    let done = sys.complete(&w, &tech, &[("GT06", 2)], 0).await;
    assert_eq!(done.amount_due, cny(79_100));
    assert_eq!((done.parts[0].line_net.clone(), done.parts[0].line_vat.clone()), (cny(70_000), cny(9_100)));

    let inv = eventually("the work order's invoice", Duration::from_secs(20), || async {
        sys.invoices(&account.id).await.into_iter().next()
    })
    .await;
    assert_eq!((inv.net.clone(), inv.vat.clone(), inv.total.clone()), (cny(70_000), cny(9_100), cny(79_100)));
    let line = &inv.lines[0];
    assert_eq!((line.catalogue_code.as_str(), line.vat_rate_bp, line.unit_price.clone()), ("GT06", 1_300, cny(35_000)));

    // A new price reaches dispatch; what was invoiced keeps its price.
    let changed = sys.catalogue_part("GT06", 38_000, 1_300).await;
    assert_eq!(changed.unit_price, cny(38_000));
    let again = sys.invoices(&account.id).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].total, cny(79_100));
}
