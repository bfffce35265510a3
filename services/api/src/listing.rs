//! The list query language of `/api/v1/<source>/<kinds>` and nested routes:
//! filters with operators (`field[op]=v`), tag filters (`tag.<key>[op]=v`),
//! `sort`, `fields`, `group_by`, paging and `at`; and the answers: a page, the
//! group counts, or every matching row streamed as CSV or NDJSON.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use futures::stream::{self, Stream};
use inventory_model::{ColumnType, ErrorCode, KindDef};
use inventory_store::{
    Filter, ListQuery, Op, ReadStore, Sort, TagFilter, TagOp, Via, filterable, item_fields,
    parses_as,
};

use crate::ApiError;

pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;
/// Rows an export reads per query: a page in memory at a time.
const EXPORT_PAGE: usize = 1000;

/// What a list request asks for besides its rows.
pub(crate) enum Answer {
    Page,
    Groups(Vec<String>),
    Export(Format),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Ndjson,
}

/// A parsed list request: the store's query without the kind's link, and
/// the kind of answer.
pub(crate) struct ListRequest {
    pub query: ListQuery,
    pub answer: Answer,
    /// `limit` was given (a group count caps its groups with it).
    limit_given: bool,
}

pub(crate) fn parse_at(value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidAt,
                "at must be an RFC 3339 time, e.g. 2026-11-23T10:00:00Z",
            )
        })
}

pub(crate) fn parse_limit(value: &str) -> Result<usize, ApiError> {
    value
        .parse()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidLimit,
                format!("limit must be an integer from 1 to {MAX_LIMIT}"),
            )
        })
}

pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(
            ErrorCode::InvalidParameter,
            format!("{name} must be true or false"),
        )),
    }
}

/// Reject repeated parameters and NUL bytes, which no column can hold.
pub(crate) fn check_params(params: &[(String, String)]) -> Result<(), ApiError> {
    for (i, (name, value)) in params.iter().enumerate() {
        if name.contains('\0') || value.contains('\0') {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidParameter,
                "parameters must not contain NUL",
            ));
        }
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidParameter,
                format!("parameter {name} is given more than once"),
            ));
        }
    }
    Ok(())
}

/// `name[op]` → (`name`, `Some(op)`); `name` → (`name`, `None`).
fn split_op(name: &str) -> (&str, Option<&str>) {
    match name.strip_suffix(']').and_then(|n| n.rsplit_once('[')) {
        Some((field, op)) => (field, Some(op)),
        None => (name, None),
    }
}

fn names(ops: &[Op]) -> String {
    ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
}

fn filter(
    kind: &KindDef,
    column: &str,
    ty: ColumnType,
    op: Option<&str>,
    value: &str,
) -> Result<Filter, ApiError> {
    let allowed = Op::allowed(ty);
    let op = match op {
        None => Op::Eq,
        Some(name) => match Op::parse(name).filter(|o| allowed.contains(o)) {
            Some(op) => op,
            None => {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidOperator,
                    format!(
                        "{column} of {} is {}: its operators are {}, not [{name}]",
                        kind.plural,
                        ty.sql(),
                        names(allowed)
                    ),
                ));
            }
        },
    };
    let fits = match op {
        Op::Null => matches!(value, "true" | "false"),
        Op::Like => true,
        Op::In | Op::Nin => value.split(',').all(|v| parses_as(ty, v)),
        _ => parses_as(ty, value),
    };
    if !fits {
        let wants = match op {
            Op::Null => "true or false".to_owned(),
            Op::In | Op::Nin => format!("a comma-separated list of {} values", ty.sql()),
            _ => format!("a {} value", ty.sql()),
        };
        return Err(ApiError::bad_request(
            ErrorCode::InvalidFilter,
            format!("{column}[{}] takes {wants}", op.name()),
        ));
    }
    Ok(Filter {
        column: column.to_owned(),
        op,
        value: value.to_owned(),
    })
}

fn tag_filter(key: &str, op: Option<&str>, value: &str) -> Result<TagFilter, ApiError> {
    let op = match op {
        None => TagOp::Eq,
        Some(name) => TagOp::parse(name).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidOperator,
                format!("tag filters take eq, like, in or exists, not [{name}]"),
            )
        })?,
    };
    if key.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidFilter,
            "a tag filter names its key: tag.<key>=<value>",
        ));
    }
    if op == TagOp::Exists && !matches!(value, "true" | "false") {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidFilter,
            format!("tag.{key}[exists] takes true or false"),
        ));
    }
    Ok(TagFilter {
        key: key.to_owned(),
        op,
        value: value.to_owned(),
    })
}

