//! `GET /api/v1/graph?from=<source>/<kinds>/<id>&depth=&direction=&kinds=&limit=&at=`:
//! what a resource reaches over the link tables.

use actix_web::{HttpResponse, web};
use inventory_model::{ErrorCode, KindDef, kind_by_plural};
use inventory_store::{Direction, GraphQuery};
use serde_json::json;

use crate::listing::{check_params, parse_at};
use crate::routes::{Params, lookup};
use crate::{ApiError, ApiState};

const DEFAULT_DEPTH: usize = 2;
const MAX_DEPTH: usize = 5;
const DEFAULT_NODES: usize = 500;
const MAX_NODES: usize = 5000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidParameter, message)
}

/// `<source>/<kinds>/<id>` (the id may hold `/`).
fn start(from: &str) -> Result<(&'static KindDef, &str), ApiError> {
    let mut parts = from.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(source), Some(plural), Some(id)) if !id.is_empty() => kind_by_plural(source, plural)
            .map(|k| (k, id))
            .ok_or_else(|| ApiError::NotFound(format!("unknown collection /{source}/{plural}"))),
        _ => Err(bad(
            "from takes <source>/<kinds>/<id>, e.g. aws/vpcs/vpc-0a1b",
        )),
    }
}

pub(crate) fn number(name: &str, value: &str, max: usize) -> Result<usize, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| bad(format!("{name} takes an integer from 1 to {max}")))
}

pub(crate) async fn graph(
    state: web::Data<ApiState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    check_params(&params)?;
    let mut from = None;
    let mut depth = DEFAULT_DEPTH;
    let mut direction = Direction::Both;
    let mut kinds = None;
    let mut limit = DEFAULT_NODES;
    let mut at = None;
    for (name, value) in params.iter() {
        match name.as_str() {
            "from" => from = Some(start(value)?),
            "depth" => depth = number(name, value, MAX_DEPTH)?,
            "limit" => limit = number(name, value, MAX_NODES)?,
            "at" => at = Some(parse_at(value)?),
            "direction" => {
                direction =
                    Direction::parse(value).ok_or_else(|| bad("direction takes out, in or both"))?
            }
            "kinds" => kinds = Some(value.clone()),
            "account_id" | "region" => {}
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!(
                        "unknown parameter {other}; use from, depth, direction, kinds, limit, at, account_id or region"
                    ),
                ));
            }
        }
    }
    let (kind, id) = from.ok_or_else(|| bad("from is required: <source>/<kinds>/<id>"))?;
    // Kinds by route name, of the start's source unless `<source>/` says otherwise.
    let kinds = kinds
        .map(|list| {
            list.split(',')
                .map(|k| {
                    let (source, plural) = k.split_once('/').unwrap_or((kind.source, k));
                    kind_by_plural(source, plural)
                        .ok_or_else(|| bad(format!("kinds: no kind {source}/{plural}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let item = lookup(&state, kind, id, &params, at).await?;
    if !item["deleted_at"].is_null() {
        return Err(ApiError::NotFound(format!("{} {id} is deleted", kind.name)));
    }
    let account_id = item["account_id"]
        .as_str()
        .ok_or_else(|| ApiError::Internal(format!("{} {id} has no account", kind.name)))?
        .to_owned();
    let g = state
        .store()
        .graph(&GraphQuery {
            kind,
            id: id.to_owned(),
            account_id,
            depth,
            direction,
            kinds,
            limit,
            at,
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "nodes": g.nodes,
        "edges": g.edges,
        "truncated": g.truncated,
    })))
}
