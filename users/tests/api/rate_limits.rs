//! The rate limits of the open routes, at their default values.

use crate::helpers::{Backend, TestApp, TestResponse, ada, spawn_app_configured};
use crate::on_both_databases;
use domain::config::UsersLimits;
use serde_json::json;

on_both_databases!(
    the_eleventh_wrong_password_for_a_login_is_refused_and_so_is_the_right_one,
    a_fourth_reset_for_one_address_within_the_hour_answers_202_and_mails_nothing,
    the_twenty_first_create_from_one_client_within_a_minute_is_refused,
    sixty_guesses_at_once_at_one_login_cost_ten_password_checks,
    sixty_guesses_at_once_from_one_client_cost_thirty_password_checks,
);

fn default_limits(config: &mut domain::config::Config) {
    config.users.limits = UsersLimits::default();
}

#[track_caller]
fn assert_too_many(response: &TestResponse) {
    response.assert_error(429, "too_many_requests");
    let seconds: u64 = response
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(seconds >= 1, "Retry-After: {seconds}");
}

fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

async fn the_eleventh_wrong_password_for_a_login_is_refused_and_so_is_the_right_one(
    backend: Backend,
) {
    let app = spawn_app_configured(backend, default_limits).await;
    app.create_user("ada").await;
    app.create_user("bob").await;
    let wrong = json!({"login": "ada", "password": "not-the-password"});
    let right = json!({"login": "ada", "password": "ada-secret-pw"});

    for n in 1..=10 {
        let response = app.post("/authenticate", &wrong).await;
        assert_eq!(response.status, 401, "failure {n}: {}", response.text);
    }
    let eleventh = app.post("/authenticate", &wrong).await;
    let right_while_blocked = app.post("/authenticate", &right).await;
    let other_login = app
        .post(
            "/authenticate",
            &json!({"login": "bob", "password": "bob-secret-pw"}),
        )
        .await;

    assert_too_many(&eleventh);
    assert_too_many(&right_while_blocked);
    other_login.assert_status(200);
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "rate_limited_total{limit=\"login_failures_per_login\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
}

async fn a_fourth_reset_for_one_address_within_the_hour_answers_202_and_mails_nothing(
    backend: Backend,
) {
    let app = spawn_app_configured(backend, default_limits).await;
    app.create_user("ada").await;

    for n in 1..=4 {
        let response = app
            .post("/password-resets", &json!({"email": "ada@example.com"}))
            .await;
        assert_eq!(response.status, 202, "reset {n}: {}", response.text);
    }
    app.wait_until_outbox_empty().await;
    app.relay_until_idle().await;

    // The welcome mail and three resets; the fourth left no outbox row and sent nothing.
    assert_eq!(app.transport.with_template("password_reset").len(), 3);
    assert_eq!(app.transport.published().len(), 4);
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "rate_limited_total{limit=\"reset_mails_per_address\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

async fn the_twenty_first_create_from_one_client_within_a_minute_is_refused(backend: Backend) {
    let app = spawn_app_configured(backend, default_limits).await;

    // Every request counts, a refused body too. Bad bodies cost no hash, so the twenty fit
    // well within the three seconds the limit takes to let one more through.
    for n in 0..19 {
        let mut bad = ada(&format!("user{n}"));
        bad["password"] = json!("short");
        app.post("/users", &bad).await.assert_status(400);
    }
    app.post("/users", &ada("user19")).await.assert_status(201);
    let refused = app.post("/users", &ada("user20")).await;

    assert_too_many(&refused);
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "rate_limited_total{limit=\"creates_per_client\"}"),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let limit_creates = |trusted: bool| {
        move |config: &mut domain::config::Config| {
            config.users.limits.creates_per_client = 2;
            if trusted {
                config.users.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
            }
        }
    };
    let create_as = |app: &crate::helpers::TestApp, login: &str, client: &str| {
        let request = app
            .client
            .post(app.url("/users"))
            .header("x-forwarded-for", client.to_owned())
            .json(&ada(login));
        async move { request.send().await.expect("sent").status().as_u16() }
    };

    let behind_proxy = spawn_app_configured(Backend::Sqlite, limit_creates(true)).await;
    let a1 = create_as(&behind_proxy, "ada1", "203.0.113.1").await;
    let a2 = create_as(&behind_proxy, "ada2", "198.51.100.7, 203.0.113.1").await;
    let a3 = create_as(&behind_proxy, "ada3", "203.0.113.1").await;
    let b1 = create_as(&behind_proxy, "bob1", "203.0.113.2").await;

    let direct = spawn_app_configured(Backend::Sqlite, limit_creates(false)).await;
    let c1 = create_as(&direct, "carl1", "203.0.113.1").await;
    let c2 = create_as(&direct, "carl2", "203.0.113.2").await;
    let c3 = create_as(&direct, "carl3", "203.0.113.3").await;

    assert_eq!((a1, a2, a3, b1), (201, 201, 429, 201));
    assert_eq!((c1, c2, c3), (201, 201, 429));
}

/// Sends every body to `POST /authenticate` at the same instant; the statuses and the
/// Argon2id checks they cost.
async fn guess_at_once(app: &TestApp, bodies: Vec<serde_json::Value>) -> (Vec<u16>, f64) {
    let hashes = "password_hashes_computed_total";
    let before = metric(&app.metrics().await, hashes).expect("the hash counter");
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let guesses = bodies.into_iter().map(|body| {
        let start = start.clone();
        let request = app.client.post(app.url("/authenticate")).json(&body);
        async move {
            start.wait().await;
            request.send().await.expect("sent").status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let after = metric(&app.metrics().await, hashes).expect("the hash counter");
    (statuses, after - before)
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn sixty_guesses_at_once_at_one_login_cost_ten_password_checks(backend: Backend) {
    let app = spawn_app_configured(backend, default_limits).await;
    app.create_user("ada").await;
    let wrong = json!({"login": "ada", "password": "not-the-password"});

    let (statuses, checks) = guess_at_once(&app, vec![wrong; 60]).await;

    assert_eq!(checks, 10.0, "{statuses:?}");
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 50, "{statuses:?}");
}

async fn sixty_guesses_at_once_from_one_client_cost_thirty_password_checks(backend: Backend) {
    let app = spawn_app_configured(backend, default_limits).await;
    let guesses = (0..60)
        .map(|n| json!({"login": format!("user{n}"), "password": "not-the-password"}))
        .collect();

    let (statuses, checks) = guess_at_once(&app, guesses).await;

    assert_eq!(checks, 30.0, "{statuses:?}");
    assert_eq!(count(&statuses, 401), 30, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 30, "{statuses:?}");
}
