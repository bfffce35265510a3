//! Telemetry shared by every service: structured logs through `tracing`, and
//! OpenTelemetry trace context so that an event on the bus names the trace of
//! the operation that caused it (`traceparent` header).
//!
//! Architecture invariant: services log through `tracing` only (never `println!`);
//! the subscriber is installed once, by the binary (or a test harness).

pub mod metrics;

use std::collections::HashMap;
use std::io::IsTerminal;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line, with the `trace_id` and `span_id` of the
    /// span it was logged in.
    Json,
}

/// Where spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Traces {
    /// Nowhere: spans carry trace context (for `traceparent`), nothing is
    /// exported.
    Off,
    /// OTLP over HTTP/protobuf, posted to this url (`…/v1/traces`).
    Otlp(String),
}

impl Traces {
    /// From the standard variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the
    /// url as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (the base url, to which
    /// `/v1/traces` is added); none set, or `OTEL_TRACES_EXPORTER=none`: off.
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (and `…_TRACES_PROTOCOL`) may only be
    /// `http/protobuf`. Headers and timeouts (`OTEL_EXPORTER_OTLP_HEADERS`, …)
    /// are read by the exporter.
    pub fn from_env() -> Result<Traces, TelemetryError> {
        Traces::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Traces, TelemetryError> {
        if var("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none") {
            return Ok(Traces::Off);
        }
        let url = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => url,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(Traces::Off),
        };
        for key in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(p) = var(key).filter(|p| p != "http/protobuf") {
                return Err(TelemetryError::Protocol(p));
            }
        }
        Ok(Traces::Otlp(url))
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("logging is already set up")]
    AlreadySet(#[from] tracing_subscriber::util::TryInitError),
    #[error("unsupported otlp protocol {0:?} (inventory exports http/protobuf)")]
    Protocol(String),
    #[error("cannot set up the otlp exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The installed telemetry; [`Telemetry::shutdown`] exports what is left.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Export the spans ended so far now.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "cannot export spans");
        }
    }

    /// Export what is left and stop exporting.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "cannot export the last spans");
        }
    }
}

/// Install the global subscriber: `RUST_LOG` filtering (default `default_filter`),
/// text or JSON lines on stderr (or the test writer), and span contexts that carry
/// OpenTelemetry trace ids, exported as `traces` says under the service name
/// `OTEL_SERVICE_NAME` (default `service`; `OTEL_RESOURCE_ATTRIBUTES` adds
/// resource attributes). Returns an error if a subscriber is already installed.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    test_writer: bool,
    service: &str,
    traces: &Traces,
) -> Result<Telemetry, TelemetryError> {
    // The log filter applies to log output only: spans that carry trace context
    // exist at INFO whatever `RUST_LOG` says, so events keep their trace.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let mut builder = SdkTracerProvider::builder();
    if let Traces::Otlp(url) = traces {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .build()?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service.to_owned());
        }
        builder = builder
            .with_batch_exporter(exporter)
            .with_resource(resource.build());
    }
    let provider = builder.build();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("inventory"))
        .with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(otel);
    match (format, test_writer) {
        (LogFormat::Json, _) => registry
            .with(
                fmt::layer()
                    .json()
                    .event_format(WithTraceIds(fmt::format().json()))
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()?,
        (LogFormat::Text, true) => registry
            .with(fmt::layer().with_test_writer().with_filter(filter))
            .try_init()?,
        (LogFormat::Text, false) => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colour codes only for a person at a terminal, not in
                    // files and pipes.
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter),
            )
            .try_init()?,
    }
    if let Traces::Otlp(url) = traces {
        tracing::info!(url, "exporting spans over otlp");
    }
    Ok(Telemetry { provider })
}

/// A JSON event format that adds the current span's `trace_id` and
/// `span_id` to each line.
struct WithTraceIds<F>(F);

impl<S, N, F> fmt::FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> fmt::FormatFields<'a> + 'static,
    F: fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &fmt::FmtContext<'_, S, N>,
        mut writer: fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use opentelemetry::trace::TraceContextExt;
        let ids = ctx.lookup_current().map(|_| {
            let cx = tracing::Span::current().context();
            let span = cx.span();
            let sc = span.span_context();
            (sc.trace_id(), sc.span_id(), sc.is_valid())
        });
        let mut line = String::new();
        self.0
            .format_event(ctx, fmt::format::Writer::new(&mut line), event)?;
        match ids {
            Some((trace, span, true)) if line.trim_end().ends_with('}') => {
                let body = line.trim_end().trim_end_matches('}');
                writeln!(
                    writer,
                    "{body},\"trace_id\":\"{trace}\",\"span_id\":\"{span}\"}}"
                )
            }
            _ => writer.write_str(&line),
        }
    }
}

/// The context a W3C `traceparent` names; `None` if it names none.
fn extract(traceparent: &str) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::TraceContextExt;
    let carrier: HashMap<String, String> =
        HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Make `span` a child of the span a W3C `traceparent` names (the trace of
/// a request that crossed a NATS hop). Does nothing for an invalid one.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    if let Some(cx) = extract(traceparent) {
        let _ = span.set_parent(cx);
    }
}

/// Link `span` to the span a W3C `traceparent` names (a batch that folds the
/// events of many traces links to each).
pub fn add_link(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt;
    if let Some(cx) = extract(traceparent) {
        span.add_link(cx.span().span_context().clone());
    }
}

/// The W3C `traceparent` of the current span, if it belongs to a trace.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_export_follows_the_standard_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Traces::from_vars(vars(&[])).unwrap(), Traces::Off);
        assert_eq!(
            Traces::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])).unwrap(),
            Traces::Otlp("http://c:4318/v1/traces".into())
        );
        assert_eq!(
            Traces::from_vars(vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/x"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ]))
            .unwrap(),
            Traces::Otlp("http://t/x".into())
        );
        assert_eq!(
            Traces::from_vars(vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ]))
            .unwrap(),
            Traces::Off
        );
        let grpc = Traces::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert!(matches!(grpc, Err(TelemetryError::Protocol(p)) if p == "grpc"));
    }

    #[test]
    fn spans_carry_a_w3c_traceparent() {
        assert!(current_traceparent().is_none(), "no span, no trace");
        init(LogFormat::Text, "info", true, "test", &Traces::Off).unwrap();
        let span = tracing::info_span!("scan");
        let tp = span.in_scope(current_traceparent).expect("a traceparent");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
        // Across a hop: a span whose parent is that traceparent is in its trace.
        let remote = tracing::info_span!("task");
        set_parent(&remote, &tp);
        let child = remote.in_scope(current_traceparent).unwrap();
        assert_eq!(child.split('-').nth(1), Some(parts[1]), "same trace");
        assert_ne!(child.split('-').nth(2), Some(parts[2]), "its own span");
        let ignored = tracing::info_span!("other");
        set_parent(&ignored, "not a traceparent");
        let own = ignored.in_scope(current_traceparent).unwrap();
        assert_ne!(own.split('-').nth(1), Some(parts[1]));
    }
}
