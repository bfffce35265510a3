//! Handlers. Paths and parameters are the public interface; see README.md.

use actix_web::{HttpResponse, error::QueryPayloadError, web};
use inventory_model::{KINDS, KindDef, LinkDef, kind_by_plural};
use inventory_store::{Filter, Found, ListQuery, Via, filterable, parses_as};
use serde_json::{Value, json};

use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

type Params = web::Query<Vec<(String, String)>>;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::scope("/api/v1")
                .route("/{source}/{kinds}", web::get().to(list))
                .route("/{source}/{kinds}/{id}", web::get().to(get))
                .route("/{source}/{kinds}/{id}/{children}", web::get().to(nested)),
        )
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NotFound("no such route".into()))
        }));
}

pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e: QueryPayloadError, _| {
        ApiError::bad_request("invalid_query", e.to_string()).into()
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    let postgres = state.store.ping().await.map_err(|e| e.to_string());
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

/// `{"items": [...], "next": ...}` with the items' JSON text passed through.
#[derive(serde::Serialize)]
struct PageBody<'a> {
    items: &'a [Box<serde_json::value::RawValue>],
    next: Option<&'a str>,
}

/// Paging and filter parameters common to every list.
struct ListParams {
    filters: Vec<Filter>,
    include_deleted: bool,
    cursor: Option<String>,
    limit: usize,
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name} must be true or false"),
        )),
    }
}

/// Reject repeated parameters and NUL bytes, which no column can hold.
fn check_params(params: &[(String, String)]) -> Result<(), ApiError> {
    for (i, (name, value)) in params.iter().enumerate() {
        if name.contains('\0') || value.contains('\0') {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "parameters must not contain NUL",
            ));
        }
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("parameter {name} is given more than once"),
            ));
        }
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "ids must not contain NUL",
        ));
    }
    Ok(())
}

fn list_params(kind: &KindDef, params: &[(String, String)]) -> Result<ListParams, ApiError> {
    check_params(params)?;
    let mut out = ListParams {
        filters: Vec::new(),
        include_deleted: false,
        cursor: None,
        limit: DEFAULT_LIMIT,
    };
    for (name, value) in params {
        match name.as_str() {
            "cursor" => out.cursor = Some(value.clone()),
            "limit" => {
                out.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_limit",
                            format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "include_deleted" => out.include_deleted = parse_bool(name, value)?,
            column if filterable(kind).any(|(c, _)| c == column) => {
                let (_, ty) = filterable(kind)
                    .find(|(c, _)| *c == column)
                    .expect("found above");
                if !parses_as(ty, value) {
                    return Err(ApiError::bad_request(
                        "invalid_filter",
                        format!("{column} takes a {} value", ty.sql()),
                    ));
                }
                out.filters.push(Filter {
                    column: column.to_owned(),
                    value: value.clone(),
                })
            }
            other => {
                let known: Vec<_> = filterable(kind).map(|(c, _)| c).collect();
                return Err(ApiError::bad_request(
                    "unknown_filter",
                    format!(
                        "unknown parameter {other} for {}; filters: {}; paging: cursor, limit, include_deleted",
                        kind.plural,
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

async fn list(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (source, plural) = path.into_inner();
    let kind = kind(&source, &plural)?;
    let p = list_params(kind, &params)?;
    page(&state, kind, p, None).await
}

async fn page(
    state: &ApiState,
    kind: &'static KindDef,
    p: ListParams,
    via: Option<Via>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .list(&ListQuery {
            kind,
            filters: p.filters,
            include_deleted: p.include_deleted,
            cursor: p.cursor,
            limit: p.limit,
            via,
        })
        .await?;
    Ok(HttpResponse::Ok().json(PageBody {
        items: &page.items,
        next: page.next.as_deref(),
    }))
}

/// Find one resource by id; `account_id` / `region` parameters narrow ambiguous ids.
async fn lookup(
    state: &ApiState,
    kind: &'static KindDef,
    id: &str,
    params: &[(String, String)],
) -> Result<Value, ApiError> {
    let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    // `region` narrows regional kinds only (a region itself has no region).
    let region = param("region").filter(|_| kind.regional);
    match state
        .store
        .get(kind, id, param("account_id"), region)
        .await?
    {
        Found::None => Err(ApiError::NotFound(format!("{} {id} not found", kind.name))),
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

async fn get(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (source, plural, id) = path.into_inner();
    let kind = kind(&source, &plural)?;
    check_id(&id)?;
    check_params(&params)?;
    let mut include_deleted = false;
    for (name, value) in params.iter() {
        match name.as_str() {
            "account_id" | "region" => {}
            "include_deleted" => include_deleted = parse_bool(name, value)?,
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown parameter {other}; use account_id, region or include_deleted"),
                ));
            }
        }
    }
    let item = lookup(&state, kind, &id, &params).await?;
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

/// The link between two kinds, in either direction.
fn link_between(parent: &KindDef, child: &KindDef) -> Option<&'static LinkDef> {
    KINDS.iter().flat_map(|k| k.links.iter()).find(|l| {
        l.a_kind != l.b_kind
            && ((l.a_kind == parent.name && l.b_kind == child.name)
                || (l.b_kind == parent.name && l.a_kind == child.name))
    })
}

async fn nested(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (source, plural, id, children) = path.into_inner();
    let parent = kind(&source, &plural)?;
    let child = kind(&source, &children)?;
    let link = link_between(parent, child)
        .ok_or_else(|| ApiError::NotFound(format!("{plural} have no linked {children}")))?;
    check_id(&id)?;
    let p = list_params(child, &params)?;
    let parent_item = lookup(&state, parent, &id, &params).await?;
    // Links to a deleted resource are history, not inventory.
    refuse_deleted(parent, &id, &parent_item)?;
    // Narrow the children to the parent's account (ids are unique per account).
    let mut p = p;
    if !p.filters.iter().any(|f| f.column == "account_id")
        && let Some(account) = parent_item["account_id"].as_str()
    {
        p.filters.push(Filter {
            column: "account_id".into(),
            value: account.to_owned(),
        });
    }
    let via = Via {
        link,
        parent,
        parent_id: id,
    };
    page(&state, child, p, Some(via)).await
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

    #[test]
    fn nested_collections_follow_links_both_ways() {
        let k = |n| kind_by_name("aws", n).unwrap();
        assert_eq!(
            link_between(k("vpc"), k("subnet")).unwrap().table,
            "l_aws_vpc_to_subnet"
        );
        assert_eq!(
            link_between(k("subnet"), k("instance")).unwrap().table,
            "l_aws_instance_to_subnet"
        );
        assert_eq!(
            link_between(k("region"), k("vpc")).unwrap().table,
            "l_aws_region_to_vpc"
        );
        assert!(link_between(k("region"), k("instance")).is_none());
    }
}
