//! Prometheus metrics: the families every service records into (one registry
//! per process), the families a sampler computes from the stream and the
//! database ([`Sampled`]), and the text exposition of both ([`render`]).
//!
//! Names and labels are an interface: dashboards and alerts under `deploy/`
//! use them, and `docs/observability.md` lists each. Label values are bounded:
//! sources, kinds, accounts, regions, operations, route templates, outcomes;
//! never a resource id, a raw path or an error message.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of durations from a millisecond to ten minutes.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

/// The families services record into directly.
pub struct Metrics {
    registry: Registry,
    pub projector_events: IntCounterVec,
    pub projector_batch_duration: Histogram,
    pub provider_calls: IntCounterVec,
    pub provider_throttles: IntCounterVec,
    pub provider_retries: IntCounterVec,
    pub scans: IntCounterVec,
    pub scan_duration: HistogramVec,
    pub scan_resources: IntCounterVec,
    pub task_duration: HistogramVec,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    pub api_auth_failures: IntCounterVec,
}

const PROVIDER_CALL: &[&str] = &["source", "api", "account_id", "region"];

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry.register(Box::new(c.clone())).expect("unique name");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid histogram");
            registry.register(Box::new(h.clone())).expect("unique name");
            h
        };
        let build = GaugeVec::new(
            Opts::new(
                "inventory_build_info",
                "The running build: always 1, its version in the label",
            ),
            &["version"],
        )
        .expect("valid gauge");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        registry.register(Box::new(build)).expect("unique name");
        Metrics {
            projector_events: counter(
                "inventory_projector_events_total",
                "Events the projector folded, by outcome (applied, unchanged, dead_lettered)",
                &["projection", "outcome"],
            ),
            projector_batch_duration: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "inventory_projector_batch_duration_seconds",
                        "Time to fold and commit one batch of events",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                )
                .expect("valid histogram");
                registry.register(Box::new(h.clone())).expect("unique name");
                h
            },
            provider_calls: counter(
                "inventory_provider_calls_total",
                "Provider API calls sent, retries included",
                PROVIDER_CALL,
            ),
            provider_throttles: counter(
                "inventory_provider_throttles_total",
                "Provider API calls the provider throttled",
                PROVIDER_CALL,
            ),
            provider_retries: counter(
                "inventory_provider_retries_total",
                "Provider API calls sent again after a failure",
                PROVIDER_CALL,
            ),
            scans: counter(
                "inventory_scans_total",
                "Scans finished, by outcome (completed, failed, cancelled)",
                &["source", "kind", "account_id", "outcome"],
            ),
            scan_duration: histogram(
                "inventory_scan_duration_seconds",
                "Time from a scan's start to its end",
                &["source", "kind"],
            ),
            scan_resources: counter(
                "inventory_scan_resources_total",
                "Resources scans saw, by what they found (created, updated, deleted, unchanged)",
                &["source", "kind", "change"],
            ),
            task_duration: histogram(
                "inventory_task_duration_seconds",
                "Time a collection task's attempt ran, by outcome",
                &["source", "kind", "outcome"],
            ),
            http_requests: counter(
                "inventory_http_requests_total",
                "HTTP requests answered, by route template, method and status",
                &["route", "method", "status"],
            ),
            http_request_duration: histogram(
                "inventory_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template and method",
                &["route", "method"],
            ),
            api_auth_failures: counter(
                "inventory_api_auth_failures_total",
                "API requests refused, by reason (missing token, invalid token, scope)",
                &["reason"],
            ),
            registry,
        }
    }

    /// Count one provider call (labels: source, api, account_id, region);
    /// `retry`: it is a call sent again after a failure.
    pub fn provider_call(&self, call: [&str; 4], retry: bool) {
        self.provider_calls.with_label_values(&call).inc();
        if retry {
            self.provider_retries.with_label_values(&call).inc();
        }
    }

    /// Make the provider call families exist for a scope before its first
    /// failure, so that a rate over them is 0 rather than absent.
    pub fn provider_scope(&self, call: [&str; 4]) {
        self.provider_throttles.with_label_values(&call);
        self.provider_retries.with_label_values(&call);
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Families computed from outside the process (the stream, the database, the
/// task records), built fresh at each refresh so that label sets that are gone
/// disappear.
#[derive(Default)]
pub struct Sampled {
    families: Vec<MetricFamily>,
}

impl Sampled {
    /// A gauge family; `rows` are (label values in `labels` order, value).
    pub fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<&'a str>, f64)>,
    ) {
        let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
        for (values, v) in rows {
            g.with_label_values(&values).set(v);
        }
        self.families.extend(g.collect());
    }

    /// A counter family whose totals are kept elsewhere (a table).
    pub fn counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<&'a str>, u64)>,
    ) {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
        for (values, v) in rows {
            c.with_label_values(&values).inc_by(v);
        }
        self.families.extend(c.collect());
    }
}

/// The text exposition of the process's families and `sampled`. Families
/// without a series yet are left out (the format has no empty family).
pub fn render(sampled: Option<&Sampled>) -> String {
    let mut families = METRICS.registry.gather();
    if let Some(s) = sampled {
        families.extend(s.families.iter().cloned());
    }
    families.retain(|f| !f.get_metric().is_empty());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("families the registry checked");
    String::from_utf8(out).expect("text exposition is utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_and_sampled_families() {
        let call = ["aws", "DescribeVpcs", "123", "eu-west-1"];
        METRICS.provider_call(call, false);
        METRICS.provider_call(call, true);
        METRICS.provider_throttles.with_label_values(&call).inc();
        let mut sampled = Sampled::default();
        sampled.gauge(
            "inventory_stream_messages",
            "Messages in a stream",
            &["stream"],
            [(vec!["INVENTORY_EVENTS"], 7.0)],
        );
        sampled.counter(
            "inventory_changes_total",
            "Changes",
            &["source", "kind", "change"],
            [(vec!["aws", "vpc", "created"], 3)],
        );
        sampled.gauge("inventory_empty", "Nothing", &["x"], []);
        let text = render(Some(&sampled));
        assert!(text.contains(
            "inventory_provider_calls_total{account_id=\"123\",api=\"DescribeVpcs\",region=\"eu-west-1\",source=\"aws\"} 2"
        ), "{text}");
        assert!(text.contains("inventory_provider_retries_total{account_id=\"123\",api=\"DescribeVpcs\",region=\"eu-west-1\",source=\"aws\"} 1"));
        assert!(text.contains("inventory_stream_messages{stream=\"INVENTORY_EVENTS\"} 7"));
        assert!(text.contains("# TYPE inventory_changes_total counter"));
        assert!(text.contains(&format!(
            "inventory_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            !text.contains("inventory_empty"),
            "empty families are left out"
        );
        // Sorted by name, each family once.
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
