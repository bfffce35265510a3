//! Traces over OTLP against real nats-server, PostgreSQL and moto, received
//! by a small OTLP/HTTP receiver in the test: one collection requested over
//! REST is one trace — the HTTP request, the collection request that crossed
//! NATS to a collector, the task that crossed the work queue, its scan, each
//! provider call and publish — and the projector's batch span links to that
//! trace across the event stream, whose version rows keep its id.

use std::time::Duration;

use inventory_integration_tests::otlp::{OtlpReceiver, ReceivedSpan};
use inventory_integration_tests::{Moto, TestEnv, wait_for_task};
use inventory_telemetry::{LogFormat, Traces};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const REGION: &str = "us-east-1";

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_collection_is_one_trace_across_the_nats_hops() {
    let receiver = OtlpReceiver::start();
    // Before the harness installs its subscriber: this one exports.
    let telemetry = inventory_telemetry::init(
        LogFormat::Text,
        "warn",
        true,
        "inventory-test",
        &Traces::Otlp(format!("{}/v1/traces", receiver.url)),
    )
    .expect("the first subscriber of this process");
    let env = TestEnv::new().await;
    let moto = Moto::start().await;
    let ec2 = moto.ec2(REGION);
    for i in 0..3 {
        ec2.create_vpc()
            .cidr_block(format!("10.{i}.0.0/16"))
            .send()
            .await
            .unwrap();
    }
    let stop = CancellationToken::new();
    let collector = env.collector(moto.sdk_config(), &[REGION]);
    tokio::spawn(collector.run(stop.clone()));
    tokio::spawn(env.projector(&env.store, "tables", 500).run(stop.clone()));
    let api = env.api();

    let id = api
        .collect(json!({"source": "aws", "kind": "vpcs", "regions": [REGION]}))
        .await;
    assert_eq!(wait_for_task(&env, &id).await.state.as_str(), "completed");
    // Read after the task: its events are folded.
    let (status, _) = api.get(&format!("/api/v1/aws/vpcs?after_task={id}")).await;
    assert_eq!(status, 200);
    telemetry.flush();

    let spans = receiver
        .wait_for("a batch span linked to the collection", |spans| {
            spans
                .iter()
                .any(|s| s.name == "fold batch" && !s.links.is_empty())
                && spans.iter().any(|s| {
                    s.name == "http request" && s.attribute("http.route") == Some("/api/v1/collect")
                })
        })
        .await;
    let request = *named(&spans, "http request")
        .iter()
        .find(|s| s.attribute("http.route") == Some("/api/v1/collect"))
        .unwrap();
    assert_eq!(request.service, "inventory-test");
    assert_eq!(request.attribute("http.method"), Some("POST"));
    assert_eq!(request.attribute("http.status_code"), Some("202"));
    let trace = request.trace_id.clone();
    let in_trace = |name: &str| -> Vec<&ReceivedSpan> {
        named(&spans, name)
            .into_iter()
            .filter(|s| s.trace_id == trace)
            .collect()
    };

    // The request crossed NATS to a collector: its intake is a child of the
    // HTTP request's span.
    let intake = in_trace("collect request");
    assert_eq!(intake.len(), 1, "{spans:#?}");
    assert_eq!(intake[0].parent_span_id, request.span_id);
    // The task crossed the work queue: its attempt belongs to the trace.
    let task = in_trace("task");
    assert_eq!(task.len(), 1);
    assert_eq!(task[0].attribute("task_id"), Some(id.as_str()));
    assert_eq!(task[0].parent_span_id, intake[0].span_id);
    // Its scan, its provider calls and its publishes.
    let scan = in_trace("scan");
    assert_eq!(scan.len(), 1);
    assert_eq!(scan[0].attribute("kind"), Some("vpc"));
    assert_eq!(scan[0].parent_span_id, task[0].span_id);
    let calls = in_trace("provider call");
    assert!(
        calls
            .iter()
            .any(|c| c.attribute("api") == Some("DescribeVpcs")
                && c.attribute("region") == Some(REGION)
                && c.attribute("attempt") == Some("1")),
        "{calls:#?}"
    );
    let publishes = in_trace("publish");
    assert!(!publishes.is_empty());
    assert!(
        publishes
            .iter()
            .chain(
                calls
                    .iter()
                    .filter(|c| c.attribute("api") == Some("DescribeVpcs"))
            )
            .all(|s| s.parent_span_id == scan[0].span_id)
    );

    // Across the event stream: the projector's batch links to the scan that
    // published the events.
    let batches: Vec<&ReceivedSpan> = named(&spans, "fold batch")
        .into_iter()
        .filter(|b| b.links.iter().any(|(t, _)| *t == trace))
        .collect();
    assert!(!batches.is_empty(), "{spans:#?}");
    assert!(
        batches
            .iter()
            .flat_map(|b| &b.links)
            .any(|(t, s)| *t == trace && *s == scan[0].span_id)
    );
    assert_eq!(batches[0].attribute("projection"), Some("tables"));

    // And the version rows keep the trace id.
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query("SELECT DISTINCT trace_id FROM aws_vpc_version", &[])
        .await
        .unwrap();
    let ids: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![Some(trace.clone())]);

    // API reads are spans with their database queries.
    let read = named(&spans, "http request")
        .into_iter()
        .find(|s| s.attribute("http.route") == Some("/api/v1/{source}/{kinds}"))
        .expect("the read's span");
    let queries: Vec<_> = named(&spans, "db query")
        .into_iter()
        .filter(|q| q.trace_id == read.trace_id)
        .collect();
    assert!(
        queries
            .iter()
            .any(|q| q.attribute("db.operation") == Some("list")
                && q.attribute("db.system") == Some("postgresql")),
        "{queries:#?}"
    );
    // A task nobody traced (a schedule, a bare NATS request) gets a trace of
    // its own, which each of its attempts belongs to.
    let untraced = match env
        .bus
        .intake(
            "aws",
            "subnets",
            Ok(inventory_model::CollectRequest::default()),
            None,
            None,
        )
        .await
        .unwrap()
    {
        inventory_bus::Intake::Accepted(s) => s.task,
        other => panic!("{other:?}"),
    };
    let tp = untraced
        .spec
        .traceparent
        .clone()
        .expect("a trace of its own");
    assert_ne!(tp.split('-').nth(1), Some(trace.as_str()));
    assert_eq!(
        wait_for_task(&env, &untraced.spec.id).await.state.as_str(),
        "completed"
    );
    telemetry.flush();
    let own = tp.split('-').nth(1).unwrap().to_owned();
    let spans = receiver
        .wait_for("the untraced task's attempt", |spans| {
            spans.iter().any(|s| s.name == "task" && s.trace_id == own)
        })
        .await;
    assert!(spans.iter().any(|s| s.name == "scan" && s.trace_id == own));
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
}
