//! Lists: the query language of `/api/v1/<source>/<kinds>` (filters with
//! operators, tag filters, sort, fields) as SQL over a kind's table or, as of
//! an instant, its history; keyset-paged, grouped and counted.
//!
//! Invariants: every value reaches PostgreSQL as a text parameter cast on the
//! server, never in the statement's text; column names come from the
//! catalogue only (a name that is not one is [`StoreError::UnknownColumn`]);
//! a page's order is total (the sort, then the key), so that a cursor names
//! exactly where the next page starts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use inventory_model::{ColumnType, KindDef, LinkDef, Side};

use crate::reports::{Rule, RuleSql};
use crate::sql::key_columns;
use crate::{ReadStore, StoreError};

/// How a filter compares a column with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    Nin,
    Like,
    Gt,
    Gte,
    Lt,
    Lte,
    Null,
}

impl Op {
    pub const ALL: [Op; 10] = [
        Op::Eq,
        Op::Ne,
        Op::In,
        Op::Nin,
        Op::Like,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Null,
    ];

    /// The name in brackets after a field (`state[ne]=running`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::In => "in",
            Op::Nin => "nin",
            Op::Like => "like",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Null => "null",
        }
    }

    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The operators a column of type `ty` takes.
    pub fn allowed(ty: ColumnType) -> &'static [Op] {
        match ty {
            ColumnType::Text => &Op::ALL,
            ColumnType::Integer | ColumnType::Timestamp => &[
                Op::Eq,
                Op::Ne,
                Op::In,
                Op::Nin,
                Op::Gt,
                Op::Gte,
                Op::Lt,
                Op::Lte,
                Op::Null,
            ],
            ColumnType::Boolean => &[Op::Eq, Op::Ne, Op::Null],
            ColumnType::Json => &[],
        }
    }
}

/// `column[op]=value` on a kind's key or typed columns. `In`/`Nin` take a
/// comma-separated list, `Null` takes `true` or `false`, `Like` a pattern
/// where `*` matches any text (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub value: String,
}

impl Filter {
    pub fn eq(column: &str, value: &str) -> Filter {
        Filter {
            column: column.to_owned(),
            op: Op::Eq,
            value: value.to_owned(),
        }
    }
}

/// How a tag filter tests a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp {
    Eq,
    Like,
    In,
    /// `true`: the key is there; `false`: it is not.
    Exists,
}

impl TagOp {
    pub const ALL: [TagOp; 4] = [TagOp::Eq, TagOp::Like, TagOp::In, TagOp::Exists];

    pub fn name(self) -> &'static str {
        match self {
            TagOp::Eq => "eq",
            TagOp::Like => "like",
            TagOp::In => "in",
            TagOp::Exists => "exists",
        }
    }

    pub fn parse(name: &str) -> Option<TagOp> {
        TagOp::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// `tag.<key>[op]=value`; the key is any text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub op: TagOp,
    pub value: String,
}

/// One sort key: a key or typed column, ascending unless `descending`.
/// Missing values (NULL) come last either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub column: String,
    pub descending: bool,
}

/// Restrict a list to the resources linked to one parent resource.
#[derive(Debug, Clone)]
pub struct Via {
    pub link: &'static LinkDef,
    pub parent: &'static KindDef,
    pub parent_id: String,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: &'static KindDef,
    pub filters: Vec<Filter>,
    pub tags: Vec<TagFilter>,
    /// Sort keys before the natural key (which breaks ties).
    pub sort: Vec<Sort>,
    /// Only these fields of each item (see [`item_fields`]); all if `None`.
    pub fields: Option<Vec<String>>,
    pub include_deleted: bool,
    /// Opaque cursor from a previous page's `next`.
    pub cursor: Option<String>,
    pub limit: usize,
    pub via: Option<Via>,
    /// Answer as the inventory stood at this instant (from history).
    pub at: Option<DateTime<Utc>>,
    /// Only the rows a report's rule finds.
    pub rule: Option<Rule>,
}