/// Comma-separated column names, each a key or typed column (with `-` in
/// front for descending, where `signed`).
fn columns(kind: &KindDef, what: &str, value: &str, signed: bool) -> Result<Vec<Sort>, ApiError> {
    let mut out: Vec<Sort> = Vec::new();
    for part in value.split(',') {
        let (descending, column) = match part.strip_prefix('-') {
            Some(c) if signed => (true, c),
            _ => (false, part),
        };
        if !filterable(kind).any(|(c, _)| c == column) || out.iter().any(|s| s.column == column) {
            let known: Vec<_> = filterable(kind).map(|(c, _)| c).collect();
            return Err(ApiError::bad_request(
                ErrorCode::InvalidSort,
                format!(
                    "{what} takes distinct columns of {}: {}; not {part:?}",
                    kind.plural,
                    known.join(", ")
                ),
            ));
        }
        out.push(Sort {
            column: column.to_owned(),
            descending,
        });
    }
    Ok(out)
}

fn fields(kind: &KindDef, at: bool, value: &str) -> Result<Vec<String>, ApiError> {
    let known = item_fields(kind, at);
    let mut out: Vec<String> = Vec::new();
    for f in value.split(',') {
        if !known.contains(&f) || out.iter().any(|o| o == f) {
            return Err(ApiError::bad_request(
                ErrorCode::UnknownField,
                format!(
                    "fields takes distinct fields of {}{}: {}; not {f:?}",
                    kind.plural,
                    if at { " as of an instant" } else { "" },
                    known.join(", ")
                ),
            ));
        }
        out.push(f.to_owned());
    }
    Ok(out)
}

/// The format asked for by `format=`, else by `Accept`.
fn format(param: Option<&str>, req: &HttpRequest) -> Result<Option<Format>, ApiError> {
    match param {
        Some("json") => return Ok(None),
        Some("csv") => return Ok(Some(Format::Csv)),
        Some("ndjson") => return Ok(Some(Format::Ndjson)),
        Some(other) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidFormat,
                format!("format is json, csv or ndjson, not {other:?}"),
            ));
        }
        None => {}
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let wants = |mime: &str| accept.split(',').any(|a| a.trim().starts_with(mime));
    Ok(if wants("text/csv") {
        Some(Format::Csv)
    } else if wants("application/x-ndjson") {
        Some(Format::Ndjson)
    } else {
        None
    })
}

pub(crate) fn list_request(
    kind: &'static KindDef,
    params: &[(String, String)],
    req: &HttpRequest,
) -> Result<ListRequest, ApiError> {
    check_params(params)?;
    let mut q = ListQuery::of(kind, DEFAULT_LIMIT);
    let mut limit_given = false;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // `at` first: which fields items have depends on it.
    if let Some(at) = get("at") {
        q.at = Some(parse_at(at)?);
    }
    let mut group_by = None;
    for (name, value) in params {
        match name.as_str() {
            "at" | "format" => {}
            "cursor" => q.cursor = Some(value.clone()),
            "limit" => {
                q.limit = parse_limit(value)?;
                limit_given = true;
            }
            "include_deleted" => q.include_deleted = parse_bool(name, value)?,
            "sort" => q.sort = columns(kind, "sort", value, true)?,
            "group_by" => {
                group_by = Some(
                    columns(kind, "group_by", value, false)?
                        .into_iter()
                        .map(|s| s.column)
                        .collect(),
                )
            }
            "fields" => q.fields = Some(fields(kind, q.at.is_some(), value)?),
            name => {
                if let Some(tag) = name.strip_prefix("tag.") {
                    let (key, op) = split_op(tag);
                    q.tags.push(tag_filter(key, op, value)?);
                    continue;
                }
                let (column, op) = split_op(name);
                match filterable(kind).find(|(c, _)| *c == column) {
                    Some((column, ty)) => q.filters.push(filter(kind, column, ty, op, value)?),
                    None => {
                        let known: Vec<_> = filterable(kind).map(|(c, _)| c).collect();
                        return Err(ApiError::bad_request(
                            ErrorCode::UnknownFilter,
                            format!(
                                "unknown parameter {name} for {}; filters: {} (with [op] and tag.<key>); \
                                 also: cursor, limit, include_deleted, at, sort, fields, group_by, format",
                                kind.plural,
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    let format = format(get("format"), req)?;
    let answer = match (group_by, format) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidFormat,
                "group_by answers in JSON only",
            ));
        }
        (Some(by), None) => {
            if q.cursor.is_some() || !q.sort.is_empty() || q.fields.is_some() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidParameter,
                    "group_by takes filters, include_deleted, at and limit (of groups), not cursor, sort or fields",
                ));
            }
            Answer::Groups(by)
        }
        (None, Some(f)) => {
            if q.cursor.is_some() || limit_given {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidParameter,
                    "an export streams every matching row: it takes no cursor or limit",
                ));
            }
            Answer::Export(f)
        }
        (None, None) => Answer::Page,
    };
    Ok(ListRequest {
        query: q,
        answer,
        limit_given,
    })
}

