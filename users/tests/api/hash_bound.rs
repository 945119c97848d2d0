//! Password hashing is bounded: a full queue answers 503 at once, and a request whose client
//! has gone away costs no hash.

use crate::helpers::{Backend, spawn_app_configured};
use futures_util::future::join_all;
use serde_json::json;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_queue_answers_503_with_retry_after_1() {
    let app = spawn_app_configured(Backend::Sqlite, |config| {
        config.users.max_pending_hashes = 1;
    })
    .await;
    app.create_user("ada").await;
    let login = json!({"login": "ada", "password": "ada-secret-pw"});

    let answers = join_all((0..16).map(|_| app.post("/authenticate", &login))).await;

    let busy: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(!busy.is_empty(), "no 503 among {:?}", statuses(&answers));
    for answer in &busy {
        answer.assert_error(503, "unavailable");
        assert_eq!(answer.headers["retry-after"], "1");
    }
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 503),
        "{:?}",
        statuses(&answers)
    );
    assert!(
        app.metrics()
            .await
            .contains("password_hashes_refused_total")
    );
}

fn statuses(answers: &[crate::helpers::TestResponse]) -> Vec<u16> {
    answers.iter().map(|a| a.status).collect()
}

/// The users binary as a child process, so that its CPU time is its own.
struct UsersProcess {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for UsersProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl UsersProcess {
    /// User plus system CPU time of the child so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the child's /proc stat");
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("a stat line")
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // The kernel's USER_HZ is 100 on every Linux ABI this runs on.
        Duration::from_millis(ticks * 10)
    }

    /// Waits until the child's CPU time stops growing (at most 60 s) and returns it.
    async fn settled_cpu(&self) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = self.cpu();
        let mut still = 0;
        while still < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.cpu();
            // The relay's poll and the transport's reconnects cost a tick now and then.
            if now <= last + Duration::from_millis(10) {
                still += 1;
            } else {
                still = 0;
            }
            last = now;
        }
        last
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

const MAX_PENDING: usize = 8;

fn start_users_binary() -> UsersProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Nothing listens on the transport's port: the outbox keeps its rows, which is fine here.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = dir.path().join("config.yaml");
    let mut file = std::fs::File::create(&config).expect("a config file");
    write!(
        file,
        "transport:\n  kind: socketio\n  socketio:\n    url: http://127.0.0.1:{dead_port}\n\
         users:\n  listen: 127.0.0.1:{port}\n  database: sqlite://{}/users.db?mode=rwc\n  \
         admin_token: hash-bound-admin-token\n  max_pending_hashes: {MAX_PENDING}\n  \
         max_connections_per_client: 0\n  limits:\n    \
         login_failures_per_login: 0\n    login_failures_per_client: 0\n    \
         creates_per_client: 0\nlog:\n  level: error\n",
        dir.path().display()
    )
    .expect("write the config");
    let child = Command::new(env!("CARGO_BIN_EXE_users"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the users binary starts");
    UsersProcess {
        child,
        port,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_logins_cost_no_hash_and_a_correct_login_still_answers_within_a_second() {
    let users = start_users_binary();
    let client = reqwest::Client::new();
    let started = testkit::eventually(Duration::from_secs(30), || async {
        client.get(users.url("/health")).send().await.is_ok()
    })
    .await;
    assert!(started, "users did not start");
    let created = client
        .post(users.url("/users"))
        .json(&crate::helpers::ada("ada"))
        .send()
        .await
        .expect("a create");
    assert_eq!(created.status(), 201);
    let login = |password: &str| {
        client
            .post(users.url("/authenticate"))
            .json(&json!({"login": "ada", "password": password}))
            .send()
    };
    // One hash's CPU time, with its request around it.
    let before = users.settled_cpu().await;
    for _ in 0..4 {
        assert_eq!(login("ada-secret-pw").await.expect("a login").status(), 200);
    }
    let per_hash = (users.settled_cpu().await - before) / 4;

    // Hundreds of logins whose clients send the request, wait a little so that each one
    // reaches the hashing queue, and hang up without reading the answer.
    let before = users.cpu();
    let body = json!({"login": "ada", "password": "not-the-password"}).to_string();
    let request = format!(
        "POST /authenticate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut abandoned = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(("127.0.0.1", users.port))
            .await
            .expect("a connection");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("the request is written");
        abandoned.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(abandoned);

    let asked = Instant::now();
    let answer = login("ada-secret-pw").await.expect("a login");
    let took = asked.elapsed();
    let flood = users.settled_cpu().await - before;

    assert!(took < Duration::from_secs(1), "the login took {took:?}");
    let status = answer.status().as_u16();
    assert!(
        status == 200
            || (matches!(status, 429 | 503) && answer.headers().contains_key("retry-after")),
        "status {status}"
    );
    // At most the queue's worth of hashes (and the one of the correct login), plus the work of
    // reading 300 small requests.
    let bound = per_hash * (MAX_PENDING as u32 + 2) + Duration::from_millis(1500);
    assert!(
        flood <= bound,
        "the flood cost {flood:?} of CPU; one hash costs {per_hash:?}, bound {bound:?}"
    );
}
