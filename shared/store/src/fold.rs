//! The fold: one transaction per batch writes rows, links, scans, dead letters and
//! the projection's checkpoint. The caller acks the batch only after this returns.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use inventory_model::{Cell, ColumnType, KindDef, LinkDef, Projected, Scope};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use crate::writes::{Change, LinkRow, LinkWrites, log_changes};
use crate::{Store, StoreError, sql};

type Param = Box<dyn ToSql + Sync + Send>;

/// A resource event, already checked against the contract and projected.
#[derive(Debug, Clone)]
pub struct ResourceChange {
    pub kind: &'static KindDef,
    pub scope: Scope,
    pub key: String,
    pub observed_at: DateTime<Utc>,
    pub scan_id: String,
    pub request_id: Option<String>,
    /// Trace id of the operation that caused the event (from its `traceparent`).
    pub trace_id: Option<String>,
    /// `Some` for created/updated (projection, raw payload, content hash); `None` for deleted.
    pub state: Option<(Projected, JsonText, String)>,
}

/// A JSON document already serialized: bound as `json`/`jsonb` as it is. The
/// raw payload travels to PostgreSQL twice per change (row and version), so it
/// is encoded once and shared, not cloned and re-encoded as a `Value` tree.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText(bytes::Bytes);

impl JsonText {
    /// Text that is one JSON document.
    pub fn from_text(text: String) -> JsonText {
        JsonText(text.into_bytes().into())
    }

    pub fn from_value(value: &Value) -> JsonText {
        JsonText(
            serde_json::to_vec(value)
                .expect("a json value serializes")
                .into(),
        )
    }
}

impl tokio_postgres::types::ToSql for JsonText {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == tokio_postgres::types::Type::JSONB {
            out.extend_from_slice(&[1]); // jsonb binary format version
        }
        out.extend_from_slice(&self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(
            *ty,
            tokio_postgres::types::Type::JSON | tokio_postgres::types::Type::JSONB
        )
    }

    tokio_postgres::types::to_sql_checked!();
}

/// An event that broke the contract.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub subject: String,
    pub reason: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// One event of a batch, with its stream sequence. (Items are made once per
/// event and moved; boxing the large variant would cost an allocation each.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum BatchItem {
    Resource {
        seq: u64,
        change: ResourceChange,
    },
    ScanStarted {
        seq: u64,
        scan_id: String,
        kind: &'static KindDef,
        scope: Scope,
        request_id: Option<String>,
        at: DateTime<Utc>,
    },
    ScanFinished {
        seq: u64,
        scan_id: String,
        kind: &'static KindDef,
        scope: Scope,
        at: DateTime<Utc>,
        /// `Ok(resources seen)` for a completed scan, `Err(reason)` for a failed
        /// or cancelled one.
        result: Result<u64, String>,
        /// It was stopped on request rather than failing.
        cancelled: bool,
        /// A completed scan: the collector knew every resource whose last
        /// event is at or above this sequence (see [`inventory_model::Envelope`]).
        known_from_seq: Option<u64>,
    },
    Dead {
        seq: u64,
        letter: DeadLetter,
    },
    /// An event a bounded replay leaves out (after its `--until`): it changes
    /// nothing but the checkpoint.
    Skip {
        seq: u64,
    },
}

impl BatchItem {
    pub fn seq(&self) -> u64 {
        match self {
            BatchItem::Resource { seq, .. }
            | BatchItem::ScanStarted { seq, .. }
            | BatchItem::ScanFinished { seq, .. }
            | BatchItem::Dead { seq, .. }
            | BatchItem::Skip { seq } => *seq,
        }
    }

    /// When the event was observed (dead letters and skips have no time).
    pub fn observed_at(&self) -> Option<DateTime<Utc>> {
        match self {
            BatchItem::Resource { change, .. } => Some(change.observed_at),
            BatchItem::ScanStarted { at, .. } | BatchItem::ScanFinished { at, .. } => Some(*at),
            BatchItem::Dead { .. } | BatchItem::Skip { .. } => None,
        }
    }
}

