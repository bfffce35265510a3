//! `/api/v1/tasks`, `/api/v1/schedules` and `POST /api/v1/collect`: the
//! collection control plane over HTTP (the same operations as `inventory tasks`).

use actix_web::{HttpResponse, web};
use inventory_bus::{Bus, Intake};
use inventory_model::{CollectRequest, Priority, TaskFilter};
use serde::Deserialize;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;
use crate::routes::{Params, check_params, parse_limit};

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/collect", web::post().to(collect))
        .route("/schedules", web::get().to(schedules))
        .route("/tasks", web::get().to(list))
        .route("/tasks/{id}", web::get().to(show))
        .route("/tasks/{id}", web::delete().to(delete))
        .route("/tasks/{id}/cancel", web::post().to(cancel))
        .route("/tasks/{id}/retry", web::post().to(retry));
}

fn bus(state: &ApiState) -> Result<&Bus, ApiError> {
    state
        .bus
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("this api runs without nats".into()))
}

fn invalid(name: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{name}: {e}"))
}

async fn list(state: web::Data<ApiState>, params: Params) -> Result<HttpResponse, ApiError> {
    check_params(&params)?;
    let mut filter = TaskFilter::default();
    let (mut limit, mut offset) = (50, 0usize);
    for (name, value) in params.iter() {
        match name.as_str() {
            "state" => filter.state = Some(value.parse().map_err(|e| invalid(name, e))?),
            "source" => filter.source = Some(value.clone()),
            "kind" => filter.kind = Some(value.clone()),
            "limit" => limit = parse_limit(value)?,
            "cursor" => {
                offset = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("invalid_cursor", "invalid cursor"))?
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_filter",
                    format!(
                        "unknown parameter {other} for tasks; filters: state, source, kind; also: cursor, limit"
                    ),
                ));
            }
        }
    }
    let tasks = bus(&state)?.tasks(&filter).await?;
    let end = (offset + limit).min(tasks.len());
    let items = tasks.get(offset.min(end)..end).unwrap_or_default();
    let next = (end < tasks.len()).then(|| end.to_string());
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": next})))
}

async fn show(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match bus(&state)?.task(&id).await? {
        Some(task) => Ok(HttpResponse::Ok().json(task)),
        None => Err(ApiError::NotFound(format!("no task {id}"))),
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

/// The body of `POST /api/v1/collect`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectBody {
    source: String,
    kind: String,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    priority: Option<Priority>,
    /// Idempotency key, used as the task id.
    id: Option<String>,
}

async fn collect(state: web::Data<ApiState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: CollectBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("malformed_request", format!("malformed request body: {e}"))
    })?;
    let request = CollectRequest {
        accounts: body.accounts,
        regions: body.regions,
        priority: body.priority,
    };
    match bus(&state)?
        .intake(
            &body.source,
            &body.kind,
            Ok(request),
            body.id.as_deref(),
            None,
        )
        .await?
    {
        Intake::Accepted(s) => {
            let status = if s.duplicate {
                HttpResponse::Ok()
            } else {
                HttpResponse::Accepted()
            }
            .json(json!({"task": s.task, "duplicate": s.duplicate}));
            Ok(status)
        }
        Intake::Rejected {
            task,
            code,
            message,
        } => Ok(HttpResponse::BadRequest().json(json!({
            "error": {"code": code, "message": message, "task_id": task.spec.id}
        }))),
    }
}
