//! Events between the services (SPEC X-1), one way for all four:
//!
//! - [`emit`] writes an event into the producer's outbox in the transaction
//!   of the change it reports;
//! - [`Feed`] serves that outbox as `crm.events.v1.EventFeedService.Subscribe`
//!   (woken by LISTEN/NOTIFY, resumable from any seq);
//! - [`Consumers`] follow the peers' feeds and apply each event with its id
//!   and the cursor in one transaction — at-least-once delivery,
//!   exactly-once effect — parking poison events for `RetryParkedEvent`.
//!
//! The catalogue of events is `proto/crm/events/v1/events.proto` and
//! docs/events.md.

pub mod aliases;
pub mod consumer;
pub mod feed;
pub mod outbox;
pub mod saga;

use std::{collections::HashMap, sync::Arc};

use crm_platform::{Policy, ServiceContext, ServiceSpec, client::Peer};
use sqlx::PgPool;
use tonic::service::Routes;

pub use consumer::{ApplyError, ApplyFuture, ByType, Consumers, Handler, Outcome, Subscription};
pub use crm_proto::events::v1 as pb;
pub use feed::Feed;
pub use outbox::{emit, emit_many, type_of};
pub use pb::event::Payload;

/// The feed of `schema`'s outbox and the views of its consumers, ready to be
/// added to the service's routes (with [`feed::policy`] in `ServiceSpec::also`).
pub fn feed(
    schema: &'static str,
    pool: PgPool,
    ctx: &ServiceContext,
    subscriptions: Vec<Subscription>,
) -> pb::event_feed_service_server::EventFeedServiceServer<Feed> {
    let consumers = Arc::new(Consumers::new(schema, pool.clone(), subscriptions));
    Feed::new(schema, pool, ctx.stopping.clone(), consumers).into_server()
}

/// What a service with an event feed serves: its own gRPC `routes` under
/// its `policy`, and beside them the feed of its outbox (with its consumers'
/// views) under the feed's policy.
pub fn spec_with_feed(
    schema: &'static str,
    policy: Policy,
    routes: Routes,
    pool: PgPool,
    ctx: &ServiceContext,
    subscriptions: Vec<Subscription>,
) -> ServiceSpec {
    ServiceSpec {
        name: schema,
        policy,
        also: vec![feed::policy()],
        routes: routes.add_service(feed(schema, pool, ctx, subscriptions)),
        file_descriptor_set: crm_proto::FILE_DESCRIPTOR_SET,
    }
}

/// Runs `schema`'s consumers of its peers' feeds until aborted.
pub async fn consume(schema: &'static str, pool: PgPool, ctx: ServiceContext, subscriptions: Vec<Subscription>) {
    let mut peers = HashMap::new();
    for sub in &subscriptions {
        let Some(url) = ctx.peer_url(sub.source) else {
            tracing::error!(schema, source = sub.source, "unknown peer");
            continue;
        };
        match Peer::lazy(url, ctx.keys.clone(), schema) {
            Ok(peer) => {
                peers.insert(sub.source, peer);
            }
            Err(e) => tracing::error!(schema, source = sub.source, url, error = %e, "bad peer address"),
        }
    }
    Arc::new(Consumers::new(schema, pool, subscriptions)).run(peers).await;
}

#[cfg(test)]
mod tests {
    /// Every service's events migration is the shared template for its schema.
    #[test]
    fn service_migrations_match_the_template() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services");
        for schema in ["customers", "complaints", "dispatch", "billing"] {
            let dir = root.join(schema).join("migrations");
            // The one migration that renames the old outbox is the template's copy.
            let found: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("RENAME TO outbox_v0")))
                .collect();
            assert_eq!(found.len(), 1, "{schema} needs exactly one events migration, found {found:?}");
            let text = std::fs::read_to_string(&found[0]).unwrap_or_default();
            assert_eq!(text, crate::outbox::migration_sql(schema), "{schema}'s events migration drifted");
        }
    }

    /// The services that keep customer ids hold the shared aliases table.
    #[test]
    fn alias_migrations_match_the_template() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services");
        for schema in ["complaints", "dispatch", "billing"] {
            let dir = root.join(schema).join("migrations");
            let found: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("customer_aliases (")))
                .collect();
            assert_eq!(found.len(), 1, "{schema} needs exactly one aliases migration, found {found:?}");
            let text = std::fs::read_to_string(&found[0]).unwrap_or_default();
            assert_eq!(text, crate::aliases::migration_sql(schema), "{schema}'s aliases migration drifted");
        }
    }
}
