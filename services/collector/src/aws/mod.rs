//! AWS through `aws-sdk-ec2`: named credentials, account resolution, and one
//! page of a kind's list call, paced and retried, returned as the raw response
//! (see [`xml`]). Every list operation a kind may name is bound here once.

pub mod credentials;
pub mod xml;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::Region;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use inventory_model::{KindDef, Ownership};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::pacing::{CallStats, Failure, Pacer, Pacing};
use crate::{CollectError, RawPage, Source};
pub use credentials::{AccountSpec, CredentialSpec};
use futures::future::BoxFuture;

/// Region used for account-wide calls when the environment names none.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Keeps the raw body of the response the SDK has just deserialized.
#[derive(Clone, Default, Debug)]
struct CaptureBody(Arc<Mutex<Option<Bytes>>>);

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "InventoryCaptureBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().expect("capture lock") = Some(Bytes::copy_from_slice(bytes));
        }
        Ok(())
    }
}

impl CaptureBody {
    fn take(&self, operation: &str) -> Result<Value, CollectError> {
        let bytes =
            self.0
                .lock()
                .expect("capture lock")
                .take()
                .ok_or_else(|| CollectError::Provider {
                    operation: operation.to_owned(),
                    message: "response body was not captured".into(),
                    retryable: false,
                })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| CollectError::Provider {
            operation: operation.to_owned(),
            message: format!("response is not utf-8: {e}"),
            retryable: false,
        })?;
        xml::to_json(text).map_err(|e| CollectError::Provider {
            operation: operation.to_owned(),
            message: e.to_string(),
            retryable: false,
        })
    }
}

/// How pacing treats an SDK error: throttling codes back off and slow the
/// bucket; 5xx, timeouts and connection failures retry; the rest (denied
/// credentials, bad requests) fail at once.
fn classify<E, R>(e: &SdkError<E, R>) -> Failure
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

fn sdk_error<E, R>(source: &AwsSource, operation: &str, e: SdkError<E, R>) -> CollectError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let failure = classify(&e);
    let code = match &e {
        SdkError::ServiceError(service) => service.err().code().map(str::to_owned),
        _ => None,
    };
    let message = format!(
        "credential {:?} of account {}: {}",
        source.credential,
        source.account_label(),
        aws_sdk_ec2::error::DisplayErrorContext(&e)
    );
    if code.as_deref().is_some_and(|c| AUTH.contains(&c)) {
        return CollectError::Credentials(format!("{operation} denied: {message}"));
    }
    CollectError::Provider {
        operation: operation.to_owned(),
        message,
        retryable: failure != Failure::Permanent,
    }
}

/// One AWS account: its credentials and clients, paced by the collector's
/// shared [`Pacer`].
pub struct AwsSource {
    config: SdkConfig,
    /// The credential's name, for messages.
    credential: String,
    /// The account id the credential must resolve to, if configured.
    expected_account: Option<String>,
    clients: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    account_id: OnceCell<String>,
    pacer: Arc<Pacer>,
}

