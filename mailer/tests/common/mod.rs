//! The mailer's own test harness, on the workspace's test kit: spawning the real mailer on
//! port 0 with its own SQLite file and outbox, its requests, and the peers only its tests use.

#![allow(dead_code)]

pub mod chromium;
pub mod node_smtp;
pub mod raw_ws;
pub mod retention;

use domain::Secret;
use domain::config::Config;
use mailer::{App, DeliveryOptions, MailerOptions};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `tests/js/node_modules` when `node` runs and `package` is installed there; otherwise the
/// kit's skip rule for `test`, and `None`.
pub fn node_package(test: &str, package: &str) -> Option<PathBuf> {
    testkit::node::modules(test, &[package])
}

/// The `mailer.smtp` section pointing at an SMTP server on `addr`, without TLS or login.
pub fn smtp_config(addr: std::net::SocketAddr) -> domain::config::SmtpConfig {
    domain::config::SmtpConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        username: None,
        password: None,
        tls: domain::config::SmtpTls::None,
    }
}

/// A running mailer and what it needs.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token.
    pub token: String,
    /// The configuration it runs with (port 0 replaced by the real port is not needed).
    pub config: Config,
    /// The options it runs with.
    pub options: MailerOptions,
    /// Holds the SQLite file and the outbox.
    pub dir: std::sync::Arc<TempDir>,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// With `mailer.bounces`, where its receiver listens.
    pub bounces: Option<std::net::SocketAddr>,
    deliveries: mailer::Deliveries,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), mailer::RunError>>>,
}

/// The suppression list's keys for a store a test opens by hand.
pub fn test_keys() -> mailer::SuppressionKeys {
    mailer::SuppressionKeys::new(&domain::Secret::new("the suppression key of the tests"))
}

/// Connects the store at `url` as the mailer does, with [`test_keys`].
pub async fn open_store(
    url: &str,
    counters: mailer::WriteCounters,
) -> Result<mailer::Store, mailer::ConnectError> {
    mailer::connect_store(url, counters, test_keys(), true).await
}

/// A configuration for one test: port 0, a fresh SQLite file and outbox in `dir`, a random token.
pub fn test_config(dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.mailer.listen = "127.0.0.1:0".parse().expect("a valid address");
    config.mailer.database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("mailer.db").display()
    );
    config.mailer.outbox_dir = dir.path().join("mail");
    config.transport.socketio.token = Secret::new(format!("token-{}", uuid::Uuid::new_v4()));
    // Every test client is 127.0.0.1, and some tests open thousands of sockets.
    config.mailer.max_connections_per_client = 0;
    config
}

/// The Python of the test peer in `tests/<peer>/.venv` when it can `import_check` (a Python
/// statement); otherwise the kit's skip rule for `test`, naming how to install it.
pub fn python_peer(test: &str, peer: &str, import_check: &str) -> Option<PathBuf> {
    let python = testkit::node::workspace().join(format!("tests/{peer}/.venv/bin/python"));
    let ready = std::process::Command::new(&python)
        .args(["-c", import_check])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Some(python);
    }
    testkit::skip::skip_or_fail(
        test,
        &format!(
            "the {peer} test peer is missing (python3 -m venv tests/{peer}/.venv && \
             tests/{peer}/.venv/bin/pip install -r tests/{peer}/requirements.txt)"
        ),
    );
    None
}

/// Short retries, for tests.
pub fn fast_options() -> MailerOptions {
    MailerOptions {
        delivery: DeliveryOptions {
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_millis(400),
            send_timeout: Duration::from_secs(5),
            workers: 8,
        },
        shutdown_grace: Duration::from_secs(5),
        retention: Default::default(),
    }
}

/// Starts a mailer writing `.eml` files.
pub async fn spawn_app() -> TestApp {
    let dir = TempDir::new().expect("a temporary directory");
    let config = test_config(&dir);
    spawn_with(config, fast_options(), std::sync::Arc::new(dir)).await
}

