//! Authentication and authorization. Every RPC carries
//! `authorization: Bearer <JWT>` (HS256; claims `sub`, `roles`, `branch`,
//! `exp`). A tower layer verifies the token, checks the caller's roles against
//! the service's policy table (deny by default) and hands the `Principal` to
//! the handler through the request extensions. Row-level visibility (whose
//! customers a salesperson may see) is the service's business, not this
//! layer's.

use std::{
    collections::HashMap,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crm_domain::Role;
use futures_util::future::{Either, Ready, ready};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::error;

/// The claims of a token as they travel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub exp: u64,
}

/// Who is calling, as the handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub roles: Vec<Role>,
    pub branch: Option<String>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
}

/// Signs and verifies tokens with one shared HS256 key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys shorter than 32 bytes are refused: HS256 with a guessable key is
    /// no authentication at all.
    pub fn hs256(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("the JWT secret must be at least 32 bytes".into());
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        Ok(Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation })
    }

    pub fn mint(&self, sub: &str, roles: &[Role], branch: Option<&str>, ttl: Duration) -> Result<String, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
        let claims = Claims {
            sub: sub.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            branch: branch.filter(|b| !b.is_empty()).map(str::to_string),
            exp: (now + ttl).as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Verifies signature and expiry. Roles this system does not know are
    /// ignored (a token may be shared with other systems).
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| e.to_string())?;
        let c = data.claims;
        if c.sub.trim().is_empty() {
            return Err("empty sub".into());
        }
        Ok(Principal {
            sub: c.sub,
            roles: c.roles.iter().filter_map(|r| r.parse().ok()).collect(),
            branch: c.branch.filter(|b| !b.is_empty()),
        })
    }
}

/// Which roles may call which RPC of one gRPC service. Methods not listed are
/// denied to everyone.
#[derive(Debug, Clone)]
pub struct Policy {
    service: &'static str,
    rules: HashMap<String, &'static [Role]>,
}

impl Policy {
    /// `service` is the fully-qualified gRPC service name,
    /// e.g. `crm.customers.v1.CustomerService`.
    pub fn new(service: &'static str) -> Self {
        Self { service, rules: HashMap::new() }
    }

    pub fn allow(mut self, method: &str, roles: &'static [Role]) -> Self {
        self.rules.insert(format!("/{}/{}", self.service, method), roles);
        self
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The methods this table names (without the service prefix).
    pub fn methods(&self) -> Vec<String> {
        let prefix = format!("/{}/", self.service);
        let mut m: Vec<String> =
            self.rules.keys().filter_map(|k| k.strip_prefix(&prefix)).map(str::to_string).collect();
        m.sort();
        m
    }

    /// The roles allowed on a full gRPC path, if the path is this service's.
    fn roles_for(&self, path: &str) -> Option<&'static [Role]> {
        self.rules.get(path).copied()
    }
}

/// Paths anyone may call: health checks and reflection.
pub(crate) fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// The tower layer that enforces a set of policies.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

struct AuthState {
    keys: TokenKeys,
    policies: Vec<Policy>,
}

impl AuthLayer {
    pub fn new(keys: TokenKeys, policies: Vec<Policy>) -> Self {
        Self { state: Arc::new(AuthState { keys, policies }) }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    state: Arc<AuthState>,
}

impl AuthState {
    fn authorize(&self, path: &str, headers: &http::HeaderMap) -> Result<Principal, Status> {
        let header = headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| error::unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or_else(|| error::unauthenticated("authorization must be 'Bearer <token>'"))?;
        let principal = self.keys.verify(token.trim()).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            error::unauthenticated("invalid or expired token")
        })?;
        // A path no policy names is a method this server does not serve.
        let roles = self.policies.iter().find_map(|p| p.roles_for(path)).ok_or_else(|| {
            error::with_reason(tonic::Code::Unimplemented, "UNKNOWN_METHOD", "no such method on this server", &[])
        })?;
        if !principal.has_any(roles) {
            return Err(error::permission_denied(
                "ROLE_NOT_ALLOWED",
                format!("none of your roles may call {}", path.rsplit('/').next().unwrap_or(path)),
            ));
        }
        Ok(principal)
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    RB: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        if is_public(path) {
            return Either::Right(self.inner.call(req));
        }
        match self.state.authorize(path, req.headers()) {
            Ok(principal) => {
                tracing::Span::current().record("sub", principal.sub.as_str());
                req.extensions_mut().insert(principal);
                Either::Right(self.inner.call(req))
            }
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

/// Who is calling an RPC, and the RPC's request id: what handlers need of
/// the request once it is decoded. Derefs to the `Principal`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Principal,
    pub request_id: Option<String>,
}

impl Caller {
    pub fn of<T>(req: &tonic::Request<T>) -> Result<Caller, Status> {
        Ok(Caller { who: principal(req)?, request_id: crate::metrics::request_id(req) })
    }
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.who
    }
}

/// The caller of an RPC, put there by the auth layer.
pub fn principal<T>(req: &tonic::Request<T>) -> Result<Principal, Status> {
    req.extensions().get::<Principal>().cloned().ok_or_else(|| error::unauthenticated("no principal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        match TokenKeys::hs256(b"0123456789abcdef0123456789abcdef") {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKeys::hs256(b"short").is_err());
    }

    #[test]
    fn minted_tokens_verify() {
        let k = keys();
        let t = k.mint("u1", &[Role::Sales], Some("bj"), Duration::from_secs(60)).unwrap_or_default();
        let p = k.verify(&t);
        assert_eq!(p, Ok(Principal { sub: "u1".into(), roles: vec![Role::Sales], branch: Some("bj".into()) }));
    }

    #[test]
    fn tampered_and_foreign_tokens_fail() {
        let k = keys();
        let other = TokenKeys::hs256(b"another-secret-of-at-least-32-bytes!").ok();
        let t =
            other.and_then(|o| o.mint("u1", &[Role::Admin], None, Duration::from_secs(60)).ok()).unwrap_or_default();
        assert!(k.verify(&t).is_err());
        assert!(k.verify("a.b.c").is_err());
    }

    #[test]
    fn expired_tokens_fail() {
        let k = keys();
        let claims = Claims { sub: "u1".into(), roles: vec!["admin".into()], branch: None, exp: 1_000_000 };
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap_or_default();
        assert!(k.verify(&t).is_err());
    }

    #[test]
    fn policy_denies_unlisted_methods_and_roles() {
        let k = keys();
        let state =
            AuthState { keys: k.clone(), policies: vec![Policy::new("crm.x.v1.X").allow("Get", &[Role::Sales])] };
        let mut h = http::HeaderMap::new();
        let t = k.mint("u1", &[Role::Cashier], None, Duration::from_secs(60)).unwrap_or_default();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap_or(http::HeaderValue::from_static("")),
        );
        assert_eq!(state.authorize("/crm.x.v1.X/Get", &h).map_err(|s| s.code()), Err(tonic::Code::PermissionDenied));
        assert_eq!(state.authorize("/crm.x.v1.X/Delete", &h).map_err(|s| s.code()), Err(tonic::Code::Unimplemented));
        assert_eq!(
            state.authorize("/crm.x.v1.X/Get", &http::HeaderMap::new()).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
    }
}
