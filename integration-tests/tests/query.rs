//! The list query language (issue 16): operators, tag filters, sort with
//! keyset paging under concurrent writes, fields, group_by and exports, on
//! real NATS and PostgreSQL through the projector.

use std::collections::{BTreeMap, BTreeSet};

use inventory_integration_tests::TestEnv;
use inventory_integration_tests::synthetic::envelope;
use inventory_model::{Envelope, EventType};
use serde_json::{Value, json};

const R: Option<&str> = Some("us-east-1");

/// Instance `i`: state, type, launch day, tags and a public address vary with
/// `i` so that every operator has rows on both sides.
fn instance(i: usize) -> Value {
    let state = ["running", "stopped", "terminated"][i % 3];
    let mut tags = vec![
        json!({"key": "Name", "value": format!("{}-{i:02}", if i.is_multiple_of(2) { "web" } else { "db" })}),
        json!({"key": "env", "value": if i.is_multiple_of(4) { "prod" } else { "dev" }}),
    ];
    if i.is_multiple_of(5) {
        tags.push(json!({"key": "kubernetes.io/cluster/blue sky", "value": "owned"}));
    }
    let instance_type = ["t3.micro", "m5.large", "c6g.xlarge"][i % 3 / 2 + i % 2];
    let mut v = json!({
        "instanceId": format!("i-{i:05}"),
        "vpcId": format!("vpc-{}", i % 3),
        "instanceType": instance_type,
        "instanceState": {"name": state},
        "launchTime": format!("2026-11-{:02}T00:00:00.000Z", 1 + i % 20),
        "tagSet": tags,
    });
    if !i.is_multiple_of(3) {
        v["ipAddress"] = json!(format!("203.0.113.{i}"));
    }
    v
}

fn created(i: usize) -> Envelope {
    envelope(
        EventType::ResourceCreated,
        "instance",
        R,
        "s1",
        Some(&format!("i-{i:05}")),
        Some(instance(i)),
    )
}

