//! Every account change ends with exactly one mail of the right template at the SMTP server,
//! with no password in it, on each transport.

use crate::support::stack::{Kind, Stack};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use testkit::skip::{RABBITMQ, available};
use testkit::smtp::{Mail, SmtpSink};

const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new passphrase";

fn of_template<'a>(mails: &'a [Mail], template: &str) -> Vec<&'a Mail> {
    mails
        .iter()
        .filter(|m| m.template_hint() == template)
        .collect()
}

fn assert_no_password(mails: &[Mail]) {
    for mail in mails {
        let text = mail.decoded_text();
        for secret in [PASSWORD, NEW_PASSWORD] {
            assert!(
                !mail.raw.contains(secret) && !text.contains(secret),
                "a password is in a mail"
            );
        }
        assert!(!text.contains("$argon2"), "a password hash is in a mail");
    }
}

/// Waits until `count` mails are there, then checks the newest is of `template`.
async fn expect_mails(stack: &Stack, count: usize, template: &str) -> Vec<Mail> {
    let mails = stack.smtp.wait_for(count, WAIT).await;
    assert_eq!(
        mails.len(),
        count,
        "expected {count} mails, the last a {template}; got {:?}\nusers log:\n{}\nmailer log:\n{}",
        mails.iter().map(Mail::template_hint).collect::<Vec<_>>(),
        stack.log("users"),
        stack.log("mailer")
    );
    assert_eq!(
        of_template(&mails, template).len(),
        1,
        "one {template} mail"
    );
    mails
}