/// Sequences the caller has found the event stream does not hold (aged out or
/// removed), `[from, to)`: a batch may start past the checkpoint across them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    pub from: u64,
    pub to: u64,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events that changed a row, link or scan.
    pub applied: usize,
    /// Live resources that completed scans did not see and their collectors could
    /// not know of (their last event had aged out of the stream): deleted.
    pub ghosts_deleted: usize,
    /// Events at or below the checkpoint, or older than the row they address.
    pub unchanged: usize,
    pub dead_lettered: usize,
    /// The checkpoint after the batch.
    pub checkpoint: u64,
}

/// One typed array parameter per data column.
enum ColumnArray {
    Text(Vec<Option<String>>),
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Timestamp(Vec<Option<DateTime<Utc>>>),
    Json(Vec<Option<Value>>),
}

impl ColumnArray {
    fn new(ty: ColumnType, n: usize) -> ColumnArray {
        match ty {
            ColumnType::Text => ColumnArray::Text(Vec::with_capacity(n)),
            ColumnType::Integer => ColumnArray::Integer(Vec::with_capacity(n)),
            ColumnType::Boolean => ColumnArray::Boolean(Vec::with_capacity(n)),
            ColumnType::Timestamp => ColumnArray::Timestamp(Vec::with_capacity(n)),
            ColumnType::Json => ColumnArray::Json(Vec::with_capacity(n)),
        }
    }

    /// Append a cell; one that does not fit the column's type is NULL.
    fn push(&mut self, cell: &Cell) {
        match self {
            ColumnArray::Text(v) => v.push(match cell {
                Cell::Text(s) => Some(s.clone()),
                _ => None,
            }),
            ColumnArray::Integer(v) => v.push(match cell {
                Cell::Integer(i) => Some(*i),
                _ => None,
            }),
            ColumnArray::Boolean(v) => v.push(match cell {
                Cell::Boolean(b) => Some(*b),
                _ => None,
            }),
            ColumnArray::Timestamp(v) => v.push(match cell {
                Cell::Timestamp(t) => Some(*t),
                _ => None,
            }),
            ColumnArray::Json(v) => v.push(match cell {
                Cell::Json(j) => Some(j.clone()),
                _ => None,
            }),
        }
    }

    fn into_param(self) -> Param {
        match self {
            ColumnArray::Text(v) => Box::new(v),
            ColumnArray::Integer(v) => Box::new(v),
            ColumnArray::Boolean(v) => Box::new(v),
            ColumnArray::Timestamp(v) => Box::new(v),
            ColumnArray::Json(v) => Box::new(v),
        }
    }
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

type Key = (String, String, String);

/// A resource change with its stream sequence.
type Versioned<'a> = Option<(u64, &'a ResourceChange)>;

fn key_of(c: &ResourceChange) -> Key {
    (
        c.scope.account_id.clone(),
        c.scope.region.clone().unwrap_or_default(),
        c.key.clone(),
    )
}

/// Key arrays (account, [region,] id) of a kind, for `changes`.
fn key_params<'a>(
    kind: &KindDef,
    changes: impl Iterator<Item = &'a ResourceChange> + Clone,
) -> Vec<Param> {
    let mut p: Vec<Param> = vec![Box::new(
        changes
            .clone()
            .map(|c| c.scope.account_id.clone())
            .collect::<Vec<_>>(),
    )];
    if kind.regional() {
        p.push(Box::new(
            changes
                .clone()
                .map(|c| c.scope.region.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
        ));
    }
    p.push(Box::new(changes.map(|c| c.key.clone()).collect::<Vec<_>>()));
    p
}

/// Arrays key columns…, data columns…, tags, raw, content_hash of `n` changes
/// that carry a state (the head of the upsert and version insert parameters).
fn state_params<'a>(
    kind: &KindDef,
    changes: impl Iterator<Item = &'a ResourceChange> + Clone,
    n: usize,
) -> Vec<Param> {
    let mut params = key_params(kind, changes.clone());
    let mut columns: Vec<ColumnArray> = kind
        .columns
        .iter()
        .map(|c| ColumnArray::new(c.ty, n))
        .collect();
    let (mut tags, mut raw, mut hash) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for c in changes {
        let (projected, payload, content_hash) = c.state.as_ref().expect("a state");
        for (array, cell) in columns.iter_mut().zip(&projected.cells) {
            array.push(cell);
        }
        tags.push(Value::Object(projected.tags.clone()));
        raw.push(payload.clone());
        hash.push(content_hash.clone());
    }
    params.extend(columns.into_iter().map(ColumnArray::into_param));
    params.push(Box::new(tags));
    params.push(Box::new(raw));
    params.push(Box::new(hash));
    params
}