impl ListQuery {
    /// Every resource of `kind` (live ones, now), first page of `limit`.
    pub fn of(kind: &'static KindDef, limit: usize) -> ListQuery {
        ListQuery {
            kind,
            filters: Vec::new(),
            tags: Vec::new(),
            sort: Vec::new(),
            fields: None,
            include_deleted: false,
            cursor: None,
            limit,
            via: None,
            at: None,
            rule: None,
        }
    }
}

/// A page of items. Each item is a JSON object's text as PostgreSQL built it,
/// to be passed through to clients without being parsed, checked or
/// serialized again.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<String>,
    pub next: Option<String>,
}

/// A page as text columns (for CSV): `columns` names them; a JSON value
/// (tags) is its JSON text, a time is RFC 3339, a missing value `None`.
#[derive(Debug)]
pub struct ColumnPage {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Option<String>>>,
    pub next: Option<String>,
}

/// Counts by the values of some columns.
#[derive(Debug)]
pub struct Groups {
    /// `{"<column>": value, …, "count": n}` objects' text, largest first.
    pub groups: Vec<String>,
    /// Resources matched (over every group, also those beyond the limit).
    pub total: i64,
    /// More groups than the limit: the smallest were left out.
    pub truncated: bool,
}

/// Whether `value` is valid input for a column of type `ty` (filters are sent as
/// text and cast on the server).
pub fn parses_as(ty: ColumnType, value: &str) -> bool {
    !value.contains('\0')
        && match ty {
            ColumnType::Text => true,
            ColumnType::Integer => value.parse::<i64>().is_ok(),
            ColumnType::Boolean => matches!(value, "true" | "false"),
            ColumnType::Timestamp => chrono::DateTime::parse_from_rfc3339(value).is_ok(),
            ColumnType::Json => false,
        }
}

/// Columns a kind can be filtered, sorted and grouped on.
pub fn filterable(kind: &KindDef) -> impl Iterator<Item = (&'static str, ColumnType)> + '_ {
    key_columns(kind)
        .into_iter()
        .map(|c| (c, ColumnType::Text))
        .chain(
            kind.columns
                .iter()
                .filter(|c| c.ty.filterable())
                .map(|c| (c.name, c.ty)),
        )
}

fn column_type(kind: &KindDef, column: &str) -> Result<(&'static str, ColumnType), StoreError> {
    filterable(kind)
        .find(|(c, _)| *c == column)
        .ok_or_else(|| StoreError::UnknownColumn {
            kind: kind.name.into(),
            column: column.to_owned(),
        })
}

/// The fields of a list's items: the key, the typed columns and the row's
/// metadata (as of an instant: the version's change and start instead of the
/// row's times). The raw payload is not among them (it is the bulk of a row).
pub fn item_fields(kind: &KindDef, at: bool) -> Vec<&'static str> {
    let meta: &[&'static str] = if at {
        &["tags", "content_hash", "scan_id", "change", "valid_from"]
    } else {
        &[
            "tags",
            "content_hash",
            "first_seen_at",
            "last_seen_at",
            "deleted_at",
            "scan_id",
        ]
    };
    key_columns(kind)
        .into_iter()
        .chain(kind.columns.iter().map(|c| c.name))
        .chain(meta.iter().copied())
        .collect()
}

/// A `like` value as an `ILIKE` pattern: `*` matches any text, everything
/// else (`%`, `_`, `\` too) only itself.
pub fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Where a list starts: the sort values and key of the last item of the
/// previous page. Without a sort it is the key alone (as it always was).
#[derive(serde::Serialize, serde::Deserialize)]
struct SortedCursor {
    /// The sort it was made for: a cursor is only valid with the same one.
    sort: String,
    after: Vec<Option<String>>,
}

fn sort_spec(sort: &[Sort]) -> String {
    sort.iter()
        .map(|s| format!("{}{}", if s.descending { "-" } else { "" }, s.column))
        .collect::<Vec<_>>()
        .join(",")
}

