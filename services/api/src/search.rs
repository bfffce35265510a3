//! `GET /api/v1/search?q=…&limit=&cursor=`: every kind's live resources by
//! words, `"phrases"`, `-negations` and qualifiers (`kind:`, `source:`,
//! `account:`, `region:`, `tag:key=value`, `tag:key`, `-tag:key`), ranked.

use actix_web::{HttpResponse, web};
use inventory_model::ErrorCode;
use inventory_store::SearchQuery;
use serde_json::json;

use crate::graph::number;
use crate::listing::check_params;
use crate::routes::Params;
use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 200;

pub(crate) async fn search(
    state: web::Data<ApiState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    check_params(&params)?;
    let mut q = None;
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    for (name, value) in params.iter() {
        match name.as_str() {
            "q" => q = Some(value.clone()),
            "cursor" => cursor = Some(value.clone()),
            "limit" => limit = number(name, value, MAX_LIMIT)?,
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!("unknown parameter {other}; use q, limit or cursor"),
                ));
            }
        }
    }
    let q = q.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::InvalidParameter, "q is required: what to search")
    })?;
    let mut query = SearchQuery::parse(&q, limit)
        .map_err(|m| ApiError::bad_request(ErrorCode::InvalidQuery, m))?;
    query.cursor = cursor;
    let page = state.store().search(&query).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": page.items, "next": page.next })))
}
