//! Telemetry shared by every service: structured logs through `tracing`, and
//! OpenTelemetry trace context so that an event on the bus names the trace of
//! the operation that caused it (`traceparent` header).
//!
//! Architecture invariant: services log through `tracing` only (never `println!`);
//! the subscriber is installed once, by the binary (or a test harness).

use std::collections::HashMap;
use std::io::IsTerminal;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
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
    Json,
}

/// Install the global subscriber: `RUST_LOG` filtering (default `default_filter`),
/// text or JSON lines on stderr (or the test writer), and span contexts that carry
/// OpenTelemetry trace ids. Returns an error if a subscriber is already installed.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    test_writer: bool,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    // The log filter applies to log output only: spans that carry trace context
    // exist at INFO whatever `RUST_LOG` says, so events keep their trace.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let provider = SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("inventory"))
        .with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(otel);
    match (format, test_writer) {
        (LogFormat::Json, _) => registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        (LogFormat::Text, true) => registry
            .with(fmt::layer().with_test_writer().with_filter(filter))
            .try_init(),
        (LogFormat::Text, false) => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colour codes only for a person at a terminal, not in
                    // files and pipes.
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter),
            )
            .try_init(),
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
    fn spans_carry_a_w3c_traceparent() {
        assert!(current_traceparent().is_none(), "no span, no trace");
        init(LogFormat::Text, "info", true).unwrap();
        let span = tracing::info_span!("scan");
        let tp = span.in_scope(current_traceparent).expect("a traceparent");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
    }
}