/// Arrays observed_at, scan_id, seq of versioned changes (the tail of the upsert
/// and delete parameters).
fn event_params(items: &[(u64, &ResourceChange)]) -> [Param; 3] {
    [
        Box::new(items.iter().map(|(_, c)| c.observed_at).collect::<Vec<_>>()),
        Box::new(
            items
                .iter()
                .map(|(_, c)| c.scan_id.clone())
                .collect::<Vec<_>>(),
        ),
        Box::new(items.iter().map(|(s, _)| *s as i64).collect::<Vec<_>>()),
    ]
}

fn row_key(kind: &KindDef, r: &tokio_postgres::Row) -> Key {
    let account: String = r.get(0);
    if kind.regional() {
        (account, r.get(1), r.get(2))
    } else {
        (account, String::new(), r.get(1))
    }
}

fn returned_keys(kind: &KindDef, rows: &[tokio_postgres::Row]) -> HashSet<Key> {
    rows.iter().map(|r| row_key(kind, r)).collect()
}

/// The resource events of one kind in a batch, reduced per resource to what
/// sequential folding would leave.
struct KindBatch<'a> {
    kind: &'static KindDef,
    index: HashMap<Key, usize>,
    entries: Vec<Reduced<'a>>,
    /// Every event in stream order, for history.
    all: Vec<(u64, &'a ResourceChange)>,
}

/// One resource's events in a batch: the last deletion before its latest state,
/// the latest state, and a deletion after it. Applied in that order they leave
/// what applying every event in turn would.
#[derive(Default, Clone, Copy)]
struct Reduced<'a> {
    deleted_before: Versioned<'a>,
    latest: Versioned<'a>,
    deleted_after: Versioned<'a>,
    /// When the batch first saw a state of the resource: a row the batch
    /// inserts was first seen then, whatever states followed.
    first_state_at: Option<DateTime<Utc>>,
}

impl<'a> KindBatch<'a> {
    fn add(&mut self, seq: u64, change: &'a ResourceChange) {
        self.all.push((seq, change));
        let next = self.entries.len();
        let i = *self.index.entry(key_of(change)).or_insert(next);
        if i == next {
            self.entries.push(Reduced::default());
        }
        let entry = &mut self.entries[i];
        if change.state.is_some() {
            entry.first_state_at.get_or_insert(change.observed_at);
            if let Some(d) = entry.deleted_after.take() {
                entry.deleted_before = Some(d);
            }
            entry.latest = Some((seq, change));
        } else {
            entry.deleted_after = Some((seq, change));
        }
    }
}

/// A version the batch may write.
struct Planned<'a> {
    seq: u64,
    change: &'a ResourceChange,
    /// `created` / `updated` when the batch itself decides; `None` for the first
    /// event of a resource in the batch (decided against stored history).
    decided: Option<&'static str>,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
}

