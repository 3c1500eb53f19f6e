//! Calling another service: a lazily connected channel per peer, a `system`
//! token minted with the deployment's key (re-minted before it expires), the
//! caller's request id passed on for log correlation, and a deadline on every
//! call so a slow peer cannot hold an RPC past its own budget.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crm_domain::Role;
use tonic::{metadata::MetadataValue, service::Interceptor, transport::Channel};

use crate::{TokenKeys, error::BoxError, metrics::REQUEST_ID_HEADER};

/// How long a system token lives; it is re-minted at half-life.
const TOKEN_TTL: Duration = Duration::from_secs(600);

/// Another service, as seen by a client: its channel and the credentials to
/// call it. Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    pub channel: Channel,
    pub auth: SystemAuth,
}

impl Peer {
    /// Connects on first use, so services can start in any order.
    pub fn lazy(url: &str, keys: TokenKeys, caller: &str) -> Result<Peer, BoxError> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Peer { channel, auth: SystemAuth::new(keys, format!("system:{caller}")) })
    }
}

/// Adds `authorization: Bearer <system token>` to every call.
#[derive(Clone)]
pub struct SystemAuth {
    keys: TokenKeys,
    sub: String,
    cached: Arc<Mutex<Option<(String, Instant)>>>,
}

impl SystemAuth {
    pub fn new(keys: TokenKeys, sub: String) -> Self {
        Self { keys, sub, cached: Arc::new(Mutex::new(None)) }
    }

    fn token(&self) -> Result<String, tonic::Status> {
        let mut guard = self.cached.lock().map_err(|_| tonic::Status::internal("token cache poisoned"))?;
        if let Some((t, minted)) = guard.as_ref()
            && minted.elapsed() < TOKEN_TTL / 2
        {
            return Ok(t.clone());
        }
        let t = self.keys.mint(&self.sub, &[Role::System], None, TOKEN_TTL).map_err(|e| crate::error::internal(&e))?;
        *guard = Some((t.clone(), Instant::now()));
        Ok(t)
    }
}

impl Interceptor for SystemAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let value: MetadataValue<_> =
            format!("Bearer {}", self.token()?).parse().map_err(|_| tonic::Status::internal("bad token"))?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }
}

/// An outgoing request carrying the incoming request id (if any) and a
/// deadline of `timeout`.
pub fn request<T>(message: T, request_id: Option<&str>, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(timeout);
    if let Some(id) = request_id
        && let Ok(v) = id.parse()
    {
        req.metadata_mut().insert(REQUEST_ID_HEADER, v);
    }
    req
}

pub use crate::metrics::request_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_tokens_are_cached_and_verify() {
        let keys = TokenKeys::hs256(b"0123456789abcdef0123456789abcdef").unwrap_or_else(|e| panic!("{e}"));
        let auth = SystemAuth::new(keys.clone(), "system:complaints".into());
        let a = auth.token().unwrap_or_default();
        let b = auth.token().unwrap_or_default();
        assert_eq!(a, b, "re-used within its half-life");
        let p = keys.verify(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.roles, vec![Role::System]);
        assert_eq!(p.sub, "system:complaints");
    }

    #[test]
    fn outgoing_requests_carry_deadline_and_request_id() {
        let r = request((), Some("abc-123"), Duration::from_millis(1500));
        assert_eq!(r.metadata().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()), Some("abc-123"));
        assert!(r.metadata().get("grpc-timeout").is_some());
    }
}
