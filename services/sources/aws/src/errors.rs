//! How AWS errors become collection errors: throttling codes back off and slow
//! the bucket; 5xx, timeouts and connection failures retry; denied credentials
//! fail at once; the rest (bad requests) fail the scan for good.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use inventory_collector::{CollectError, Failure};

const THROTTLING: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];
const TRANSIENT: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
];
/// Codes that mean the credential or its permissions are wrong: fail fast.
const AUTH: &[&str] = &[
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "AccessDenied",
    "AccessDeniedException",
    "OptInRequired",
    "Blocked",
];

/// The HTTP status of a raw response, whichever response type the SDK uses.
pub(crate) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// How pacing treats an SDK error.
pub(crate) fn classify<E, R>(e: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Transient
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            if THROTTLING.contains(&code) {
                Failure::Throttled
            } else if TRANSIENT.contains(&code) || service.raw().status_code() >= 500 {
                Failure::Transient
            } else {
                Failure::Permanent
            }
        }
        _ => Failure::Permanent,
    }
}

/// A failed call as the collector sees it; `whose` names the credential and
/// account in every message.
pub(crate) fn sdk_error<E, R>(whose: &str, operation: &str, e: SdkError<E, R>) -> CollectError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let failure = classify(&e);
    let code = match &e {
        SdkError::ServiceError(service) => service.err().code().map(str::to_owned),
        _ => None,
    };
    let message = format!("{whose}: {}", aws_sdk_ec2::error::DisplayErrorContext(&e));
    if code.as_deref().is_some_and(|c| AUTH.contains(&c)) {
        return CollectError::Credentials(format!("{operation} denied: {message}"));
    }
    CollectError::Provider {
        operation: operation.to_owned(),
        message,
        retryable: failure != Failure::Permanent,
    }
}
