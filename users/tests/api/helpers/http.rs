//! The spawned app and one helper per HTTP verb.

use super::backend::{Backend, PgDatabase};
use super::transport_double::RecordingTransport;
use domain::Secret;
use domain::config::{Config, UsersLimits};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use users::{App, OutboxRelay};

/// The admin token every test app is configured with.
pub const ADMIN: &str = "test-admin-token";

/// A running users service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub transport: Arc<RecordingTransport>,
    pub relay: OutboxRelay,
    /// The database URL, to open a second connection or a second app on it.
    pub database_url: String,
    /// `users.session_secret`, which every instance on one database shares.
    session_secret: String,
    stop: Option<oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<()>>,
    // Dropped last: the app must stop before its database goes.
    _pg: Option<Arc<PgDatabase>>,
    _dir: Arc<tempfile::TempDir>,
}

/// An answer, with its body read as JSON when it is JSON.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl TestResponse {
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts the contract's error shape with this code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.json["error"], code, "body: {}", self.text);
        assert!(
            self.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.text
        );
        assert!(self.json["details"].is_object(), "body: {}", self.text);
        self
    }
}

/// A valid create body for `login`.
pub fn ada(login: &str) -> Value {
    json!({
        "login": login,
        "email": format!("{login}@example.com"),
        "password": format!("{login}-secret-pw"),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines",
        "functions": ["mathematician"],
        "locale": "en",
    })
}

/// Spawns the app on a fresh database, with the rate limits off: tests create many users
/// from 127.0.0.1.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_configured(backend, |_| {}).await
}

/// Spawns the app on a fresh database, with `configure` applied to the test configuration
/// (rate limits off unless it turns them on).
pub async fn spawn_app_configured(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_tuned(backend, configure, |app| app).await
}

/// [`spawn_app_configured`], with `tune` applied to the built app (settings no
/// configuration key has, such as a shorter idle timeout).
pub async fn spawn_app_tuned(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
    tune: impl FnOnce(App) -> App,
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let (url, pg) = match &backend {
        Backend::Sqlite => (
            format!("sqlite://{}/users.db?mode=rwc", dir.path().display()),
            None,
        ),
        Backend::Postgres { admin_url } => {
            let db = PgDatabase::create(admin_url).await;
            (db.url(), Some(Arc::new(db)))
        }
    };
    let mut config = test_config(url, uuid::Uuid::new_v4().to_string());
    configure(&mut config);
    spawn_app_with(config, pg, dir, Arc::new(RecordingTransport::new()), tune).await
}

/// Every test app's configuration: port 0, `database_url`, known tokens, no rate limits and
/// no per-client connection cap (every test client is 127.0.0.1).
fn test_config(database_url: String, session_secret: String) -> Config {
    let mut config = Config::default();
    config.users.listen = "127.0.0.1:0".parse().expect("address");
    config.users.database = database_url;
    config.users.admin_token = Secret::new(ADMIN);
    config.users.session_secret = Secret::new(session_secret);
    config.users.reset_url = "http://reset.test/password-resets/{token}".into();
    config.users.verify_url = "http://verify.test/email-verifications/{token}".into();
    config.users.limits = UsersLimits {
        login_failures_per_login: 0,
        login_failures_per_client: 0,
        reset_mails_per_address: 0,
        resets_per_client: 0,
        creates_per_client: 0,
        verification_mails_per_address: 0,
        verifications_per_client: 0,
    };
    config.users.max_connections_per_client = 0;
    config
}

/// Builds (and does not run) the app on an existing database: for a test of what a start
/// does to a database, a failed migration among them.
pub async fn build_app_on(database_url: &str) -> Result<App, users::StartupError> {
    let config = test_config(database_url.to_owned(), uuid::Uuid::new_v4().to_string());
    App::build(&config, Arc::new(RecordingTransport::new())).await
}

impl TestApp {
    /// A second instance of the service on the same database and transport.
    pub async fn second_instance(&self) -> TestApp {
        spawn_app_with(
            test_config(self.database_url.clone(), self.session_secret.clone()),
            self._pg.clone(),
            self._dir.clone(),
            self.transport.clone(),
            |app| app,
        )
        .await
    }
}

