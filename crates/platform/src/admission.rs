//! Admission control: a burst waits briefly for a slot instead of
//! being refused, no principal takes more than its share, and streams have
//! slots of their own so stalled streams never starve unary calls.
//!
//! - Three pools per service: unary calls and uploads (client streams),
//!   which together fit in the database pool since each holds at most one
//!   connection at a time, and feeds (server streams), which hold none while
//!   they wait for events.
//! - A call first takes a slot of its principal's share of the pool, then a
//!   slot of the pool; both waits together last at most `queue_timeout`.
//!   Waiting is FIFO (tokio's semaphore), so a flood from one principal
//!   queues behind its own share and others keep getting slots.
//! - Beyond `max_waiting` callers already queued, or when the wait lapses:
//!   RESOURCE_EXHAUSTED with a reason (`QUEUE_FULL`, `PRINCIPAL_LIMIT`,
//!   `OVERLOADED`) and a retry delay.
//! - A streaming call keeps its slot until its response body is dropped (the
//!   stream really ended), not just until its handler returned. A client
//!   stream that sends nothing for `stream_idle` ends with DEADLINE_EXCEEDED
//!   (reason `STREAM_IDLE`); a server stream whose client stops reading for
//!   `stream_idle` gives its slot back.
//! - Health checks and reflection never reach this layer's queues.
//!
//! It runs after authentication, so the principal is known and nothing
//! unauthenticated ever waits in a queue.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status, body::Body};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    Principal,
    methods::{MethodTable, Shape},
};

/// How calls are admitted; see `ServerConfig` for the defaults and why.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub unary_limit: usize,
    pub upload_limit: usize,
    pub feed_limit: usize,
    /// Share of each pool one principal may hold, in (0, 1].
    pub principal_share: f64,
    pub queue_timeout: Duration,
    /// Callers that may wait at once per pool; beyond it, refused at once.
    pub max_waiting: usize,
    pub stream_idle: Duration,
}

/// One pool of slots with per-principal shares.
struct Slots {
    kind: &'static str,
    limit: usize,
    per_principal: usize,
    global: Arc<Semaphore>,
    principals: Mutex<HashMap<String, Arc<Semaphore>>>,
    waiting: AtomicUsize,
}

impl Slots {
    fn new(kind: &'static str, limit: usize, share: f64) -> Self {
        let limit = limit.max(1);
        let share = if share.is_finite() { share.clamp(0.0, 1.0) } else { 1.0 };
        // ceil(limit × share), at least one slot.
        let per_principal = ((limit as f64 * share).ceil() as usize).clamp(1, limit);
        Self {
            kind,
            limit,
            per_principal,
            global: Arc::new(Semaphore::new(limit)),
            principals: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    fn principal(&self, sub: &str) -> Arc<Semaphore> {
        let mut map = self.principals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(sub.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_principal))).clone()
    }

    /// Forgets a principal's semaphore once nobody holds or waits for it, so
    /// the map does not grow with every principal ever seen.
    fn forget_if_unused(&self, sub: &str) {
        let mut map = self.principals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get(sub)
            && Arc::strong_count(s) == 1
            && s.available_permits() == self.per_principal
        {
            map.remove(sub);
        }
    }
}

/// The slots a call holds; given back when dropped.
struct Held {
    slots: Arc<Slots>,
    sub: String,
    principal: Option<OwnedSemaphorePermit>,
    global: Option<OwnedSemaphorePermit>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.global.take();
        self.principal.take();
        self.slots.forget_if_unused(&self.sub);
        metrics::gauge!("crm_admission_in_use", "pool" => self.slots.kind).decrement(1.0);
    }
}

struct Shared {
    unary: Arc<Slots>,
    uploads: Arc<Slots>,
    feeds: Arc<Slots>,
    methods: Arc<MethodTable>,
    queue_timeout: Duration,
    max_waiting: usize,
    stream_idle: Duration,
}

#[derive(Clone)]
pub struct AdmissionLayer {
    shared: Arc<Shared>,
}

impl AdmissionLayer {
    pub fn new(cfg: &AdmissionConfig, methods: Arc<MethodTable>) -> Self {
        Self {
            shared: Arc::new(Shared {
                unary: Arc::new(Slots::new("unary", cfg.unary_limit, cfg.principal_share)),
                uploads: Arc::new(Slots::new("upload", cfg.upload_limit, cfg.principal_share)),
                feeds: Arc::new(Slots::new("feed", cfg.feed_limit, cfg.principal_share)),
                methods,
                queue_timeout: cfg.queue_timeout,
                max_waiting: cfg.max_waiting.max(1),
                stream_idle: cfg.stream_idle,
            }),
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission { inner, shared: self.shared.clone() }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    shared: Arc<Shared>,
}

fn refused(reason: &str, message: String, retry_after: Duration) -> http::Response<Body> {
    let mut details = ErrorDetails::with_error_info(reason, crate::error::ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(retry_after));
    crate::metrics::sampled_refusal(reason);
    Status::with_error_details(Code::ResourceExhausted, message, details).into_http()
}

impl<S> tower::Service<http::Request<Body>> for Admission<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes
        // its place for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path();
        if crate::auth::is_public(path) {
            return Box::pin(inner.call(req));
        }
        let shape = self.shared.methods.get(path).map_or(Shape::Unary, |m| m.shape);
        let shared = self.shared.clone();
        let sub = req.extensions().get::<Principal>().map(|p| p.sub.clone()).unwrap_or_default();
        Box::pin(async move {
            let slots = match shape {
                Shape::Unary => shared.unary.clone(),
                Shape::ClientStream | Shape::Bidi => shared.uploads.clone(),
                Shape::ServerStream => shared.feeds.clone(),
            };
            let held = match admit(&shared, &slots, &sub).await {
                Ok(h) => h,
                Err(resp) => return Ok(*resp),
            };
            let req = if shape.client_streams() {
                req.map(|b| Body::new(IdleRequestBody::new(b, shared.stream_idle)))
            } else {
                req
            };
            let resp = inner.call(req).await?;
            Ok(if shape.is_streaming() {
                resp.map(|b| Body::new(HeldStream::new(b, held, shared.stream_idle)))
            } else {
                resp.map(|b| Body::new(HeldBody { inner: b, _held: held }))
            })
        })
    }
}

