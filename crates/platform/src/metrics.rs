//! Per-RPC observability as one tower layer: a request id (taken from
//! `x-request-id` or minted), a tracing span carrying it, one log line and
//! Prometheus metrics per RPC; plus the `/metrics` exporter on the admin port.

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the RPC being served, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Starts the Prometheus exporter on `addr` (`GET /metrics`). Call once per
/// process.
pub fn install_exporter(addr: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        .map_err(|e| e.to_string())?
        .install()
        .map_err(|e| e.to_string())
}

#[derive(Clone)]
pub struct RpcLayer {
    service: &'static str,
}

impl RpcLayer {
    /// `service` is the short service name used as a metric label.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rpc { inner, service: self.service }
    }
}

#[derive(Clone)]
pub struct Rpc<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Rpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let method = req.uri().path().to_string();
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let span = tracing::info_span!("rpc", %method, request_id = %request_id, sub = tracing::field::Empty);
        let service = self.service;
        let started = Instant::now();
        let fut = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        metrics::gauge!("crm_rpc_in_flight", "service" => service).increment(1.0);
        Box::pin(
            async move {
                let result = fut.await;
                let elapsed = started.elapsed();
                metrics::gauge!("crm_rpc_in_flight", "service" => service).decrement(1.0);
                // Errors are sent trailers-only, so their grpc-status is in the
                // headers; a response without one is a success whose status
                // follows in the trailers.
                let code = match &result {
                    Ok(resp) => resp
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0),
                    Err(_) => 2,
                };
                let code_name = format!("{:?}", tonic::Code::from_i32(code));
                let labels =
                    [("service", service.to_string()), ("method", short(&method)), ("code", code_name.clone())];
                metrics::counter!("crm_rpc_requests_total", &labels).increment(1);
                metrics::histogram!("crm_rpc_duration_seconds", &labels).record(elapsed.as_secs_f64());
                match &result {
                    Ok(_) if code == 0 => {
                        tracing::info!(code = %code_name, elapsed_ms = elapsed.as_millis() as u64, "rpc done")
                    }
                    Ok(_) => tracing::info!(code = %code_name, elapsed_ms = elapsed.as_millis() as u64, "rpc failed"),
                    Err(e) => tracing::warn!(error = %e, elapsed_ms = elapsed.as_millis() as u64, "rpc error"),
                }
                result.map(|mut resp| {
                    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
                        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
                    }
                    resp
                })
            }
            .instrument(span),
        )
    }
}

fn short(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}
