//! agreed complaint compensation → a credit note in billing; complaints
//! → the customer's complaint count.

use std::time::Duration;

use crm_flows::{System, cny, eventually};

#[tokio::test]
async fn agreed_compensation_becomes_a_credit_note_once() {
    let sys = System::start().await;
    let customer = sys.customer("北京燃气").await;
    let account = sys.account(&customer).await;
    let complaint = sys.resolve(sys.complaint(&customer).await).await;
    sys.compensate(&complaint.id, 50_000).await;

    let credited = eventually("the credit note", Duration::from_secs(20), || async {
        let a = sys.get_account(&account.id).await;
        (a.balance == cny(-50_000)).then_some(a)
    })
    .await;
    assert_eq!(credited.available_credit, cny(50_000));
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM billing.outbox WHERE event_type = 'credit_note.issued'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);

    // The complaint counts in the customer's behaviour, and the credit note
    // lowers its lifetime value.
    let b = eventually("behaviour figures", Duration::from_secs(20), || async {
        let b = sys.behaviour(&customer).await;
        (b.complaints_last_year == 1 && b.lifetime_value == cny(-50_000)).then_some(b)
    })
    .await;
    assert_eq!(b.complaints_total, 1);
}
