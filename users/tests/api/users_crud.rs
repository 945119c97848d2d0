//! Creating, reading, listing, changing and deleting users, and the mails each change asks for.

use crate::helpers::{ADMIN, Backend, ada, spawn_app};
use crate::on_both_databases;
use serde_json::json;

on_both_databases!(
    creating_a_user_answers_201_with_its_location_and_sends_one_welcome_mail,
    creating_a_user_reports_every_bad_field_at_once,
    a_taken_login_or_email_is_a_409,
    two_concurrent_creates_of_one_login_or_email_give_one_201_and_one_409,
    the_list_is_paginated,
    getting_a_user_answers_200_and_404,
    patching_a_user_mails_the_names_of_the_fields_that_really_changed,
    patching_answers_400_404_and_409,
    deleting_a_user_answers_204_then_404_and_mails_its_old_address,
);

async fn creating_a_user_answers_201_with_its_location_and_sends_one_welcome_mail(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    let response = app.post("/users", &ada("ada")).await;

    response.assert_status(201);
    let user = &response.json;
    let id = user["id"].as_str().expect("an id");
    assert_eq!(
        response.headers["location"],
        format!("/users/{id}").as_str()
    );
    assert_eq!(user["login"], "ada");
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["functions"], json!(["mathematician"]));
    assert_eq!(user["locale"], "en");
    assert_eq!(user["company"], "Analytical Engines");
    for key in ["created_at", "updated_at", "first_name", "last_name"] {
        assert!(!user[key].is_null(), "{key} missing");
    }
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    assert!(!response.text.contains("ada-secret-pw") && !response.text.contains("argon2"));

    let mails = app.transport.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].template.as_str(), "welcome");
    assert_eq!(mails[0].locale.as_str(), "en");
    assert_eq!(mails[0].to.email.as_str(), "ada@example.com");
    assert_eq!(mails[0].to.name, "Ada Lovelace");
    assert_eq!(mails[0].vars["login"], "ada");
    // A user created without a locale gets French mails.
    let mut body = ada("bob");
    body.as_object_mut().expect("object").remove("locale");
    app.post("/users", &body).await.assert_status(201);
    let mails = app.transport.wait_for(2).await;
    assert_eq!(mails[1].locale.as_str(), "fr");
}

async fn creating_a_user_reports_every_bad_field_at_once(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app
        .post(
            "/users",
            &json!({"login": "A", "email": "nope", "password": "short", "last_name": 5, "locale": "de", "admin": true}),
        )
        .await;

    response.assert_error(400, "invalid_request");
    let details = response.json["details"].as_object().expect("details");
    for field in [
        "login",
        "email",
        "password",
        "first_name",
        "last_name",
        "locale",
        "admin",
    ] {
        assert!(
            details.contains_key(field),
            "{field} not reported: {}",
            response.text
        );
    }
    assert!(
        !response.text.contains("short\""),
        "the password is echoed: {}",
        response.text
    );
    app.relay_until_idle().await;
    assert!(app.transport.published().is_empty());
}

async fn a_taken_login_or_email_is_a_409(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada").await;

    let mut same_login = ada("ada");
    same_login["email"] = json!("other@example.com");
    let by_login = app.post("/users", &same_login).await;
    let mut same_email = ada("other");
    same_email["email"] = json!("ada@example.com");
    let by_email = app.post("/users", &same_email).await;

    by_login.assert_error(409, "conflict");
    assert!(
        by_login.json["details"]["login"].is_string(),
        "{}",
        by_login.text
    );
    by_email.assert_error(409, "conflict");
    assert!(
        by_email.json["details"]["email"].is_string(),
        "{}",
        by_email.text
    );
    let list = app.get("/users", Some(ADMIN)).await;
    assert_eq!(list.json["total"], 1);
}

async fn two_concurrent_creates_of_one_login_or_email_give_one_201_and_one_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut eve1 = ada("eve1");
    eve1["email"] = json!("eve@example.com");
    let mut eve2 = ada("eve2");
    eve2["email"] = json!("eve@example.com");

    // The same login (and email) twice, then two logins with one email.
    for (first, second) in [(ada("ada"), ada("ada")), (eve1, eve2)] {
        let (a, b) = tokio::join!(app.post("/users", &first), app.post("/users", &second));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{} / {}", a.text, b.text);
    }
    let list = app.get("/users", Some(ADMIN)).await;
    assert_eq!(list.json["total"], 2, "{}", list.text);
    app.relay_until_idle().await;
    assert_eq!(app.transport.wait_for(2).await.len(), 2);

    // Many at once: still exactly one winner.
    let crowd = ada("crowd");
    let attempts: Vec<_> = (0..6).map(|_| app.post("/users", &crowd)).collect();
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );
}

