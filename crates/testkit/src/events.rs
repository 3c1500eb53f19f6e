//! Delivering a peer's events by hand to a service's consumers, to test each
//! effect (and a duplicate delivery) without running the peer.

use std::sync::atomic::{AtomicI64, Ordering};

use crm_events::{Consumers, Outcome, Payload, Subscription, pb};
use crm_platform::{ServerConfig, ServiceContext, TokenKeys, proto_time};
use sqlx::PgPool;
use uuid::Uuid;

use crate::TEST_JWT_SECRET;

/// The context services get in tests (default settings, the test key).
pub fn context() -> ServiceContext {
    let keys = match TokenKeys::hs256(TEST_JWT_SECRET.as_bytes()) {
        Ok(k) => k,
        Err(e) => panic!("test keys: {e}"),
    };
    match ServiceContext::new(&ServerConfig::defaults(), keys) {
        Ok(c) => c,
        Err(e) => panic!("test context: {e}"),
    }
}

/// An event of `source` about `aggregate` carrying `payload`, as that peer's
/// feed would serve it at position `seq`.
pub fn event(source: &str, aggregate: &str, seq: i64, payload: Payload) -> pb::Event {
    pb::Event {
        id: Uuid::now_v7().to_string(),
        seq,
        r#type: crm_events::type_of(&payload).to_string(),
        source: source.to_string(),
        aggregate_id: aggregate.to_string(),
        occurred_at: Some(proto_time::to_proto(proto_time::now())),
        schema_version: crm_events::outbox::SCHEMA_VERSION,
        payload: Some(payload),
    }
}

/// A service's consumers over a test database, as its background runs them,
/// fed by hand. Moves the real cursors, as a delivery from the feed would.
pub struct HandFeed {
    consumers: Consumers,
    subscriptions: Vec<Subscription>,
    seq: AtomicI64,
}

impl HandFeed {
    /// `schema`'s consumers with the subscriptions its service declares.
    pub fn new(schema: &'static str, pool: PgPool, subscriptions: fn(&ServiceContext) -> Vec<Subscription>) -> Self {
        let subscriptions = subscriptions(&context());
        Self {
            consumers: Consumers::new(schema, pool, subscriptions.clone()),
            subscriptions,
            seq: AtomicI64::new(1000),
        }
    }

    /// The consumers themselves (parked events, status).
    pub fn consumers(&self) -> &Consumers {
        &self.consumers
    }

    /// The subscription to `source`'s feed.
    pub fn subscription(&self, source: &str) -> &Subscription {
        match self.subscriptions.iter().find(|s| s.source == source) {
            Some(s) => s,
            None => panic!("the service does not follow {source}"),
        }
    }

    /// A fresh event of `source` at the next position.
    pub fn event(&self, source: &str, aggregate: &str, payload: Payload) -> pb::Event {
        event(source, aggregate, self.seq.fetch_add(1, Ordering::Relaxed), payload)
    }

    /// Offers one event: applied, a duplicate or parked.
    pub async fn deliver(&self, e: &pb::Event) -> Outcome {
        match self.consumers.deliver(self.subscription(&e.source), e).await {
            Ok(o) => o,
            Err(err) => panic!("deliver {}: {err}", e.r#type),
        }
    }

    /// Offers consecutive events of one feed in one transaction.
    pub async fn deliver_batch(&self, events: &[pb::Event]) {
        let Some(first) = events.first() else { return };
        if let Err(err) = self.consumers.deliver_batch(self.subscription(&first.source), events).await {
            panic!("deliver batch: {err}");
        }
    }
}
