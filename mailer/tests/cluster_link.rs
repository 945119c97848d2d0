//! `mailer.cluster` when Redis is not there: the mailer starts anyway, accepts and sends,
//! says `cluster: "disconnected"`, and joins once a real Redis (a `redis-server` of this
//! test's own, on a port nobody else uses) answers on that address, with no restart.

use crate::common::{fast_options, mail_request, spawn_with, test_config};
use crate::store_backends::{drop_postgres, fresh_postgres};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` child on `port`, stopped when dropped.
struct RedisChild(Child);

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn cluster_state(http: &reqwest::Client, base: &str) -> serde_json::Value {
    let health: serde_json::Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("/health answers")
        .json()
        .await
        .expect("JSON");
    health["cluster"].clone()
}

#[tokio::test]
async fn a_mailer_without_its_redis_starts_sends_and_joins_the_cluster_when_redis_answers() {
    let test = "a_mailer_without_its_redis_starts_sends_and_joins_the_cluster_when_redis_answers";
    let installed = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        testkit::skip_or_fail(test, "redis-server is not installed (Debian: redis-server)");
        return;
    }
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    let port = free_port();
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.mailer.database = url;
    config.mailer.cluster = Some(domain::config::ClusterConfig {
        redis_url: format!("redis://127.0.0.1:{port}"),
    });
    let mut app = spawn_with(config, fast_options(), std::sync::Arc::new(dir)).await;

    assert_eq!(cluster_state(&app.http, &app.base).await, "disconnected");
    let request = mail_request("welcome", "en");
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post_mail(&request).await.0,
        202,
        "accepted without Redis"
    );
    app.wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;

    let _redis = RedisChild(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    testkit::eventually(Duration::from_secs(10), || async {
        cluster_state(&app.http, &app.base).await == "connected"
    })
    .await;
    let state = cluster_state(&app.http, &app.base).await;
    assert_eq!(state, "connected", "the link joins once Redis answers");
    let again = mail_request("welcome", "en");
    assert_eq!(app.post_mail(&again).await.0, 202);
    app.wait_for_status(
        again["id"].as_str().unwrap(),
        "sent",
        Duration::from_secs(10),
    )
    .await;
    app.stop().await;
    drop_postgres(&name).await;
}
