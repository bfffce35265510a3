//! One AWS account: its credentials and clients, account resolution (STS), and
//! one page of a kind's list call, paced and retried, returned as the items of
//! the raw response, each as canonical JSON text (see [`crate::xml`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::Region;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use futures::future::BoxFuture;
use inventory_collector::{
    CallKey, CallStats, CollectError, Pacer, Pacing, RawItem, RawPage, Source,
};
use inventory_model::catalogue::aws::SOURCE;
use inventory_model::{Field, KindDef};
use tokio::sync::OnceCell;

use crate::bindings::{Call, ListRequest, Ownership, binding};
use crate::credentials::{self, AccountSpec, CredentialSpec};
use crate::errors::{classify, sdk_error};
use crate::xml::{self, Node};

/// Region used for account-wide calls when the environment names none.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Keeps the raw body of the response the SDK has just deserialized.
#[derive(Clone, Default, Debug)]
pub(crate) struct CaptureBody(Arc<Mutex<Option<Bytes>>>);

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
    /// The captured response as text.
    fn take(&self, operation: &str) -> Result<String, CollectError> {
        let bad = |message: String| CollectError::Provider {
            operation: operation.to_owned(),
            message,
            retryable: false,
        };
        let bytes = self
            .0
            .lock()
            .expect("capture lock")
            .take()
            .ok_or_else(|| bad("response body was not captured".into()))?;
        String::from_utf8(bytes.to_vec()).map_err(|e| bad(format!("response is not utf-8: {e}")))
    }
}

/// A response document, parsed.
fn parsed<'a>(operation: &str, text: &'a str) -> Result<Node<'a>, CollectError> {
    xml::parse(text).map_err(|e| CollectError::Provider {
        operation: operation.to_owned(),
        message: e.to_string(),
        retryable: false,
    })
}

/// The natural id of an item, where the kind reads it.
fn id_of(kind: &KindDef, item: &Node) -> Option<String> {
    match kind.id {
        Field::Pointer(p) => item.pointer(p).and_then(Node::text).map(str::to_owned),
        _ => None,
    }
}

/// A response's items of `kind`, as the collector publishes them.
fn items_of(kind: &KindDef, doc: &Node) -> Vec<RawItem> {
    doc.select(kind.list.items)
        .into_iter()
        .map(|item| RawItem {
            id: id_of(kind, item),
            json: item.to_json(),
        })
        .collect()
}

/// The token of the page after this response's, if any.
fn next_token(doc: &Node) -> Option<String> {
    doc.get("nextToken").and_then(Node::text).map(str::to_owned)
}

