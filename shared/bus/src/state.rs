//! The collector's memory of what it last published, read back from the event
//! stream itself: the last event on each resource subject of a scope
//! (`DeliverPolicy::LastPerSubject`, headers only), with the content hash the
//! event carries in a header. Change detection compares hashes; the deletion
//! check of a completed scan is every live resource the scan did not see.
//!
//! There is no second store to keep in step with the stream: what the stream
//! holds is, by construction, what was published.

use std::collections::HashMap;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;
use inventory_model::subject::untoken;
use inventory_model::{EventType, Scope};

use crate::{Bus, BusError, HEADER_CONTENT_HASH, HEADER_EVENT_TYPE, consume_error};

/// What the collector last published for one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedState {
    /// Every resource whose last event is not a deletion, keyed by id, with the
    /// content hash last published for it.
    pub resources: HashMap<String, String>,
    /// The stream's first sequence before the state was read: every resource
    /// whose last event is at or above it is in `resources` (or deleted). One
    /// whose last event is below it has aged out of the stream and is unknown.
    pub known_from_seq: u64,
}

impl Bus {
    /// Every resource of one kind in one scope whose last event is not a deletion,
    /// keyed by resource id, with the content hash last published for it.
    ///
    /// An event without the hash header maps to an empty hash, so the next scan
    /// publishes that resource once more as updated (the fold sees no change).
    pub async fn published_state(
        &self,
        source: &str,
        kind: &str,
        scope: &Scope,
    ) -> Result<PublishedState, BusError> {
        // Looked up (with its info) before the state is read: what ages out
        // while it is read is below no horizon, and is merely announced again.
        let stream = self.events_stream().await?;
        let known_from_seq = stream.cached_info().state.first_sequence;
        let name = self.names().events_stream();
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.names().scope_events_filter(source, kind, scope),
                deliver_policy: DeliverPolicy::LastPerSubject,
                headers_only: true,
                ..Default::default()
            })
            .await
            .map_err(|e| consume_error(&name, e))?;
        let mut out = HashMap::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(PublishedState {
                resources: out,
                known_from_seq,
            });
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| consume_error(&name, e))?;
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| consume_error(&name, e))?;
            let pending = msg.info().map_err(|e| consume_error(&name, e))?.pending;
            let header = |h: &str| {
                msg.headers
                    .as_ref()
                    .and_then(|hs| hs.get(h))
                    .map(|v| v.as_str().to_owned())
            };
            let deleted =
                header(HEADER_EVENT_TYPE).as_deref() == Some(EventType::ResourceDeleted.as_str());
            if !deleted {
                let token = msg.subject.rsplit('.').next().unwrap_or_default();
                let id = untoken(token).ok_or_else(|| {
                    consume_error(&name, format!("subject {} has a malformed id", msg.subject))
                })?;
                out.insert(id, header(HEADER_CONTENT_HASH).unwrap_or_default());
            }
            if pending == 0 {
                break;
            }
        }
        Ok(PublishedState {
            resources: out,
            known_from_seq,
        })
    }
}