fn encode_cursor(sort: &[Sort], after: Vec<Option<String>>) -> String {
    let bytes = if sort.is_empty() {
        let keys: Vec<String> = after.into_iter().map(Option::unwrap_or_default).collect();
        serde_json::to_vec(&keys)
    } else {
        serde_json::to_vec(&SortedCursor {
            sort: sort_spec(sort),
            after,
        })
    };
    URL_SAFE_NO_PAD.encode(bytes.expect("strings serialize"))
}

/// The values a cursor holds: one per sort key (a missing value is `None`),
/// then the key's.
fn decode_cursor(
    cursor: &str,
    sort: &[(&'static str, ColumnType, bool)],
    spec: &str,
    keys: usize,
) -> Result<Vec<Option<String>>, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let after: Vec<Option<String>> = if sort.is_empty() {
        let keys: Vec<String> =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
        keys.into_iter().map(Some).collect()
    } else {
        let c: SortedCursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
        if c.sort != spec {
            return Err(StoreError::BadCursor);
        }
        c.after
    };
    let typed_ok = after
        .iter()
        .enumerate()
        .all(|(i, v)| match (i < sort.len(), v) {
            (true, None) => true,
            (true, Some(v)) => parses_as_stored(sort[i].1, v),
            (false, Some(v)) => !v.contains('\0'),
            (false, None) => false,
        });
    if after.len() != sort.len() + keys || !typed_ok {
        return Err(StoreError::BadCursor);
    }
    Ok(after)
}

/// Whether a value as PostgreSQL prints it (`::text`) casts back to `ty`.
fn parses_as_stored(ty: ColumnType, v: &str) -> bool {
    match ty {
        // `2026-11-01 12:00:00+00`: checked by PostgreSQL's cast; only NUL
        // (which no text can hold) is refused here.
        ColumnType::Timestamp => !v.contains('\0') && v.len() < 64,
        other => parses_as(other, v),
    }
}

/// `alias`'s version was valid at the instant in text parameter `$param`.
pub(crate) fn valid_at(alias: &str, param: usize) -> String {
    format!(
        "{alias}.valid_from <= ${param}::text::timestamptz \
         AND ({alias}.valid_to IS NULL OR {alias}.valid_to > ${param}::text::timestamptz)"
    )
}

/// The rows a list selects, before order and paging: `FROM … WHERE …` and
/// its text parameters.
struct Selection {
    from: String,
    preds: Vec<String>,
    params: Vec<String>,
}

impl Selection {
    fn param(&mut self, value: impl Into<String>) -> usize {
        self.params.push(value.into());
        self.params.len()
    }

    fn sql_where(&self) -> String {
        if self.preds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.preds.join(" AND "))
        }
    }
}

/// `::text::<type>` for a text parameter compared with a column of `ty`.
fn cast(ty: ColumnType) -> String {
    match ty {
        ColumnType::Text => String::new(),
        other => format!("::text::{}", other.sql()),
    }
}

