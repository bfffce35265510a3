//! `GET /api/v1/reports` and `GET /api/v1/reports/<name>`: leak and waste
//! reports, answered like lists (paging, `fields`, filters, `at=`, CSV and
//! NDJSON), with their own parameters. Rules: docs/reports.md.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use inventory_model::{ErrorCode, KINDS, KindDef, duration, kind_by_plural};
use inventory_store::{REPORTS, Rule, TagFilter, TagOp, report};
use serde_json::json;

use crate::listing::{self, Answer, list_request};
use crate::routes::Params;
use crate::{ApiError, ApiState};

pub(crate) async fn index() -> HttpResponse {
    let reports: Vec<_> = REPORTS
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "source": r.source,
                "kind": r.kind().map(|k| k.plural),
                "description": r.description,
                "href": format!("/api/v1/reports/{}", r.name),
                "parameters": r.params.iter().map(|p| json!({
                    "name": p.name, "description": p.description, "default": p.default,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "reports": reports }))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidParameter, message)
}

/// A report answers pages or exports, not group counts.
fn no_groups(answer: &Answer) -> Result<(), ApiError> {
    match answer {
        Answer::Groups(_) => Err(bad("a report answers pages or exports, not group_by")),
        _ => Ok(()),
    }
}

/// Take a report's own parameter out of the list's.
fn take(params: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = params.iter().position(|(k, _)| k == name)?;
    Some(params.remove(at).1)
}

pub(crate) async fn run(
    state: web::Data<ApiState>,
    name: web::Path<String>,
    params: Params,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let def = report(&name).ok_or_else(|| {
        ApiError::NotFound(format!("no report {name}; GET /api/v1/reports lists them"))
    })?;
    listing::check_params(&params)?;
    let mut params = params.into_inner();
    let rule = match def.name {
        "unattached-volumes" => {
            let min_age = match take(&mut params, "min_age") {
                None => std::time::Duration::ZERO,
                Some(v) => duration::parse(&v)
                    .map_err(|_| bad("min_age takes a duration, e.g. 7d or 12h"))?,
            };
            Some(Rule::UnattachedVolumes { min_age })
        }
        "unassociated-elastic-ips" => Some(Rule::UnassociatedElasticIps),
        "unused-security-groups" => Some(Rule::UnusedSecurityGroups),
        "available-network-interfaces" => Some(Rule::AvailableNetworkInterfaces),
        "stopped-instances" => {
            let days = match take(&mut params, "days") {
                None => 30,
                Some(v) => v
                    .parse::<u32>()
                    .map_err(|_| bad("days takes a whole number of days, e.g. 30"))?,
            };
            Some(Rule::StoppedInstances { days })
        }
        "orphan-snapshots" => Some(Rule::OrphanSnapshots),
        "unused-images" => Some(Rule::UnusedImages),
        "empty-vpcs" => Some(Rule::EmptyVpcs),
        _ => None,
    };
    match rule {
        Some(rule) => {
            let mut request = list_request(rule.kind(), &params, &req)?;
            no_groups(&request.answer)?;
            request.query.rule = Some(rule);
            listing::answer(state.store(), request, None).await
        }
        None => untagged(&state, &mut params, &req).await,
    }
}

/// `untagged?tag=<key>[&kind=<plural>]`: one kind, or every kind in
/// catalogue order (the cursor says which kind the next page starts in;
/// each item says its source and kind).
async fn untagged(
    state: &ApiState,
    params: &mut Vec<(String, String)>,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = take(params, "tag").ok_or_else(|| bad("untagged needs tag=<key>, e.g. tag=owner"))?;
    let lacking = TagFilter {
        key,
        op: TagOp::Exists,
        value: "false".into(),
    };
    if let Some(plural) = take(params, "kind") {
        let kind = kind_by_plural("aws", &plural)
            .or_else(|| {
                plural
                    .split_once('/')
                    .and_then(|(s, p)| kind_by_plural(s, p))
            })
            .ok_or_else(|| bad(format!("kind: no kind {plural}")))?;
        let mut request = list_request(kind, params, req)?;
        no_groups(&request.answer)?;
        request.query.tags.push(lacking);
        return listing::answer(state.store(), request, None).await;
    }
    // Every kind: pages only (an export names its kind), with filters every
    // kind has (account_id, region), fields of every kind.
    let cursor = take(params, "cursor");
    let (mut from, mut inner) = match cursor {
        None => (0, None),
        Some(c) => decode(&c)?,
    };
    let first = list_request(KINDS[0], params, req)?;
    if !matches!(first.answer, Answer::Page) {
        return Err(bad(
            "untagged over every kind answers pages; add kind= to export one",
        ));
    }
    let limit = first.query.limit;
    let mut items: Vec<String> = Vec::new();
    let mut next = None;
    while from < KINDS.len() {
        let kind: &'static KindDef = KINDS[from];
        let mut q = list_request(kind, params, req)?.query;
        q.tags.push(lacking.clone());
        q.cursor = inner.take();
        q.limit = limit - items.len();
        let page = state.store().list(&q).await?;
        let label = format!(
            "{{\"source\":\"{}\",\"kind\":\"{}\",",
            kind.source, kind.plural
        );
        items.extend(page.items.iter().map(|i| format!("{label}{}", &i[1..])));
        if let Some(c) = page.next {
            next = Some(encode(from, Some(c)));
            break;
        }
        from += 1;
        if items.len() == limit {
            if from < KINDS.len() {
                next = Some(encode(from, None));
            }
            break;
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(listing::page_body(&items, next.as_deref())))
}

fn encode(kind: usize, inner: Option<String>) -> String {
    URL_SAFE_NO_PAD.encode(json!([kind, inner]).to_string())
}

fn decode(cursor: &str) -> Result<(usize, Option<String>), ApiError> {
    let invalid = || ApiError::bad_request(ErrorCode::InvalidCursor, "invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let (kind, inner): (usize, Option<String>) =
        serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if kind >= KINDS.len() {
        return Err(invalid());
    }
    Ok((kind, inner))
}