/// The versions a kind's events (in stream order) make: consecutive events of
/// a resource with the same content, and deletions of what is already deleted,
/// make none. Each version is valid until the next one's `valid_from` (never
/// before its own: collectors' clocks may disagree).
fn plan_versions<'a>(events: &[(u64, &'a ResourceChange)]) -> Vec<Planned<'a>> {
    let mut out: Vec<Planned<'a>> = Vec::new();
    // Per resource: index in `out` of its last planned version.
    let mut last: HashMap<Key, usize> = HashMap::new();
    for (seq, change) in events {
        let key = key_of(change);
        let hash = change.state.as_ref().map(|(_, _, h)| h.as_str());
        let decided = match last.get(&key).map(|&i| &out[i]) {
            None => None,
            Some(prev) => match (prev.change.state.as_ref(), hash) {
                (Some((_, _, h)), Some(new)) if h == new => continue,
                (None, None) => continue,
                (Some(_), Some(_)) => Some("updated"),
                (None, Some(_)) => Some("created"),
                (Some(_), None) => Some("deleted"),
            },
        };
        if let Some(&i) = last.get(&key) {
            let prev = &mut out[i];
            prev.valid_to = Some(change.observed_at.max(prev.valid_from));
        }
        last.insert(key, out.len());
        out.push(Planned {
            seq: *seq,
            change,
            decided: decided.filter(|d| *d != "deleted"),
            valid_from: change.observed_at,
            valid_to: None,
        });
    }
    out
}

/// Arrays valid_from, valid_to, request_id, trace_id of planned versions.
fn version_tail(planned: &[&Planned]) -> [Param; 4] {
    [
        Box::new(planned.iter().map(|p| p.valid_from).collect::<Vec<_>>()),
        Box::new(planned.iter().map(|p| p.valid_to).collect::<Vec<_>>()),
        Box::new(
            planned
                .iter()
                .map(|p| p.change.request_id.clone())
                .collect::<Vec<_>>(),
        ),
        Box::new(
            planned
                .iter()
                .map(|p| p.change.trace_id.clone())
                .collect::<Vec<_>>(),
        ),
    ]
}

/// `{"<link table>": ["<other id>"]}` for the links a state declares.
fn links_of(kind: &KindDef, projected: &Projected) -> Value {
    Value::Object(
        kind.links
            .iter()
            .zip(&projected.links)
            .filter(|(_, others)| !others.is_empty())
            .map(|(l, others)| {
                (
                    l.table.to_owned(),
                    Value::Array(others.iter().cloned().map(Value::String).collect()),
                )
            })
            .collect(),
    )
}

