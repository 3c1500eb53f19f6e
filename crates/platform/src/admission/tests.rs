use super::*;
use crate::methods::MethodTable;
use tower::{Layer, Service, ServiceExt};

fn cfg(limit: usize, share: f64, queue_ms: u64) -> AdmissionConfig {
    AdmissionConfig {
        unary_limit: limit,
        upload_limit: limit,
        feed_limit: limit,
        principal_share: share,
        queue_timeout: Duration::from_millis(queue_ms),
        max_waiting: 100,
        stream_idle: Duration::from_secs(5),
    }
}

fn request(sub: &str) -> http::Request<Body> {
    let mut r = http::Request::builder().uri("/crm.x.v1.X/Slow").body(Body::empty()).unwrap_or_default();
    r.extensions_mut().insert(Principal { sub: sub.into(), roles: vec![], branch: None });
    r
}

fn code(r: &http::Response<Body>) -> Option<String> {
    r.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A service whose calls finish when the gate opens.
fn gated() -> (
    tokio::sync::watch::Sender<bool>,
    impl Clone
    + Service<http::Request<Body>, Response = http::Response<Body>, Error = std::convert::Infallible, Future = impl Send>
    + Send
    + 'static,
) {
    let (release, gate) = tokio::sync::watch::channel(false);
    let svc = tower::service_fn(move |_req: http::Request<Body>| {
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        }
    });
    (release, svc)
}

#[tokio::test]
async fn a_burst_waits_for_a_slot_instead_of_being_refused() {
    let (release, svc) = gated();
    let mut svc = AdmissionLayer::new(&cfg(1, 1.0, 2_000), Arc::new(MethodTable::default())).layer(svc);
    let Ok(s) = svc.ready().await;
    let first = tokio::spawn(s.call(request("a")));
    let Ok(s) = svc.ready().await;
    let second = tokio::spawn(s.call(request("b")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = release.send(true);
    let first = first.await.ok().and_then(Result::ok).unwrap_or_default();
    let second = second.await.ok().and_then(Result::ok).unwrap_or_default();
    assert_eq!(code(&first), None);
    assert_eq!(code(&second), None, "the second caller waited for the slot and was served");
}

#[tokio::test]
async fn a_lapsed_wait_is_resource_exhausted() {
    let (release, svc) = gated();
    let mut svc = AdmissionLayer::new(&cfg(1, 1.0, 50), Arc::new(MethodTable::default())).layer(svc);
    let Ok(s) = svc.ready().await;
    let first = tokio::spawn(s.call(request("a")));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let Ok(s) = svc.ready().await;
    let refused = s.call(request("b")).await.unwrap_or_default();
    assert_eq!(code(&refused).as_deref(), Some("8"), "RESOURCE_EXHAUSTED");
    let _ = release.send(true);
    let _ = first.await;
}

#[tokio::test]
async fn one_principal_cannot_take_every_slot() {
    let (release, svc) = gated();
    // 4 slots, half for one principal.
    let mut svc = AdmissionLayer::new(&cfg(4, 0.5, 100), Arc::new(MethodTable::default())).layer(svc);
    let mut hog = Vec::new();
    for _ in 0..2 {
        let Ok(s) = svc.ready().await;
        hog.push(tokio::spawn(s.call(request("hog"))));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let Ok(s) = svc.ready().await;
    let third = s.call(request("hog")).await.unwrap_or_default();
    assert_eq!(code(&third).as_deref(), Some("8"), "the hog's third call waits past the timeout");
    let Ok(s) = svc.ready().await;
    let other = tokio::spawn(s.call(request("other")));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _ = release.send(true);
    let other = other.await.ok().and_then(Result::ok).unwrap_or_default();
    assert_eq!(code(&other), None, "another principal still got a slot");
    for h in hog {
        let _ = h.await;
    }
}