/// `{"items":[...],"next":...}` with the items' JSON text, as PostgreSQL built
/// it, copied through once (not parsed, checked or serialized again: on a page
/// of 100 that was the API's largest cost).
pub(crate) fn page_body(items: &[String], next: Option<&str>) -> Vec<u8> {
    let len = items.iter().map(|i| i.len() + 1).sum::<usize>() + 64;
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(b"{\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(b"],\"next\":");
    serde_json::to_writer(&mut body, &next).expect("a string serializes");
    body.push(b'}');
    body
}

/// Answer a list request, optionally through a link from a parent.
pub(crate) async fn answer(
    store: ReadStore,
    request: ListRequest,
    via: Option<Via>,
) -> Result<HttpResponse, ApiError> {
    let mut q = request.query;
    q.via = via;
    match request.answer {
        Answer::Page => {
            let page = store.list(&q).await?;
            Ok(HttpResponse::Ok()
                .content_type(header::ContentType::json())
                .body(page_body(&page.items, page.next.as_deref())))
        }
        Answer::Groups(by) => {
            let limit = if request.limit_given {
                q.limit
            } else {
                MAX_LIMIT
            };
            let g = store.group_counts(&q, &by, limit).await?;
            let mut body = b"{\"groups\":[".to_vec();
            body.extend_from_slice(g.groups.join(",").as_bytes());
            body.extend_from_slice(
                format!("],\"total\":{},\"truncated\":{}}}", g.total, g.truncated).as_bytes(),
            );
            Ok(HttpResponse::Ok()
                .content_type(header::ContentType::json())
                .body(body))
        }
        Answer::Export(format) => {
            q.limit = EXPORT_PAGE;
            // The first page is read before answering: a bad query is a 4xx,
            // not a stream cut short.
            let first = read_chunk(&store, &q, format, true).await?;
            let (content_type, ext) = match format {
                Format::Csv => ("text/csv; charset=utf-8", "csv"),
                Format::Ndjson => ("application/x-ndjson", "ndjson"),
            };
            let name = format!("{}-{}.{ext}", q.kind.source, q.kind.plural);
            Ok(HttpResponse::Ok()
                .content_type(content_type)
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ))
                .streaming(export_stream(store, q, format, first)))
        }
    }
}

/// One page of an export as bytes (CSV rows, with the header row first if
/// `header`), and the cursor of the next.
async fn read_chunk(
    store: &ReadStore,
    q: &ListQuery,
    format: Format,
    header: bool,
) -> Result<(web::Bytes, Option<String>), ApiError> {
    match format {
        Format::Ndjson => {
            let page = store.list(q).await?;
            let mut out = Vec::with_capacity(page.items.iter().map(|i| i.len() + 1).sum());
            for item in &page.items {
                out.extend_from_slice(item.as_bytes());
                out.push(b'\n');
            }
            Ok((out.into(), page.next))
        }
        Format::Csv => {
            let page = store.list_columns(q).await?;
            let mut w = csv::Writer::from_writer(Vec::new());
            let csv_error = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
            if header {
                w.write_record(&page.columns).map_err(csv_error)?;
            }
            for row in &page.rows {
                w.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))
                    .map_err(csv_error)?;
            }
            let out = w
                .into_inner()
                .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
            Ok((out.into(), page.next))
        }
    }
}

