//! Handlers. Paths and parameters are the public interface; see README.md.

use actix_web::{HttpRequest, HttpResponse, error::QueryPayloadError, web};
use chrono::{DateTime, Utc};
use inventory_model::{ErrorCode, KINDS, KindDef, json_diff, kind_by_plural, link_between};
use inventory_store::{ChangesQuery, Filter, Found, Point, ResourceKey, Via};
use serde_json::{Value, json};

use crate::listing::{self, list_request, parse_at, parse_bool};
pub(crate) use crate::listing::{DEFAULT_LIMIT, check_params, parse_limit};
use crate::{ApiError, ApiState};

pub(crate) type Params = web::Query<Vec<(String, String)>>;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let get = |path: &str| resource(path, "GET");
    cfg.service(get("/healthz").route(web::get().to(healthz)))
        .service(get("/readyz").route(web::get().to(readyz)))
        .service(get("/metrics").route(web::get().to(crate::metrics::api_metrics)))
        .service(
            web::scope("/api/v1")
                .configure(crate::tasks::configure)
                .service(get("/changes").route(web::get().to(changes)))
                .service(get("/stats").route(web::get().to(crate::stats::stats)))
                .service(get("/kinds").route(web::get().to(kinds)))
                .service(get("/graph").route(web::get().to(crate::graph::graph)))
                .service(get("/search").route(web::get().to(crate::search::search)))
                .service(get("/reports").route(web::get().to(crate::reports::index)))
                .service(get("/reports/{name}").route(web::get().to(crate::reports::run)))
                .service(get("/{source}/{kinds}").route(web::get().to(list)))
                .service(get("/{source}/{kinds}/{id}").route(web::get().to(get_one)))
                .service(get("/{source}/{kinds}/{id}/history").route(web::get().to(history)))
                .service(get("/{source}/{kinds}/{id}/diff").route(web::get().to(diff)))
                .service(get("/{source}/{kinds}/{id}/{children}").route(web::get().to(nested))),
        )
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NotFound("no such route".into()))
        }));
}

/// A route's resource: to a method it does not take, 405 with `Allow`.
pub(crate) fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

/// The largest request body a route reads (`POST /api/v1/collect`).
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(BODY_LIMIT)
}

/// actix answers a body over the limit itself, in plain text: the same
/// status with the JSON error body instead.
pub(crate) fn too_large<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::ResponseError;
    let (req, _) = res.into_parts();
    let response = ApiError::PayloadTooLarge(BODY_LIMIT).error_response();
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e: QueryPayloadError, _| {
        ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()).into()
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    let postgres = state.store().ping().await.map_err(|e| e.to_string());
    let nats = match &state.bus {
        Some(bus) if bus.is_connected() => Ok(()),
        Some(_) => Err("not connected".to_string()),
        None => Ok(()),
    };
    let check = |r: &Result<(), String>| match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    let body = json!({"checks": {"postgres": check(&postgres), "nats": check(&nats)}});
    if postgres.is_ok() && nats.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

fn kind(source: &str, plural: &str) -> Result<&'static KindDef, ApiError> {
    kind_by_plural(source, plural)
        .ok_or_else(|| ApiError::NotFound(format!("unknown collection /{source}/{plural}")))
}

/// The value of parameter `name`, if given.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.contains('\0') {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidParameter,
            "ids must not contain NUL",
        ));
    }
    Ok(())
}

async fn list(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
    params: Params,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (source, plural) = path.into_inner();
    let kind = kind(&source, &plural)?;
    let request = list_request(kind, &params, &req)?;
    listing::answer(state.store(), request, None).await
}

/// Find one resource by id (as it stood at `at`, if given); `account_id` /
/// `region` parameters narrow ambiguous ids.
pub(crate) async fn lookup(
    state: &ApiState,
    kind: &'static KindDef,
    id: &str,
    params: &[(String, String)],
    at: Option<DateTime<Utc>>,
) -> Result<Value, ApiError> {
    // `region` narrows regional kinds only (a region itself has no region).
    let region = param(params, "region").filter(|_| kind.regional());
    match state
        .store()
        .get(kind, id, param(params, "account_id"), region, at)
        .await?
    {
        Found::None => Err(ApiError::NotFound(match at {
            None => format!("{} {id} not found", kind.name),
            Some(t) => format!("{} {id} did not exist at {}", kind.name, t.to_rfc3339()),
        })),
        Found::One(item) => Ok(item),
        Found::Many(items) => Err(ApiError::Ambiguous {
            message: format!(
                "{} {id} exists in several accounts or regions; add ?account_id= (and ?region=)",
                kind.name
            ),
            candidates: items
                .iter()
                .map(|i| json!({"account_id": i["account_id"], "region": i.get("region")}))
                .collect(),
        }),
    }
}

