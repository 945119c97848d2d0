//! One address, one entry on the suppression list, whatever its spelling; and no request
//! whose address or name hides what it holds behind a zero-width, bidirectional or control
//! character. On SQLite and on PostgreSQL.

use crate::common::{
    TestApp, fast_options, mail_request, send_to, spawn_app, spawn_with, test_config,
};
use crate::store_backends::{drop_postgres, fresh_postgres};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::Query;
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A mailer writing `.eml` files, on SQLite or on a fresh PostgreSQL database (whose name is
/// returned, to drop it); `None` when PostgreSQL is missing and the test skipped.
async fn start(test: &str, postgres: bool) -> Option<(TestApp, Option<String>)> {
    let dir = tempfile::TempDir::new().expect("a temporary folder");
    let mut config = test_config(&dir);
    let mut name = None;
    if postgres {
        let (url, db) = fresh_postgres(test).await?;
        config.mailer.database = url;
        name = Some(db);
    }
    Some((
        spawn_with(config, fast_options(), Arc::new(dir)).await,
        name,
    ))
}

/// `/suppressions/{email}`, the address percent-encoded.
fn suppression_path(email: &str) -> String {
    let encoded: String = email
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/suppressions/{encoded}")
}

async fn a_suppressed_address_is_not_sent_to_under_any_spelling(test: &str, postgres: bool) {
    let Some((mut app, database)) = start(test, postgres).await else {
        return;
    };
    let (code, added) = app
        .post(
            "/suppressions",
            &json!({"email": "ada@bücher.de", "reason": "asked to stop"}),
        )
        .await;
    assert_eq!(code, 201, "{added}");

    let spellings = [
        "ada@xn--bcher-kva.de",
        "ADA@BÜCHER.DE",
        "Ada@XN--BCHER-KVA.DE",
        "ada@bu\u{308}cher.de",
        "ada@ｂüｃｈｅｒ.de",
    ];
    let mut ids = Vec::new();
    for spelling in spellings {
        ids.push(send_to(&app, spelling).await);
    }
    let elsewhere = send_to(&app, "ada@bucher.de").await;

    for (id, spelling) in ids.iter().zip(spellings) {
        let record = app
            .wait_for_status(id, "suppressed", Duration::from_secs(5))
            .await;
        assert!(
            record["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("asked to stop")),
            "{spelling}: {record}"
        );
    }
    app.wait_for_status(&elsewhere, "sent", Duration::from_secs(10))
        .await;
    // The list shows the address as it was added; adding another spelling finds it.
    let (code, again) = app
        .post("/suppressions", &json!({"email": "ADA@xn--bcher-kva.de"}))
        .await;
    assert_eq!(code, 200, "listed already: {again}");
    assert_eq!(again["email"], "ada@bücher.de");
    assert_eq!(again["reason"], "asked to stop");
    let (_, list) = app.get("/suppressions").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["email"], "ada@bücher.de");
    // Removed by any spelling; mails go out again.
    let (code, _) = app.delete(&suppression_path("ADA@XN--BCHER-KVA.DE")).await;
    assert_eq!(code, 204);
    let (code, _) = app.delete(&suppression_path("ada@bücher.de")).await;
    assert_eq!(code, 404);
    let after = send_to(&app, "ada@bu\u{308}cher.de").await;
    app.wait_for_status(&after, "sent", Duration::from_secs(10))
        .await;

    app.stop().await;
    if let Some(name) = database {
        drop_postgres(&name).await;
    }
}

#[tokio::test]
async fn a_suppressed_address_is_not_sent_to_under_any_spelling_on_sqlite() {
    let test = "a_suppressed_address_is_not_sent_to_under_any_spelling_on_sqlite";
    a_suppressed_address_is_not_sent_to_under_any_spelling(test, false).await;
}

#[tokio::test]
async fn a_suppressed_address_is_not_sent_to_under_any_spelling_on_postgres() {
    let test = "a_suppressed_address_is_not_sent_to_under_any_spelling_on_postgres";
    a_suppressed_address_is_not_sent_to_under_any_spelling(test, true).await;
}

#[tokio::test]
async fn a_hidden_character_in_an_address_or_a_name_is_rejected() {
    let app = spawn_app().await;
    // Zero-width space, right-to-left override, left-to-right isolate, byte order mark, NEL.
    for c in ['\u{200B}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{85}'] {
        let code = format!("U+{:04X}", c as u32);
        for (field, to) in [
            (
                "to.email",
                json!({"email": format!("a{c}da@example.com"), "name": "Ada"}),
            ),
            (
                "to.email",
                json!({"email": format!("ada@exa{c}mple.com"), "name": "Ada"}),
            ),
            (
                "to.name",
                json!({"email": "ada@example.com", "name": format!("Ada{c} Lovelace")}),
            ),
        ] {
            let mut request = mail_request("welcome", "en");
            request["to"] = to;
            let (status, answer) = app.post_mail(&request).await;
            assert_eq!(status, 400, "{field} {code}: {answer}");
            assert_eq!(answer["status"], "rejected", "{field} {code}: {answer}");
            assert_eq!(answer["id"], request["id"]);
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(
                error.starts_with(field) && error.contains(&code),
                "{field} {code}: {error}"
            );
            let (status, _) = app
                .get(&format!("/mails/{}", request["id"].as_str().unwrap()))
                .await;
            assert_eq!(status, 404, "nothing was stored");
        }
        let (status, refused) = app
            .post(
                "/suppressions",
                &json!({"email": format!("ada{c}@example.com")}),
            )
            .await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["error"], "invalid_email");
    }
}

