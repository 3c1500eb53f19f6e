//! The per-RPC envelope: a request id (taken from `x-request-id` or minted),
//! a tracing span carrying it, the deadline (DEADLINE_EXCEEDED when it
//! lapses), one log line and Prometheus metrics per RPC, and the `/metrics`
//! exporter on the admin port.
//!
//! Memory stays flat whatever paths clients make up: metric labels name
//! only methods the server serves (anything else is `unknown`), and calls
//! refused before any handler ran (unauthenticated, unknown method, shed by
//! admission) are logged at a sampled rate, with a counter per reason.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use tonic::body::Body;
use tracing::Instrument;

use crate::{
    conn::{ConnInfo, ConnUse},
    methods::MethodTable,
};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id of an incoming RPC (set by the RPC layer).
pub fn request_id<T>(req: &tonic::Request<T>) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

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

/// Reasons a call is refused before (or instead of) its handler; the only
/// label values of `crm_rpc_refused_total`.
const REFUSALS: &[&str] = &[
    "UNAUTHENTICATED",
    "UNKNOWN_METHOD",
    "PERMISSION_DENIED",
    "QUEUE_FULL",
    "PRINCIPAL_LIMIT",
    "OVERLOADED",
    "STREAM_IDLE",
    "STREAM_STALLED",
    "OTHER",
];

/// When each refusal reason was last logged (seconds since `EPOCH`).
static LAST_LOGGED: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];
static SUPPRESSED: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Counts a refusal and logs it at most once a second per reason, saying
/// how many were not logged since.
pub fn sampled_refusal(reason: &str) {
    let i = REFUSALS.iter().position(|r| *r == reason).unwrap_or(REFUSALS.len() - 1);
    let label = REFUSALS[i];
    metrics::counter!("crm_rpc_refused_total", "reason" => label).increment(1);
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 1;
    let last = LAST_LOGGED[i].load(Ordering::Relaxed);
    if now > last && LAST_LOGGED[i].compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        let suppressed = SUPPRESSED[i].swap(0, Ordering::Relaxed);
        tracing::info!(reason = label, suppressed, "call refused (logged at most once a second per reason)");
    } else {
        SUPPRESSED[i].fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub struct RpcLayer {
    service: &'static str,
    max_timeout: Duration,
    methods: Arc<MethodTable>,
}

impl RpcLayer {
    /// `service` is the short service name used as a metric label;
    /// `max_timeout` caps every unary RPC (a client's shorter `grpc-timeout`
    /// wins); `methods` names what may appear as a label and which methods
    /// stream (their length is bounded by an idle timeout, not a deadline).
    pub fn new(service: &'static str, max_timeout: Duration, methods: Arc<MethodTable>) -> Self {
        Self { service, max_timeout, methods }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rpc { inner, service: self.service, max_timeout: self.max_timeout, methods: self.methods.clone() }
    }
}

#[derive(Clone)]
pub struct Rpc<S> {
    inner: S,
    service: &'static str,
    max_timeout: Duration,
    methods: Arc<MethodTable>,
}

/// Accounts for one RPC even when its future is dropped (client gone).
struct InFlight {
    service: &'static str,
    /// The method's name if the server serves it; `None` for a made-up path.
    method: Option<Arc<str>>,
    started: Instant,
    finished: bool,
}

impl InFlight {
    fn start(service: &'static str, method: Option<Arc<str>>) -> Self {
        metrics::gauge!("crm_rpc_in_flight", "service" => service).increment(1.0);
        Self { service, method, started: Instant::now(), finished: false }
    }

    fn finish(&mut self, code: tonic::Code) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        let code_name = format!("{code:?}");
        let method = self.method.as_deref().unwrap_or("unknown").to_string();
        let labels = [("service", self.service.to_string()), ("method", method), ("code", code_name.clone())];
        metrics::counter!("crm_rpc_requests_total", &labels).increment(1);
        metrics::histogram!("crm_rpc_duration_seconds", &labels).record(elapsed.as_secs_f64());
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match code {
            tonic::Code::Ok => tracing::info!(code = %code_name, elapsed_ms, "rpc done"),
            // Refused before a handler ran: counted and logged by reason, sampled.
            tonic::Code::Unauthenticated => sampled_refusal("UNAUTHENTICATED"),
            _ if self.method.is_none() => sampled_refusal("UNKNOWN_METHOD"),
            tonic::Code::ResourceExhausted => {}
            _ => tracing::info!(code = %code_name, elapsed_ms, "rpc failed"),
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

impl<S> tower::Service<http::Request<Body>> for Rpc<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let known = self.methods.get(req.uri().path()).cloned();
        let client_streams = known.as_ref().is_some_and(|m| m.shape.client_streams());
        let asked = req.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
        // A client stream (a bulk upload) lasts as long as its data; an idle
        // timeout per message bounds it instead (admission). Every other
        // call has the server's cap.
        let timeout =
            if client_streams { asked } else { Some(asked.map_or(self.max_timeout, |t| t.min(self.max_timeout))) };
        let conn_use: Option<ConnUse> = req.extensions().get::<ConnInfo>().map(|c| c.activity.begin());
        req.extensions_mut().insert(RequestId(request_id.clone()));
        // A made-up path is not logged as itself: the span names it unknown.
        let method_field = known.as_ref().map_or("unknown", |m| &m.name).to_string();
        let span =
            tracing::info_span!("rpc", method = %method_field, request_id = %request_id, sub = tracing::field::Empty);
        let fut = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        let mut in_flight = InFlight::start(self.service, known.map(|m| m.name));
        Box::pin(
            async move {
                let result = match timeout {
                    None => fut.await,
                    Some(timeout) => match tokio::time::timeout(timeout, fut).await {
                        Ok(r) => r,
                        Err(_) => {
                            Ok(tonic::Status::deadline_exceeded(format!("no answer within {} ms", timeout.as_millis()))
                                .into_http())
                        }
                    },
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
                    match conn_use {
                        // The connection is in use until the response (a
                        // stream, perhaps) has been sent.
                        Some(u) => resp.map(|b| Body::new(UsingConn { inner: b, _use: u })),
                        None => resp,
                    }
                })
            }
            .instrument(span),
        )
    }
}

/// A response body that keeps its connection counted as in use.
struct UsingConn {
    inner: Body,
    _use: ConnUse,
}

impl http_body::Body for UsingConn {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn request(path: &str) -> http::Request<Body> {
        http::Request::builder().uri(path).body(Body::empty()).unwrap_or_default()
    }

    fn grpc_status(r: &http::Response<Body>) -> Option<&str> {
        r.headers().get("grpc-status").and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_lapsed_deadline_answers_deadline_exceeded() {
        let slow = tower::service_fn(|_req: http::Request<Body>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let mut svc = RpcLayer::new("test", Duration::from_secs(10), Arc::default()).layer(slow);
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