async fn seeded(n: usize) -> TestEnv {
    let env = TestEnv::new().await;
    let events: Vec<Envelope> = (0..n).map(created).collect();
    env.bus.publish_events(&events, None).await.unwrap();
    env.project_default().await;
    env
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ids of instances `0..n` for which `keep` holds, sorted.
fn expected(n: usize, keep: impl Fn(usize, &Value) -> bool) -> Vec<String> {
    (0..n)
        .filter(|&i| keep(i, &instance(i)))
        .map(|i| format!("i-{i:05}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_tag_filters_select_exactly_their_rows() {
    let n = 30;
    let env = seeded(n).await;
    let api = env.api();
    let list = |q: &str| {
        let api = &api;
        let path = format!("/api/v1/aws/instances?{q}");
        async move {
            let mut got = ids(&api.all(&path).await);
            got.sort();
            got
        }
    };
    let state = |i: usize| ["running", "stopped", "terminated"][i % 3];
    assert_eq!(
        list("state=running").await,
        expected(n, |i, _| state(i) == "running")
    );
    assert_eq!(list("state[eq]=running").await, list("state=running").await);
    assert_eq!(
        list("state[ne]=running").await,
        expected(n, |i, _| state(i) != "running")
    );
    assert_eq!(
        list("state[in]=running,stopped").await,
        expected(n, |i, _| state(i) != "terminated")
    );
    assert_eq!(
        list("state[nin]=running,stopped").await,
        expected(n, |i, _| state(i) == "terminated")
    );
    // `*` is the only wildcard, and case does not matter.
    assert_eq!(
        list("name[like]=WEB-*").await,
        expected(n, |i, _| i % 2 == 0)
    );
    assert_eq!(
        list("name[like]=web-1*").await,
        expected(n, |i, _| i % 2 == 0 && (10..20).contains(&i))
    );
    assert_eq!(list("name[like]=web_1*").await, Vec::<String>::new());
    // Timestamps compare as times, not text.
    let day = |i: usize| 1 + i % 20;
    assert_eq!(
        list("launch_time[gte]=2026-11-15T00:00:00Z").await,
        expected(n, |i, _| day(i) >= 15)
    );
    assert_eq!(
        list("launch_time[lt]=2026-11-03T00:00:00%2B00:00").await,
        expected(n, |i, _| day(i) < 3)
    );
    assert_eq!(
        list("launch_time[gt]=2026-11-05T00:00:00Z&launch_time[lte]=2026-11-06T00:00:00Z").await,
        expected(n, |i, _| day(i) == 6)
    );
    // Text ranges compare as text.
    assert_eq!(
        list("instance_id[gt]=i-00027").await,
        expected(n, |i, _| i > 27)
    );
    assert_eq!(
        list("public_ip_address[null]=true").await,
        expected(n, |i, _| i % 3 == 0)
    );
    assert_eq!(
        list("public_ip_address[null]=false").await,
        expected(n, |i, _| i % 3 != 0)
    );
    // Tags: value, pattern, list, presence; keys with `/`, `.` and spaces.
    assert_eq!(list("tag.env=prod").await, expected(n, |i, _| i % 4 == 0));
    assert_eq!(
        list("tag.env[in]=prod,test").await,
        expected(n, |i, _| i % 4 == 0)
    );
    assert_eq!(
        list("tag.Name[like]=db-2*").await,
        expected(n, |i, _| i % 2 == 1 && (20..30).contains(&i))
    );
    let cluster = "tag.kubernetes.io%2Fcluster%2Fblue%20sky";
    assert_eq!(
        list(&format!("{cluster}[exists]=true")).await,
        expected(n, |i, _| i % 5 == 0)
    );
    assert_eq!(
        list(&format!("{cluster}[exists]=false")).await,
        expected(n, |i, _| i % 5 != 0)
    );
    assert_eq!(
        list(&format!("{cluster}=owned&tag.env=prod")).await,
        expected(n, |i, _| i % 20 == 0)
    );
    // Filters combine with `at=` (history answers the same way).
    assert_eq!(
        list("state[ne]=running&tag.env=prod&at=2030-01-01T00:00:00Z").await,
        expected(n, |i, _| state(i) != "running" && i % 4 == 0)
    );

    // An operator that does not fit the column's type names the allowed ones.
    let (status, body) = api
        .get("/api/v1/aws/instances?launch_time[like]=2026*")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_operator");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gte") && !message.contains("like,"),
        "{message}"
    );
    let (status, body) = api.get("/api/v1/aws/instances?launch_time[gt]=later").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_filter"))
    );
    let (status, body) = api.get("/api/v1/aws/instances?tag.env[exists]=maybe").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_filter"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_pages_return_every_steady_row_once_under_concurrent_writes() {
    let n = 60;
    let env = seeded(n).await;
    let api = env.api();
    // Sorted by launch day (descending, ties by name, then by key): the
    // order of the whole list, page by page.
    let path = "/api/v1/aws/instances?sort=-launch_time,name&limit=7";
    let (status, first) = api.get(path).await;
    assert_eq!(status, 200, "{first}");
    let mut seen: Vec<Value> = first["items"].as_array().unwrap().clone();
    let mut next = first["next"].as_str().map(str::to_owned);
    // Between pages, instances are created (ids after and before the ones
    // seen) and others deleted, and the projector folds them.
    let mut round = 0;
    let mut deleted = BTreeSet::new();
    while let Some(cursor) = next {
        round += 1;
        let mut events = vec![created(1000 + round), created(100 + round)];
        let gone = 3 * round + 1;
        if gone < n {
            deleted.insert(format!("i-{gone:05}"));
            events.push(envelope(
                EventType::ResourceDeleted,
                "instance",
                R,
                "s2",
                Some(&format!("i-{gone:05}")),
                None,
            ));
        }
        env.bus.publish_events(&events, None).await.unwrap();
        env.project_default().await;
        let (status, page) = api.get(&format!("{path}&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        next = page["next"].as_str().map(str::to_owned);
    }
    assert!(round >= 8, "pages of 7 over 60 rows: {round}");
    let got = ids(&seen);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &got {
        *counts.entry(id).or_default() += 1;
    }
    // Every row that existed for the whole paging came exactly once.
    for i in 0..n {
        let id = format!("i-{i:05}");
        if !deleted.contains(&id) {
            assert_eq!(counts.get(id.as_str()), Some(&1), "{id}: {got:?}");
        }
    }
    assert!(
        counts.values().all(|&c| c == 1),
        "a row came twice: {got:?}"
    );
    // And in the order asked for.
    let keys: Vec<(String, String)> = seen
        .iter()
        .map(|i| {
            (
                i["launch_time"].as_str().unwrap().to_owned(),
                i["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        keys.windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1)),
        "{keys:?}"
    );
    // Missing values sort last and page like any other.
    let by_ip = api
        .all("/api/v1/aws/instances?sort=public_ip_address&limit=4")
        .await;
    let ips: Vec<Option<&str>> = by_ip
        .iter()
        .map(|i| i["public_ip_address"].as_str())
        .collect();
    let firsts_null = ips.iter().position(Option::is_none).unwrap();
    assert!(ips[firsts_null..].iter().all(Option::is_none), "{ips:?}");
    assert_eq!(
        by_ip.len(),
        ids(&api.all("/api/v1/aws/instances").await).len()
    );
    // A cursor belongs to its sort.
    let (_, page) = api.get("/api/v1/aws/instances?sort=name&limit=2").await;
    let cursor = page["next"].as_str().unwrap();
    let (status, body) = api
        .get(&format!(
            "/api/v1/aws/instances?sort=-name&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, body) = api.get("/api/v1/aws/instances?sort=tags").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_sort"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_and_group_by_shape_the_answer() {
    let n = 24;
    let env = seeded(n).await;
    let api = env.api();
    let (status, page) = api
        .get("/api/v1/aws/instances?fields=instance_id,state,tags&limit=3&sort=instance_id")
        .await;
    assert_eq!(status, 200, "{page}");
    let first = &page["items"][0];
    assert_eq!(
        first,
        &json!({"instance_id": "i-00000", "state": "running",
                "tags": {"Name": "web-00", "env": "prod", "kubernetes.io/cluster/blue sky": "owned"}})
    );
    let (status, body) = api
        .get("/api/v1/aws/instances?fields=instance_id,raw")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_field"))
    );

    let (status, g) = api.get("/api/v1/aws/instances?group_by=region,state").await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["total"], n);
    let groups = g["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    for group in groups {
        assert_eq!(group["region"], "us-east-1");
        assert_eq!(group["count"], n / 3, "{group}");
    }
    // With filters, and counted as of an instant.
    let (_, g) = api
        .get("/api/v1/aws/instances?group_by=state&tag.env=prod&at=2030-01-01T00:00:00Z")
        .await;
    let counts: BTreeMap<String, u64> = g["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["state"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for i in (0..n).filter(|i| i % 4 == 0) {
        *want
            .entry(["running", "stopped", "terminated"][i % 3].to_owned())
            .or_default() += 1;
    }
    assert_eq!(counts, want);
    assert_eq!(g["total"], want.values().sum::<u64>());
    // Largest group first; `limit` caps the groups, not the total.
    let (_, g) = api
        .get("/api/v1/aws/instances?group_by=vpc_id,state&limit=2")
        .await;
    assert_eq!(g["groups"].as_array().unwrap().len(), 2);
    assert_eq!(
        (g["total"].as_u64(), g["truncated"].as_bool()),
        (Some(n as u64), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_every_row_as_csv_and_ndjson() {
    let n = 2500;
    let env = seeded(n).await;
    let api = env.api();
    let get = |path: &str, accept: Option<&str>| {
        let mut req = api.client.get(format!("{}{path}", api.base));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        async move {
            let resp = req.send().await.unwrap();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            (resp.status().as_u16(), ct, resp.text().await.unwrap())
        }
    };
    // NDJSON: every row (past the page limit), one JSON object per line.
    let (status, ct, body) = get("/api/v1/aws/instances?format=ndjson&state=stopped", None).await;
    assert_eq!((status, ct.as_str()), (200, "application/x-ndjson"));
    let rows: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got = ids(&rows);
    got.sort();
    assert_eq!(got, expected(n, |i, _| i % 3 == 1));
    // The same through Accept, with fields and sort.
    let (_, ct, body) = get(
        "/api/v1/aws/instances?fields=instance_id,launch_time&sort=-launch_time",
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(ct, "application/x-ndjson");
    let rows: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), n);
    assert!(
        rows.windows(2)
            .all(|w| w[0]["launch_time"].as_str() >= w[1]["launch_time"].as_str())
    );
    assert_eq!(rows[0].as_object().unwrap().len(), 2);

    // CSV: a header row, then a row per resource; tags as JSON, commas and
    // quotes escaped.
    let (status, ct, body) = get("/api/v1/aws/instances?tag.env=prod", Some("text/csv")).await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[..3], ["account_id", "region", "instance_id"]);
    let tags_at = header.iter().position(|h| h == "tags").unwrap();
    let ip_at = header
        .iter()
        .position(|h| h == "public_ip_address")
        .unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), expected(n, |i, _| i % 4 == 0).len());
    let zero = records.iter().find(|r| &r[2] == "i-00000").unwrap();
    let tags: Value = serde_json::from_str(&zero[tags_at]).unwrap();
    assert_eq!(tags["kubernetes.io/cluster/blue sky"], "owned");
    assert_eq!(&zero[ip_at], "");
    let (_, _, body) = get(
        "/api/v1/aws/instances?format=csv&fields=instance_id&state=running",
        None,
    )
    .await;
    assert_eq!(
        body.lines().count(),
        1 + expected(n, |i, _| i % 3 == 0).len()
    );
    // A bad export is a 4xx before anything streams.
    let (status, _, body) = get("/api/v1/aws/instances?format=csv&colour=red", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = get("/api/v1/aws/instances?format=csv&limit=5", None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_and_large_bodies_answer_in_json() {
    let env = TestEnv::new().await;
    let api = env.api();
    let url = |p: &str| format!("{}{p}", api.base);
    for (method, path, allow) in [
        (reqwest::Method::POST, "/api/v1/aws/instances", "GET"),
        (reqwest::Method::DELETE, "/api/v1/aws/instances/i-1", "GET"),
        (reqwest::Method::GET, "/api/v1/collect", "POST"),
        (reqwest::Method::PUT, "/api/v1/tasks/t-1", "GET, DELETE"),
    ] {
        let resp = api
            .client
            .request(method.clone(), url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"].to_str().unwrap(), allow);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    }
    let resp = api
        .client
        .post(url("/api/v1/collect"))
        .header("content-type", "application/json")
        .body(vec![b' '; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let (status, body) = api.get("/api/v1/no/such/route/at/all").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_timeout_is_a_503_query_timeout() {
    let env = seeded(3).await;
    let reader = env
        .store
        .reader()
        .with_statement_timeout(std::time::Duration::from_millis(300))
        .unwrap();
    let api = env.api_with(inventory_api::ApiState::new(reader, None));
    assert_eq!(api.get("/api/v1/aws/instances").await.0, 200);
    // A writer holding the table makes the list wait: PostgreSQL cancels it.
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("BEGIN; LOCK TABLE aws_instance IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let (status, body) = api.get("/api/v1/aws/instances?state=running").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("query_timeout")),
        "{body}"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(api.get("/api/v1/aws/instances?state=running").await.0, 200);
}

/// Resident set of a process now, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// Export `path` from the API process `pid`: the lines it streamed and the
/// highest resident set seen meanwhile (sampled every 5 ms).
async fn export_peak(base: &str, path: &str, pid: u32) -> (usize, u64) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            peak
        })
    };
    let mut resp = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut lines = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (lines, sampler.await.unwrap())
}

/// A 100,000-row export, measured on the `inventory api` process: its
/// resident set while exporting every row stays within 24 MiB of what it is
/// while exporting a tenth of them (memory that grew with the rows would add
/// 50 MiB or more: each row is over 500 bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_row_export_keeps_the_api_rss_flat() {
    let env = TestEnv::new().await;
    // A fixture of 100,000 rows, written straight into the table (the fold
    // is not what this measures).
    let (client, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "INSERT INTO aws_instance (account_id, region, instance_id, name, state, instance_type, \
             launch_time, tags, raw, content_hash, first_seen_at, last_seen_at, scan_id, seq) \
             SELECT '123456789012', 'us-east-1', 'i-' || lpad(i::text, 8, '0'), 'node-' || i, \
             CASE WHEN i % 10 = 0 THEN 'stopped' ELSE 'running' END, 'm5.large', \
             '2026-11-01T00:00:00Z'::timestamptz + i * interval '1 second', \
             jsonb_build_object('env', 'prod', 'team', 'team-' || (i % 50)), '{}', md5(i::text), \
             now(), now(), 'fixture', i FROM generate_series(1, 100000) i",
        )
        .await
        .unwrap();
    let addr = inventory_integration_tests::free_addr();
    let mut envs = env.cli_env();
    envs.push(("INVENTORY_API_ADDR", addr.to_string()));
    let mut api = inventory_integration_tests::command(&envs)
        .arg("api")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = api.id().unwrap();
    let base = format!("http://{addr}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "inventory api did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for format in ["csv", "ndjson"] {
        let header = usize::from(format == "csv");
        let (tenth, small) = export_peak(
            &base,
            &format!("/api/v1/aws/instances?format={format}&state=stopped"),
            pid,
        )
        .await;
        assert_eq!(tenth, 10_000 + header);
        let started = std::time::Instant::now();
        let (all, large) = export_peak(
            &base,
            &format!("/api/v1/aws/instances?format={format}"),
            pid,
        )
        .await;
        let took = started.elapsed();
        assert_eq!(all, 100_000 + header);
        eprintln!(
            "{format}: 100000 rows in {took:?} ({:.0} rows/s); api rss peak {} KiB (10000 rows: {} KiB)",
            100_000.0 / took.as_secs_f64(),
            large,
            small
        );
        assert!(
            large <= small + 24 * 1024,
            "{format}: rss grew with the row count: {small} KiB for 10000 rows, {large} KiB for 100000"
        );
    }
    api.kill().await.unwrap();
}
