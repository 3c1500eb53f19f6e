//! One server builder for every service: the tower stack (request id,
//! tracing, deadline and metrics; auth; admission control; bounded request
//! messages), gRPC health that follows the database, reflection, HTTP/2
//! keepalive, idle connections closed, and graceful shutdown (NOT_SERVING,
//! optional drain delay, then in-flight RPCs finish) with a hard timeout.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::{StreamExt, wrappers::TcpListenerStream};
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;

use crate::{
    Policy, ServerConfig, TokenKeys, admission::AdmissionLayer, auth::AuthLayer, conn::IdleClosing,
    methods::MethodTable, metrics::RpcLayer,
};

pub use crate::error::BoxError;

/// What a service hands to the platform to be served.
pub struct ServiceSpec {
    /// Short name used in logs and metrics, e.g. `customers`.
    pub name: &'static str,
    /// Who may call what; its service name is also the health-check name.
    pub policy: Policy,
    /// Further gRPC services served beside it (its event feed), each with
    /// its own policy table.
    pub also: Vec<Policy>,
    /// The gRPC routes of the service and of `also`.
    pub routes: Routes,
    /// Encoded `FileDescriptorSet` for reflection.
    pub file_descriptor_set: &'static [u8],
}

/// Serves `spec` on `listener` until `shutdown` resolves, then drains
/// in-flight RPCs for at most `cfg.shutdown_timeout()`. Health reports
/// SERVING while `ready` reads true (the database answers).
pub async fn serve(
    listener: TcpListener,
    spec: ServiceSpec,
    keys: TokenKeys,
    cfg: &ServerConfig,
    mut ready: tokio::sync::watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let addr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let service_name = spec.policy.service();
    let status = |up: bool| if up { ServingStatus::Serving } else { ServingStatus::NotServing };
    let initial = status(*ready.borrow_and_update());
    health.set_service_status(service_name, initial).await;
    health.set_service_status("", initial).await;
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let follow = {
        let health = health.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = ready.changed() => if changed.is_err() { return },
                    _ = stopping_rx.wait_for(|s| *s) => return,
                }
                let s = status(*ready.borrow_and_update());
                health.set_service_status(service_name, s).await;
                health.set_service_status("", s).await;
            }
        })
    };

    // Both reflection versions: grpcurl still asks for v1alpha, buf curl for v1.
    // Advertise only what this server serves: the descriptor set holds every
    // crm service, and `grpcurl list` should not offer another port's.
    let also: Vec<&'static str> = spec.also.iter().map(Policy::service).collect();
    let served: Vec<&str> = std::iter::once(service_name)
        .chain(also.iter().copied())
        .chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .collect();
    let methods = Arc::new(MethodTable::from_descriptors(
        &[
            spec.file_descriptor_set,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ],
        &served,
    )?);
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(spec.file_descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc error details, so grpcurl shows BadRequest/ErrorInfo decoded.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(service_name)
            .with_service_name("grpc.health.v1.Health");
        also.iter().fold(builder, |b, name| b.with_service_name(*name))
    };
    let routes = spec
        .routes
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    // Outside in: the envelope (request id, deadline, metrics, one log line)
    // sees every call; auth refuses the unauthenticated before they can
    // queue; admission queues the rest fairly; request messages are bounded.
    let max_request = cfg.max_request_bytes;
    let stack = ServiceBuilder::new()
        .layer(RpcLayer::new(spec.name, cfg.rpc_timeout(), methods.clone()))
        .layer(AuthLayer::new(keys, std::iter::once(spec.policy).chain(spec.also).collect()))
        .layer(AdmissionLayer::new(&cfg.admission(), methods))
        .map_request(move |req: http::Request<tonic::body::Body>| {
            req.map(|b| tonic::body::Body::new(crate::limits::FrameLimit::new(b, max_request)))
        });

    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_health = health.clone();
    let drain = cfg.shutdown_drain();
    let graceful = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
        tracing::info!(service = spec.name, "shutting down: draining in-flight RPCs");
        // Tell load balancers to stop sending before the listener closes.
        drain_health.set_service_status(service_name, ServingStatus::NotServing).await;
        drain_health.set_service_status("", ServingStatus::NotServing).await;
        tokio::time::sleep(drain).await;
        let _ = started_tx.send(());
    };

    tracing::info!(service = spec.name, %addr, "serving gRPC");
    // tonic's own TCP_NODELAY setting only applies to listeners it binds;
    // without it, responses written in several pieces wait for the peer's
    // delayed ACK (~40 ms) under Nagle's algorithm.
    let (first_call, idle) = (
        Duration::from_millis(cfg.connection_first_call_timeout_ms),
        Duration::from_millis(cfg.connection_idle_timeout_ms),
    );
    let incoming = TcpListenerStream::new(listener).map(move |conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok::<_, std::io::Error>(IdleClosing::new(conn, first_call, idle))
    });
    // The deadline is enforced inside RpcLayer (DEADLINE_EXCEEDED, counted
    // and logged), not by tonic's timeout, which answers CANCELLED.
    // Keepalive pings find dead peers (a client gone without closing); at
    // most 256 concurrent streams per connection bound what one connection
    // can hold open.
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .max_concurrent_streams(Some(256))
        .layer(stack)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, graceful);
    tokio::pin!(server);

    let hard = cfg.shutdown_timeout();
    tokio::select! {
        r = &mut server => r?,
        _ = async { if started_rx.await.is_ok() { tokio::time::sleep(hard).await } else { std::future::pending().await } } => {
            tracing::warn!(service = spec.name, timeout_ms = hard.as_millis() as u64, "shutdown timed out; abandoning in-flight RPCs");
        }
    }
    follow.abort();
    tracing::info!(service = spec.name, "stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Binds a listener, turning "address in use" into a sentence that names it.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BoxError> {
    TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}").into())
}