async fn account_lifecycle_sends_one_mail_per_change(kind: Kind) {
    let stack = Stack::start(kind, SmtpSink::start()).await;

    // Create: one welcome mail.
    let user = stack.create_user("ada").await;
    let id = user["id"].as_str().expect("an id").to_string();
    let mails = expect_mails(&stack, 1, "welcome").await;
    assert_eq!(mails[0].to, vec!["ada@example.com".to_string()]);
    // The welcome mail carries the link that proves the address; pressing its button does.
    let welcome = mails[0].decoded_text();
    let marker = "/email-verifications/";
    let start = welcome
        .find(marker)
        .expect("a verification link in the welcome mail")
        + marker.len();
    let token: String = welcome[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(user["email_verified"], false);
    let verified = stack
        .http()
        .post(format!("{}{marker}{token}", stack.users_url()))
        .send()
        .await
        .expect("POST the verification link");
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    let read = stack
        .users_admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .expect("GET the user");
    let read: serde_json::Value = read.json().await.expect("a user");
    assert_eq!(read["email_verified"], true, "{read}");

    // Change: one account_updated mail naming the changed field, never its value.
    let response = stack
        .users_admin(Method::PATCH, &format!("/users/{id}"))
        .json(&json!({"first_name": "Augusta"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), StatusCode::OK);
    let mails = expect_mails(&stack, 2, "account_updated").await;
    let updated = of_template(&mails, "account_updated")[0].decoded_text();
    assert!(
        updated.contains("first_name"),
        "the mail names the changed field"
    );

    // Reset: one password_reset mail whose link sets a new password.
    let response = stack
        .http()
        .post(format!("{}/password-resets", stack.users_url()))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .expect("POST /password-resets");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mails = expect_mails(&stack, 3, "password_reset").await;
    let text = of_template(&mails, "password_reset")[0].decoded_text();
    let marker = "/password-resets/";
    let start = text.find(marker).expect("a reset link in the mail") + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let link = format!("{}{marker}{token}", stack.users_url());
    // Once the reset mail is out, neither database keeps its token: the users outbox row is
    // emptied when published, the mailer's vars once sent (a copy of either database cannot
    // reset a password).
    let databases = ["users.db", "mailer.db"].map(|name| stack.dir().join(name));
    let holding = || -> Vec<String> {
        databases
            .iter()
            .flat_map(|db| columns_holding(db, &token))
            .collect()
    };
    testkit::eventually(Duration::from_secs(10), || {
        std::future::ready(holding().is_empty())
    })
    .await;
    let holding = holding();
    assert!(
        holding.is_empty(),
        "the reset token is still stored in {holding:?}"
    );
    // The link in the mail opens a page with a form (a browser follows it with GET).
    let page = stack
        .http()
        .get(&link)
        .send()
        .await
        .expect("GET the reset link");
    assert_eq!(page.status(), StatusCode::OK);
    let content_type = page.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = page.text().await.expect("the page");
    assert!(html.contains("<form"), "{html}");
    let response = stack
        .http()
        .post(&link)
        .json(&json!({"password": NEW_PASSWORD}))
        .send()
        .await
        .expect("POST the reset link");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let again = stack
        .http()
        .post(&link)
        .json(&json!({"password": NEW_PASSWORD}))
        .send()
        .await
        .expect("reuse");
    assert_eq!(
        again.status(),
        StatusCode::BAD_REQUEST,
        "a reset link works once"
    );
    let login = |password: &str| {
        stack
            .http()
            .post(format!("{}/authenticate", stack.users_url()))
            .json(&json!({"login": "ada", "password": password}))
            .send()
    };
    assert_eq!(
        login(PASSWORD).await.expect("old").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(NEW_PASSWORD).await.expect("new").status(),
        StatusCode::OK
    );
    // Setting a new password through the link is an account change too: the owner hears of it.
    let mails = stack.smtp.wait_for(4, WAIT).await;
    let changed = of_template(&mails, "password_changed");
    assert_eq!(changed.len(), 1, "a password_changed mail after the reset");
    assert_eq!(changed[0].to, vec!["ada@example.com".to_string()]);

    // Delete: one account_deleted mail, to the address the account had.
    let response = stack
        .users_admin(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let expected = mails.len() + 1;
    let mails = stack.smtp.wait_for(expected, WAIT).await;
    let deleted = of_template(&mails, "account_deleted");
    assert_eq!(deleted.len(), 1, "one account_deleted mail");
    assert_eq!(deleted[0].to, vec!["ada@example.com".to_string()]);

    let mails = stack.settled_mails().await;
    assert_eq!(mails.len(), expected, "no mail came twice or unasked");
    assert_no_password(&mails);
    for mail in &mails {
        assert!(
            mail.message_id.ends_with("@facteur.local"),
            "Message-ID <id@domain>: {}",
            mail.message_id
        );
    }
}

#[tokio::test]
async fn socketio_account_lifecycle_sends_one_mail_per_change() {
    account_lifecycle_sends_one_mail_per_change(Kind::Socketio).await;
}

#[tokio::test]
async fn amqp_account_lifecycle_sends_one_mail_per_change() {
    if !available(RABBITMQ, "amqp_account_lifecycle_sends_one_mail_per_change") {
        return;
    }
    let _broker = crate::faults::broker_shared().await;
    account_lifecycle_sends_one_mail_per_change(Kind::Amqp).await;
}

/// `table.column` of every text value in the SQLite file at `db` that contains `needle`.
fn columns_holding(db: &std::path::Path, needle: &str) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("the tables");
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("the columns");
        for column in columns {
            let hits: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM \"{table}\" WHERE instr(CAST(\"{column}\" AS TEXT), ?1) > 0"),
                    [needle],
                    |r| r.get(0),
                )
                .expect("a count");
            if hits > 0 {
                found.push(format!("{}: {table}.{column}", db.display()));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_welcome_subject_overridden_in_templates_dir_is_what_a_new_english_user_gets() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(
        folder.path().join("welcome.en.subject"),
        "{{ login }}, your {{ brand.name }} account is ready",
    )
    .expect("the override is written");
    let mut stack = Stack::configure(Kind::Socketio, SmtpSink::start());
    stack.set_env(
        "FACTEUR_MAILER__TEMPLATES_DIR",
        &folder.path().display().to_string(),
    );
    stack.set_env("FACTEUR_MAILER__BRAND__NAME", "Comptoir");
    stack.start_mailer().await;
    stack.start_users().await;
    for (login, locale) in [("ada", Some("en")), ("zoe", None)] {
        let mut body = json!({
            "login": login,
            "email": format!("{login}@example.com"),
            "password": PASSWORD,
            "first_name": "Ada",
            "last_name": "Lovelace",
        });
        if let Some(locale) = locale {
            body["locale"] = json!(locale);
        }
        let response = stack
            .http()
            .post(format!("{}/users", stack.users_url()))
            .json(&body)
            .send()
            .await
            .expect("POST /users");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mails = stack.smtp.wait_for(2, WAIT).await;
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|m| m.header("subject").unwrap_or_default())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Bienvenue sur Comptoir, Ada Lovelace !",
            "ada, your Comptoir account is ready"
        ],
        "mailer log:\n{}",
        stack.log("mailer")
    );
}