fn selection(q: &ListQuery) -> Result<Selection, StoreError> {
    let kind = q.kind;
    let table = match q.at {
        None => kind.table.to_owned(),
        Some(_) => format!("{}_version", kind.table),
    };
    let mut s = Selection {
        from: format!("{table} t"),
        preds: Vec::new(),
        params: Vec::new(),
    };
    if let Some(at) = q.at {
        let p = s.param(at.to_rfc3339());
        s.preds.push(valid_at("t", p));
    }
    match (&q.via, q.at) {
        (Some(via), None) => {
            let (child_col, parent_col) = match via.link.side_of(kind) {
                Some(Side::A) => ("a_id", "b_id"),
                _ => ("b_id", "a_id"),
            };
            let region_join = if kind.regional() {
                " AND l.region = t.region"
            } else {
                ""
            };
            // The link name is a constant: the planner reads its one partition.
            s.from.push_str(&format!(
                " JOIN link l ON l.link = '{}' AND l.account_id = t.account_id{region_join} \
                 AND l.{child_col} = t.{}",
                via.link.table, kind.id_column
            ));
            let p = s.param(via.parent_id.clone());
            s.preds.push(format!("l.{parent_col} = ${p}"));
        }
        // As of an instant, links come from the owner's version valid then.
        (Some(via), Some(_)) => {
            let parent_id = s.param(via.parent_id.clone());
            let at = 1;
            if via.link.other_end() == kind.end() {
                // The parent declares the link: its version lists the children.
                let region = if kind.regional() && via.parent.regional() {
                    " AND p.region = t.region"
                } else {
                    ""
                };
                s.preds.push(format!(
                    "t.{id} IN (SELECT jsonb_array_elements_text(p.links->'{link}') FROM {pt}_version p \
                     WHERE p.{pid} = ${parent_id} AND p.account_id = t.account_id{region} \
                     AND {valid} AND p.change <> 'deleted')",
                    id = kind.id_column,
                    link = via.link.table,
                    pt = via.parent.table,
                    pid = via.parent.id_column,
                    valid = valid_at("p", at),
                ));
            } else {
                s.preds
                    .push(format!("t.links->'{}' ? ${parent_id}", via.link.table));
            }
        }
        (None, _) => {}
    }
    if !q.include_deleted {
        s.preds.push(match q.at {
            None => "t.deleted_at IS NULL".into(),
            Some(_) => "t.change <> 'deleted'".into(),
        });
    }
    // Sorted, so that one set of filters is one statement (prepared once).
    let mut filters: Vec<&Filter> = q.filters.iter().collect();
    filters.sort_by(|a, b| {
        (&a.column, a.op.name(), &a.value).cmp(&(&b.column, b.op.name(), &b.value))
    });
    for f in filters {
        let (col, ty) = column_type(kind, &f.column)?;
        let c = format!("t.{col}");
        let pred = match f.op {
            Op::Null => match f.value.as_str() {
                "true" => format!("{c} IS NULL"),
                _ => format!("{c} IS NOT NULL"),
            },
            Op::Like => format!("{c} ILIKE ${}", s.param(like_pattern(&f.value))),
            Op::In | Op::Nin => {
                let p = s.param(f.value.clone());
                let any = format!(
                    "{c} = ANY(string_to_array(${p}::text, ',')::{}[])",
                    ty.sql()
                );
                if f.op == Op::In {
                    any
                } else {
                    format!("NOT coalesce({any}, false)")
                }
            }
            op => {
                let p = s.param(f.value.clone());
                let cmp = match op {
                    Op::Eq => "=",
                    Op::Ne => "IS DISTINCT FROM",
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Lt => "<",
                    _ => "<=",
                };
                format!("{c} {cmp} ${p}{}", cast(ty))
            }
        };
        s.preds.push(pred);
    }
    let mut tags: Vec<&TagFilter> = q.tags.iter().collect();
    tags.sort_by(|a, b| (&a.key, a.op.name(), &a.value).cmp(&(&b.key, b.op.name(), &b.value)));
    for t in tags {
        let k = s.param(t.key.clone());
        let pred = match t.op {
            TagOp::Exists if t.value == "true" => format!("coalesce(t.tags ? ${k}, false)"),
            TagOp::Exists => format!("NOT coalesce(t.tags ? ${k}, false)"),
            TagOp::Eq => format!("t.tags ->> ${k} = ${}", s.param(t.value.clone())),
            TagOp::Like => format!("t.tags ->> ${k} ILIKE ${}", s.param(like_pattern(&t.value))),
            TagOp::In => format!(
                "t.tags ->> ${k} = ANY(string_to_array(${}::text, ','))",
                s.param(t.value.clone())
            ),
        };
        s.preds.push(pred);
    }
    if let Some(rule) = &q.rule {
        // The instant, if any, is the first parameter.
        let mut sql = RuleSql {
            params: &mut s.params,
            at: q.at.map(|t| (1, t)),
        };
        let pred = rule.predicate(&mut sql);
        s.preds.push(pred);
    }
    Ok(s)
}

/// What a page's rows carry besides their order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One JSON object per item.
    Json,
    /// One text value per field.
    Columns,
}

