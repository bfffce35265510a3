//! Bearer tokens with scopes. Tokens are configured as SHA-256 hashes (the
//! secret itself is never stored, compared or logged): a request's token is
//! hashed and compared with every configured hash in constant time.
//!
//! Scopes: `read` (every GET), `collect` (`POST /api/v1/collect`, retrying a
//! task), `admin` (everything, cancel and delete included). `/healthz`,
//! `/readyz` and the console's static pages are open; `/metrics` needs `read`
//! unless it is made public. Without tokens the API serves anonymously, which
//! it only does on a loopback address.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{ApiError, ApiState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Collect,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Collect => "collect",
            Scope::Admin => "admin",
        }
    }
}

/// A configured token: its name (for logs and metrics), the SHA-256 of its
/// secret, and its scopes.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    sha256: [u8; 32],
    pub scopes: Vec<Scope>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token {0}: sha256 must be 64 hex digits (sha256sum of the secret)")]
    BadHash(String),
    #[error("token {0} has no scopes (read, collect, admin)")]
    NoScopes(String),
    #[error("token name {0:?} is used twice")]
    Duplicate(String),
}

impl Token {
    /// A token from the hex SHA-256 of its secret (`sha256sum` output; a
    /// trailing file name or newline is ignored).
    pub fn from_hex(name: &str, sha256_hex: &str, scopes: Vec<Scope>) -> Result<Token, TokenError> {
        let hex_part = sha256_hex.split_whitespace().next().unwrap_or("");
        let bytes = hex::decode(hex_part).map_err(|_| TokenError::BadHash(name.into()))?;
        let sha256: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TokenError::BadHash(name.into()))?;
        if scopes.is_empty() {
            return Err(TokenError::NoScopes(name.into()));
        }
        Ok(Token {
            name: name.to_owned(),
            sha256,
            scopes,
        })
    }

    fn grants(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// Who may do what. Shared by every worker of an API.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    tokens: Arc<Vec<Token>>,
    metrics_public: bool,
}

impl Auth {
    /// No tokens: every request is served (on a loopback address only).
    pub fn anonymous() -> Auth {
        Auth::default()
    }

    pub fn with_tokens(tokens: Vec<Token>) -> Result<Auth, TokenError> {
        for (i, t) in tokens.iter().enumerate() {
            if tokens[..i].iter().any(|o| o.name == t.name) {
                return Err(TokenError::Duplicate(t.name.clone()));
            }
        }
        Ok(Auth {
            tokens: Arc::new(tokens),
            metrics_public: false,
        })
    }

    /// `/metrics` without a token.
    pub fn metrics_public(mut self, public: bool) -> Auth {
        self.metrics_public = public;
        self
    }

    pub fn is_anonymous(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Anonymous access is for loopback addresses only: anything else would
    /// let whoever reaches the port read everything and start collections.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), String> {
        if self.is_anonymous() && !addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve {addr} without tokens: configure api.auth.tokens (or \
                 INVENTORY_API_TOKENS_FILE), or bind a loopback address"
            ));
        }
        Ok(())
    }

    /// The token whose hash matches `secret`'s. Every configured hash is
    /// compared, in constant time, whichever matches.
    fn token(&self, secret: &str) -> Option<&Token> {
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut found = None;
        for t in self.tokens.iter() {
            if bool::from(t.sha256.ct_eq(&hash)) {
                found = Some(t);
            }
        }
        found
    }
}

/// The scope a request needs (`None`: open to all).
fn required(method: &Method, path: &str, metrics_public: bool) -> Option<Scope> {
    if path == "/healthz" || path == "/readyz" || path == "/" || path.starts_with("/console/") {
        return None;
    }
    if path == "/metrics" {
        return (!metrics_public).then_some(Scope::Read);
    }
    if *method == Method::GET || *method == Method::HEAD {
        return Some(Scope::Read);
    }
    let collects = (*method == Method::POST && path == "/api/v1/collect")
        || (*method == Method::POST
            && path.starts_with("/api/v1/tasks/")
            && path.ends_with("/retry"));
    Some(if collects {
        Scope::Collect
    } else {
        Scope::Admin
    })
}

/// Why a request was refused, as counted in `inventory_api_auth_failures_total`.
fn refuse(reason: &'static str, error: ApiError) -> HttpResponse {
    inventory_telemetry::metrics::METRICS
        .api_auth_failures
        .with_label_values(&[reason])
        .inc();
    let mut response = error.error_response();
    if matches!(error, ApiError::Unauthorized(_)) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"inventory\""),
        );
    }
    response
}

