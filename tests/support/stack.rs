//! The two services as real child processes — the `users` and `mailer` binaries that
//! production runs — configured only through `FACTEUR_*` variables, each in its own temporary
//! folder, so a test can kill one with SIGKILL and start it again.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use testkit::free_port;
use testkit::smtp::{Mail, SmtpSink};

/// Which transport a stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// socket.io: users is a client of the mailer.
    Socketio,
    /// AMQP through the machine's RabbitMQ.
    Amqp,
}

impl Kind {
    /// The value of `transport.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Socketio => "socketio",
            Kind::Amqp => "amqp",
        }
    }
}

/// The admin token the stacks use.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The service token the stacks use.
pub const SERVICE_TOKEN: &str = "test-service-token";

/// Where cargo put the workspace's binaries (next to this test binary's `deps/` folder), or
/// the folder `FACTEUR_BIN_DIR` names: another build's, for benchmarks side by side.
fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("FACTEUR_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>")
                .to_path_buf()
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo test --workspace` builds it)",
        path.display()
    );
    path
}

/// Both services, their folder and the SMTP server they send to.
pub struct Stack {
    /// The transport.
    pub kind: Kind,
    /// The SMTP server mails go to.
    pub smtp: SmtpSink,
    dir: TempDir,
    env: Vec<(String, String)>,
    users_port: u16,
    mailer_port: u16,
    users: Option<Child>,
    mailer: Option<Child>,
    http: reqwest::Client,
}

impl Stack {
    /// Starts mailer then users on `kind`, sending to `smtp`, and waits for both `/health`.
    pub async fn start(kind: Kind, smtp: SmtpSink) -> Stack {
        let mut stack = Stack::configure(kind, smtp);
        stack.start_mailer().await;
        stack.start_users().await;
        stack
    }

    /// Prepares the configuration without starting anything.
    pub fn configure(kind: Kind, smtp: SmtpSink) -> Stack {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let users_port = free_port();
        let mailer_port = free_port();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let d = dir.path().display().to_string();
        let env = [
            ("FACTEUR_TRANSPORT__KIND", kind.as_str().to_string()),
            (
                "FACTEUR_TRANSPORT__SOCKETIO__URL",
                format!("http://127.0.0.1:{mailer_port}"),
            ),
            (
                "FACTEUR_TRANSPORT__SOCKETIO__TOKEN",
                SERVICE_TOKEN.to_string(),
            ),
            (
                "FACTEUR_TRANSPORT__AMQP__EXCHANGE",
                format!("facteur.e2e.{suffix}"),
            ),
            (
                "FACTEUR_TRANSPORT__AMQP__QUEUE",
                format!("facteur.e2e.{suffix}.requests"),
            ),
            ("FACTEUR_USERS__LISTEN", format!("127.0.0.1:{users_port}")),
            (
                "FACTEUR_USERS__DATABASE",
                format!("sqlite://{d}/users.db?mode=rwc"),
            ),
            ("FACTEUR_USERS__ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            // Tests and benches create many accounts from 127.0.0.1: the rate limits are off
            // (users/tests covers them).
            (
                "FACTEUR_USERS__LIMITS__LOGIN_FAILURES_PER_LOGIN",
                "0".to_string(),
            ),
            (
                "FACTEUR_USERS__LIMITS__LOGIN_FAILURES_PER_CLIENT",
                "0".to_string(),
            ),
            (
                "FACTEUR_USERS__LIMITS__RESET_MAILS_PER_ADDRESS",
                "0".to_string(),
            ),
            ("FACTEUR_USERS__LIMITS__RESETS_PER_CLIENT", "0".to_string()),
            ("FACTEUR_USERS__LIMITS__CREATES_PER_CLIENT", "0".to_string()),
            // So is the per-client connection cap: every test client is 127.0.0.1
            // (tests/http_limits.rs turns it on).
            ("FACTEUR_USERS__MAX_CONNECTIONS_PER_CLIENT", "0".to_string()),
            (
                "FACTEUR_MAILER__MAX_CONNECTIONS_PER_CLIENT",
                "0".to_string(),
            ),
            (
                "FACTEUR_USERS__RESET_URL",
                format!("http://127.0.0.1:{users_port}/password-resets/{{token}}"),
            ),
            ("FACTEUR_MAILER__LISTEN", format!("127.0.0.1:{mailer_port}")),
            (
                "FACTEUR_MAILER__DATABASE",
                format!("sqlite://{d}/mailer.db?mode=rwc"),
            ),
            ("FACTEUR_MAILER__SMTP__HOST", "127.0.0.1".to_string()),
            ("FACTEUR_MAILER__SMTP__PORT", smtp.port().to_string()),
            ("FACTEUR_MAILER__SMTP__TLS", "none".to_string()),
            ("FACTEUR_MAILER__MAX_ATTEMPTS", "30".to_string()),
            ("FACTEUR_MAILER__OUTBOX_DIR", format!("{d}/mail")),
            ("FACTEUR_LOG__LEVEL", "warn".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Stack {
            kind,
            smtp,
            dir,
            env,
            users_port,
            mailer_port,
            users: None,
            mailer: None,
            http: reqwest::Client::new(),
        }
    }

    /// Adds or replaces one variable for the processes started after this call.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Removes one variable for the processes started after this call.
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    fn spawn(&self, name: &str) -> Child {
        self.spawn_with(name, name, &[])
    }

    /// Starts another instance of `program` (`users` or `mailer`) with some variables changed,
    /// logging to `<log_name>.log`. The caller owns the child.
    pub fn spawn_with(&self, program: &str, log_name: &str, overrides: &[(&str, String)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{log_name}.log")))
            .expect("a log file");
        let env = self
            .env
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(overrides.iter().map(|(k, v)| (*k, v.as_str())));
        Command::new(binary(program))
            .current_dir(self.dir.path())
            .env_remove("FACTEUR_CONFIG")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
    }

    /// The folder both services run in (their SQLite databases, `users.db` and `mailer.db`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The users service's base URL.
    pub fn users_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.users_port)
    }

    /// The mailer's base URL.
    pub fn mailer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.mailer_port)
    }

    /// A service's log so far (for failure messages).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits until `url/health` answers 200, failing with `name`'s log after 30 s.
    pub async fn wait_healthy(&self, name: &str, url: String) {
        let healthy = testkit::eventually(Duration::from_secs(30), || async {
            self.http
                .get(format!("{url}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        assert!(
            healthy,
            "{name} did not become healthy within 30 s; its log:\n{}",
            self.log(name)
        );
    }

    /// Starts the mailer and waits until it is healthy.
    pub async fn start_mailer(&mut self) {
        assert!(self.mailer.is_none(), "the mailer is already running");
        self.mailer = Some(self.spawn("mailer"));
        self.wait_healthy("mailer", self.mailer_url()).await;
    }

    /// Starts users and waits until it is healthy.
    pub async fn start_users(&mut self) {
        assert!(self.users.is_none(), "users is already running");
        self.users = Some(self.spawn("users"));
        self.wait_healthy("users", self.users_url()).await;
    }

    /// Kills the mailer with SIGKILL: no chance to finish anything.
    pub fn kill_mailer(&mut self) {
        if let Some(mut child) = self.mailer.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills users with SIGKILL.
    pub fn kill_users(&mut self) {
        if let Some(mut child) = self.users.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the mailer with SIGTERM and waits for its exit code.
    pub async fn terminate_mailer(&mut self) -> Option<i32> {
        let mut child = self.mailer.take()?;
        terminate(&mut child).await
    }

    /// Stops users with SIGTERM and waits for its exit code.
    pub async fn terminate_users(&mut self) -> Option<i32> {
        let mut child = self.users.take()?;
        terminate(&mut child).await
    }

    /// `POST /users` with a generated account; returns the created user.
    pub async fn create_user(&self, login: &str) -> Value {
        self.create_user_at(&self.users_url(), login).await
    }

    /// The same against the users instance at `base_url`.
    pub async fn create_user_at(&self, base_url: &str, login: &str) -> Value {
        let body = json!({
            "login": login,
            "email": format!("{login}@example.com"),
            "password": "correct horse battery",
            "first_name": "Ada",
            "last_name": "Lovelace",
        });
        let response = self
            .http
            .post(format!("{base_url}/users"))
            .json(&body)
            .send()
            .await
            .expect("POST /users");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "POST /users answered {status}: {text}"
        );
        serde_json::from_str(&text).expect("a JSON user")
    }

    /// Every mail the sink holds once nothing is left to send: the users outbox is empty and
    /// the mailer's store holds no delivery queued, being handed over or waiting for a retry.
    /// A late copy (a resend after a crash) would be among them by then.
    pub async fn settled_mails(&self) -> Vec<Mail> {
        let settled = testkit::eventually(Duration::from_secs(60), || self.nothing_left()).await;
        assert!(
            settled,
            "the stack still had mails to send after 60 s; users log:\n{}\nmailer log:\n{}",
            self.log("users"),
            self.log("mailer")
        );
        self.smtp.mails()
    }

    async fn nothing_left(&self) -> bool {
        // A stack of mailers alone (the cluster tests) has no users outbox to wait for.
        if self.users.is_some() {
            let health = self.get_json(format!("{}/health", self.users_url()), None);
            if health.await.is_none_or(|h| h["outbox"]["pending"] != 0) {
                return false;
            }
        }
        for status in ["queued", "retrying"] {
            let url = format!("{}/mails?status={status}&per_page=1", self.mailer_url());
            let listed = self.get_json(url, Some(SERVICE_TOKEN)).await;
            if listed.is_none_or(|l| l["total"] != 0) {
                return false;
            }
        }
        true
    }

    async fn get_json(&self, url: String, token: Option<&str>) -> Option<Value> {
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.ok()?.json().await.ok()
    }

    /// A request to the users API with the admin token.
    pub fn users_admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.users_url()))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// A service's `/metrics` text.
    pub async fn metrics_text(&self, base_url: &str) -> String {
        self.http
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The sum of a counter or gauge (all label sets) in a service's `/metrics`.
    pub async fn metric(&self, base_url: &str, name: &str) -> f64 {
        metric_sum(&self.metrics_text(base_url).await, name)
    }

    /// The process ids of users and mailer (0 when one is not running); for benches/stack.rs.
    #[allow(dead_code)]
    pub fn pids(&self) -> (u32, u32) {
        (
            self.users.as_ref().map_or(0, Child::id),
            self.mailer.as_ref().map_or(0, Child::id),
        )
    }

    /// Closes the keep-alive connections the stack's own HTTP client holds (a new client takes
    /// its place), so that a test can count on every connection the services serve.
    pub fn drop_pooled_connections(&mut self) {
        self.http = reqwest::Client::new();
    }

    /// A plain HTTP client for anything else.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Sends SIGTERM and waits (up to 30 s) for the exit code.
pub async fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let mut code = None;
    let exited = testkit::eventually(Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.try_wait() {
            code = status.code();
            return std::future::ready(true);
        }
        std::future::ready(false)
    })
    .await;
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    code
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill_users();
        self.kill_mailer();
    }
}

/// The sum of every sample of `name` (any labels) in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    metric_sum_with(text, name, &[])
}

/// The sum of the samples of `name` whose labels contain each of `labels` (`status="sent"`).
pub fn metric_sum_with(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}