async fn get_one(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (source, plural, id) = path.into_inner();
    let kind = kind(&source, &plural)?;
    check_id(&id)?;
    check_params(&params)?;
    let mut include_deleted = false;
    let mut at = None;
    for (name, value) in params.iter() {
        match name.as_str() {
            "account_id" | "region" => {}
            "include_deleted" => include_deleted = parse_bool(name, value)?,
            "at" => at = Some(parse_at(value)?),
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!(
                        "unknown parameter {other}; use account_id, region, include_deleted or at"
                    ),
                ));
            }
        }
    }
    let item = lookup(&state, kind, &id, &params, at).await?;
    if !include_deleted {
        refuse_deleted(kind, &id, &item)?;
    }
    Ok(HttpResponse::Ok().json(item))
}

/// 410 Gone for a resource that was deleted, with its last state.
fn refuse_deleted(kind: &KindDef, id: &str, item: &Value) -> Result<(), ApiError> {
    if item["deleted_at"].is_null() {
        return Ok(());
    }
    Err(ApiError::Gone {
        message: format!("{} {id} was deleted", kind.name),
        deleted_at: item["deleted_at"].clone(),
        last_state: item.clone(),
    })
}

async fn nested(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String, String)>,
    params: Params,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (source, plural, id, children) = path.into_inner();
    let parent = kind(&source, &plural)?;
    let child = kind(&source, &children)?;
    let link = link_between(parent, child)
        .ok_or_else(|| ApiError::NotFound(format!("{plural} have no linked {children}")))?;
    check_id(&id)?;
    let mut request = list_request(child, &params, &req)?;
    let parent_item = lookup(&state, parent, &id, &params, request.query.at).await?;
    // Links to a deleted resource are history, not inventory.
    refuse_deleted(parent, &id, &parent_item)?;
    // Narrow the children to the parent's account (ids are unique per account).
    let filters = &mut request.query.filters;
    if !filters.iter().any(|f| f.column == "account_id")
        && let Some(account) = parent_item["account_id"].as_str()
    {
        filters.push(Filter::eq("account_id", account));
    }
    let via = Via {
        link,
        parent,
        parent_id: id,
    };
    listing::answer(state.store(), request, Some(via)).await
}