/// Writes a suppression row as the schema before canonical keys had it, `age` ms old.
async fn insert_listed(db: &sea_orm::DatabaseConnection, email: &str, age: i64) {
    let at = chrono::Utc::now().timestamp_millis() - age;
    let insert = Query::insert()
        .into_table("mail_suppressions")
        .columns(["email", "reason", "created_at"])
        .values_panic([email.into(), format!("550 {email}").into(), at.into()])
        .to_owned();
    db.execute(&insert)
        .await
        .expect("a suppression of the old schema");
}

/// A database whose suppression list was kept by the earlier key (local part as given,
/// domain in lower case) is brought to canonical keys, then to their keyed hashes, at
/// connect: two entries of one address become the oldest, and every spelling of a listed
/// address is found.
async fn the_schema_upgrade_keys_the_suppression_list_canonically(url: &str) {
    let before = sea_orm::Database::connect(url).await.expect("connect");
    mailer::Migrator::up(&before, Some(4))
        .await
        .expect("the schema before canonical keys");
    insert_listed(&before, "Grace@example.org", 2000).await;
    insert_listed(&before, "grace@example.org", 1000).await;
    insert_listed(&before, "ada@bücher.de", 0).await;
    before.close_by_ref().await.expect("close");

    let keys = mailer::SuppressionKeys::new(&domain::Secret::new("the key of this list"));
    let store = mailer::connect_store(url, Default::default(), keys, true)
        .await
        .expect("connect and upgrade");

    let page = store.suppressions(1, 20).await.expect("the list");
    let listed: Vec<&str> = page
        .items
        .iter()
        .map(|s| s.email.as_deref().expect("an address"))
        .collect();
    assert_eq!(listed, ["ada@bücher.de", "Grace@example.org"]);
    assert_eq!(
        page.items[1].reason, "550 Grace@example.org",
        "the oldest stays"
    );
    for spelling in ["ada@xn--bcher-kva.de", "GRACE@EXAMPLE.ORG"] {
        let mut request =
            domain::MailRequest::from_value(mail_request("welcome", "en")).expect("a request");
        request.to.email = domain::Email::parse(spelling).expect("an address");
        match store.insert(request, None).await.expect("stored") {
            mailer::Inserted::Stored(record) => {
                assert_eq!(
                    record.status,
                    mailer::DeliveryStatus::Suppressed,
                    "{spelling}"
                )
            }
            mailer::Inserted::Duplicate => panic!("a new id"),
        }
    }
    let (_, added) = store
        .suppress(
            &domain::Email::parse("GRACE@Example.org").expect("an address"),
            "again".into(),
            chrono::Utc::now(),
        )
        .await
        .expect("suppress");
    assert!(!added, "listed already under another spelling");
    // At connect, the keys in clear became their hashes under the key.
    let keys = Query::select()
        .column("email_key")
        .from("mail_suppressions")
        .to_owned();
    for row in store.db().query_all(&keys).await.expect("the keys") {
        let key: String = row.try_get("", "email_key").expect("a key");
        assert!(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key:?}"
        );
    }
    store.db().close_by_ref().await.expect("close");
}

#[tokio::test]
async fn the_schema_upgrade_keys_the_suppression_list_canonically_on_sqlite() {
    let dir = tempfile::TempDir::new().expect("a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    the_schema_upgrade_keys_the_suppression_list_canonically(&url).await;
}

#[tokio::test]
async fn the_schema_upgrade_keys_the_suppression_list_canonically_on_postgres() {
    let test = "the_schema_upgrade_keys_the_suppression_list_canonically_on_postgres";
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    the_schema_upgrade_keys_the_suppression_list_canonically(&url).await;
    drop_postgres(&name).await;
}