/// Spawns the app with `config`.
async fn spawn_app_with(
    config: Config,
    pg: Option<Arc<PgDatabase>>,
    dir: Arc<tempfile::TempDir>,
    transport: Arc<RecordingTransport>,
    tune: impl FnOnce(App) -> App,
) -> TestApp {
    testkit::log::init();
    let database_url = config.users.database.clone();
    let session_secret = config.users.session_secret.expose().to_owned();
    let app = tune(
        App::build(&config, transport.clone())
            .await
            .expect("the app builds"),
    );
    let addr = app.local_addr();
    let relay = app.relay_handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("the app runs");
    });
    TestApp {
        addr,
        client: reqwest::Client::new(),
        transport,
        relay,
        database_url,
        session_secret,
        stop: Some(stop),
        running: Some(running),
        _pg: pg,
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().await.expect("the request is sent")).await
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .bearer_auth(ADMIN)
            .body(body);
        read(request.send().await.expect("the request is sent")).await
    }

    /// Posts `body` as an HTML form would (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, path: &str, body: &str) -> TestResponse {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        read(request.send().await.expect("the request is sent")).await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        let response = self.get("/metrics", None).await;
        response.assert_status(200);
        response.text
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.send(reqwest::Method::POST, path, None, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.send(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    /// Creates `login` and returns the user's JSON.
    pub async fn create_user(&self, login: &str) -> Value {
        let response = self.post("/users", &ada(login)).await;
        response.assert_status(201);
        response.json
    }

    /// Creates `login` (see [`ada`]) and returns its id and its `/users/{id}` path.
    pub async fn create_user_path(&self, login: &str) -> (String, String) {
        let id = self.create_user(login).await["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let path = format!("/users/{id}");
        (id, path)
    }

    /// A session token for `login` (created by [`ada`]).
    pub async fn session_for(&self, login: &str) -> String {
        self.open_session(login).await.0
    }

    /// A session for `login` (created by [`ada`]): its token and its id.
    pub async fn open_session(&self, login: &str) -> (String, String) {
        let response = self
            .post(
                "/authenticate",
                &json!({"login": login, "password": format!("{login}-secret-pw")}),
            )
            .await;
        response.assert_status(200);
        let token = response.json["token"].as_str().expect("a token");
        let id = response.json["session"]["id"]
            .as_str()
            .expect("a session id");
        (token.to_owned(), id.to_owned())
    }

    /// Asks for a reset of `email`'s password and returns the mailed link's path and token
    /// (the `n`th mail of the app, counting from 1).
    pub async fn mailed_reset_link(&self, email: &str, n: usize) -> (String, String) {
        self.post("/password-resets", &json!({ "email": email }))
            .await
            .assert_status(202);
        self.transport.wait_for(n).await;
        let reset = self.transport.with_template("password_reset");
        let url = reset
            .last()
            .and_then(|mail| mail.vars["reset_url"].as_str())
            .expect("a reset_url");
        let path = url
            .strip_prefix("http://reset.test")
            .expect("the configured URL")
            .to_owned();
        let token = path.rsplit('/').next().expect("a token").to_owned();
        (path, token)
    }

    /// The path (`/email-verifications/{token}`) of the `verify_url` a mail carries.
    pub fn verify_path(mail: &domain::MailRequest) -> String {
        mail.vars["verify_url"]
            .as_str()
            .and_then(|url| url.strip_prefix("http://verify.test"))
            .expect("a verify_url with the configured prefix")
            .to_owned()
    }

    /// Runs relay passes until nothing is due, without waiting for the background loop.
    pub async fn relay_until_idle(&self) {
        while self.relay.relay_once().await.expect("a relay pass").claimed > 0 {}
    }

    /// Waits (at most 20 s) until no outbox row is pending: published and marked so.
    pub async fn wait_until_outbox_empty(&self) {
        let empty = testkit::eventually(std::time::Duration::from_secs(20), || async {
            self.relay.backlog().await.expect("the backlog").pending == 0
        })
        .await;
        let backlog = self.relay.backlog().await.expect("the backlog");
        assert!(empty, "the outbox still holds {} rows", backlog.pending);
    }

    /// Stops the app and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.expect("the app stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn read(response: reqwest::Response) -> TestResponse {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    TestResponse {
        status,
        headers,
        text,
        json,
    }
}
