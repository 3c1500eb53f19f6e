//! The per-RPC envelope: a request id (taken from `x-request-id` or minted),
//! a tracing span carrying it, the deadline (DEADLINE_EXCEEDED when it
//! lapses), one log line and Prometheus metrics per RPC; admission control;
//! and the `/metrics` exporter on the admin port.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;
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
    max_timeout: Duration,
}

impl RpcLayer {
    /// `service` is the short service name used as a metric label;
    /// `max_timeout` caps every RPC (a client's shorter `grpc-timeout` wins).
    pub fn new(service: &'static str, max_timeout: Duration) -> Self {
        Self { service, max_timeout }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rpc { inner, service: self.service, max_timeout: self.max_timeout }
    }
}

#[derive(Clone)]
pub struct Rpc<S> {
    inner: S,
    service: &'static str,
    max_timeout: Duration,
}

/// Accounts for one RPC even when its future is dropped (client gone).
struct InFlight {
    service: &'static str,
    method: String,
    started: Instant,
    finished: bool,
}

impl InFlight {
    fn start(service: &'static str, method: String) -> Self {
        metrics::gauge!("crm_rpc_in_flight", "service" => service).increment(1.0);
        Self { service, method, started: Instant::now(), finished: false }
    }

    fn finish(&mut self, code: tonic::Code) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        let code_name = format!("{code:?}");
        let labels =
            [("service", self.service.to_string()), ("method", short(&self.method)), ("code", code_name.clone())];
        metrics::counter!("crm_rpc_requests_total", &labels).increment(1);
        metrics::histogram!("crm_rpc_duration_seconds", &labels).record(elapsed.as_secs_f64());
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        if code == tonic::Code::Ok {
            tracing::info!(code = %code_name, elapsed_ms, "rpc done");
        } else {
            tracing::info!(code = %code_name, elapsed_ms, "rpc failed");
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("crm_rpc_in_flight", "service" => self.service).decrement(1.0);
        if !self.finished {
            self.finish(tonic::Code::Cancelled);
        }
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for Rpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
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
        let timeout = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(self.max_timeout, |t| t.min(self.max_timeout));
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let span = tracing::info_span!("rpc", %method, request_id = %request_id, sub = tracing::field::Empty);
        let fut = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        let mut in_flight = InFlight::start(self.service, method);
        Box::pin(
            async move {
                let result = match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => {
                        Ok(tonic::Status::deadline_exceeded(format!("no answer within {} ms", timeout.as_millis()))
                            .into_http())
                    }
                };
                // Errors are sent trailers-only, so their grpc-status is in the
                // headers; a response without one is a success whose status
                // follows in the trailers.
                let code = match &result {
                    Ok(resp) => resp
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                    Err(_) => tonic::Code::Internal,
                };
                in_flight.finish(code);
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

/// Parses the gRPC `grpc-timeout` header: up to 8 digits and a unit
/// (H, M, S, m, u, n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn short(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Admission control: at most `limit` RPCs in flight per service; beyond it
/// a call is refused at once with RESOURCE_EXHAUSTED (reason `OVERLOADED`)
/// instead of queueing behind a saturated database pool. Health checks and
/// reflection are never refused, so an overloaded service is not restarted
/// for failing its health check. (tower's load-shed + concurrency-limit pair
/// cannot exempt paths, hence this small layer.)
#[derive(Clone)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl AdmissionLayer {
    pub fn new(limit: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(limit)), limit }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission { inner, permits: self.permits.clone(), limit: self.limit }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Admission<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if crate::auth::is_public(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let fut = self.inner.call(req);
                Box::pin(async move {
                    let r = fut.await;
                    drop(permit);
                    r
                })
            }
            Err(_) => {
                let status = crate::error::with_reason(
                    tonic::Code::ResourceExhausted,
                    "OVERLOADED",
                    format!("the service is at its limit of {} concurrent calls; retry with backoff", self.limit),
                    &[("limit", self.limit.to_string())],
                );
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder().uri(path).body(()).unwrap_or_default()
    }

    fn grpc_status(r: &http::Response<String>) -> Option<&str> {
        r.headers().get("grpc-status").and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn admission_refuses_beyond_the_limit_but_never_health_checks() {
        let (release, gate) = tokio::sync::watch::channel(false);
        let slow = tower::service_fn(move |_req: http::Request<()>| {
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }
        });
        let mut svc = AdmissionLayer::new(1).layer(slow);
        let Ok(ready) = svc.ready().await;
        let first = ready.call(request("/crm.x.v1.X/Slow"));
        let Ok(ready) = svc.ready().await;
        let refused = ready.call(request("/crm.x.v1.X/Slow"));
        let refused = refused.await.unwrap_or_default();
        assert_eq!(grpc_status(&refused), Some("8"), "RESOURCE_EXHAUSTED");
        // A health check is admitted although the limit is reached.
        let Ok(ready) = svc.ready().await;
        let health = ready.call(request("/grpc.health.v1.Health/Check"));
        let _ = release.send(true);
        assert_eq!(grpc_status(&health.await.unwrap_or_default()), None);
        assert_eq!(grpc_status(&first.await.unwrap_or_default()), None);
        // The permit came back.
        let Ok(ready) = svc.ready().await;
        let again = ready.call(request("/crm.x.v1.X/Slow"));
        assert_eq!(grpc_status(&again.await.unwrap_or_default()), None);
    }

    #[tokio::test]
    async fn a_lapsed_deadline_answers_deadline_exceeded() {
        let slow = tower::service_fn(|_req: http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
        let mut svc = RpcLayer::new("test", Duration::from_secs(10)).layer(slow);
        let mut req = request("/crm.x.v1.X/Slow");
        req.headers_mut().insert("grpc-timeout", http::HeaderValue::from_static("50m"));
        let started = Instant::now();
        let resp = match svc.ready().await {
            Ok(s) => s.call(req).await.unwrap_or_default(),
            Err(e) => match e {},
        };
        assert_eq!(grpc_status(&resp), Some("4"), "DEADLINE_EXCEEDED");
        assert!(started.elapsed() < Duration::from_secs(2), "the client's shorter deadline wins");
        assert!(resp.headers().contains_key(REQUEST_ID_HEADER));
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "S", "10", "10x", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}
