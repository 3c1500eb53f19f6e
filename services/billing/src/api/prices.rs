//! Prices (BIL-2): tariff versions by customer class, quotes priced by the
//! version in force, and the one price catalogue (published to dispatch by
//! `crate::usecases::catalogue`).

use chrono::Utc;
use crm_platform::{Violations, error::invalid_argument, idempotency::IdempotentCall};
use crm_proto::billing::v1 as pb;
use uuid::Uuid;

use super::{BillingApi, Caller, convert};
use crate::{
    error::Result,
    model::{RuleViolation, pricing},
    store::{self, IDEMPOTENCY_TABLE},
};

impl BillingApi {
    pub(super) async fn create_tariff(
        &self,
        who: &Caller,
        req: pb::CreateTariffRequest,
    ) -> Result<pb::CreateTariffResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "CreateTariff", who, &req.request_id, &req)?;
        let given = req.tariff.clone().ok_or_else(|| invalid_argument("tariff", "is required"))?;
        let (class, from, vat, blocks, currency) = convert::tariff_in(&given)?;
        // Past versions are immutable: a new version cannot reach back
        // before today and change what was in force (BIL-2).
        let today = self.calendar.local_date(Utc::now());
        if from < today {
            return Err(invalid_argument(
                "tariff.effective_from",
                "must not be in the past: past tariffs never change",
            )
            .into());
        }
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let t = store::Tariff {
            id: Uuid::now_v7(),
            customer_class: class,
            effective_from: from,
            vat_rate_bp: vat,
            currency,
            blocks,
            created_by: who.sub.clone(),
        };
        store::insert_tariff(&mut tx, &t).await?;
        let resp = pb::CreateTariffResponse { tariff: Some(convert::tariff(&t)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_tariffs(
        &self,
        _who: &Caller,
        req: pb::ListTariffsRequest,
    ) -> Result<pb::ListTariffsResponse> {
        let class =
            convert::customer_class(req.customer_class).map_err(|e| invalid_argument("customer_class", e.reason))?;
        let mut conn = self.pool.acquire().await?;
        let tariffs = store::list_tariffs(&mut conn, class).await?;
        Ok(pb::ListTariffsResponse { tariffs: tariffs.iter().map(convert::tariff).collect() })
    }

    pub(super) async fn quote_usage(
        &self,
        _who: &Caller,
        req: pb::QuoteUsageRequest,
    ) -> Result<pb::QuoteUsageResponse> {
        let mut v = Violations::default();
        let class = v.check("customer_class", convert::required(convert::customer_class(req.customer_class)));
        if req.volume_litres < 0 {
            v.add("volume_litres", "must not be negative");
        }
        let on = convert::date(&mut v, "on", req.on.as_ref());
        let (class, on) = v.finish_with((class, on))?;
        let mut conn = self.pool.acquire().await?;
        let t = store::tariff_in_force(&mut conn, class, on).await?.ok_or_else(|| {
            RuleViolation::new("NO_TARIFF", format!("no {} tariff is in force on {on}", class.as_str()))
        })?;
        let quote = pricing::quote(&t.blocks, t.vat_rate_bp, req.volume_litres)?;
        Ok(pb::QuoteUsageResponse {
            tariff_id: t.id.to_string(),
            blocks: quote
                .blocks
                .iter()
                .map(|b| pb::BlockCharge {
                    volume_litres: b.volume_litres,
                    price_minor_per_m3: b.price_minor_per_m3,
                    amount_minor: b.amount_minor,
                })
                .collect(),
            net: Some(convert::money(quote.net_minor, &t.currency)),
            vat: Some(convert::money(quote.vat_minor, &t.currency)),
            total: Some(convert::money(quote.total_minor, &t.currency)),
        })
    }

    pub(super) async fn set_catalogue_item(
        &self,
        who: &Caller,
        req: pb::SetCatalogueItemRequest,
    ) -> Result<pb::SetCatalogueItemResponse> {
        let call = IdempotentCall::new(IDEMPOTENCY_TABLE, "SetCatalogueItem", who, &req.request_id, &req)?;
        let item = convert::item_in(&req.item.clone().unwrap_or_default())?;
        let mut tx = crm_platform::fresh_or_replay!(self.open(&call).await?);
        let revision = store::upsert_item(&mut tx, &item).await?;
        crate::usecases::catalogue::publish(&mut tx, &item, revision).await?;
        let resp = pb::SetCatalogueItemResponse { item: Some(convert::item(&item)) };
        call.commit(tx, &resp).await?;
        Ok(resp)
    }

    pub(super) async fn list_catalogue_items(
        &self,
        _who: &Caller,
        _req: pb::ListCatalogueItemsRequest,
    ) -> Result<pb::ListCatalogueItemsResponse> {
        let mut conn = self.pool.acquire().await?;
        Ok(pb::ListCatalogueItemsResponse {
            items: store::list_items(&mut conn).await?.iter().map(convert::item).collect(),
        })
    }
}
