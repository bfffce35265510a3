//! The Inventory model: the event contract on the bus, the declarative catalogue of
//! resource kinds, and the pure functions that turn a provider payload into the
//! columns, tags and links of a row.
//!
//! Architecture invariant: this crate does no IO. It knows nothing of NATS,
//! PostgreSQL or HTTP; the bus, store and api crates translate at their edges.
//! Everything here is deterministic, so it is unit-tested without servers.

pub mod catalogue;
pub mod code;
pub mod duration;
pub mod event;
pub mod jsondiff;
pub mod kind;
pub mod request;
pub mod schedule;
pub mod subject;
pub mod task;
pub mod text;

pub use catalogue::{KINDS, kind_by_name, kind_by_plural, link_between};
pub use code::ErrorCode;
pub use event::{
    ContractError, Envelope, EventType, Payload, SCHEMA_VERSION, Scope, canonical_json,
    content_hash, content_hash_of,
};
pub use jsondiff::{FieldChange, json_diff};
pub use kind::{
    Cell, Column, ColumnType, End, Field, KindDef, LinkDef, ListCall, Projected, ScanScope, Side,
    TagSet, TagShape, select,
};
pub use request::{CollectRequest, RequestError, resolve_kinds};
pub use schedule::{Cadence, ScheduleDef, ScheduleError, ScheduleState};
pub use task::{
    AttemptOutcome, NextStep, Priority, PriorityOrder, Progress, ScopeFailure, Task, TaskError,
    TaskFilter, TaskSpec, TaskState, jittered_backoff, next_step, sort_tasks, valid_task_id,
};