/// `next` token of the last page of an owned-and-referenced listing.
const REFERENCED: &str = "inventory:referenced";

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

    /// The credential and the account as far as it is known (resolved id,
    /// configured id, or the credential's name), for messages.
    fn whose(&self) -> String {
        let account = self
            .account_id
            .get()
            .or(self.expected_account.as_ref())
            .cloned()
            .unwrap_or_else(|| format!("of credential {:?}", self.credential));
        format!("credential {:?} of account {account}", self.credential)
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
                let key = CallKey {
                    source: SOURCE,
                    api: "GetCallerIdentity",
                    account_id: &self.credential,
                    region: "",
                };
                let mut stats = CallStats::default();
                let out = self
                    .pacer
                    .call(&key, &mut stats, classify, || client.get_caller_identity().send())
                    .await
                    .map_err(|e| match sdk_error(&self.whose(), "GetCallerIdentity", e) {
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
        let region = &inventory_model::catalogue::aws::AWS_REGION;
        let page = self
            .list_page(region, None, None, 0, &mut CallStats::default())
            .await?;
        Ok(page.items.into_iter().filter_map(|i| i.id).collect())
    }

    /// One call of `kind`'s list operation, paced and retried; the response's
    /// text.
    async fn call(
        &self,
        kind: &KindDef,
        region: &str,
        request: &ListRequest,
        stats: &mut CallStats,
    ) -> Result<String, CollectError> {
        let operation = kind.list.operation;
        let bound = binding(operation).ok_or_else(|| {
            // The bindings test makes this unreachable for the catalogue's kinds.
            CollectError::Unsupported(operation.to_owned())
        })?;
        let key = CallKey {
            source: SOURCE,
            api: operation,
            account_id: self.account_id.get().unwrap_or(&self.credential),
            region,
        };
        let capture = CaptureBody::default();
        let client = self.ec2(region);
        let whose = self.whose();
        (bound.send)(Call {
            client: &client,
            pacer: &self.pacer,
            key,
            stats,
            capture: capture.clone(),
            request,
            whose: &whose,
            operation: bound.operation,
        })
        .await?;
        capture.take(operation)
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
        let bound = binding(kind.list.operation)
            .ok_or_else(|| CollectError::Unsupported(kind.list.operation.to_owned()))?;
        if let (Ownership::OwnedAndReferenced { by, field }, Some(REFERENCED)) =
            (bound.ownership, token.as_deref())
        {
            let items = self
                .referenced_items(kind, &region, by, field, stats)
                .await?;
            return Ok(RawPage { items, next: None });
        }
        let request = ListRequest {
            token,
            max_results: bound
                .max_page
                .filter(|_| page_size > 0)
                .map(|max| page_size.clamp(5, max)),
            owned: bound.ownership != Ownership::All,
            image_ids: None,
        };
        let text = self.call(kind, &region, &request, stats).await?;
        let doc = parsed(kind.list.operation, &text)?;
        let mut next = next_token(&doc).filter(|_| bound.max_page.is_some());
        if next.is_none() && matches!(bound.ownership, Ownership::OwnedAndReferenced { .. }) {
            next = Some(REFERENCED.to_owned());
        }
        Ok(RawPage {
            items: items_of(kind, &doc),
            next,
        })
    }

    /// The items of `kind` that the `by` kind's resources in `region`
    /// reference at `field`.
    async fn referenced_items(
        &self,
        kind: &KindDef,
        region: &str,
        by: &str,
        field: &str,
        stats: &mut CallStats,
    ) -> Result<Vec<RawItem>, CollectError> {
        let referrer = inventory_model::kind_by_name(kind.source, by).ok_or_else(|| {
            CollectError::Unsupported(format!("{by} (referenced by {})", kind.name))
        })?;
        let paging = binding(referrer.list.operation).and_then(|b| b.max_page);
        let mut ids = std::collections::BTreeSet::new();
        let mut token = None;
        loop {
            let request = ListRequest {
                token: token.take(),
                max_results: paging,
                ..Default::default()
            };
            let text = self.call(referrer, region, &request, stats).await?;
            let doc = parsed(referrer.list.operation, &text)?;
            for item in doc.select(referrer.list.items) {
                if let Some(id) = item.pointer(field).and_then(Node::text) {
                    ids.insert(id.to_owned());
                }
            }
            match next_token(&doc) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let mut items = Vec::new();
        let ids: Vec<String> = ids.into_iter().collect();
        for chunk in ids.chunks(200) {
            let request = ListRequest {
                image_ids: Some(chunk.to_vec()),
                ..Default::default()
            };
            let text = self.call(kind, region, &request, stats).await?;
            items.extend(items_of(kind, &parsed(kind.list.operation, &text)?));
        }
        Ok(items)
    }
}

impl Source for AwsSource {
    fn provider(&self) -> &'static str {
        inventory_model::catalogue::aws::SOURCE
    }

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

    #[test]
    fn items_carry_their_ids_and_canonical_text() {
        let image = &inventory_model::catalogue::aws::AWS_IMAGE;
        let doc = xml::parse(
            "<DescribeImagesResponse><imagesSet><item><name>n</name><imageId>ami-1</imageId></item>\
             <item><name>no id</name></item></imagesSet></DescribeImagesResponse>",
        )
        .unwrap();
        let items = items_of(image, &doc);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id.as_deref(), Some("ami-1"));
        assert_eq!(items[0].json, r#"{"imageId":"ami-1","name":"n"}"#);
        assert_eq!(
            items[1].id, None,
            "an item without an id is the scan's to reject"
        );
        assert_eq!(next_token(&doc), None);
    }
}
