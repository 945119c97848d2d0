//! The suppression list keeps a keyed hash of each address: an erased recipient's entry holds
//! nothing that names it, yet still stops every mail to it; and a mailer started with another
//! `mailer.suppression_key` refuses a list it could not read. On SQLite and on PostgreSQL.

use crate::common::{TestApp, fast_options, send_to, spawn_with, start_refused, test_config};
use crate::store_backends::{drop_postgres, fresh_postgres};
use domain::Secret;
use mailer::StartupError;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// The address as the SMTP server and the operator wrote it.
const WRITTEN: &str = "Ada.Lovelace@Example.ORG";
/// Part of the address that no hash or reason may hold, in any case.
const NEEDLE: &str = "ada.lovelace";

/// A configuration on a fresh SQLite file in `dir`, or on a fresh PostgreSQL database (whose
/// name is returned, to drop it); `None` when PostgreSQL is missing and the test skipped.
async fn config_for(
    test: &str,
    dir: &TempDir,
    postgres: bool,
) -> Option<(domain::config::Config, Option<String>)> {
    let mut config = test_config(dir);
    config.mailer.suppression_key = Secret::new("the-key-of-this-test-0123456789");
    if !postgres {
        return Some((config, None));
    }
    let (url, name) = fresh_postgres(test).await?;
    config.mailer.database = url;
    Some((config, Some(name)))
}

/// Every text of the suppression list and of the delivery records, as the database holds it.
async fn stored_texts(url: &str) -> Vec<String> {
    let db = Database::connect(url).await.expect("the store");
    let backend = db.get_database_backend();
    let mut texts = Vec::new();
    for (sql, columns) in [
        (
            "SELECT email_key, email, reason FROM mail_suppressions",
            &["email_key", "email", "reason"][..],
        ),
        (
            "SELECT to_email, to_name, vars, last_error FROM mail_deliveries",
            &["to_email", "to_name", "vars", "last_error"][..],
        ),
    ] {
        for row in db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("a scan")
        {
            for column in columns {
                let value: Option<String> = row.try_get("", column).expect("a text");
                texts.extend(value);
            }
        }
    }
    db.close().await.expect("close");
    texts
}

/// The lookup keys of the suppression list.
async fn suppression_keys(url: &str) -> Vec<String> {
    let db = Database::connect(url).await.expect("the store");
    let sql = "SELECT email_key FROM mail_suppressions";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a scan");
    db.close().await.expect("close");
    rows.iter()
        .map(|row| row.try_get("", "email_key").expect("a key"))
        .collect()
}

/// The SQLite file and its WAL after a checkpoint that copies and empties the log.
fn sqlite_bytes(dir: &TempDir) -> Vec<u8> {
    let path = dir.path().join("mailer.db");
    let db = rusqlite::Connection::open(&path).expect("the store's file");
    db.busy_timeout(Duration::from_secs(10)).expect("a timeout");
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    })
    .expect("a checkpoint");
    drop(db);
    let mut bytes = std::fs::read(&path).expect("the file");
    if let Ok(wal) = std::fs::read(dir.path().join("mailer.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn an_erased_address_stays_suppressed_as_a_keyed_hash_alone(test: &str, postgres: bool) {
    let dir = Arc::new(TempDir::new().expect("a temporary folder"));
    let Some((config, database)) = config_for(test, &dir, postgres).await else {
        return;
    };
    let url = config.mailer.database.clone();
    let mut app = spawn_with(config.clone(), fast_options(), dir.clone()).await;
    let sent = send_to(&app, WRITTEN).await;
    app.wait_for_status(&sent, "sent", Duration::from_secs(10))
        .await;
    // A refusal quotes the address, as SMTP servers' replies do.
    let reason = format!("550 5.1.1 <{WRITTEN}>: no such user");
    let (code, added) = app
        .post(
            "/suppressions",
            &json!({"email": WRITTEN, "reason": reason}),
        )
        .await;
    assert_eq!(code, 201, "{added}");
    // Listed by the HMAC of the address, never by the address.
    for key in suppression_keys(&url).await {
        assert!(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key:?}"
        );
    }

    let (code, erased) = app.delete("/recipients/ada.lovelace%40example.org").await;
    assert_eq!(code, 200, "{erased}");
    assert_eq!(erased, json!({"erased": 1}));

    let (_, list) = app.get("/suppressions").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["email"], json!(null), "{list}");
    let shown = list.to_string().to_lowercase();
    assert!(!shown.contains(NEEDLE), "{list}");
    for text in stored_texts(&url).await {
        assert!(
            !text.to_lowercase().contains(NEEDLE),
            "the database still holds {text:?}"
        );
    }
    app.stop().await;
    if !postgres {
        let bytes = sqlite_bytes(&dir).to_ascii_lowercase();
        assert!(
            !contains(&bytes, NEEDLE.as_bytes()),
            "the SQLite file still holds the address"
        );
        assert!(!contains(&sqlite_bytes(&dir), WRITTEN.as_bytes()));
    }

    // The hash alone still stops every mail to the address, under any spelling, and removing
    // the address by any spelling finds it.
    let mut app = spawn_with(config, fast_options(), dir.clone()).await;
    let refused = send_to(&app, "ADA.LOVELACE@example.org").await;
    let record = app
        .wait_for_status(&refused, "suppressed", Duration::from_secs(5))
        .await;
    assert!(
        !record["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains(NEEDLE),
        "{record}"
    );
    let (code, again) = app
        .post(
            "/suppressions",
            &json!({"email": "ada.lovelace@EXAMPLE.org"}),
        )
        .await;
    assert_eq!(code, 200, "listed already: {again}");
    assert_eq!(again["email"], json!(null));
    let (code, _) = app.delete("/suppressions/Ada.Lovelace%40example.org").await;
    assert_eq!(code, 204);
    let (_, list) = app.get("/suppressions").await;
    assert_eq!(list["total"], 0, "{list}");
    let after = send_to(&app, WRITTEN).await;
    app.wait_for_status(&after, "sent", Duration::from_secs(10))
        .await;

    app.stop().await;
    if let Some(name) = database {
        drop_postgres(&name).await;
    }
}

