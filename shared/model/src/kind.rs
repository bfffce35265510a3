//! Declarative resource kinds.
//!
//! A [`KindDef`] says everything the pipeline needs to know about one kind of
//! resource: which provider call lists it and where the items sit in the raw
//! response, which field is its natural id, which typed columns and tags are
//! projected from the raw payload, and which links its events declare. The
//! collector, the projector (table and link SQL) and the API (routes, filters)
//! are all generic over this definition.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::event::{ContractError, Scope};

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A JSON pointer into the raw payload.
    Pointer(&'static str),
    /// The value of the tag with this key (from the kind's tag set).
    Tag(&'static str),
    /// The region of the event's scope.
    ScopeRegion,
    /// Every value found at these paths: JSON pointers where a `*` segment steps
    /// into every element of an array (`/groupSet/*/groupId`). Only links take
    /// multiple values; a column reading this takes the first.
    Each(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    Boolean,
    Timestamp,
    /// A structured value kept as JSON (rules, attachments); not filterable.
    Json,
}

impl ColumnType {
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "bigint",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamptz",
            ColumnType::Json => "jsonb",
        }
    }

    /// Whether the API filters on columns of this type (`?column=value`).
    pub fn filterable(self) -> bool {
        self != ColumnType::Json
    }
}

/// A typed column projected from the payload; filterable in the API.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub from: Field,
}

/// Which side of a link the declaring kind is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// A link `l_<source>_<a>_to_<b>` declared by the events of one kind (the owner).
/// Link rows are keyed by natural ids, so they are right whatever order the two
/// sides' events arrive in.
#[derive(Debug, Clone, Copy)]
pub struct LinkDef {
    pub table: &'static str,
    pub a_kind: &'static str,
    pub a_column: &'static str,
    pub b_kind: &'static str,
    pub b_column: &'static str,
    /// The side the owning kind is on.
    pub owner: Side,
    /// Where the other side's id comes from in the owner's event.
    pub other: Field,
}

impl LinkDef {
    pub fn other_kind(&self) -> &'static str {
        match self.owner {
            Side::A => self.b_kind,
            Side::B => self.a_kind,
        }
    }
    pub fn owner_column(&self) -> &'static str {
        match self.owner {
            Side::A => self.a_column,
            Side::B => self.b_column,
        }
    }
    pub fn other_column(&self) -> &'static str {
        match self.owner {
            Side::A => self.b_column,
            Side::B => self.a_column,
        }
    }
}

/// How the collector lists a kind.
#[derive(Debug, Clone, Copy)]
pub struct ListCall {
    /// The provider operation, e.g. `DescribeInstances`.
    pub operation: &'static str,
    /// Path to the items in the response (see [`select`]).
    pub items: &'static str,
    /// The largest `MaxResults` the operation accepts; `None`: not paginated.
    pub max_page: Option<i32>,
    /// Which of the account's resources the listing covers.
    pub ownership: Ownership,
}

/// Which resources of a kind a scan lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Everything the operation returns in the scope.
    All,
    /// Only what the account owns (`Owners=self` / `OwnerIds=self`): the
    /// operation would otherwise list every public image or snapshot.
    Owned,
    /// What the account owns, plus what the resources of another kind in the
    /// same scope reference (e.g. the public images instances were launched from).
    OwnedAndReferenced {
        /// The referencing kind (singular name).
        by: &'static str,
        /// Where the referencing kind's items hold the id.
        field: &'static str,
    },
}

#[derive(Debug)]
pub struct KindDef {
    pub source: &'static str,
    /// Singular name used in events and subjects (`instance`).
    pub name: &'static str,
    /// Plural name used in routes and collection requests (`instances`).
    pub plural: &'static str,
    pub table: &'static str,
    /// Column holding the natural id.
    pub id_column: &'static str,
    pub id: Field,
    /// Regional kinds are scanned per (account, region); others once per account.
    pub regional: bool,
    pub list: ListCall,
    /// Pointer to the tag set (`[{key, value}]`) in the payload, if the kind has tags.
    pub tags: Option<&'static str>,
    pub columns: &'static [Column],
    pub links: &'static [LinkDef],
}

/// A typed cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Integer(i64),
    Boolean(bool),
    Timestamp(DateTime<Utc>),
    Json(Value),
}

/// A payload projected onto a kind's row shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub id: String,
    /// One cell per [`KindDef::columns`] entry, in order.
    pub cells: Vec<Cell>,
    pub tags: Map<String, Value>,
    /// For each of [`KindDef::links`] (same order), the other side's ids: none,
    /// one, or several (an instance's security groups), without duplicates.
    pub links: Vec<Vec<String>>,
}

impl KindDef {
    /// Extract the natural id from a raw payload.
    pub fn id_of(&self, payload: &Value) -> Option<String> {
        self.field_text(self.id, payload, &Map::new(), None)
    }

