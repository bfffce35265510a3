//! `GET /metrics`: the process's Prometheus families, and on the API the
//! families of the sampled snapshot ([`crate::stats`]): a scrape costs no
//! request to NATS or PostgreSQL and answers in the time it takes to format
//! the text, whatever the number of resources, consumers or tasks.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use inventory_telemetry::metrics::{self, METRICS, Sampled};
use tracing::Instrument;

use crate::stats::{Projection, Snapshot};
use crate::{ApiState, Running, ServerError};

/// The families of a snapshot.
fn families(snap: &Snapshot) -> Sampled {
    let mut out = Sampled::default();
    if let Some(streams) = &snap.streams {
        let one = |f: fn(&inventory_bus::StreamStats) -> u64| {
            streams
                .iter()
                .map(move |s| (vec![s.stream.as_str()], f(s) as f64))
        };
        out.gauge(
            "inventory_stream_messages",
            "Messages a stream holds",
            &["stream"],
            one(|s| s.messages),
        );
        out.gauge(
            "inventory_stream_bytes",
            "Bytes a stream holds",
            &["stream"],
            one(|s| s.bytes),
        );
        out.gauge(
            "inventory_stream_last_sequence",
            "The last sequence a stream stored",
            &["stream"],
            one(|s| s.last_seq),
        );
        let consumers = |f: fn(&inventory_bus::ConsumerStats) -> u64| {
            streams.iter().flat_map(move |s| {
                s.consumers
                    .iter()
                    .map(move |c| (vec![s.stream.as_str(), c.name.as_str()], f(c) as f64))
            })
        };
        let labels = &["stream", "consumer"];
        out.gauge(
            "inventory_consumer_pending_messages",
            "Messages of a consumer's filter not delivered yet",
            labels,
            consumers(|c| c.pending),
        );
        out.gauge(
            "inventory_consumer_ack_pending_messages",
            "Messages a consumer delivered and that are not acked yet",
            labels,
            consumers(|c| c.ack_pending),
        );
        out.gauge(
            "inventory_consumer_redelivered_messages",
            "Messages a consumer delivered more than once and that are not acked yet",
            labels,
            consumers(|c| c.redelivered),
        );
    }
    if let Some(projections) = &snap.projections {
        let each = |f: fn(&Projection) -> Option<f64>| {
            projections
                .iter()
                .filter_map(move |p| Some((vec![p.stats.projection.as_str()], f(p)?)))
        };
        let labels = &["projection"];
        out.gauge(
            "inventory_projection_checkpoint_sequence",
            "The last event stream sequence a projection applied",
            labels,
            each(|p| Some(p.stats.checkpoint as f64)),
        );
        out.gauge(
            "inventory_dead_letters",
            "Events a projection dead-lettered",
            labels,
            each(|p| Some(p.stats.dead_letters as f64)),
        );
        out.gauge(
            "inventory_projection_lag_messages",
            "Events in the stream a projection has not applied yet",
            labels,
            each(|p| p.lag_messages.map(|n| n as f64)),
        );
        out.gauge(
            "inventory_projection_lag_seconds",
            "How old the oldest event a projection has not applied is (0: caught up)",
            labels,
            each(|p| p.lag_seconds),
        );
    }
    if let Some(counts) = &snap.resources {
        out.gauge(
            "inventory_resources",
            "Live resources",
            &["source", "kind", "account_id", "region"],
            counts.iter().map(|c| {
                (
                    vec![
                        c.source.as_str(),
                        c.kind.as_str(),
                        c.account_id.as_str(),
                        c.region.as_str(),
                    ],
                    c.live as f64,
                )
            }),
        );
        // Summed over accounts and regions.
        let mut totals: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        for c in counts {
            for (change, n) in [
                ("created", c.created),
                ("updated", c.updated),
                ("deleted", c.deleted),
            ] {
                *totals.entry((&c.source, &c.kind, change)).or_default() += n;
            }
        }
        out.counter(
            "inventory_changes_total",
            "Changes the projection recorded (created, updated, deleted)",
            &["source", "kind", "change"],
            totals.into_iter().map(|((s, k, c), n)| (vec![s, k, c], n)),
        );
    }
    if let Some(tasks) = &snap.tasks {
        out.gauge(
            "inventory_tasks",
            "Collection tasks by state and priority",
            &["state", "priority"],
            tasks
                .iter()
                .map(|t| (vec![t.state.as_str(), t.priority.as_str()], t.count as f64)),
        );
    }
    if let Some(at) = snap.sampled_at {
        out.gauge(
            "inventory_metrics_sampled_timestamp_seconds",
            "When the sampled families were last refreshed (unix time)",
            &[],
            [(vec![], at.timestamp_millis() as f64 / 1e3)],
        );
    }
    out
}

/// `GET /metrics` of the API.
pub(crate) async fn api_metrics(state: web::Data<ApiState>) -> HttpResponse {
    let snapshot = state.sampler.snapshot(&state).await;
    let text = metrics::render(Some(&families(&snapshot)));
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(text)
}

/// Count and time every request by its route template (never the raw path).
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    // A span per request, in the caller's trace if it sent one.
    let span = tracing::info_span!(
        "http request",
        http.route = route,
        http.method = method,
        http.status_code = tracing::field::Empty,
    );
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        inventory_telemetry::set_parent(&span, tp);
    }
    let res = next.call(req).instrument(span.clone()).await;
    let status = match &res {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    span.record("http.status_code", status);
    METRICS
        .http_requests
        .with_label_values(&[&route, &method, &status.to_string()])
        .inc();
    METRICS
        .http_request_duration
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    res
}

/// A server of `GET /metrics` alone, for processes without the API
/// (`inventory collector`, `inventory projector`).
pub struct MetricsServer {
    pub addr: SocketAddr,
    running: Running,
}

impl MetricsServer {
    /// Bind `addr` (port 0 picks a free port) and serve in the background.
    pub fn start(addr: &str) -> Result<MetricsServer, ServerError> {
        let bind = |source| ServerError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let server = HttpServer::new(|| {
            App::new().route(
                "/metrics",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type(metrics::CONTENT_TYPE)
                        .body(metrics::render(None))
                }),
            )
        })
        .workers(1)
        .shutdown_timeout(1)
        .disable_signals()
        .listen(listener)
        .map_err(bind)?
        .run();
        tracing::info!(addr = %local, "metrics listening");
        Ok(MetricsServer {
            addr: local,
            running: Running::spawn(server),
        })
    }

    /// Serve until `stop` resolves; an error if the server ends on its own.
    pub async fn serve_until(mut self, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
        self.running.until(stop).await?;
        self.running.stop().await;
        Ok(())
    }
}
