//! The `inventory` binary end to end: `up` with configuration from the
//! environment, `collect` over NATS, Ctrl-C (SIGINT) for a clean stop.

use std::process::Stdio;
use std::time::Duration;

use inventory_integration_tests::{Moto, command, free_addr, fresh_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_up_serves_the_fleet_and_collect_requests_work() {
    let moto = Moto::start().await;
    let ec2 = moto.ec2("us-east-1");
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.3.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    let (_, db_url) = fresh_store().await;
    let api = free_addr();
    let prefix = format!("cli{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let envs = [
        (
            "NATS_URL",
            std::env::var("INVENTORY_TEST_NATS_URL").unwrap(),
        ),
        ("DATABASE_URL", db_url),
        ("INVENTORY_SUBJECT_PREFIX", prefix),
        ("INVENTORY_API_ADDR", api.to_string()),
        ("INVENTORY_AWS_REGIONS", "us-east-1".into()),
        ("INVENTORY_COLLECT_INTERVAL", "1h".into()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    let mut up = command(&envs)
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The collection at start lands in the API.
    let client = reqwest::Client::new();
    let url = format!("http://{api}/api/v1/aws/vpcs/{vpc_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = client.get(&url).send().await
            && resp.status().as_u16() == 200
        {
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["vpc_id"], vpc_id.as_str());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inventory up never served {url}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = client
        .get(format!("http://{api}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let out = command(&envs)
        .args(["collect", "aws", "subnets", "--region", "us-east-1"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(reply["request_id"].is_string(), "{reply}");

    let out = command(&envs)
        .args(["collect", "aws", "teapots"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["error"]["code"], "unknown_kind");

    // Ctrl-C stops it cleanly.
    let pid = up.id().unwrap() as i32;
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), up.wait())
        .await
        .expect("up stops on SIGINT")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