impl AwsSource {
    /// The SDK configuration of the environment (region, endpoint, and the
    /// standard credential chain: `AWS_PROFILE`, `AWS_ACCESS_KEY_ID`…, web
    /// identity, instance metadata): the base every configured account builds on.
    pub async fn environment() -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest()).load().await
    }

    /// An account with whatever credentials `config` carries, paced alone.
    pub fn new(config: SdkConfig) -> AwsSource {
        AwsSource::with_pacer(
            config,
            "default",
            None,
            Arc::new(Pacer::new(Pacing::default())),
        )
    }

    /// An account whose calls share `pacer` with the collector's other accounts.
    pub fn with_pacer(
        config: SdkConfig,
        credential: &str,
        expected_account: Option<String>,
        pacer: Arc<Pacer>,
    ) -> AwsSource {
        // Pacing retries; the SDK's own retries would multiply them unseen.
        let config = config
            .into_builder()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        AwsSource {
            config,
            credential: credential.to_owned(),
            expected_account,
            clients: Mutex::new(HashMap::new()),
            account_id: OnceCell::new(),
            pacer,
        }
    }

    /// An account of the configuration: its named credential on top of `base`
    /// (region, endpoint), with the account's own endpoint if it has one.
    pub async fn from_spec(
        base: &SdkConfig,
        credentials: &BTreeMap<String, CredentialSpec>,
        account: &AccountSpec,
        pacer: Arc<Pacer>,
    ) -> Result<AwsSource, CollectError> {
        let mut builder = base.clone().into_builder();
        if let Some(url) = &account.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        // Roles refresh on a clock and back off on a timer: a configuration
        // built by hand (tests) may lack both.
        if base.time_source().is_none() {
            builder = builder.time_source(aws_smithy_async::time::SystemTimeSource::new());
        }
        if base.sleep_impl().is_none() {
            builder = builder.sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new());
        }
        let base = builder.build();
        let provider = credentials::provider(credentials, &account.credential, &base, 0).await?;
        let config = base.into_builder().credentials_provider(provider).build();
        Ok(AwsSource::with_pacer(
            config,
            &account.credential,
            account.id.clone(),
            pacer,
        ))
    }

    /// The account as far as it is known: resolved id, configured id, or the
    /// credential's name.
    fn account_label(&self) -> String {
        self.account_id
            .get()
            .or(self.expected_account.as_ref())
            .cloned()
            .unwrap_or_else(|| format!("of credential {:?}", self.credential))
    }

    fn home_region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_owned())
    }

    fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let mut clients = self.clients.lock().expect("client map lock");
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_ec2::config::Builder::from(&self.config)
                    .region(Region::new(region.to_owned()))
                    .build();
                aws_sdk_ec2::Client::from_conf(conf)
            })
            .clone()
    }

    /// The account the credentials belong to (STS `GetCallerIdentity`, cached),
    /// checked against the configured id.
    async fn resolve_account_id(&self) -> Result<String, CollectError> {
        self.account_id
            .get_or_try_init(|| async {
                let conf = aws_sdk_sts::config::Builder::from(&self.config)
                    .region(Region::new(self.home_region()))
                    .build();
                let client = aws_sdk_sts::Client::from_conf(conf);
                let key = format!("{}/sts/GetCallerIdentity", self.credential);
                let mut stats = CallStats::default();
                let out = self
                    .pacer
                    .call(&key, &mut stats, classify, || client.get_caller_identity().send())
                    .await
                    .map_err(|e| match sdk_error(self, "GetCallerIdentity", e) {
                        // An identity call that fails for good is a credential problem.
                        CollectError::Provider {
                            operation,
                            message,
                            retryable: false,
                        } => CollectError::Credentials(format!("{operation} failed: {message}")),
                        other => other,
                    })?;
                let account = out.account.ok_or_else(|| {
                    CollectError::Credentials(format!(
                        "credential {:?}: GetCallerIdentity returned no account",
                        self.credential
                    ))
                })?;
                match &self.expected_account {
                    Some(expected) if *expected != account => Err(CollectError::Credentials(format!(
                        "credential {:?} belongs to account {account}, but is configured for account {expected}",
                        self.credential
                    ))),
                    _ => Ok(account),
                }
            })
            .await
            .cloned()
    }

    /// Every region enabled for the account.
    async fn list_enabled_regions(&self) -> Result<Vec<String>, CollectError> {
        let region = &inventory_model::catalogue::AWS_REGION;
        let page = self
            .list_page(region, None, None, 0, &mut CallStats::default())
            .await?;
        Ok(region
            .items(&page.body)
            .into_iter()
            .filter_map(|i| region.id_of(i))
            .collect())
    }

    /// One call of `kind`'s list operation, paced and retried; returns the raw
    /// response converted to JSON.
    async fn call(
        &self,
        kind: &KindDef,
        region: &str,
        request: ListRequest,
        stats: &mut CallStats,
    ) -> Result<Value, CollectError> {
        let client = self.ec2(region);
        let op = kind.list.operation;
        let key = format!(
            "{}/{region}/{op}",
            self.account_id.get().unwrap_or(&self.credential)
        );
        let capture = CaptureBody::default();
        macro_rules! send {
            ($builder:expr) => {
                self.pacer
                    .call(&key, stats, classify, || {
                        $builder.customize().interceptor(capture.clone()).send()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(self, op, e))
            };
        }
        macro_rules! paged {
            ($method:ident) => {
                send!(
                    client
                        .$method()
                        .set_next_token(request.token.clone())
                        .set_max_results(request.max_results)
                )
            };
        }
        let owned = kind.list.ownership != Ownership::All;
        match op {
            "DescribeRegions" => send!(client.describe_regions().all_regions(false)),
            "DescribeAvailabilityZones" => send!(client.describe_availability_zones()),
            "DescribeVpcs" => paged!(describe_vpcs),
            "DescribeSubnets" => paged!(describe_subnets),
            "DescribeInstances" => paged!(describe_instances),
            "DescribeNetworkInterfaces" => paged!(describe_network_interfaces),
            "DescribeDhcpOptions" => paged!(describe_dhcp_options),
            "DescribeSecurityGroups" => paged!(describe_security_groups),
            "DescribeVolumes" => paged!(describe_volumes),
            "DescribeRouteTables" => paged!(describe_route_tables),
            "DescribeInternetGateways" => paged!(describe_internet_gateways),
            "DescribeNatGateways" => paged!(describe_nat_gateways),
            "DescribeVpcPeeringConnections" => paged!(describe_vpc_peering_connections),
            "DescribeAddresses" => send!(client.describe_addresses()),
            "DescribeKeyPairs" => send!(client.describe_key_pairs()),
            "DescribeSnapshots" => send!(
                client
                    .describe_snapshots()
                    .set_owner_ids(owned.then(|| vec!["self".to_owned()]))
                    .set_next_token(request.token.clone())
                    .set_max_results(request.max_results)
            ),
            "DescribeImages" => match &request.image_ids {
                // Referenced images: a filter, so that one deregistered image
                // does not fail the call (an id list would).
                Some(ids) => send!(
                    client.describe_images().filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("image-id")
                            .set_values(Some(ids.clone()))
                            .build()
                    )
                ),
                None => send!(
                    client
                        .describe_images()
                        .set_owners(owned.then(|| vec!["self".to_owned()]))
                        .set_next_token(request.token.clone())
                        .set_max_results(request.max_results)
                ),
            },
            other => return Err(CollectError::Unsupported(other.to_owned())),
        }?;
        capture.take(op)
    }

    /// One page of `kind`'s listing in `region` (account-wide kinds: `None`).
    ///
    /// A kind that also lists what another kind references (images of instances)
    /// first pages through what the account owns, then returns one last page
    /// of the referenced ones (`next` = [`REFERENCED`]).
    async fn list_page(
        &self,
        kind: &KindDef,
        region: Option<&str>,
        token: Option<String>,
        page_size: i32,
        stats: &mut CallStats,
    ) -> Result<RawPage, CollectError> {
        let region = region
            .map(str::to_owned)
            .unwrap_or_else(|| self.home_region());
        let max_results = kind
            .list
            .max_page
            .filter(|_| page_size > 0)
            .map(|max| page_size.clamp(5, max));
        if let (Ownership::OwnedAndReferenced { by, field }, Some(REFERENCED)) =
            (kind.list.ownership, token.as_deref())
        {
            let body = self
                .referenced_page(kind, &region, by, field, stats)
                .await?;
            return Ok(RawPage { body, next: None });
        }
        let request = ListRequest {
            token,
            max_results,
            image_ids: None,
        };
        let body = self.call(kind, &region, request, stats).await?;
        let mut next = next_token(&body).filter(|_| kind.list.max_page.is_some());
        if next.is_none() && matches!(kind.list.ownership, Ownership::OwnedAndReferenced { .. }) {
            next = Some(REFERENCED.to_owned());
        }
        Ok(RawPage { body, next })
    }

    /// The items of `kind` that the `by` kind's resources in `region` reference
    /// at `field`, as one response body.
    async fn referenced_page(
        &self,
        kind: &KindDef,
        region: &str,
        by: &str,
        field: &str,
        stats: &mut CallStats,
    ) -> Result<Value, CollectError> {
        let referrer = inventory_model::kind_by_name(kind.source, by).ok_or_else(|| {
            CollectError::Unsupported(format!("{by} (referenced by {})", kind.name))
        })?;
        let mut ids = std::collections::BTreeSet::new();
        let mut token = None;
        loop {
            let request = ListRequest {
                token: token.take(),
                max_results: referrer.list.max_page,
                image_ids: None,
            };
            let body = self.call(referrer, region, request, stats).await?;
            for item in referrer.items(&body) {
                if let Some(Value::String(id)) = item.pointer(field) {
                    ids.insert(id.clone());
                }
            }
            match next_token(&body) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let mut items = Vec::new();
        let ids: Vec<String> = ids.into_iter().collect();
        for chunk in ids.chunks(200) {
            let request = ListRequest {
                token: None,
                max_results: None,
                image_ids: Some(chunk.to_vec()),
            };
            let body = self.call(kind, region, request, stats).await?;
            items.extend(kind.items(&body).into_iter().cloned());
        }
        // Shaped like the operation's own response, so the kind's item path fits.
        let path = kind.list.items.trim_end_matches("/*");
        let mut body = Value::Null;
        *json_path_mut(&mut body, path) = Value::Array(items);
        Ok(body)
    }
}

