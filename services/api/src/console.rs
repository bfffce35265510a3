//! The web console: static pages built into the binary (`console/`), served
//! at `/` and `/console/…`. They use the public API only. The chart library
//! (uPlot, MIT) is vendored from npm with its licence, so nothing is fetched
//! from elsewhere at build or run time.

use actix_web::{HttpResponse, web};

/// (path under `/console/`, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../console/style.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../console/vendor/uPlot.min.css"),
    ),
    (
        "vendor/uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("../console/vendor/uPlot.LICENSE"),
    ),
];

const INDEX: &str = include_str!("../console/index.html");

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/console/{file:.*}", web::get().to(asset));
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .body(INDEX)
}

async fn asset(file: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(name, _, _)| *name == file.as_str()) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("cache-control", "no-cache"))
            .body(*body),
        None => HttpResponse::NotFound()
            .content_type("application/json")
            .body(r#"{"error":{"code":"not_found","message":"no such console file"}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_assets_the_binary_has() {
        for (attr, prefix) in [("src=\"", "/console/"), ("href=\"", "/console/")] {
            for part in INDEX.split(attr).skip(1) {
                let url = part.split('"').next().unwrap();
                if let Some(file) = url.strip_prefix(prefix) {
                    assert!(ASSETS.iter().any(|(n, _, _)| *n == file), "{url}");
                } else {
                    assert!(
                        url.starts_with('#') || url.starts_with("data:"),
                        "{url} is fetched from elsewhere"
                    );
                }
            }
        }
    }
}
