//! AWS through `aws-sdk-ec2`: credentials, account resolution, and one page of a
//! kind's list call, returned as the raw response (see [`xml`]).

pub mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::Region;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use inventory_model::KindDef;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::{CollectError, RawPage, Source};
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

fn sdk_error<E, R>(operation: &str, e: aws_sdk_ec2::error::SdkError<E, R>) -> CollectError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_ec2::error::SdkError;
    let retryable = matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    CollectError::Provider {
        operation: operation.to_owned(),
        message: aws_sdk_ec2::error::DisplayErrorContext(&e).to_string(),
        retryable,
    }
}

/// Credentials and clients for one AWS account (the SDK's standard chain).
pub struct AwsSource {
    config: SdkConfig,
    clients: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    account_id: OnceCell<String>,
}

impl AwsSource {
    /// The standard chain: `AWS_PROFILE`, `AWS_ACCESS_KEY_ID`…, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, web identity, instance metadata.
    pub async fn from_env() -> AwsSource {
        AwsSource::new(aws_config::defaults(BehaviorVersion::latest()).load().await)
    }

    pub fn new(config: SdkConfig) -> AwsSource {
        AwsSource {
            config,
            clients: Mutex::new(HashMap::new()),
            account_id: OnceCell::new(),
        }
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

    /// The account the credentials belong to (STS `GetCallerIdentity`, cached).
    async fn resolve_account_id(&self) -> Result<String, CollectError> {
        self.account_id
            .get_or_try_init(|| async {
                let conf = aws_sdk_sts::config::Builder::from(&self.config)
                    .region(Region::new(self.home_region()))
                    .build();
                let out = aws_sdk_sts::Client::from_conf(conf)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| {
                        CollectError::Credentials(
                            aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
                        )
                    })?;
                out.account.ok_or_else(|| {
                    CollectError::Credentials("GetCallerIdentity returned no account".into())
                })
            })
            .await
            .cloned()
    }

    /// Every region enabled for the account.
    async fn list_enabled_regions(&self) -> Result<Vec<String>, CollectError> {
        let page = self
            .list_page(&inventory_model::catalogue::AWS_REGION, None, None, 0)
            .await?;
        Ok(inventory_model::catalogue::AWS_REGION
            .items(&page.body)
            .into_iter()
            .filter_map(|i| inventory_model::catalogue::AWS_REGION.id_of(i))
            .collect())
    }

    /// One page of `kind`'s list call in `region` (account-wide kinds: `None`).
    async fn list_page(
        &self,
        kind: &KindDef,
        region: Option<&str>,
        token: Option<String>,
        page_size: i32,
    ) -> Result<RawPage, CollectError> {
        let region = region
            .map(str::to_owned)
            .unwrap_or_else(|| self.home_region());
        let client = self.ec2(&region);
        let capture = CaptureBody::default();
        let op = kind.list.operation;
        let max = (page_size > 0).then_some(page_size);
        macro_rules! paged {
            ($method:ident) => {
                client
                    .$method()
                    .set_next_token(token)
                    .set_max_results(max)
                    .customize()
                    .interceptor(capture.clone())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(op, e))
            };
        }
        match op {
            "DescribeRegions" => client
                .describe_regions()
                .all_regions(false)
                .customize()
                .interceptor(capture.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(op, e)),
            "DescribeVpcs" => paged!(describe_vpcs),
            "DescribeSubnets" => paged!(describe_subnets),
            "DescribeInstances" => paged!(describe_instances),
            other => return Err(CollectError::Unsupported(other.to_owned())),
        }?;
        let body = capture.take(op)?;
        let next = body
            .get("nextToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(RawPage { body, next })
    }
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
    ) -> BoxFuture<'a, Result<RawPage, CollectError>> {
        Box::pin(self.list_page(kind, region, token, page_size))
    }
}