#[tokio::test]
async fn an_erased_address_stays_suppressed_as_a_keyed_hash_alone_on_sqlite() {
    let test = "an_erased_address_stays_suppressed_as_a_keyed_hash_alone_on_sqlite";
    an_erased_address_stays_suppressed_as_a_keyed_hash_alone(test, false).await;
}

#[tokio::test]
async fn an_erased_address_stays_suppressed_as_a_keyed_hash_alone_on_postgres() {
    let test = "an_erased_address_stays_suppressed_as_a_keyed_hash_alone_on_postgres";
    an_erased_address_stays_suppressed_as_a_keyed_hash_alone(test, true).await;
}

/// `config` with `key`.
fn with_key(config: &domain::config::Config, key: &str) -> domain::config::Config {
    let mut config = config.clone();
    config.mailer.suppression_key = Secret::new(key);
    config
}

/// Starts a mailer with `key`.
async fn start_with_key(config: &domain::config::Config, dir: &Arc<TempDir>, key: &str) -> TestApp {
    spawn_with(with_key(config, key), fast_options(), dir.clone()).await
}

/// Why a mailer with `key` does not start.
async fn refusal(config: &domain::config::Config, key: &str) -> String {
    match mailer::App::build_with(&with_key(config, key), fast_options()).await {
        Err(e @ StartupError::SuppressionKey(_)) => e.to_string(),
        Err(e) => panic!("the mailer failed for another reason: {e}"),
        Ok(_) => panic!("a mailer with another key started on a list it cannot read"),
    }
}

async fn another_key_is_refused_while_the_list_holds_entries(test: &str, postgres: bool) {
    let dir = Arc::new(TempDir::new().expect("a temporary folder"));
    let Some((config, database)) = config_for(test, &dir, postgres).await else {
        return;
    };
    let first = "the-first-key-of-this-list-0123456789";
    let second = "the-second-key-of-this-list-0123456789";
    // An empty list is taken over by a new key (the loopback default replaced by a real one).
    let mut app = start_with_key(&config, &dir, first).await;
    app.stop().await;
    let mut app = start_with_key(&config, &dir, second).await;
    let (code, _) = app
        .post("/suppressions", &json!({"email": "grace@example.org"}))
        .await;
    assert_eq!(code, 201);
    app.stop().await;

    let refused = refusal(&config, first).await;
    assert!(
        refused.starts_with("invalid configuration: mailer.suppression_key: "),
        "{refused}"
    );
    assert!(!refused.contains('\n'), "one line: {refused}");

    let mut app = start_with_key(&config, &dir, second).await;
    let id = send_to(&app, "Grace@Example.org").await;
    app.wait_for_status(&id, "suppressed", Duration::from_secs(5))
        .await;
    app.stop().await;
    if let Some(name) = database {
        drop_postgres(&name).await;
    }
}

#[tokio::test]
async fn another_key_is_refused_while_the_list_holds_entries_on_sqlite() {
    let test = "another_key_is_refused_while_the_list_holds_entries_on_sqlite";
    another_key_is_refused_while_the_list_holds_entries(test, false).await;
}

#[tokio::test]
async fn another_key_is_refused_while_the_list_holds_entries_on_postgres() {
    let test = "another_key_is_refused_while_the_list_holds_entries_on_postgres";
    another_key_is_refused_while_the_list_holds_entries(test, true).await;
}

/// The binary says it in one line and exits 2, as for any configuration error.
#[tokio::test]
async fn the_mailer_binary_with_another_key_exits_2_naming_mailer_suppression_key() {
    let dir = Arc::new(TempDir::new().expect("a temporary folder"));
    let mut config = test_config(&dir);
    config.mailer.suppression_key = Secret::new("the-key-the-list-is-kept-under-0123");
    let mut app = spawn_with(config.clone(), fast_options(), dir.clone()).await;
    let (code, _) = app
        .post("/suppressions", &json!({"email": "grace@example.org"}))
        .await;
    assert_eq!(code, 201);
    app.stop().await;

    let (code, stderr) = start_refused(&[
        ("FACTEUR_MAILER__DATABASE", config.mailer.database.as_ref()),
        (
            "FACTEUR_MAILER__OUTBOX_DIR",
            config.mailer.outbox_dir.as_os_str(),
        ),
        (
            "FACTEUR_MAILER__SUPPRESSION_KEY",
            "another-key-entirely-0123456789".as_ref(),
        ),
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("invalid configuration: mailer.suppression_key: "),
        "{stderr}"
    );
}
