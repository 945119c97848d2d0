//! Proved addresses: the link of the welcome mail and of `email_verification` mails, the page
//! it opens, resends and their limits, and the mails of address and password changes.

use crate::helpers::{ADMIN, Backend, TestApp, spawn_app, spawn_app_configured};
use crate::on_both_databases;
use serde_json::json;

on_both_databases!(
    the_welcome_link_opens_a_page_that_proves_nothing_until_its_button_is_pressed,
    a_resend_mails_a_link_only_to_a_known_address_and_three_times_an_hour,
    the_twenty_first_resend_in_a_minute_from_one_client_is_refused,
    a_completed_reset_proves_the_address_and_mails_password_changed,
    with_require_verified_email_only_a_proved_address_authenticates,
    a_new_address_is_unproved_the_old_one_hears_of_it_masked_and_the_new_one_gets_a_link,
    a_password_change_by_patch_mails_password_changed,
);

fn default_limits(config: &mut domain::config::Config) {
    config.users.limits = domain::config::UsersLimits::default();
}

/// The user `id` as the admin reads it.
async fn read_user(app: &TestApp, id: &str) -> serde_json::Value {
    let response = app.get(&format!("/users/{id}"), Some(ADMIN)).await;
    response.assert_status(200);
    response.json
}

async fn the_welcome_link_opens_a_page_that_proves_nothing_until_its_button_is_pressed(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let created = app.create_user("ada").await;
    let id = created["id"].as_str().expect("an id").to_owned();
    let welcome = app.transport.wait_for(1).await.remove(0);
    let path = TestApp::verify_path(&welcome);

    let first = app.get(&path, None).await;
    let second = app.get(&path, None).await;
    let after_gets = read_user(&app, &id).await;
    let pressed = app.post_form(&path, "").await;
    let proved = read_user(&app, &id).await;
    let again_json = app.post(&path, &json!({})).await;
    let again_form = app.post_form(&path, "").await;
    let again_page = app.get(&path, None).await;
    let unknown = app
        .post("/email-verifications/not-a-token", &json!({}))
        .await;

    assert_eq!(created["email_verified"], false);
    assert!(created["email_verified_at"].is_null(), "{created}");
    assert_eq!(welcome.template.as_str(), "welcome");
    assert_eq!(welcome.vars["login"], "ada");
    assert!(
        welcome.vars["expires_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t > chrono::Utc::now() + chrono::Duration::hours(47)),
        "{welcome:?}"
    );
    for page in [&first, &second] {
        page.assert_status(200);
        assert!(
            page.text.contains("<form method=\"post\">"),
            "{}",
            page.text
        );
        assert_eq!(page.text.matches("<button").count(), 1, "{}", page.text);
        assert!(
            page.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(page.headers["cache-control"], "no-store");
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
    }
    assert_eq!(after_gets["email_verified"], false, "{after_gets}");
    assert!(after_gets["email_verified_at"].is_null());
    pressed.assert_status(200);
    assert!(
        pressed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        pressed.text.contains("Address confirmed"),
        "{}",
        pressed.text
    );
    assert_eq!(proved["email_verified"], true, "{proved}");
    assert!(
        proved["email_verified_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some(),
        "{proved}"
    );
    again_json.assert_error(400, "invalid_token");
    assert_eq!(again_form.status, 400);
    assert!(
        again_form.text.contains("no longer works"),
        "{}",
        again_form.text
    );
    assert_eq!(again_page.status, 400);
    assert!(again_page.text.contains("<h1>"), "{}", again_page.text);
    unknown.assert_error(400, "invalid_token");
}

async fn a_resend_mails_a_link_only_to_a_known_address_and_three_times_an_hour(backend: Backend) {
    let app = spawn_app_configured(backend, default_limits).await;
    let id = app.create_user("ada").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.transport.wait_for(1).await;

    let unknown = app
        .post(
            "/email-verifications",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    let mut resends = Vec::new();
    for _ in 0..4 {
        resends.push(
            app.post("/email-verifications", &json!({"email": "ada@example.com"}))
                .await
                .status,
        );
    }
    let invalid = app
        .post("/email-verifications", &json!({"email": "not an address"}))
        .await;
    app.relay_until_idle().await;
    app.wait_until_outbox_empty().await;
    let links = app.transport.with_template("email_verification");
    let used = app.post(&TestApp::verify_path(&links[2]), &json!({})).await;

    unknown.assert_status(202);
    assert_eq!(resends, [202, 202, 202, 202]);
    invalid.assert_error(400, "invalid_request");
    assert_eq!(
        links.len(),
        3,
        "the fourth resend of the hour mails nothing"
    );
    assert!(
        links
            .iter()
            .all(|m| m.to.email.as_str() == "ada@example.com" && m.vars["expires_at"].is_string())
    );
    assert_eq!(app.transport.published().len(), 4, "no mail to nobody@");
    used.assert_status(204);
    assert_eq!(read_user(&app, &id).await["email_verified"], true);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("rate_limited_total{limit=\"verification_mails_per_address\"} 1"),
        "{metrics}"
    );
}

async fn the_twenty_first_resend_in_a_minute_from_one_client_is_refused(backend: Backend) {
    let app = spawn_app_configured(backend, default_limits).await;

    // Every request counts, a refused body too. Bad bodies are answered at once, so the
    // twenty fit well within the three seconds the limit takes to let one more through.
    let mut statuses = Vec::new();
    for n in 0..19 {
        let bad = format!("nobody{n} at example.com");
        statuses.push(
            app.post("/email-verifications", &json!({ "email": bad }))
                .await
                .status,
        );
    }
    let twentieth = app
        .post(
            "/email-verifications",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    let refused = app
        .post(
            "/email-verifications",
            &json!({"email": "nobody@example.com"}),
        )
        .await;

    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    twentieth.assert_status(202);
    refused.assert_error(429, "too_many_requests");
    assert!(refused.headers.contains_key("retry-after"));
    assert!(app.transport.published().is_empty());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("rate_limited_total{limit=\"verifications_per_client\"} 1"),
        "{metrics}"
    );
}

async fn a_completed_reset_proves_the_address_and_mails_password_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_user("ada").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.transport.wait_for(1).await;
    let (path, _) = app.mailed_reset_link("ada@example.com", 2).await;
    let before = read_user(&app, &id).await;

    app.post(&path, &json!({"password": "brand-new-pw"}))
        .await
        .assert_status(204);

    let after = read_user(&app, &id).await;
    assert_eq!(before["email_verified"], false);
    assert_eq!(after["email_verified"], true, "{after}");
    assert!(after["email_verified_at"].is_string(), "{after}");
    app.transport.wait_for(3).await;
    let changed = app.transport.with_template("password_changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].to.email.as_str(), "ada@example.com");
    assert!(changed[0].vars["changed_at"].is_string());
}

async fn with_require_verified_email_only_a_proved_address_authenticates(backend: Backend) {
    let app = spawn_app_configured(backend, |config| {
        config.users.require_verified_email = true;
    })
    .await;
    app.create_user("ada").await;
    let welcome = app.transport.wait_for(1).await.remove(0);
    let right = json!({"login": "ada", "password": "ada-secret-pw"});

    let unproved = app.post("/authenticate", &right).await;
    let wrong = app
        .post(
            "/authenticate",
            &json!({"login": "ada", "password": "not-the-password"}),
        )
        .await;
    app.post(&TestApp::verify_path(&welcome), &json!({}))
        .await
        .assert_status(204);
    let proved = app.post("/authenticate", &right).await;
    let resend = app
        .post("/email-verifications", &json!({"email": "ada@example.com"}))
        .await;
    app.relay_until_idle().await;
    app.wait_until_outbox_empty().await;

    unproved.assert_error(403, "email_not_verified");
    assert!(unproved.json.get("token").is_none());
    wrong.assert_error(401, "invalid_credentials");
    proved.assert_status(200);
    assert_eq!(proved.json["user"]["email_verified"], true);
    resend.assert_status(202);
    assert!(
        app.transport.with_template("email_verification").is_empty(),
        "a proved address gets no new link"
    );
}

async fn a_new_address_is_unproved_the_old_one_hears_of_it_masked_and_the_new_one_gets_a_link(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let id = app.create_user("ada").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let welcome = app.transport.wait_for(1).await.remove(0);
    let (reset_path, _) = app.mailed_reset_link("ada@example.com", 2).await;

    let moved = app
        .patch(
            &format!("/users/{id}"),
            Some(ADMIN),
            &json!({"email": "augusta@example.org"}),
        )
        .await;
    app.transport.wait_for(4).await;
    app.relay_until_idle().await;
    let notices = app.transport.with_template("email_changed");
    let links = app.transport.with_template("email_verification");
    let old_welcome_link = app.post(&TestApp::verify_path(&welcome), &json!({})).await;
    let old_reset_link = app
        .post(&reset_path, &json!({"password": "brand-new-pw"}))
        .await;
    let unproved = read_user(&app, &id).await;
    let new_link = app.post(&TestApp::verify_path(&links[0]), &json!({})).await;
    let proved = read_user(&app, &id).await;

    moved.assert_status(200);
    assert_eq!(moved.json["email"], "augusta@example.org");
    assert_eq!(moved.json["email_verified"], false);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].to.email.as_str(), "ada@example.com");
    assert_eq!(notices[0].vars["new_email"], "a\u{2026}@example.org");
    assert!(notices[0].vars["changed_at"].is_string());
    let notice = serde_json::to_string(&notices[0].vars).expect("json");
    assert!(
        !notice.contains("http") && !notice.contains("augusta"),
        "{notice}"
    );
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].to.email.as_str(), "augusta@example.org");
    assert!(
        app.transport.with_template("account_updated").is_empty(),
        "the address change is told once, by email_changed"
    );
    old_welcome_link.assert_error(400, "invalid_token");
    old_reset_link.assert_error(400, "invalid_token");
    assert_eq!(unproved["email_verified"], false);
    new_link.assert_status(204);
    assert_eq!(proved["email_verified"], true, "{proved}");
    assert_eq!(proved["email"], "augusta@example.org");
}

async fn a_password_change_by_patch_mails_password_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_user("ada").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.transport.wait_for(1).await;

    app.patch(
        &format!("/users/{id}"),
        Some(ADMIN),
        &json!({"password": "a-new-password", "first_name": "Augusta"}),
    )
    .await
    .assert_status(200);

    app.transport.wait_for(3).await;
    app.relay_until_idle().await;
    let changed = app.transport.with_template("password_changed");
    let updated = app.transport.with_template("account_updated");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].to.email.as_str(), "ada@example.com");
    assert!(changed[0].vars["changed_at"].is_string());
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].vars["changed"], json!(["first_name"]));
    let all = serde_json::to_string(&app.transport.published()).expect("json");
    assert!(!all.contains("a-new-password"));
}
