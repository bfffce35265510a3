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
    /// A list at this JSON pointer, for a `Json` column: an empty string there
    /// is an empty list (a provider whose format cannot tell them apart, such
    /// as XML, says `<ipPermissionsEgress/>` for no rules).
    List(&'static str),
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

/// One end of a link: a kind of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub source: &'static str,
    /// Singular kind name.
    pub kind: &'static str,
}

/// A link declared by the events of one kind (the owner): rows of the link
/// table `l_<source>_<a>_to_<b>` (or, between two sources, the nexus table
/// `n_<source a>_<a>_to_<source b>_<b>`), holding the two ends' natural ids.
/// Link rows are keyed by natural ids, so they are right whatever order the
/// two sides' events arrive in.
#[derive(Debug, Clone, Copy)]
pub struct LinkDef {
    pub table: &'static str,
    pub a: End,
    pub b: End,
    /// The side the owning kind is on.
    pub owner: Side,
    /// Where the other side's id comes from in the owner's event.
    pub other: Field,
}

impl LinkDef {
    /// The end the owner's events do not describe.
    pub fn other_end(&self) -> End {
        match self.owner {
            Side::A => self.b,
            Side::B => self.a,
        }
    }

    pub fn owner_end(&self) -> End {
        match self.owner {
            Side::A => self.a,
            Side::B => self.b,
        }
    }

    /// The side `kind` is on, if it is one of the ends.
    pub fn side_of(&self, kind: &KindDef) -> Option<Side> {
        if self.a == kind.end() {
            Some(Side::A)
        } else if self.b == kind.end() {
            Some(Side::B)
        } else {
            None
        }
    }
}

/// How the collector lists a kind, as far as every provider has it: the
/// provider's operation (bound to its client by the provider's crate, with
/// whatever paging, owner filters or referenced items it needs) and where the
/// items sit in its response.
#[derive(Debug, Clone, Copy)]
pub struct ListCall {
    /// The provider operation, e.g. `DescribeInstances`.
    pub operation: &'static str,
    /// Path to the items in the response (see [`select`]).
    pub items: &'static str,
}

/// How a kind is scanned, and so keyed: once per account (the account id and
/// the natural id are the key; a region the resource sits in, if any, is a
/// typed column), or once per (account, region), the region in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanScope {
    Account,
    Region,
}

/// How a provider writes a resource's tags; every shape is normalized into
/// one `tags` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagShape {
    /// A list of objects naming key and value (`[{"key": "Name", "value": "web"}]`).
    Pairs {
        key: &'static str,
        value: &'static str,
    },
    /// An object of key to value (`{"env": "prod"}`: GCP labels, Azure, Kubernetes).
    Map,
    /// A list of strings (`["prod", "owner:ops"]`: OpenStack, Ganeti); each
    /// is a key, with the text after its first `:` or `=` as value, if any
    /// (else the value is empty).
    Strings,
}

/// Where a kind's tags are and how they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSet {
    pub at: &'static str,
    pub shape: TagShape,
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
    pub scope: ScanScope,
    pub list: ListCall,
    /// The kind's tags, if it has any.
    pub tags: Option<TagSet>,
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
    /// Scanned per (account, region), the region in the key.
    pub fn regional(&self) -> bool {
        self.scope == ScanScope::Region
    }

    /// This kind as a link end.
    pub fn end(&self) -> End {
        End {
            source: self.source,
            kind: self.name,
        }
    }

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
                (ColumnType::Json, Field::Pointer(p) | Field::List(p)) => {
                    match payload.pointer(p) {
                        None | Some(Value::Null) => Cell::Null,
                        Some(Value::String(s))
                            if s.is_empty() && matches!(c.from, Field::List(_)) =>
                        {
                            Cell::Json(Value::Array(Vec::new()))
                        }
                        Some(v) => Cell::Json(v.clone()),
                    }
                }
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
        match (self.regional(), scope.region.is_some()) {
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

    /// Tags as a JSON object `{key: value}`, whatever shape the provider
    /// writes them in.
    pub fn tags_of(&self, payload: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        let Some(set) = self.tags else { return out };
        match (set.shape, payload.pointer(set.at)) {
            (TagShape::Pairs { key, value }, Some(Value::Array(items))) => {
                for item in items {
                    if let Some(Value::String(k)) = item.get(key) {
                        let v = item.get(value).cloned().unwrap_or(Value::Null);
                        out.insert(k.clone(), v);
                    }
                }
            }
            (TagShape::Map, Some(Value::Object(map))) => out = map.clone(),
            (TagShape::Strings, Some(Value::Array(items))) => {
                for tag in items.iter().filter_map(Value::as_str) {
                    let (k, v) = tag.split_once([':', '=']).unwrap_or((tag, ""));
                    out.insert(k.to_owned(), Value::String(v.to_owned()));
                }
            }
            _ => {}
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
            Field::Pointer(p) | Field::List(p) => payload.pointer(p).and_then(scalar_text),
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