impl Store {
    /// Apply a batch (items in stream order) in one transaction and advance
    /// `projection`'s checkpoint to the batch's highest sequence. Items at or
    /// below the checkpoint are skipped, so a redelivered batch changes nothing.
    /// The result does not depend on how the stream is cut into batches.
    ///
    /// The items above the checkpoint must be consecutive sequences starting
    /// at the checkpoint's next one (or, the first, following it across
    /// `hole`: sequences the stream does not hold); otherwise nothing is
    /// written and the answer is [`StoreError::Gap`]: the caller must fetch
    /// again from the checkpoint.
    /// This is checked under the checkpoint's row lock, so several projectors
    /// of one projection can never commit over events none of them applied.
    pub async fn apply_batch(
        &self,
        projection: &str,
        items: &[BatchItem],
        hole: Option<Hole>,
    ) -> Result<BatchOutcome, StoreError> {
        debug_assert!(items.windows(2).all(|w| w[0].seq() < w[1].seq()));
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Every statement of the fold joins a batch's arrays to a large table
        // by key. Planned for the arrays' real length (custom plans), the join
        // over the partitioned link table becomes a merge join that reads every
        // partition's whole index (seconds per batch at a million links): the
        // generic plan probes the index per row, which is what a batch needs.
        // JIT only costs time on statements like these.
        tx.batch_execute(sql::FOLD_SETTINGS).await?;
        tx.execute(
            "INSERT INTO projection_checkpoint (projection) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&projection],
        )
        .await?;
        // FOR UPDATE: two projector replicas of one projection take turns per batch.
        let last: i64 = tx
            .query_one(
                "SELECT last_seq FROM projection_checkpoint WHERE projection = $1 FOR UPDATE",
                &[&projection],
            )
            .await?
            .get(0);
        let last = last as u64;
        let pending: Vec<&BatchItem> = items.iter().filter(|i| i.seq() > last).collect();
        // Consecutive from the checkpoint on (the first may follow it across
        // the hole): a pull consumer shared by several projectors hands each
        // of them part of the stream, and what another got must not be skipped.
        let mut expected = last + 1;
        for (i, item) in pending.iter().enumerate() {
            let seq = item.seq();
            let bridged = i == 0 && hole.is_some_and(|h| h.from <= expected && seq <= h.to);
            if seq != expected && !bridged {
                // Rolled back when the transaction drops.
                return Err(StoreError::Gap {
                    checkpoint: last,
                    first: seq,
                });
            }
            expected = seq + 1;
        }
        let mut out = BatchOutcome {
            checkpoint: pending.iter().map(|i| i.seq()).max().unwrap_or(0).max(last),
            ..Default::default()
        };

        // Resources, set-based per kind, with the deletions of ghosts in their
        // place in stream order (at their scan's completion).
        let ghosts = self.ghosts(&tx, &pending).await?;
        out.ghosts_deleted = ghosts.len();
        let mut resources: Vec<(u64, &ResourceChange)> = pending
            .iter()
            .filter_map(|item| match item {
                BatchItem::Resource { seq, change } => Some((*seq, change)),
                _ => None,
            })
            .chain(ghosts.iter().map(|(seq, change)| (*seq, change)))
            .collect();
        resources.sort_by_key(|(seq, _)| *seq);
        let mut batches: Vec<KindBatch> = Vec::new();
        for (seq, change) in resources {
            {
                let i = match batches
                    .iter()
                    .position(|b| b.kind.table == change.kind.table)
                {
                    Some(i) => i,
                    None => {
                        batches.push(KindBatch {
                            kind: change.kind,
                            index: HashMap::new(),
                            entries: Vec::new(),
                            all: Vec::new(),
                        });
                        batches.len() - 1
                    }
                };
                batches[i].add(seq, change);
            }
        }
        let mut links = LinkWrites::default();
        let mut changes = Vec::new();
        for batch in &batches {
            // History first: it compares with the versions stored before this batch.
            changes.extend(self.write_versions(&tx, batch.kind, &batch.all).await?);
            out.applied += self.write_kind(&tx, batch, &mut links).await?;
        }
        links.write(&tx).await?;
        log_changes(&tx, changes).await?;

        // Scans and dead letters, in stream order.
        for item in &pending {
            let seq_i = item.seq() as i64;
            match item {
                BatchItem::Resource { .. } | BatchItem::Skip { .. } => {}
                BatchItem::ScanStarted {
                    scan_id,
                    kind,
                    scope,
                    request_id,
                    at,
                    ..
                } => {
                    out.applied += tx.execute(
                        "INSERT INTO scan (scan_id, source, kind, account_id, region, request_id, state, started_at, seq) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8) ON CONFLICT (scan_id) DO NOTHING",
                        &[scan_id, &kind.source, &kind.name, &scope.account_id,
                          &scope.region.clone().unwrap_or_default(), request_id, at, &seq_i],
                    )
                    .await? as usize;
                }
                BatchItem::ScanFinished {
                    scan_id,
                    kind,
                    scope,
                    at,
                    result,
                    cancelled,
                    known_from_seq: _,
                    ..
                } => {
                    let (state, seen, error) = match result {
                        Ok(n) => ("completed", Some(*n as i64), None),
                        Err(e) if *cancelled => ("cancelled", None, Some(e.clone())),
                        Err(e) => ("failed", None, Some(e.clone())),
                    };
                    out.applied += tx
                        .execute(
                            "INSERT INTO scan (scan_id, source, kind, account_id, region, state, finished_at, resources_seen, error, seq) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                             ON CONFLICT (scan_id) DO UPDATE SET state = EXCLUDED.state, finished_at = EXCLUDED.finished_at, \
                             resources_seen = EXCLUDED.resources_seen, error = EXCLUDED.error, seq = EXCLUDED.seq \
                             WHERE scan.seq < EXCLUDED.seq",
                            &[scan_id, &kind.source, &kind.name, &scope.account_id,
                              &scope.region.clone().unwrap_or_default(), &state, at, &seen, &error, &seq_i],
                        )
                        .await? as usize;
                    if result.is_ok() {
                        let mut p: Vec<Param> = vec![Box::new(scope.account_id.clone())];
                        if kind.regional() {
                            p.push(Box::new(scope.region.clone().unwrap_or_default()));
                        }
                        p.push(Box::new(*at));
                        let stmt = tx.prepare_cached(&self.kind_sql(kind).touch_scope).await?;
                        tx.execute(&stmt, &refs(&p)).await?;
                    }
                }
                BatchItem::Dead { letter, .. } => {
                    let headers: serde_json::Map<String, Value> = letter
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    tx.execute(
                        "INSERT INTO dead_letter (projection, stream_seq, subject, reason, payload, headers) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (projection, stream_seq) DO NOTHING",
                        &[&projection, &seq_i, &letter.subject, &letter.reason, &letter.payload,
                          &Value::Object(headers)],
                    )
                    .await?;
                    out.dead_lettered += 1;
                }
            }
        }
        out.applied = out.applied.min(pending.len() - out.dead_lettered);
        out.unchanged = items.len() - out.applied - out.dead_lettered;
        tx.execute(
            "UPDATE projection_checkpoint SET last_seq = $2, updated_at = now() WHERE projection = $1",
            &[&projection, &(out.checkpoint as i64)],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Deletions of ghosts: for each completed scan of the batch that says what
    /// its collector knew (`known_from_seq`), the live rows of its scope whose
    /// last event is older than that and that no event of the batch before the
    /// completion touched. The collector could not know them (their last event
    /// had aged out of the stream), so it would have announced them again had
    /// it seen them: they are gone. Each is deleted at its scan's completion.
    /// Every event before the completion is applied by then (batches follow the
    /// checkpoint without a gap), so the rows read here, minus those the batch
    /// touches first, are exactly what folding event by event would find.
    async fn ghosts(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        pending: &[&BatchItem],
    ) -> Result<Vec<(u64, ResourceChange)>, StoreError> {
        let mut out = Vec::new();
        // The first event of the batch about each resource.
        let mut first: Option<HashMap<(&str, Key), u64>> = None;
        for item in pending {
            let BatchItem::ScanFinished {
                seq,
                scan_id,
                kind,
                scope,
                at,
                result: Ok(_),
                known_from_seq: Some(known),
                ..
            } = item
            else {
                continue;
            };
            let mut p: Vec<Param> = vec![Box::new(scope.account_id.clone())];
            if kind.regional() {
                p.push(Box::new(scope.region.clone().unwrap_or_default()));
            }
            p.push(Box::new(*known as i64));
            let stmt = tx.prepare_cached(&self.kind_sql(kind).ghosts).await?;
            let rows = tx.query(&stmt, &refs(&p)).await?;
            if rows.is_empty() {
                continue;
            }
            let first = first.get_or_insert_with(|| {
                let mut map = HashMap::new();
                for other in pending {
                    if let BatchItem::Resource { seq, change } = other {
                        map.entry((change.kind.table, key_of(change)))
                            .or_insert(*seq);
                    }
                }
                map
            });
            for key in rows.iter().map(|r| row_key(kind, r)) {
                let table_key = (kind.table, key);
                if first.get(&table_key).is_some_and(|s| s < seq) {
                    continue;
                }
                let key = table_key.1;
                let change = ResourceChange {
                    kind,
                    scope: scope.clone(),
                    key: key.2,
                    observed_at: *at,
                    scan_id: scan_id.clone(),
                    request_id: None,
                    trace_id: None,
                    state: None,
                };
                out.push((*seq, change));
            }
        }
        Ok(out)
    }

    /// Write one kind's reduced batch: deletions that preceded a new state, the
    /// latest states with their links, then trailing deletions. Returns how many
    /// rows changed.
    async fn write_kind(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        batch: &KindBatch<'_>,
        links: &mut LinkWrites,
    ) -> Result<usize, StoreError> {
        let before: Vec<(u64, &ResourceChange)> = batch
            .entries
            .iter()
            .filter_map(|e| e.deleted_before)
            .collect();
        let latest: Vec<(u64, &ResourceChange)> =
            batch.entries.iter().filter_map(|e| e.latest).collect();
        let first_seen: Vec<DateTime<Utc>> = batch
            .entries
            .iter()
            .filter(|e| e.latest.is_some())
            .filter_map(|e| e.first_state_at)
            .collect();
        let after: Vec<(u64, &ResourceChange)> = batch
            .entries
            .iter()
            .filter_map(|e| e.deleted_after)
            .collect();
        Ok(self
            .delete_rows(tx, batch.kind, &before, &mut links.ended_before)
            .await?
            + self
                .upsert_rows(tx, batch.kind, &latest, first_seen, links)
                .await?
            + self
                .delete_rows(tx, batch.kind, &after, &mut links.ended_after)
                .await?)
    }

    /// Append the versions a kind's events make, in stream order, and end the
    /// validity of the versions they supersede; returns what was written, for
    /// the change log.
    async fn write_versions(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        kind: &'static KindDef,
        events: &[(u64, &ResourceChange)],
    ) -> Result<Vec<Change>, StoreError> {
        let plan = plan_versions(events);
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let sql = &self.kind_sql(kind).version;
        let (states, deletions): (Vec<&Planned>, Vec<&Planned>) =
            plan.iter().partition(|p| p.change.state.is_some());
        let mut written: Vec<tokio_postgres::Row> = Vec::new();
        if !states.is_empty() {
            let changes = states.iter().map(|p| p.change);
            let mut params = state_params(kind, changes.clone(), states.len());
            let links: Vec<Value> = changes
                .clone()
                .map(|c| links_of(kind, &c.state.as_ref().expect("a state").0))
                .collect();
            params.push(Box::new(
                changes
                    .clone()
                    .map(|c| c.scan_id.clone())
                    .collect::<Vec<_>>(),
            ));
            params.push(Box::new(
                states.iter().map(|p| p.seq as i64).collect::<Vec<_>>(),
            ));
            params.push(Box::new(
                states.iter().map(|p| p.decided).collect::<Vec<_>>(),
            ));
            params.extend(version_tail(&states));
            params.push(Box::new(links));
            let stmt = tx.prepare_cached(&sql.insert).await?;
            written.extend(tx.query(&stmt, &refs(&params)).await?);
        }
        if !deletions.is_empty() {
            let changes = deletions.iter().map(|p| p.change);
            let mut params = key_params(kind, changes.clone());
            params.push(Box::new(
                changes.map(|c| c.scan_id.clone()).collect::<Vec<_>>(),
            ));
            params.push(Box::new(
                deletions.iter().map(|p| p.seq as i64).collect::<Vec<_>>(),
            ));
            params.extend(version_tail(&deletions));
            let stmt = tx.prepare_cached(&sql.delete).await?;
            written.extend(tx.query(&stmt, &refs(&params)).await?);
        }
        // The first version written per resource ends the one stored before it.
        let key_len = if kind.regional() { 3 } else { 2 };
        let mut first: HashMap<Key, i64> = HashMap::new();
        for row in &written {
            let seq: i64 = row.get(key_len);
            first
                .entry(row_key(kind, row))
                .and_modify(|s| *s = (*s).min(seq))
                .or_insert(seq);
        }
        let closing: Vec<&Planned> = plan
            .iter()
            .filter(|p| first.get(&key_of(p.change)) == Some(&(p.seq as i64)))
            .collect();
        if !closing.is_empty() {
            let mut params = key_params(kind, closing.iter().map(|p| p.change));
            params.push(Box::new(
                closing.iter().map(|p| p.seq as i64).collect::<Vec<_>>(),
            ));
            params.push(Box::new(
                closing.iter().map(|p| p.valid_from).collect::<Vec<_>>(),
            ));
            let stmt = tx.prepare_cached(&sql.close).await?;
            tx.execute(&stmt, &refs(&params)).await?;
        }
        Ok(written
            .iter()
            .map(|row| {
                let (account_id, region, id) = row_key(kind, row);
                let at = |i: usize| key_len + i;
                Change {
                    seq: row.get(at(0)),
                    kind,
                    account_id,
                    region: kind.regional().then_some(region),
                    id,
                    change: row.get(at(1)),
                    at: row.get(at(2)),
                    scan_id: row.get(at(3)),
                    request_id: row.get(at(4)),
                    trace_id: row.get(at(5)),
                    content_hash: row.get(at(6)),
                }
            })
            .collect())
    }

    async fn upsert_rows(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        kind: &'static KindDef,
        ups: &[(u64, &ResourceChange)],
        first_seen: Vec<DateTime<Utc>>,
        links: &mut LinkWrites,
    ) -> Result<usize, StoreError> {
        if ups.is_empty() {
            return Ok(0);
        }
        let sql = self.kind_sql(kind);
        let changes = ups.iter().map(|(_, c)| *c);
        let mut params = state_params(kind, changes.clone(), ups.len());
        // An inserted row's first (and last) seen time is the batch's first state
        // of it, as folding event by event would have made it.
        let [_, scan_ids, seqs] = event_params(ups);
        params.extend([Box::new(first_seen) as Param, scan_ids, seqs]);
        let stmt = tx.prepare_cached(&sql.upsert).await?;
        let rows = tx.query(&stmt, &refs(&params)).await?;
        let applied = returned_keys(kind, &rows);
        // A row that is new has no links yet: only updated rows need theirs cleared
        // (on a bulk load or a rebuild, that is none).
        let key_len = if kind.regional() { 3 } else { 2 };
        let inserted: HashSet<Key> = rows
            .iter()
            .filter(|r| r.get::<_, bool>(key_len))
            .map(|r| row_key(kind, r))
            .collect();
        for (seq, c) in ups {
            let key = key_of(c);
            if !applied.contains(&key) {
                continue;
            }
            let (account_id, region, owner) = key;
            let state = &c.state.as_ref().expect("a state").0;
            let row = |link: &LinkDef, other: String| LinkRow {
                link: link.table,
                owner_side: link.owner,
                account_id: account_id.clone(),
                region: region.clone(),
                owner: owner.clone(),
                other,
                seq: *seq as i64,
            };
            let updated = !inserted.contains(&(account_id.clone(), region.clone(), owner.clone()));
            for (link, others) in kind.links.iter().zip(&state.links) {
                if updated {
                    links.cleared.push(row(link, String::new()));
                }
                links
                    .declared
                    .extend(others.iter().map(|o| row(link, o.clone())));
            }
        }
        Ok(rows.len())
    }

    async fn delete_rows(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        kind: &'static KindDef,
        dels: &[(u64, &ResourceChange)],
        ended: &mut Vec<LinkRow>,
    ) -> Result<usize, StoreError> {
        if dels.is_empty() {
            return Ok(0);
        }
        let sql = self.kind_sql(kind);
        let changes = dels.iter().map(|(_, c)| *c);
        let mut params = key_params(kind, changes.clone());
        params.extend(event_params(dels));
        let stmt = tx.prepare_cached(&sql.delete).await?;
        let rows = tx.query(&stmt, &refs(&params)).await?;
        let applied = returned_keys(kind, &rows);
        // The links the deleted resources declared end with them.
        for (seq, c) in dels {
            let key = key_of(c);
            if !applied.contains(&key) {
                continue;
            }
            for link in kind.links {
                ended.push(LinkRow {
                    link: link.table,
                    owner_side: link.owner,
                    account_id: key.0.clone(),
                    region: key.1.clone(),
                    owner: key.2.clone(),
                    other: String::new(),
                    seq: *seq as i64,
                });
            }
        }
        Ok(rows.len())
    }
}
