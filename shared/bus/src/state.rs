//! The collector's memory of what it last published, per resource, in a JetStream
//! KV bucket: change detection (compare content hashes) and the deletion check of
//! a completed scan (entries of the scope the scan did not see).
//!
//! Entries are written only after the events they describe are acknowledged by
//! the stream, so the bucket never claims more than the stream holds. The reverse
//! (event stored, entry not yet written) makes the next scan publish the same
//! content again, which the projector folds as no change.

use std::collections::HashMap;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use bytes::Bytes;
use futures::{StreamExt, future};
use inventory_model::Scope;
use serde::{Deserialize, Serialize};

use crate::{Bus, BusError, Names};

/// What the collector last published for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    pub id: String,
    pub hash: String,
}

const KV_OPERATION: &str = "KV-Operation";

impl Bus {
    /// Every live entry of one kind in one scope, keyed by resource id.
    pub async fn load_state(
        &self,
        source: &str,
        kind: &str,
        scope: &Scope,
    ) -> Result<HashMap<String, String>, BusError> {
        let bucket = self.names().state_bucket();
        let err = |reason: String| BusError::Consume {
            name: bucket.clone(),
            reason,
        };
        let stream = self
            .jetstream()
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| err(e.to_string()))?;
        let filter = format!(
            "$KV.{bucket}.{}",
            Names::state_scope_filter(source, kind, scope)
        );
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut out = HashMap::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(|e| err(e.to_string()))?;
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| err(e.to_string()))?;
            let pending = msg.info().map_err(|e| err(e.to_string()))?.pending;
            let deleted = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(KV_OPERATION))
                .is_some();
            if !deleted {
                let entry: StateEntry = serde_json::from_slice(&msg.payload)
                    .map_err(|e| err(format!("bad state entry on {}: {e}", msg.subject)))?;
                out.insert(entry.id, entry.hash);
            }
            if pending == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Record entries (pipelined). Call only after their events are acknowledged.
    pub async fn put_state(
        &self,
        source: &str,
        kind: &str,
        scope: &Scope,
        entries: &[StateEntry],
    ) -> Result<(), BusError> {
        let items = entries.iter().map(|e| {
            let key = Names::state_key(source, kind, scope, &e.id);
            let body = serde_json::to_vec(e).expect("a state entry always serializes");
            (key, Bytes::from(body), None)
        });
        self.write_state(items).await
    }

    /// Remove entries of resources whose deletion has been published.
    pub async fn delete_state(
        &self,
        source: &str,
        kind: &str,
        scope: &Scope,
        ids: &[String],
    ) -> Result<(), BusError> {
        let items = ids.iter().map(|id| {
            let key = Names::state_key(source, kind, scope, id);
            let mut headers = HeaderMap::new();
            headers.insert(KV_OPERATION, "PURGE");
            headers.insert("Nats-Rollup", "sub");
            (key, Bytes::new(), Some(headers))
        });
        self.write_state(items).await
    }

    async fn write_state(
        &self,
        items: impl Iterator<Item = (String, Bytes, Option<HeaderMap>)>,
    ) -> Result<(), BusError> {
        let bucket = self.names().state_bucket();
        let mut acks = Vec::new();
        for (key, payload, headers) in items {
            let subject = format!("$KV.{bucket}.{key}");
            let mut msg = jetstream::message::PublishMessage::build().payload(payload);
            if let Some(h) = headers {
                msg = msg.headers(h);
            }
            let ack = self
                .jetstream()
                .send_publish(subject.clone(), msg)
                .await
                .map_err(|e| crate::publish_error(&subject, e))?;
            acks.push(async move {
                ack.await
                    .map(|_| ())
                    .map_err(|e| crate::publish_error(&subject, e))
            });
        }
        future::try_join_all(acks).await.map(|_| ())
    }
}