/// Waits for a principal slot, then a pool slot, within the queue timeout.
async fn admit(shared: &Shared, slots: &Arc<Slots>, sub: &str) -> Result<Held, Box<http::Response<Body>>> {
    let retry = Duration::from_millis(200);
    if slots.waiting.load(Ordering::Relaxed) >= shared.max_waiting {
        return Err(Box::new(refused(
            "QUEUE_FULL",
            format!("{} callers are already waiting for a {} slot; retry with backoff", shared.max_waiting, slots.kind),
            retry,
        )));
    }
    slots.waiting.fetch_add(1, Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + shared.queue_timeout;
    let principal_sem = slots.principal(sub);
    let result = async {
        let principal =
            tokio::time::timeout_at(deadline, principal_sem.clone().acquire_owned()).await.map_err(|_| {
                refused(
                    "PRINCIPAL_LIMIT",
                    format!(
                        "you already have {} {} calls in flight, the most one caller may hold; retry with backoff",
                        slots.per_principal, slots.kind
                    ),
                    retry,
                )
            })?;
        let global = tokio::time::timeout_at(deadline, slots.global.clone().acquire_owned()).await.map_err(|_| {
            refused(
                "OVERLOADED",
                format!(
                    "the service is at its limit of {} concurrent {} calls; retry with backoff",
                    slots.limit, slots.kind
                ),
                retry,
            )
        })?;
        // Semaphores are never closed, so acquiring cannot fail otherwise.
        Ok::<_, http::Response<Body>>((principal.ok(), global.ok()))
    }
    .await;
    slots.waiting.fetch_sub(1, Ordering::Relaxed);
    drop(principal_sem);
    match result {
        Ok((principal, global)) => {
            metrics::gauge!("crm_admission_in_use", "pool" => slots.kind).increment(1.0);
            Ok(Held { slots: slots.clone(), sub: sub.to_string(), principal, global })
        }
        Err(resp) => {
            slots.forget_if_unused(sub);
            Err(Box::new(resp))
        }
    }
}

/// A unary response body holding the call's slot until it is sent.
struct HeldBody {
    inner: Body,
    _held: Held,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A client's request stream that must keep sending: while the handler
/// waits for the next message, at most `idle` may pass.
struct IdleRequestBody {
    inner: Body,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleRequestBody {
    fn new(inner: Body, idle: Duration) -> Self {
        Self { inner, idle, timer: None }
    }
}

impl http_body::Body for IdleRequestBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.timer = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let idle = self.idle;
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.timer = None;
                        crate::metrics::sampled_refusal("STREAM_IDLE");
                        let details =
                            ErrorDetails::with_error_info("STREAM_IDLE", crate::error::ERROR_DOMAIN, HashMap::new());
                        Poll::Ready(Some(Err(Status::with_error_details(
                            Code::DeadlineExceeded,
                            format!("the stream sent nothing for {} s; send messages steadily", idle.as_secs()),
                            details,
                        ))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What a watchdog knows of a server stream.
struct StreamState {
    started: Instant,
    /// Milliseconds since `started` when a message was last handed over.
    handed_at: AtomicU64,
    /// A message was handed over and the body has not been asked for more
    /// since: the client (through HTTP/2 flow control) is not reading.
    awaiting_client: AtomicBool,
    done: AtomicBool,
    held: Mutex<Option<Held>>,
}

/// A streaming response holding its slot until the stream ends, or until
/// its client stops reading for `idle`.
struct HeldStream {
    inner: Body,
    state: Arc<StreamState>,
}

impl HeldStream {
    fn new(inner: Body, held: Held, idle: Duration) -> Self {
        let state = Arc::new(StreamState {
            started: Instant::now(),
            handed_at: AtomicU64::new(0),
            awaiting_client: AtomicBool::new(false),
            done: AtomicBool::new(false),
            held: Mutex::new(Some(held)),
        });
        let watched = Arc::downgrade(&state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                let Some(s) = watched.upgrade() else { return };
                if s.done.load(Ordering::Acquire) {
                    return;
                }
                let since = s.started.elapsed().as_millis() as u64 - s.handed_at.load(Ordering::Acquire);
                if s.awaiting_client.load(Ordering::Acquire) && since >= idle.as_millis() as u64 {
                    crate::metrics::sampled_refusal("STREAM_STALLED");
                    s.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                    return;
                }
            }
        });
        Self { inner, state }
    }

    fn release(&self) {
        self.state.done.store(true, Ordering::Release);
        self.state.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

impl Drop for HeldStream {
    fn drop(&mut self) {
        self.release();
    }
}

impl http_body::Body for HeldStream {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.state.awaiting_client.store(false, Ordering::Release);
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => {
                let at = self.state.started.elapsed().as_millis() as u64;
                self.state.handed_at.store(at, Ordering::Release);
                self.state.awaiting_client.store(true, Ordering::Release);
            }
            Poll::Ready(_) => self.release(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