/// The middleware: 401 without a valid token, 403 without the scope.
pub(crate) async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let auth = req
        .app_data::<web::Data<ApiState>>()
        .map(|s| s.auth.clone())
        .unwrap_or_default();
    let Some(scope) = (!auth.is_anonymous())
        .then(|| required(req.method(), req.path(), auth.metrics_public))
        .flatten()
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let refused = match presented {
        None => Some(refuse(
            "missing",
            ApiError::Unauthorized(
                "this route needs a bearer token (Authorization: Bearer <token>)".into(),
            ),
        )),
        Some(secret) => match auth.token(secret) {
            None => Some(refuse(
                "invalid",
                ApiError::Unauthorized("the bearer token is not valid".into()),
            )),
            Some(t) if !t.grants(scope) => {
                tracing::info!(
                    token = t.name,
                    scope = scope.as_str(),
                    path = req.path(),
                    "request refused: scope missing"
                );
                Some(refuse(
                    "scope",
                    ApiError::Forbidden(format!(
                        "token {} lacks the {} scope this request needs",
                        t.name,
                        scope.as_str()
                    )),
                ))
            }
            Some(_) => None,
        },
    };
    match refused {
        Some(response) => Ok(req.into_response(response).map_into_right_body()),
        None => Ok(next.call(req).await?.map_into_left_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }

    #[test]
    fn scopes_follow_method_and_route() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(required(&get, "/healthz", false), None);
        assert_eq!(required(&get, "/console/app.js", false), None);
        assert_eq!(required(&get, "/metrics", false), Some(Scope::Read));
        assert_eq!(required(&get, "/metrics", true), None);
        assert_eq!(required(&get, "/api/v1/aws/vpcs", false), Some(Scope::Read));
        assert_eq!(
            required(&post, "/api/v1/collect", false),
            Some(Scope::Collect)
        );
        assert_eq!(
            required(&post, "/api/v1/tasks/t1/retry", false),
            Some(Scope::Collect)
        );
        assert_eq!(
            required(&post, "/api/v1/tasks/t1/cancel", false),
            Some(Scope::Admin)
        );
        assert_eq!(
            required(&Method::DELETE, "/api/v1/tasks/t1", false),
            Some(Scope::Admin)
        );
    }

    #[test]
    fn tokens_match_by_hash_and_admin_grants_everything() {
        let auth = Auth::with_tokens(vec![
            Token::from_hex("ro", &hex_of("s3cret"), vec![Scope::Read]).unwrap(),
            Token::from_hex(
                "ops",
                &format!("{}  -\n", hex_of("other")),
                vec![Scope::Admin],
            )
            .unwrap(),
        ])
        .unwrap();
        assert_eq!(auth.token("s3cret").unwrap().name, "ro");
        assert!(auth.token("s3cret ").is_none() && auth.token("").is_none());
        assert!(!auth.token("s3cret").unwrap().grants(Scope::Collect));
        assert!(auth.token("other").unwrap().grants(Scope::Collect));
        assert!(format!("{:?}", auth.token("other").unwrap()).contains("ops"));
        assert!(!format!("{:?}", auth.token("other").unwrap()).contains(&hex_of("other")));
    }

    #[test]
    fn bad_tokens_and_anonymous_public_binds_are_refused() {
        assert_eq!(
            Token::from_hex("x", "abc", vec![Scope::Read]).unwrap_err(),
            TokenError::BadHash("x".into())
        );
        assert_eq!(
            Token::from_hex("x", &hex_of("a"), vec![]).unwrap_err(),
            TokenError::NoScopes("x".into())
        );
        let t = Token::from_hex("x", &hex_of("a"), vec![Scope::Read]).unwrap();
        assert!(Auth::with_tokens(vec![t.clone(), t.clone()]).is_err());
        let anon = Auth::anonymous();
        assert!(anon.check_bind("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(anon.check_bind("[::1]:8080".parse().unwrap()).is_ok());
        assert!(anon.check_bind("0.0.0.0:8080".parse().unwrap()).is_err());
        let with = Auth::with_tokens(vec![t]).unwrap();
        assert!(with.check_bind("0.0.0.0:8080".parse().unwrap()).is_ok());
    }
}