/// The accounts of a configuration, sharing one pacer. An account whose
/// credential cannot be built (a key file that cannot be read) is kept: its
/// every collection fails with that error, and the other accounts go on.
pub async fn accounts(
    base: &SdkConfig,
    credentials: &BTreeMap<String, CredentialSpec>,
    specs: &[AccountSpec],
    pacer: Arc<Pacer>,
) -> Result<Vec<crate::Account>, CollectError> {
    credentials::validate(credentials, specs)?;
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let source: Arc<dyn Source> = match AwsSource::from_spec(
            base,
            credentials,
            spec,
            pacer.clone(),
        )
        .await
        {
            Ok(source) => Arc::new(source),
            Err(e) => {
                tracing::error!(credential = spec.credential, account = ?spec.id, error = %e, "account credential unusable");
                Arc::new(Unusable(e.to_string()))
            }
        };
        out.push(crate::Account {
            source,
            label: spec
                .id
                .clone()
                .unwrap_or_else(|| format!("credential {}", spec.credential)),
            label_is_id: spec.id.is_some(),
            regions: (!spec.regions.is_empty()).then(|| spec.regions.clone()),
            excluded_regions: spec.excluded_regions.clone(),
        });
    }
    Ok(out)
}

/// An account whose credential could not be built.
struct Unusable(String);

