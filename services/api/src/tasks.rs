//! `/api/v1/tasks`, `/api/v1/schedules` and `POST /api/v1/collect`: the
//! collection control plane over HTTP (the same operations as `inventory tasks`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use inventory_bus::Bus;
use inventory_model::text::quoted;
use inventory_model::{CollectRequest, ErrorCode, Task, TaskFilter};
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::routes::{Params, check_params, parse_limit, resource};

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/collect", "POST").route(web::post().to(collect)))
        .service(resource("/schedules", "GET").route(web::get().to(schedules)))
        .service(resource("/tasks", "GET").route(web::get().to(list)))
        .service(
            resource("/tasks/{id}", "GET, DELETE")
                .route(web::get().to(show))
                .route(web::delete().to(delete)),
        )
        .service(resource("/tasks/{id}/cancel", "POST").route(web::post().to(cancel)))
        .service(resource("/tasks/{id}/retry", "POST").route(web::post().to(retry)));
}

fn bus(state: &ApiState) -> Result<&Bus, ApiError> {
    state
        .bus
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("this api runs without nats".into()))
}

fn invalid(name: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidParameter, format!("{name}: {e}"))
}

/// A page of tasks ends after this one: `<created_at>/<id>`.
fn task_cursor(task: &Task) -> String {
    format!("{}/{}", task.spec.created_at.to_rfc3339(), task.spec.id)
}

async fn list(state: web::Data<ApiState>, params: Params) -> Result<HttpResponse, ApiError> {
    check_params(&params)?;
    let mut filter = TaskFilter::default();
    let mut limit = 50;
    let mut after: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
    for (name, value) in params.iter() {
        match name.as_str() {
            "state" => filter.state = Some(value.parse().map_err(|e| invalid(name, e))?),
            "source" => filter.source = Some(value.clone()),
            "kind" => filter.kind = Some(value.clone()),
            "limit" => limit = parse_limit(value)?,
            "cursor" => {
                let bad = || ApiError::bad_request(ErrorCode::InvalidCursor, "invalid cursor");
                let (at, id) = value.split_once('/').ok_or_else(bad)?;
                let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
                after = Some((at.with_timezone(&chrono::Utc), id.to_owned()));
            }
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownFilter,
                    format!(
                        "unknown parameter {other} for tasks; filters: state, source, kind; also: cursor, limit"
                    ),
                ));
            }
        }
    }
    // From the watched records: a request reads none from NATS. Newest first,
    // and a page starts after the cursor's task, so that tasks created while
    // paging do not shift later pages.
    let tasks = state.task_view().await?.list(&filter);
    let start = match &after {
        None => 0,
        Some((at, id)) => tasks.partition_point(|t| (t.spec.created_at, &t.spec.id) >= (*at, id)),
    };
    let items = &tasks[start..(start + limit).min(tasks.len())];
    let next = (start + limit < tasks.len())
        .then(|| items.last().map(task_cursor))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": next})))
}

async fn show(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match bus(&state)?.task(&id).await? {
        Some(task) => Ok(HttpResponse::Ok().json(task)),
        None => Err(ApiError::NotFound(format!("no task {}", quoted(&id)))),
    }
}

async fn cancel(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(bus(&state)?.cancel_task(&id).await?))
}

async fn retry(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(bus(&state)?.retry_task(&id).await?))
}

async fn delete(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(bus(&state)?.delete_task(&id).await?))
}

async fn schedules(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let items: Vec<_> = bus(&state)?
        .schedules()
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Through the collectors' intake (`<prefix>.collect.<source>.<kind>`), as any
/// NATS client would: it checks the request against the accounts and regions
/// they collect, and answers with the same fields. The body is a collection
/// request with its source and kind, and an optional idempotency key `id`.
async fn collect(state: web::Data<ApiState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let (request, id) = CollectRequest::parse_with_id(&body)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let reply = bus(&state)?
        .request_collection(&request, id.as_deref())
        .await?;
    let status = match (reply.get("error"), reply["duplicate"].as_bool()) {
        (Some(e), _) if e["code"] == ErrorCode::BusUnavailable.as_str() => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        (Some(_), _) => StatusCode::BAD_REQUEST,
        (None, Some(true)) => StatusCode::OK,
        (None, _) => StatusCode::ACCEPTED,
    };
    Ok(HttpResponse::build(status).json(reply))
}