    /// Project a payload onto the row: id, typed cells, tags and link ids.
    /// Values that are absent or do not parse as the column's type become NULL (the
    /// raw payload keeps them); only a missing or contradicting id is an error.
    pub fn project(
        &self,
        key: &str,
        scope: &Scope,
        payload: &Value,
    ) -> Result<Projected, ContractError> {
        let tags = self.tags_of(payload);
        let region = scope.region.as_deref();
        let id =
            self.field_text(self.id, payload, &tags, region)
                .ok_or(ContractError::MissingId {
                    pointer: match self.id {
                        Field::Pointer(p) => p,
                        _ => "id",
                    },
                })?;
        if id != key {
            return Err(ContractError::KeyMismatch {
                payload_id: id,
                key: key.to_owned(),
            });
        }
        let cells = self
            .columns
            .iter()
            .map(|c| match (c.ty, c.from) {
                // The XML cannot tell an empty list from an empty string: a
                // structured column reads an empty element as an empty list.
                (ColumnType::Json, Field::Pointer(p)) => match payload.pointer(p) {
                    None | Some(Value::Null) => Cell::Null,
                    Some(Value::String(s)) if s.is_empty() => Cell::Json(Value::Array(Vec::new())),
                    Some(v) => Cell::Json(v.clone()),
                },
                _ => match self.field_text(c.from, payload, &tags, region) {
                    None => Cell::Null,
                    Some(text) => parse_cell(c.ty, text),
                },
            })
            .collect();
        let links = self
            .links
            .iter()
            .map(|l| self.field_texts(l.other, payload, &tags, region))
            .collect();
        Ok(Projected {
            id,
            cells,
            tags,
            links,
        })
    }

    /// Check that an event scope fits the kind (regional kinds need a region).
    pub fn check_scope(&self, scope: &Scope) -> Result<(), ContractError> {
        match (self.regional, scope.region.is_some()) {
            (true, false) => Err(ContractError::ScopeMismatch {
                kind: self.name.to_owned(),
                expected: "regional",
                actual: "has no region",
            }),
            (false, true) => Err(ContractError::ScopeMismatch {
                kind: self.name.to_owned(),
                expected: "account-wide",
                actual: "has a region",
            }),
            _ => Ok(()),
        }
    }

    /// Tags as a JSON object `{key: value}` from the kind's tag set.
    pub fn tags_of(&self, payload: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(Value::Array(items)) = self.tags.and_then(|p| payload.pointer(p)) {
            for item in items {
                if let Some(Value::String(k)) = item.get("key") {
                    let v = item.get("value").cloned().unwrap_or(Value::Null);
                    out.insert(k.clone(), v);
                }
            }
        }
        out
    }

    /// Every item of a parsed list response, following [`ListCall::items`].
    pub fn items<'a>(&self, response: &'a Value) -> Vec<&'a Value> {
        select(response, self.list.items)
    }

    /// The first non-empty scalar value of a field.
    fn field_text(
        &self,
        field: Field,
        payload: &Value,
        tags: &Map<String, Value>,
        region: Option<&str>,
    ) -> Option<String> {
        match field {
            Field::Pointer(p) => payload.pointer(p).and_then(scalar_text),
            Field::Tag(k) => tags.get(k).and_then(scalar_text),
            Field::ScopeRegion => region.map(str::to_owned),
            Field::Each(paths) => paths
                .iter()
                .flat_map(|p| select(payload, p))
                .find_map(scalar_text),
        }
    }

    /// Every non-empty scalar value of a field, in order, without duplicates.
    fn field_texts(
        &self,
        field: Field,
        payload: &Value,
        tags: &Map<String, Value>,
        region: Option<&str>,
    ) -> Vec<String> {
        let Field::Each(paths) = field else {
            return self
                .field_text(field, payload, tags, region)
                .into_iter()
                .collect();
        };
        let mut out: Vec<String> = Vec::new();
        for text in paths
            .iter()
            .flat_map(|p| select(payload, p))
            .filter_map(scalar_text)
        {
            if !out.contains(&text) {
                out.push(text);
            }
        }
        out
    }
}

/// A string (non-empty), number or boolean as text; anything else is no value.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The values at a JSON pointer whose `*` segments step into every element of
/// an array (`/blockDeviceMapping/*/ebs/volumeId`).
pub fn select<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![value];
    for step in path.split('/').skip(1) {
        let mut next = Vec::with_capacity(current.len());
        for v in current {
            match (step, v) {
                ("*", Value::Array(items)) => next.extend(items.iter()),
                ("*", _) => {}
                (key, Value::Object(map)) => next.extend(map.get(key)),
                (index, Value::Array(items)) => {
                    next.extend(index.parse::<usize>().ok().and_then(|i| items.get(i)))
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

fn parse_cell(ty: ColumnType, text: String) -> Cell {
    match ty {
        ColumnType::Text => Cell::Text(text),
        ColumnType::Integer => text.parse().map(Cell::Integer).unwrap_or(Cell::Null),
        ColumnType::Boolean => match text.as_str() {
            "true" => Cell::Boolean(true),
            "false" => Cell::Boolean(false),
            _ => Cell::Null,
        },
        ColumnType::Timestamp => DateTime::parse_from_rfc3339(&text)
            .map(|t| Cell::Timestamp(t.with_timezone(&Utc)))
            .unwrap_or(Cell::Null),
        ColumnType::Json => Cell::Json(Value::String(text)),
    }
}