/// Every page after the first, one query at a time (keyset paging: memory
/// holds one page whatever the row count). A failure after the first page
/// ends the stream with an error, which cuts the response short.
fn export_stream(
    store: ReadStore,
    q: ListQuery,
    format: Format,
    first: (web::Bytes, Option<String>),
) -> impl Stream<Item = Result<web::Bytes, ApiError>> {
    let (bytes, next) = first;
    let rest = stream::try_unfold((store, q, next), move |(store, mut q, next)| async move {
        let Some(cursor) = next else {
            return Ok(None);
        };
        q.cursor = Some(cursor);
        let (bytes, next) = read_chunk(&store, &q, format, false).await?;
        Ok(Some((bytes, (store, q, next))))
    });
    futures::StreamExt::chain(stream::once(async move { Ok(bytes) }), rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn instances() -> &'static KindDef {
        inventory_model::kind_by_plural("aws", "instances").unwrap()
    }

    fn parse(query: &[(&str, &str)]) -> Result<ListRequest, ApiError> {
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        list_request(
            instances(),
            &params,
            &TestRequest::default().to_http_request(),
        )
    }

    fn code(r: Result<ListRequest, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest { code, .. }) => code.as_str().to_owned(),
            Err(other) => format!("{other:?}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn operators_tags_sort_and_fields_parse() {
        let r = parse(&[
            ("state[ne]", "running"),
            ("name[like]", "web-*"),
            ("tag.kubernetes.io/cluster name[exists]", "true"),
            ("tag.env", "prod"),
            ("sort", "-launch_time,name"),
            ("fields", "instance_id,tags"),
        ])
        .unwrap();
        let q = r.query;
        assert_eq!(q.filters[0].op, Op::Ne);
        assert_eq!(q.filters[1].op, Op::Like);
        assert_eq!(q.tags[0].key, "kubernetes.io/cluster name");
        assert_eq!(q.tags[0].op, TagOp::Exists);
        assert_eq!((q.tags[1].key.as_str(), q.tags[1].op), ("env", TagOp::Eq));
        assert!(q.sort[0].descending && !q.sort[1].descending);
        assert_eq!(q.fields.unwrap(), vec!["instance_id", "tags"]);
    }

    #[test]
    fn bad_operators_sorts_fields_and_formats_are_400s_with_their_code() {
        assert_eq!(
            code(parse(&[("launch_time[like]", "x")])),
            "invalid_operator"
        );
        assert_eq!(code(parse(&[("state[between]", "x")])), "invalid_operator");
        assert_eq!(
            code(parse(&[("launch_time[gt]", "soon")])),
            "invalid_filter"
        );
        assert_eq!(code(parse(&[("state[null]", "maybe")])), "invalid_filter");
        assert_eq!(code(parse(&[("tag.env[exists]", "yes")])), "invalid_filter");
        assert_eq!(code(parse(&[("tag.env[gt]", "a")])), "invalid_operator");
        assert_eq!(code(parse(&[("sort", "tags")])), "invalid_sort");
        assert_eq!(code(parse(&[("sort", "name,-name")])), "invalid_sort");
        assert_eq!(code(parse(&[("fields", "raw")])), "unknown_field");
        assert_eq!(code(parse(&[("format", "xml")])), "invalid_format");
        assert_eq!(
            code(parse(&[("format", "csv"), ("limit", "5")])),
            "invalid_parameter"
        );
        assert_eq!(
            code(parse(&[("group_by", "state"), ("sort", "name")])),
            "invalid_parameter"
        );
        assert_eq!(code(parse(&[("nope[eq]", "1")])), "unknown_filter");
    }

    #[test]
    fn accept_headers_choose_an_export() {
        let req = TestRequest::default()
            .insert_header((header::ACCEPT, "text/csv"))
            .to_http_request();
        assert!(format(None, &req).unwrap() == Some(Format::Csv));
        let req = TestRequest::default()
            .insert_header((header::ACCEPT, "application/json, application/x-ndjson"))
            .to_http_request();
        assert!(format(None, &req).unwrap() == Some(Format::Ndjson));
        assert!(format(Some("json"), &req).unwrap().is_none());
    }
}