/// The statement a list runs and its text parameters (the last parameter, the
/// limit, is added by the caller); its rows hold the item (one JSON text or
/// the fields' texts), then the sort values and the key as text, for the
/// cursor.
struct ListStatement {
    sql: String,
    params: Vec<String>,
    /// The fields of an item, in order.
    fields: Vec<&'static str>,
    /// How many sort keys precede the natural key.
    sorted: usize,
}

/// A page's rows as the list statement returned them.
struct PageRows {
    rows: Vec<tokio_postgres::Row>,
    fields: Vec<&'static str>,
    next: Option<String>,
}

fn list_statement(q: &ListQuery, shape: Shape) -> Result<ListStatement, StoreError> {
    let kind = q.kind;
    let keys = key_columns(kind);
    let all_fields = item_fields(kind, q.at.is_some());
    let fields: Vec<&'static str> = match &q.fields {
        None => all_fields.clone(),
        Some(wanted) => wanted
            .iter()
            .map(|f| {
                all_fields.iter().copied().find(|c| c == f).ok_or_else(|| {
                    StoreError::UnknownColumn {
                        kind: kind.name.into(),
                        column: f.clone(),
                    }
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let sort: Vec<(&'static str, ColumnType, bool)> = q
        .sort
        .iter()
        .map(|s| column_type(kind, &s.column).map(|(c, ty)| (c, ty, s.descending)))
        .collect::<Result<_, _>>()?;
    let mut s = selection(q)?;
    if let Some(cursor) = &q.cursor {
        let after = decode_cursor(cursor, &sort, &sort_spec(&q.sort), keys.len())?;
        let pred = after_cursor(&mut s, &sort, &keys, after);
        s.preds.push(pred);
    }
    let order = |alias: &str| {
        sort.iter()
            .map(|(c, _, desc)| {
                format!(
                    "{alias}.{c} {} NULLS LAST",
                    if *desc { "DESC" } else { "ASC" }
                )
            })
            .chain(keys.iter().map(|k| format!("{alias}.{k}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let columns: Vec<String> = all_fields.iter().map(|c| format!("t.{c}")).collect();
    let inner = format!(
        "SELECT {} FROM {}{} ORDER BY {} LIMIT ${}",
        columns.join(", "),
        s.from,
        s.sql_where(),
        order("t"),
        s.params.len() + 1
    );
    let item = match (shape, &q.fields) {
        // `row_to_json` over the page (names are the columns'): about twice
        // as cheap for the server as `json_build_object` with the same
        // fields, and compact.
        (Shape::Json, None) => "row_to_json(p)::text".to_owned(),
        (Shape::Json, Some(_)) => format!(
            "json_build_object({})::text",
            fields
                .iter()
                .map(|f| format!("'{f}', p.{f}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Shape::Columns, _) => fields
            .iter()
            .map(|f| format!("to_json(p.{f}) #>> '{{}}'"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let cursor_cols = sort
        .iter()
        .map(|(c, _, _)| *c)
        .chain(keys.iter().copied())
        .map(|c| format!("p.{c}::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {item}, {cursor_cols} FROM ({inner}) p ORDER BY {}",
        order("p")
    );
    Ok(ListStatement {
        sql,
        params: s.params,
        fields,
        sorted: sort.len(),
    })
}

/// Rows after the cursor's: in sort order with missing values last, then by
/// key. A missing value in the cursor has only rows with the same (missing)
/// value after it on that key.
fn after_cursor(
    s: &mut Selection,
    sort: &[(&'static str, ColumnType, bool)],
    keys: &[&'static str],
    after: Vec<Option<String>>,
) -> String {
    let (sort_values, key_values) = after.split_at(sort.len());
    let mut equal: Vec<String> = Vec::new();
    let mut terms: Vec<String> = Vec::new();
    for ((col, ty, desc), value) in sort.iter().zip(sort_values) {
        match value {
            Some(v) => {
                let p = s.param(v.clone());
                let cmp = if *desc { "<" } else { ">" };
                let mut term = equal.clone();
                term.push(format!(
                    "(t.{col} {cmp} ${p}{c} OR t.{col} IS NULL)",
                    c = cast(*ty)
                ));
                terms.push(format!("({})", term.join(" AND ")));
                equal.push(format!("t.{col} = ${p}{}", cast(*ty)));
            }
            None => equal.push(format!("t.{col} IS NULL")),
        }
    }
    let first = s.params.len() + 1;
    s.params
        .extend(key_values.iter().map(|k| k.clone().unwrap_or_default()));
    equal.push(format!(
        "({}) > ({})",
        keys.iter()
            .map(|k| format!("t.{k}"))
            .collect::<Vec<_>>()
            .join(", "),
        (first..first + keys.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    terms.push(format!("({})", equal.join(" AND ")));
    format!("({})", terms.join(" OR "))
}

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

impl ReadStore {
    async fn page_rows(&self, q: &ListQuery, shape: Shape) -> Result<PageRows, StoreError> {
        let keys = key_columns(q.kind).len();
        let ListStatement {
            sql,
            params,
            fields,
            sorted,
        } = list_statement(q, shape)?;
        let limit = (q.limit + 1) as i64;
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        let mut refs: Vec<Param> = params.iter().map(|p| p as Param).collect();
        refs.push(&limit);
        let mut rows = client.query(&stmt, &refs).await?;
        let more = rows.len() > q.limit;
        rows.truncate(q.limit);
        // More rows than the limit: the next page starts after this one's last.
        let first = match shape {
            Shape::Json => 1,
            Shape::Columns => fields.len(),
        };
        let next = rows.last().filter(|_| more).map(|last| {
            encode_cursor(
                &q.sort,
                (first..first + sorted + keys)
                    .map(|i| last.get::<_, Option<String>>(i))
                    .collect(),
            )
        });
        Ok(PageRows { rows, fields, next })
    }

    /// One page of a kind, optionally through a link from a parent resource.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "list"))]
    pub async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let page = self.page_rows(q, Shape::Json).await?;
        Ok(Page {
            items: page.rows.iter().map(|row| row.get(0)).collect(),
            next: page.next,
        })
    }

    /// One page as text columns (see [`ColumnPage`]).
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "list"))]
    pub async fn list_columns(&self, q: &ListQuery) -> Result<ColumnPage, StoreError> {
        let page = self.page_rows(q, Shape::Columns).await?;
        let n = page.fields.len();
        Ok(ColumnPage {
            rows: page
                .rows
                .iter()
                .map(|row| (0..n).map(|i| row.get(i)).collect())
                .collect(),
            columns: page.fields,
            next: page.next,
        })
    }

    /// How many resources a list matches, by the values of `by` (key or
    /// typed columns): at most `limit` groups, largest first (ties by value).
    /// Paging, sort and fields of `q` do not apply.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "group"))]
    pub async fn group_counts(
        &self,
        q: &ListQuery,
        by: &[String],
        limit: usize,
    ) -> Result<Groups, StoreError> {
        let cols: Vec<&'static str> = by
            .iter()
            .map(|c| column_type(q.kind, c).map(|(c, _)| c))
            .collect::<Result<_, _>>()?;
        let s = selection(q)?;
        let n = cols.len();
        let sql = format!(
            "SELECT json_build_object({obj}, 'count', count(*))::text, \
             (sum(count(*)) OVER ())::bigint FROM {from}{wh} GROUP BY {group} \
             ORDER BY count(*) DESC, {group} LIMIT ${lim}",
            obj = cols
                .iter()
                .map(|c| format!("'{c}', t.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            from = s.from,
            wh = s.sql_where(),
            group = (1..=n)
                .map(|i| format!("t.{}", cols[i - 1]))
                .collect::<Vec<_>>()
                .join(", "),
            lim = s.params.len() + 1,
        );
        let lim = (limit + 1) as i64;
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        let mut refs: Vec<Param> = s.params.iter().map(|p| p as Param).collect();
        refs.push(&lim);
        let rows = client.query(&stmt, &refs).await?;
        let total = rows.first().map(|r| r.get(1)).unwrap_or(0);
        let truncated = rows.len() > limit;
        Ok(Groups {
            groups: rows.iter().take(limit).map(|r| r.get(0)).collect(),
            total,
            truncated,
        })
    }
}

/// The SQL a list runs and its parameters, for benchmarks and EXPLAIN.
#[cfg(feature = "bench")]
pub(crate) fn list_sql(q: &ListQuery) -> Result<(String, Vec<String>), StoreError> {
    list_statement(q, Shape::Json).map(|l| (l.sql, l.params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted() -> Vec<(&'static str, ColumnType, bool)> {
        vec![("state", ColumnType::Text, true)]
    }

    #[test]
    fn cursors_roundtrip_and_reject_garbage() {
        let keys = vec![
            Some("1".to_string()),
            Some("eu-west-1".into()),
            Some("i-1".into()),
        ];
        assert_eq!(
            decode_cursor(&encode_cursor(&[], keys.clone()), &[], "", 3).unwrap(),
            keys
        );
        assert!(matches!(
            decode_cursor("!!", &[], "", 3),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor(&encode_cursor(&[], keys.clone()), &[], "", 2),
            Err(StoreError::BadCursor)
        ));
        let nul = vec![Some("1".to_string()), Some("a\0".into()), Some("i".into())];
        assert!(matches!(
            decode_cursor(&encode_cursor(&[], nul), &[], "", 3),
            Err(StoreError::BadCursor)
        ));
    }

    #[test]
    fn a_sorted_cursor_holds_missing_values_and_only_fits_its_sort() {
        let sort = vec![Sort {
            column: "state".into(),
            descending: true,
        }];
        let after = vec![
            None,
            Some("1".to_string()),
            Some("r".into()),
            Some("i-1".into()),
        ];
        let c = encode_cursor(&sort, after.clone());
        assert_eq!(decode_cursor(&c, &sorted(), "-state", 3).unwrap(), after);
        assert!(matches!(
            decode_cursor(&c, &sorted(), "state", 3),
            Err(StoreError::BadCursor)
        ));
        // A plain cursor is not one of a sorted list.
        let plain = encode_cursor(&[], after[1..].to_vec());
        assert!(decode_cursor(&plain, &sorted(), "-state", 3).is_err());
        let ints = vec![("cores", ColumnType::Integer, false)];
        let bad = encode_cursor(
            &[Sort {
                column: "cores".into(),
                descending: false,
            }],
            vec![
                Some("x".into()),
                Some("1".into()),
                Some("r".into()),
                Some("i".into()),
            ],
        );
        assert!(decode_cursor(&bad, &ints, "cores", 3).is_err());
    }

    #[test]
    fn like_patterns_only_wildcard_the_star() {
        assert_eq!(like_pattern("web-*"), "web-%");
        assert_eq!(like_pattern("50%_a\\b*"), "50\\%\\_a\\\\b%");
    }

    #[test]
    fn operators_fit_column_types() {
        assert!(Op::allowed(ColumnType::Text).contains(&Op::Like));
        assert!(!Op::allowed(ColumnType::Integer).contains(&Op::Like));
        assert!(Op::allowed(ColumnType::Timestamp).contains(&Op::Gte));
        assert!(!Op::allowed(ColumnType::Boolean).contains(&Op::Gt));
        assert_eq!(Op::parse("nin"), Some(Op::Nin));
        assert_eq!(Op::parse("between"), None);
    }

    #[test]
    fn filter_values_are_checked_against_the_column_type() {
        assert!(parses_as(ColumnType::Integer, "42") && !parses_as(ColumnType::Integer, "x"));
        assert!(parses_as(ColumnType::Boolean, "true") && !parses_as(ColumnType::Boolean, "yes"));
        assert!(parses_as(ColumnType::Timestamp, "2026-11-01T12:00:00Z"));
        assert!(!parses_as(ColumnType::Timestamp, "yesterday"));
        assert!(!parses_as(ColumnType::Text, "a\0b"));
    }
}