impl Source for Unusable {
    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>> {
        Box::pin(async { Err(CollectError::Credentials(self.0.clone())) })
    }

    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>> {
        Box::pin(async { Err(CollectError::Credentials(self.0.clone())) })
    }

    fn page<'a>(
        &'a self,
        _kind: &'static KindDef,
        _region: Option<&'a str>,
        _token: Option<String>,
        _page_size: i32,
        _stats: &'a mut CallStats,
    ) -> BoxFuture<'a, Result<RawPage, CollectError>> {
        Box::pin(async { Err(CollectError::Credentials(self.0.clone())) })
    }
}

/// The token of the page after this response's, if any.
fn next_token(body: &Value) -> Option<String> {
    body.get("nextToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// `next` token of the last page of an owned-and-referenced listing.
const REFERENCED: &str = "inventory:referenced";

/// The parameters of one list call.
struct ListRequest {
    token: Option<String>,
    max_results: Option<i32>,
    image_ids: Option<Vec<String>>,
}

/// Create the objects along a plain JSON pointer and return the value at its end.
fn json_path_mut<'a>(value: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('/').skip(1).fold(value, |v, step| {
        if !v.is_object() {
            *v = Value::Object(serde_json::Map::new());
        }
        v.as_object_mut()
            .expect("just made an object")
            .entry(step.to_owned())
            .or_insert(Value::Null)
    })
}

impl Source for AwsSource {
    fn account_id(&self) -> BoxFuture<'_, Result<String, CollectError>> {
        Box::pin(self.resolve_account_id())
    }

    fn enabled_regions(&self) -> BoxFuture<'_, Result<Vec<String>, CollectError>> {
        Box::pin(self.list_enabled_regions())
    }

    fn page<'a>(
        &'a self,
        kind: &'static KindDef,
        region: Option<&'a str>,
        token: Option<String>,
        page_size: i32,
        stats: &'a mut CallStats,
    ) -> BoxFuture<'a, Result<RawPage, CollectError>> {
        Box::pin(self.list_page(kind, region, token, page_size, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn referenced_items_are_shaped_like_the_operation_response() {
        let mut body = Value::Null;
        *json_path_mut(&mut body, "/imagesSet") = json!([{"imageId": "ami-1"}]);
        let image = &inventory_model::catalogue::AWS_IMAGE;
        let ids: Vec<_> = image
            .items(&body)
            .into_iter()
            .filter_map(|i| image.id_of(i))
            .collect();
        assert_eq!(ids, ["ami-1"]);
    }
}
