//! API errors: every failure answers with a status and
//! `{"error": {"code": "...", "message": "..."}}`.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use inventory_bus::{BusError, BusErrorKind, TaskOpError};
use inventory_model::ErrorCode;
use inventory_store::StoreError;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Ambiguous {
        message: String,
        candidates: Vec<Value>,
    },
    #[error("{message}")]
    Gone {
        message: String,
        deleted_at: Value,
        last_state: Value,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the query ran longer than the api's query timeout and was cancelled; narrow it")]
    QueryTimeout,
    #[error("this route takes {0}")]
    MethodNotAllowed(&'static str),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest { code, .. } => *code,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Ambiguous { .. } => ErrorCode::AmbiguousId,
            ApiError::Gone { .. } => ErrorCode::Gone,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Conflict { code, .. } => *code,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::QueryTimeout => ErrorCode::QueryTimeout,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_timeout() {
            return ApiError::QueryTimeout;
        }
        match e {
            StoreError::UnknownColumn { kind, column } => ApiError::bad_request(
                ErrorCode::UnknownFilter,
                format!("unknown filter {column} for {kind}"),
            ),
            StoreError::BadCursor => {
                ApiError::bad_request(ErrorCode::InvalidCursor, "invalid cursor")
            }
            StoreError::Unavailable(m) => {
                ApiError::Unavailable(format!("database unavailable: {m}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<BusError> for ApiError {
    /// NATS away or busy is a 503 (a client may retry), a request nobody
    /// answered in time a 504; a bad definition or a record that breaks the
    /// contract is a bug of ours, a 500.
    fn from(e: BusError) -> ApiError {
        match e.kind() {
            BusErrorKind::Timeout => ApiError::Timeout(e.to_string()),
            BusErrorKind::Definition | BusErrorKind::Invalid => ApiError::Internal(e.to_string()),
            BusErrorKind::NoResponders => ApiError::Unavailable(e.to_string()),
            _ => ApiError::Unavailable(format!("nats unavailable: {e}")),
        }
    }
}

impl From<TaskOpError> for ApiError {
    fn from(e: TaskOpError) -> ApiError {
        match e {
            TaskOpError::NotFound(_) => ApiError::NotFound(e.to_string()),
            TaskOpError::Conflict { .. } => ApiError::Conflict {
                code: ErrorCode::TaskState,
                message: e.to_string(),
            },
            TaskOpError::Bus(b) => b.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Ambiguous { .. } => StatusCode::CONFLICT,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::QueryTimeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = cause, "internal api error");
        }
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        match self {
            ApiError::Ambiguous { candidates, .. } => error["candidates"] = json!(candidates),
            ApiError::Gone {
                deleted_at,
                last_state,
                ..
            } => {
                error["deleted_at"] = deleted_at.clone();
                error["last_state"] = last_state.clone();
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::MethodNotAllowed(allow) = self {
            response.insert_header((actix_web::http::header::ALLOW, *allow));
        }
        response.json(json!({ "error": error }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_failures_are_not_all_unavailable() {
        let status = |kind| ApiError::from(BusError::bare(kind, "x")).status_code();
        assert_eq!(
            status(BusErrorKind::Connect),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(BusErrorKind::Publish),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(BusErrorKind::NoResponders),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(BusErrorKind::Timeout), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            status(BusErrorKind::Invalid),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(BusErrorKind::Definition),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