async fn the_list_is_paginated(backend: Backend) {
    let app = spawn_app(backend).await;
    for login in ["usr1", "usr2", "usr3"] {
        app.create_user(login).await;
    }

    let first = app.get("/users?page=1&per_page=2", Some(ADMIN)).await;
    let second = app.get("/users?page=2&per_page=2", Some(ADMIN)).await;
    let default = app.get("/users", Some(ADMIN)).await;

    first.assert_status(200);
    assert_eq!(first.json["total"], 3);
    assert_eq!(first.json["page"], 1);
    assert_eq!(first.json["per_page"], 2);
    assert_eq!(first.json["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(second.json["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(first.json["items"][0]["login"], "usr1");
    assert_eq!(second.json["items"][0]["login"], "usr3");
    assert_eq!(default.json["per_page"], 20);
    assert!(!default.text.contains("argon2"));
    app.get("/users?page=0", Some(ADMIN))
        .await
        .assert_error(400, "invalid_request");
    app.get("/users?per_page=1000", Some(ADMIN))
        .await
        .assert_error(400, "invalid_request");
    app.get("/users?page=abc", Some(ADMIN))
        .await
        .assert_error(400, "invalid_request");
}

async fn getting_a_user_answers_200_and_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let id = user["id"].as_str().expect("id");

    let found = app.get(&format!("/users/{id}"), Some(ADMIN)).await;
    let missing = app
        .get(&format!("/users/{}", uuid::Uuid::now_v7()), Some(ADMIN))
        .await;
    let malformed = app.get("/users/not-a-uuid", Some(ADMIN)).await;

    found.assert_status(200);
    assert_eq!(found.json, user);
    missing.assert_error(404, "not_found");
    malformed.assert_error(400, "invalid_request");
}

async fn patching_a_user_mails_the_names_of_the_fields_that_really_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    app.transport.wait_for(1).await;

    let changed = app
        .patch(&path, Some(ADMIN), &json!({"first_name": "Augusta", "last_name": "Lovelace", "password": "a-new-password", "company": null}))
        .await;
    let unchanged = app
        .patch(
            &path,
            Some(ADMIN),
            &json!({"first_name": "Augusta", "password": "a-new-password"}),
        )
        .await;
    let moved = app
        .patch(
            &path,
            Some(ADMIN),
            &json!({"email": "augusta@example.com", "locale": "fr"}),
        )
        .await;

    changed.assert_status(200);
    assert_eq!(changed.json["first_name"], "Augusta");
    assert!(changed.json["company"].is_null());
    assert!(!changed.text.contains("a-new-password"));
    unchanged.assert_status(200);
    moved.assert_status(200);
    assert_eq!(moved.json["email"], "augusta@example.com");
    // The first PATCH: password_changed and account_updated; the third: email_changed,
    // email_verification and account_updated.
    let mails = app.transport.wait_for(6).await;
    app.relay_until_idle().await;
    let updates = app.transport.with_template("account_updated");
    assert_eq!(
        updates.len(),
        2,
        "a PATCH that changes nothing sends no mail"
    );
    // Rows of the outbox are published in no guaranteed order (two relay passes may lease
    // them side by side), so each mail is found by what it says.
    let (first, second) = if updates[0].vars["changed"][0] == "locale" {
        (&updates[1], &updates[0])
    } else {
        (&updates[0], &updates[1])
    };
    assert_eq!(first.vars["changed"], json!(["first_name", "company"]));
    assert_eq!(second.vars["changed"], json!(["locale"]));
    // The notices of a new address go to the old one, in the new language.
    assert_eq!(second.to.email.as_str(), "ada@example.com");
    assert_eq!(second.locale.as_str(), "fr");
    let moved_notice = app.transport.with_template("email_changed");
    assert_eq!(moved_notice.len(), 1);
    assert_eq!(moved_notice[0].to.email.as_str(), "ada@example.com");
    assert_eq!(moved_notice[0].locale.as_str(), "fr");
    assert_eq!(app.transport.with_template("password_changed").len(), 1);
    assert_eq!(app.transport.with_template("email_verification").len(), 1);
    let all = serde_json::to_string(&mails).expect("json");
    assert!(!all.contains("a-new-password"));
    // The new password works, the old one no longer does.
    app.post(
        "/authenticate",
        &json!({"login": "ada", "password": "a-new-password"}),
    )
    .await
    .assert_status(200);
    app.post(
        "/authenticate",
        &json!({"login": "ada", "password": "ada-secret-pw"}),
    )
    .await
    .assert_error(401, "invalid_credentials");
}

async fn patching_answers_400_404_and_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    app.create_user("bob").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));

    let invalid = app
        .patch(
            &path,
            Some(ADMIN),
            &json!({"login": "Not Valid", "functions": "x", "password": "short"}),
        )
        .await;
    let missing = app
        .patch(
            &format!("/users/{}", uuid::Uuid::now_v7()),
            Some(ADMIN),
            &json!({"first_name": "X"}),
        )
        .await;
    let taken_login = app
        .patch(&path, Some(ADMIN), &json!({"login": "bob"}))
        .await;
    let taken_email = app
        .patch(&path, Some(ADMIN), &json!({"email": "bob@example.com"}))
        .await;

    invalid.assert_error(400, "invalid_request");
    for field in ["login", "functions", "password"] {
        assert!(
            invalid.json["details"][field].is_string(),
            "{field}: {}",
            invalid.text
        );
    }
    missing.assert_error(404, "not_found");
    taken_login.assert_error(409, "conflict");
    taken_email.assert_error(409, "conflict");
    let unchanged = app.get(&path, Some(ADMIN)).await;
    assert_eq!(unchanged.json["login"], "ada");
    app.relay_until_idle().await;
    assert!(app.transport.with_template("account_updated").is_empty());
}

async fn deleting_a_user_answers_204_then_404_and_mails_its_old_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));

    let deleted = app.delete(&path, Some(ADMIN)).await;
    let again = app.delete(&path, Some(ADMIN)).await;

    deleted.assert_status(204);
    again.assert_error(404, "not_found");
    app.get(&path, Some(ADMIN))
        .await
        .assert_error(404, "not_found");
    app.transport.wait_for(2).await;
    let farewells = app.transport.with_template("account_deleted");
    assert_eq!(farewells.len(), 1);
    assert_eq!(farewells[0].to.email.as_str(), "ada@example.com");
    assert_eq!(farewells[0].vars["login"], "ada");
    // The login is free again.
    app.post("/users", &ada("ada")).await.assert_status(201);
}
