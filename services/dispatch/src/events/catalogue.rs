//! catalogue_item.changed (DSP-5, BIL-2): billing's catalogue is the one
//! price list; dispatch keeps a read-only copy of it and prices completed
//! work from the copy. A change applies only when its revision is newer
//! than the copy's, so a redelivered or late event never rolls a price back.

use crm_domain::{Currency, Money};
use crm_events::{ApplyError, ApplyFuture, Handler, Payload, consumer::read, pb};
use crm_platform::{Clock, proto_time};
use sqlx::PgConnection;

use crate::{model::charges::Part, store};

pub(super) struct CatalogueItemChanged(pub(super) Clock);

impl Handler for CatalogueItemChanged {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, event: &'a pb::Event) -> ApplyFuture<'a> {
        Box::pin(async move {
            let Some(Payload::CatalogueItemChanged(e)) = &event.payload else { return Err(read::wrong(event)) };
            let poison = |m: String| ApplyError::Poison(format!("catalogue item {:?}: {m}", e.code));
            let code = e.code.trim();
            if code.is_empty() || code != code.to_uppercase() {
                return Err(poison("the code must be non-empty and upper case".into()));
            }
            if e.description.trim().is_empty() {
                return Err(poison("the description is empty".into()));
            }
            let is_part = match e.kind.as_str() {
                "part" => true,
                "service" => false,
                other => return Err(poison(format!("unknown kind {other:?}"))),
            };
            let Some(price) = &e.unit_price else { return Err(poison("unit_price is required".into())) };
            let currency = Currency::parse(&price.currency_code).map_err(|err| poison(err.to_string()))?;
            if price.amount_minor < 0 {
                return Err(poison("the unit price is negative".into()));
            }
            if !(0..=10_000).contains(&e.vat_rate_bp) {
                return Err(poison(format!("VAT rate {} bp is out of range", e.vat_rate_bp)));
            }
            if e.revision <= 0 {
                return Err(poison(format!("revision {} is not positive", e.revision)));
            }
            let at = match &event.occurred_at {
                Some(t) => proto_time::from_proto(t).map_err(|err| poison(format!("occurred_at {}", err.reason)))?,
                None => self.0.now(),
            };
            let part = Part {
                id: uuid::Uuid::now_v7(),
                code: code.to_string(),
                name: e.description.trim().to_string(),
                unit_price: Money::new(price.amount_minor, currency),
                vat_rate_bp: e.vat_rate_bp,
                is_part,
                active: e.active,
                created_at: at,
                changed_at: Some(at),
            };
            let applied = store::apply_catalogue_change(conn, &part, e.revision).await.map_err(ApplyError::of)?;
            if !applied {
                tracing::info!(code, revision = e.revision, "catalogue change older than the copy; ignored");
            }
            Ok(())
        })
    }
}