/// Accept only the named parameters (plus `account_id` / `region`, which
/// narrow an ambiguous id).
fn only(params: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    check_params(params)?;
    for (name, _) in params {
        if name != "account_id" && name != "region" && !allowed.contains(&name.as_str()) {
            return Err(ApiError::bad_request(
                ErrorCode::UnknownParameter,
                format!(
                    "unknown parameter {name}; use {}, account_id or region",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The resource a history or diff request is about (deleted ones too).
async fn resource_key(
    state: &ApiState,
    kind: &'static KindDef,
    id: &str,
    params: &[(String, String)],
) -> Result<ResourceKey, ApiError> {
    check_id(id)?;
    let item = lookup(state, kind, id, params, None).await?;
    ResourceKey::of(kind, &item)
        .ok_or_else(|| ApiError::Internal(format!("{} {id} has no complete key", kind.name)))
}

/// `GET /api/v1/<source>/<kind>/<id>/history`: versions, newest first.
async fn history(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (source, plural, id) = path.into_inner();
    let kind = kind(&source, &plural)?;
    only(&params, &["limit", "cursor"])?;
    let limit = param(&params, "limit")
        .map(parse_limit)
        .transpose()?
        .unwrap_or(DEFAULT_LIMIT);
    let before = param(&params, "cursor")
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::bad_request(ErrorCode::InvalidCursor, "invalid cursor"))
        })
        .transpose()?;
    let key = resource_key(&state, kind, &id, &params).await?;
    let mut items = state.store().history(kind, &key, before, limit + 1).await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .and_then(|v| v["seq"].as_u64())
            .map(|s| s.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": next})))
}

fn parse_point(name: &str, value: &str) -> Result<Point, ApiError> {
    value.parse().map_err(|e: String| {
        ApiError::bad_request(ErrorCode::InvalidParameter, format!("{name}: {e}"))
    })
}

/// Version metadata shown around a diff.
fn version_meta(v: &Value) -> Value {
    json!({
        "seq": v["seq"],
        "change": v["change"],
        "valid_from": v["valid_from"],
        "valid_to": v["valid_to"],
        "scan_id": v["scan_id"],
        "content_hash": v["content_hash"],
    })
}

/// `GET /api/v1/<source>/<kind>/<id>/diff?from=&to=`: what changed in the raw
/// payload between two versions (default: the last change).
async fn diff(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (source, plural, id) = path.into_inner();
    let kind = kind(&source, &plural)?;
    only(&params, &["from", "to"])?;
    let from = param(&params, "from")
        .map(|v| parse_point("from", v))
        .transpose()?;
    let to = param(&params, "to")
        .map(|v| parse_point("to", v))
        .transpose()?;
    let key = resource_key(&state, kind, &id, &params).await?;
    let store = &state.store();
    let new = store
        .version(kind, &key, to, false)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{} {id} has no version at `to`", kind.name)))?;
    let old = match from {
        Some(point) => Some(
            store
                .version(kind, &key, Some(point), false)
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("{} {id} has no version at `from`", kind.name))
                })?,
        ),
        None => {
            let at = new["seq"].as_u64().map(Point::Seq);
            store.version(kind, &key, at, true).await?
        }
    };
    let changes = match &old {
        Some(old) => json_diff(&old["raw"], &new["raw"]),
        None => json_diff(&Value::Null, &new["raw"]),
    };
    Ok(HttpResponse::Ok().json(json!({
        "from": old.as_ref().map(version_meta),
        "to": version_meta(&new),
        "changes": changes,
    })))
}

/// `GET /api/v1/kinds`: every kind of the catalogue, with its routes' names,
/// the columns its lists filter on, and the kinds its nested routes reach.
async fn kinds() -> HttpResponse {
    let items: Vec<Value> = KINDS
        .iter()
        .map(|k| {
            let linked: Vec<Value> = KINDS
                .iter()
                .flat_map(|owner| owner.links.iter())
                .filter_map(|l| {
                    let other = match l.side_of(k)? {
                        inventory_model::Side::A => l.b,
                        inventory_model::Side::B => l.a,
                    };
                    let other = KINDS
                        .iter()
                        .find(|o| o.source == other.source && o.name == other.kind)?;
                    Some(
                        json!({"source": other.source, "kind": other.name, "plural": other.plural}),
                    )
                })
                .collect();
            json!({
                "source": k.source,
                "kind": k.name,
                "plural": k.plural,
                "id_column": k.id_column,
                "regional": k.regional(),
                "columns": k.columns.iter().map(|c| c.name).collect::<Vec<_>>(),
                "links": linked,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "items": items }))
}

/// `GET /api/v1/changes`: every change in stream order, resumable by `since`.
async fn changes(state: web::Data<ApiState>, params: Params) -> Result<HttpResponse, ApiError> {
    check_params(&params)?;
    let mut q = ChangesQuery {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let (mut source, mut kind_name) = (None, None);
    for (name, value) in params.iter() {
        match name.as_str() {
            "since" => match parse_point("since", value)? {
                Point::Seq(s) => q.after_seq = s,
                Point::Time(t) => q.since = Some(t),
            },
            "source" => source = Some(value.as_str()),
            "kind" => kind_name = Some(value.as_str()),
            "account_id" => q.account_id = Some(value.clone()),
            "region" => q.region = Some(value.clone()),
            "change" => match value.as_str() {
                "created" | "updated" | "deleted" => q.change = Some(value.clone()),
                _ => {
                    return Err(ApiError::bad_request(
                        ErrorCode::InvalidParameter,
                        "change must be created, updated or deleted",
                    ));
                }
            },
            "limit" => q.limit = parse_limit(value)?,
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!(
                        "unknown parameter {other}; use since, source, kind, account_id, region, change or limit"
                    ),
                ));
            }
        }
    }
    q.kinds = KINDS
        .iter()
        .filter(|k| source.is_none_or(|s| s == k.source))
        .filter(|k| kind_name.is_none_or(|n| n == k.name || n == k.plural))
        .copied()
        .collect();
    if q.kinds.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::UnknownKind,
            format!(
                "no kind matches source={} kind={}",
                source.unwrap_or("*"),
                kind_name.unwrap_or("*")
            ),
        ));
    }
    let page = state.store().changes(&q).await?;
    // Resume with since=<next>; an empty page keeps the cursor where it was.
    let next = page.last_seq.unwrap_or(q.after_seq);
    Ok(HttpResponse::Ok().json(json!({
        "items": page.items,
        "next": next.to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory_model::kind_by_name;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn list_params(
        kind: &'static KindDef,
        params: &[(String, String)],
    ) -> Result<inventory_store::ListQuery, ApiError> {
        list_request(
            kind,
            params,
            &actix_web::test::TestRequest::default().to_http_request(),
        )
        .map(|r| r.query)
    }

    #[test]
    fn list_parameters_are_checked() {
        let instance = kind_by_name("aws", "instance").unwrap();
        let p = list_params(instance, &pairs(&[("state", "running"), ("limit", "5")])).unwrap();
        assert_eq!(p.limit, 5);
        assert_eq!(p.filters[0].column, "state");
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "x"),
            ("colour", "red"),
            ("include_deleted", "maybe"),
        ] {
            assert!(
                list_params(instance, &pairs(&[bad])).is_err(),
                "{bad:?} accepted"
            );
        }
        let region = kind_by_name("aws", "region").unwrap();
        assert!(list_params(region, &pairs(&[("vpc_id", "v")])).is_err());
        assert!(
            list_params(instance, &pairs(&[("state", "a"), ("state", "b")])).is_err(),
            "repeated"
        );
        assert!(list_params(instance, &pairs(&[("launch_time", "2026-11-01T12:00:00Z")])).is_ok());
    }
}