/// Starts a mailer with `config` and `options`, keeping `dir` alive.
pub async fn spawn_with(
    config: Config,
    options: MailerOptions,
    dir: std::sync::Arc<TempDir>,
) -> TestApp {
    testkit::log::init();
    let app = App::build_with(&config, options.clone())
        .await
        .expect("the mailer starts");
    let base = format!("http://{}", app.local_addr());
    let bounces = app.bounce_addr();
    let deliveries = app.deliveries();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        token: config.transport.socketio.token.expose().to_string(),
        config,
        options,
        dir,
        http: reqwest::Client::new(),
        bounces,
        deliveries,
        stop: Some(stop),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the mailer gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let result = tokio::time::timeout(Duration::from_secs(20), handle)
                .await
                .expect("the mailer stops within 20 s")
                .expect("the mailer task does not panic");
            result.expect("the mailer stops cleanly");
        }
    }

    /// Stops this mailer and starts a new one on the same database and outbox.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        config.mailer.listen = "127.0.0.1:0".parse().expect("a valid address");
        spawn_with(config, self.options.clone(), self.dir.clone()).await
    }

    /// Returns once every delivery due by now has been tried and recorded: what a test
    /// checks next cannot be changed by work still under way.
    pub async fn drain(&self) {
        tokio::time::timeout(Duration::from_secs(20), self.deliveries.drain())
            .await
            .expect("the pending deliveries are done within 20 s")
            .expect("the store answers");
    }

    /// The outbox directory.
    pub fn outbox(&self) -> PathBuf {
        self.config.mailer.outbox_dir.clone()
    }

    /// The mailer's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `POST /mails` with the token.
    pub async fn post_mail(&self, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/mails", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST /mails answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// `method path` with the token (and `body` as JSON): the status and the body, as JSON
    /// when it is JSON, as a string otherwise (`null` when empty).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the mailer answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(_) if text.is_empty() => Value::Null,
            Err(_) => Value::String(text),
        };
        (status, body)
    }

    /// `POST path` with the token and a JSON `body`.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with the token and a JSON `body`.
    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path` with the token.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// `GET path` with the token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Polls `GET /mails/{id}` until its status is `status`, for at most `within`.
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let last = std::sync::Mutex::new((0, Value::Null));
        let reached = testkit::eventually(within, || async {
            let (code, record) = self.get(&format!("/mails/{id}")).await;
            let done = code == 200 && record["status"] == status;
            *last.lock().expect("last lock") = (code, record);
            done
        })
        .await;
        let (code, record) = last.into_inner().expect("last lock");
        assert!(
            reached,
            "mail {id} did not reach {status} within {within:?}; last: {code} {record}"
        );
        record
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A valid mail request for `template` in `locale`, with a fresh id.
pub fn mail_request(template: &str, locale: &str) -> Value {
    let vars = match template {
        "welcome" => json!({"login": "ada"}),
        "account_updated" => json!({"changed": ["email", "first_name"]}),
        "password_reset" => {
            json!({"reset_url": "http://127.0.0.1:3000/password-resets/abc", "expires_at": "2026-11-27T09:00:00Z"})
        }
        "email_verification" => {
            json!({"verify_url": "http://127.0.0.1:3000/email-verifications/abc", "expires_at": "2026-11-29T08:00:00Z"})
        }
        "email_changed" => {
            json!({"new_email": "b\u{2026}@example.org", "changed_at": "2026-11-27T08:00:00Z"})
        }
        "password_changed" => json!({"changed_at": "2026-11-27T08:00:00Z"}),
        _ => json!({}),
    };
    json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "template": template,
        "locale": locale,
        "to": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "vars": vars,
        "requested_at": "2026-11-27T08:00:00Z",
    })
}

/// Stores a welcome mail to `email` and returns its id.
pub async fn send_to(app: &TestApp, email: &str) -> String {
    let mut request = mail_request("welcome", "en");
    request["to"]["email"] = email.into();
    let (code, answer) = app.post_mail(&request).await;
    assert_eq!(code, 202, "{email}: {answer}");
    assert_eq!(answer["status"], "accepted");
    request["id"].as_str().expect("an id").to_owned()
}

/// Runs the real binary on a fresh folder (its own port, SQLite file and outbox, logs at
/// `error`) with `env` over those, for a start that must be refused; answers its exit code
/// and everything it wrote.
pub async fn start_refused(env: &[(&str, &std::ffi::OsStr)]) -> (Option<i32>, String) {
    let dir = TempDir::new().unwrap();
    let d = dir.path().display();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailer"));
    command
        .current_dir(dir.path())
        .env_remove("FACTEUR_CONFIG")
        .env(
            "FACTEUR_MAILER__LISTEN",
            format!("127.0.0.1:{}", testkit::free_port()),
        )
        .env(
            "FACTEUR_MAILER__DATABASE",
            format!("sqlite://{d}/mailer.db?mode=rwc"),
        )
        .env("FACTEUR_MAILER__OUTBOX_DIR", format!("{d}/mail"))
        .env("FACTEUR_LOG__LEVEL", "error")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the mailer exits within 30 s")
        .expect("the mailer binary runs");
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), said)
}

/// The `.eml` files in the outbox.
pub fn outbox_files(app: &TestApp) -> Vec<PathBuf> {
    match std::fs::read_dir(app.outbox()) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The real `mailer` binary, started on a free port with its files in a temporary folder;
/// killed when dropped.
pub struct MailerProcess {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The service token.
    pub token: String,
    /// The process id, for `/proc/<pid>/status`.
    pub pid: u32,
    child: tokio::process::Child,
    _dir: TempDir,
}

impl MailerProcess {
    /// Starts the binary with `FACTEUR_*` variables for a fresh SQLite file and outbox, plus
    /// `env`, and waits for `/health`.
    pub async fn start(env: &[(&str, &str)]) -> MailerProcess {
        Self::start_in(TempDir::new().expect("a temporary directory"), env).await
    }

    /// Kills it with SIGKILL, then starts the binary again on the same files with `env`.
    pub async fn kill_and_restart(mut self, env: &[(&str, &str)]) -> MailerProcess {
        self.child.kill().await.expect("SIGKILL reaches the mailer");
        let dir = std::mem::replace(
            &mut self._dir,
            TempDir::new().expect("a temporary directory"),
        );
        Self::start_in(dir, env).await
    }

    async fn start_in(dir: TempDir, env: &[(&str, &str)]) -> MailerProcess {
        let addr = format!("127.0.0.1:{}", testkit::free_port());
        let base = format!("http://{addr}");
        let token = format!("token-{}", uuid::Uuid::new_v4());
        let d = dir.path().display();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("mailer.log"))
            .expect("a log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailer"))
            .current_dir(dir.path())
            .env_remove("FACTEUR_CONFIG")
            .env("FACTEUR_MAILER__LISTEN", &addr)
            .env(
                "FACTEUR_MAILER__DATABASE",
                format!("sqlite://{d}/mailer.db?mode=rwc"),
            )
            .env("FACTEUR_MAILER__OUTBOX_DIR", format!("{d}/mail"))
            .env("FACTEUR_TRANSPORT__SOCKETIO__TOKEN", &token)
            .env("FACTEUR_LOG__LEVEL", "error")
            // As in `test_config`: every client is 127.0.0.1.
            .env("FACTEUR_MAILER__MAX_CONNECTIONS_PER_CLIENT", "0")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("the log file again"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the mailer binary starts");
        let pid = child.id().expect("a pid");
        let http = reqwest::Client::new();
        let healthy = testkit::eventually(Duration::from_secs(20), || async {
            http.get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(
            healthy,
            "the mailer binary did not answer /health within 20 s"
        );
        MailerProcess {
            base,
            addr,
            token,
            pid,
            child,
            _dir: dir,
        }
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a body")
    }

    /// What it wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("mailer.log")).unwrap_or_default()
    }

    /// Its folder: the SQLite file and the `.eml` outbox (`mail/`).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Sends it SIGHUP (reload the templates).
    pub fn hang_up(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -HUP {}", self.pid);
    }

    /// Stops it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
