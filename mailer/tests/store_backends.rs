//! The delivery store on both backends: duplicate detection and restart survival, on SQLite
//! and on a fresh PostgreSQL database per test.

use chrono::{DateTime, Utc};
use domain::{Email, Locale, MailRequest, Recipient, Template};
use mailer::{DeliveryStatus, Finished, Inserted, MailError, Migrator, Store, WriteCounters};
use sea_orm::sea_query::Query;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use serde_json::json;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

fn postgres_base() -> String {
    std::env::var("FACTEUR_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES.to_string())
}

/// A fresh PostgreSQL database, or None (after a visible skip) when PostgreSQL is not reachable.
pub async fn fresh_postgres(test: &str) -> Option<(String, String)> {
    let base = postgres_base();
    let admin =
        match tokio::time::timeout(std::time::Duration::from_secs(5), Database::connect(&base))
            .await
        {
            Ok(Ok(db)) => db,
            _ => {
                testkit::skip_or_fail(test, "PostgreSQL is not reachable at 127.0.0.1:5432");
                return None;
            }
        };
    let name = format!("mailer_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    let url = match base.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{name}"),
        None => panic!("the PostgreSQL URL has no database part"),
    };
    Some((url, name))
}

pub async fn drop_postgres(name: &str) {
    if let Ok(admin) = Database::connect(&postgres_base()).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

fn request() -> MailRequest {
    let mut vars = serde_json::Map::new();
    vars.insert("login".into(), json!("ada"));
    MailRequest::new(
        Template::WELCOME,
        Locale::EN,
        Recipient {
            email: Email::parse("ada@example.com").unwrap(),
            name: "Ada".into(),
        },
        vars,
    )
    .unwrap()
}

/// The outcome of one try of `id`.
fn finished(
    id: domain::MailRequestId,
    status: DeliveryStatus,
    attempts: u32,
    error: Option<&str>,
    at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
) -> Finished {
    Finished {
        id,
        status,
        attempts,
        error: error.map(str::to_string),
        at,
        next_attempt_at,
        suppress: None,
    }
}

/// Stores `request` and says whether it was new.
async fn stored(store: &Store, request: &MailRequest) -> bool {
    match store
        .insert(request.clone(), None)
        .await
        .expect("the store answers")
    {
        Inserted::Stored(record) => {
            assert_eq!(record.id, request.id);
            true
        }
        Inserted::Duplicate => false,
    }
}

/// Closes `store`'s pool and stops its writer.
async fn close(store: Store) {
    store.db().close_by_ref().await.unwrap();
    drop(store);
}

async fn duplicates_are_detected_and_unfinished_work_survives_a_reconnect(url: &str) {
    let store = crate::common::open_store(url, WriteCounters::default())
        .await
        .expect("connect and migrate");
    let (a, b) = (request(), request());

    assert!(stored(&store, &a).await);
    assert!(stored(&store, &b).await);
    assert!(!stored(&store, &a).await, "the same id again is not new");
    let now = Utc::now();
    assert_eq!(store.claim_due(&[a.id], now).await.unwrap().len(), 1);
    assert!(
        store.claim_due(&[a.id], now).await.unwrap().is_empty(),
        "a claimed record is not claimed twice"
    );
    assert_eq!(store.claim_due(&[b.id], now).await.unwrap().len(), 1);
    let later = now + chrono::Duration::hours(1);
    store
        .finish(vec![finished(
            b.id,
            DeliveryStatus::Retrying,
            1,
            Some("451"),
            now,
            later,
        )])
        .await
        .unwrap();
    assert!(
        store.claim_due(&[b.id], now).await.unwrap().is_empty(),
        "a retry is not claimed before its time"
    );
    store
        .finish(vec![finished(
            b.id,
            DeliveryStatus::Sent,
            2,
            None,
            now,
            now,
        )])
        .await
        .unwrap();
    close(store).await;

    // A new connection (a restart) finds `a` abandoned mid-send, puts it back, and finds
    // nothing else to do.
    let store = crate::common::open_store(url, WriteCounters::default())
        .await
        .expect("reconnect; migrations run again harmlessly");
    assert_eq!(store.release_abandoned_claims().await.unwrap(), 1);
    let due = store.due(chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, a.id);
    assert_eq!(due[0].status, DeliveryStatus::Queued);
    let record = serde_json::to_value(store.get(b.id).await.unwrap().unwrap()).unwrap();
    assert_eq!(record["status"], "sent");
    assert_eq!(record["attempts"], 2);
    assert!(record.get("last_error").is_none(), "{record}");
    let page = store
        .list(Some(DeliveryStatus::Queued), 1, 10)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    close(store).await;
}

/// Inserts `requests` as the first schema's columns, without the store's writer.
pub async fn insert_raw(db: &sea_orm::DatabaseConnection, requests: &[MailRequest]) {
    let now = Utc::now().timestamp_millis();
    for r in requests {
        let q = Query::insert()
            .into_table("mail_deliveries")
            .columns([
                "id",
                "template",
                "locale",
                "to_email",
                "to_name",
                "vars",
                "status",
                "attempts",
                "created_at",
                "next_attempt_at",
            ])
            .values_panic([
                r.id.to_string().into(),
                r.template.as_str().into(),
                r.locale.as_str().into(),
                r.to.email.as_str().into(),
                r.to.name.clone().into(),
                serde_json::to_string(&r.vars).unwrap().into(),
                "queued".into(),
                0i32.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        db.execute(&q)
            .await
            .expect("an insert under the first schema");
    }
}

/// The names of the delivery table's indexes.
async fn index_names(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mail_deliveries'"
        }
        _ => "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'mail_deliveries'",
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("the index list")
        .iter()
        .map(|row| row.try_get("", "name").expect("a name"))
        .collect()
}

/// Due work comes oldest first, a page at a time: `queued`, and `retrying` whose time has
/// come; not a retry that waits, not a sent mail, not one being sent.
/// The requests are stored under the first schema, which the store then upgrades.
async fn due_work_comes_oldest_first_a_page_at_a_time(url: &str) {
    let first = Database::connect(url).await.expect("connect");
    Migrator::up(&first, Some(1))
        .await
        .expect("the first schema");
    let requests: Vec<MailRequest> = (0..6).map(|_| request()).collect();
    insert_raw(&first, &requests).await;
    first.close_by_ref().await.unwrap();

    let store = crate::common::open_store(url, WriteCounters::default())
        .await
        .expect("connect and upgrade");
    let indexes = index_names(store.db()).await;
    assert!(
        indexes.contains(&"mail_deliveries_due".to_string())
            && !indexes.contains(&"mail_deliveries_status_next".to_string()),
        "{indexes:?}"
    );
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    let id = |i: usize| requests[i].id;
    store
        .finish(vec![
            // 0: a retry due an hour ago, older than any fresh request.
            finished(
                id(0),
                DeliveryStatus::Retrying,
                1,
                Some("451"),
                now,
                now - hour,
            ),
            // 1: a retry due in an hour; 2: sent.
            finished(
                id(1),
                DeliveryStatus::Retrying,
                1,
                Some("451"),
                now,
                now + hour,
            ),
            finished(id(2), DeliveryStatus::Sent, 1, None, now, now),
        ])
        .await
        .unwrap();
    // 3: being sent.
    assert_eq!(store.claim_due(&[id(3)], now).await.unwrap().len(), 1);

    let later = now + chrono::Duration::seconds(1);
    let page = store.due(later, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].id, id(0), "the oldest due first");
    assert_eq!(page[0].status, DeliveryStatus::Retrying);
    let all: std::collections::HashSet<_> = store
        .due(later, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, [id(0), id(4), id(5)].into_iter().collect());
    assert!(all.contains(&page[1].id));
    let in_an_hour = store.due(now + hour * 2, 10).await.unwrap();
    assert_eq!(in_an_hour.len(), 4, "the waiting retry is due by then");
    close(store).await;
}

#[tokio::test]
async fn due_work_comes_oldest_first_a_page_at_a_time_on_sqlite() {
    let dir = tempfile::TempDir::new().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    due_work_comes_oldest_first_a_page_at_a_time(&url).await;
}

#[tokio::test]
async fn due_work_comes_oldest_first_a_page_at_a_time_on_postgres() {
    let test = "due_work_comes_oldest_first_a_page_at_a_time_on_postgres";
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    due_work_comes_oldest_first_a_page_at_a_time(&url).await;
    drop_postgres(&name).await;
}

#[tokio::test]
async fn the_store_detects_duplicates_and_keeps_unfinished_work_on_sqlite() {
    let dir = tempfile::TempDir::new().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    duplicates_are_detected_and_unfinished_work_survives_a_reconnect(&url).await;
}

#[tokio::test]
async fn the_store_detects_duplicates_and_keeps_unfinished_work_on_postgres() {
    let test = "the_store_detects_duplicates_and_keeps_unfinished_work_on_postgres";
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    duplicates_are_detected_and_unfinished_work_survives_a_reconnect(&url).await;
    drop_postgres(&name).await;
}

#[tokio::test]
async fn the_whole_mailer_runs_on_postgres_and_resends_after_a_restart() {
    let test = "the_whole_mailer_runs_on_postgres_and_resends_after_a_restart";
    let Some((url, name)) = fresh_postgres(test).await else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = crate::common::test_config(&dir);
    config.mailer.database = url;
    let app = crate::common::spawn_with(
        config,
        crate::common::fast_options(),
        std::sync::Arc::new(dir),
    )
    .await;
    let request = crate::common::mail_request("welcome", "fr");
    let id = request["id"].as_str().unwrap().to_string();

    assert_eq!(app.post_mail(&request).await.0, 202);
    assert_eq!(app.post_mail(&request).await.0, 200);
    app.wait_for_status(&id, "sent", std::time::Duration::from_secs(10))
        .await;
    let app = app.restart().await;
    let (_, again) = app.post_mail(&request).await;

    assert_eq!(again["status"], "duplicate");
    assert_eq!(crate::common::outbox_files(&app).len(), 1);
    drop(app);
    drop_postgres(&name).await;
}

/// On SQLite (a file, or in memory) the hot writes go through one writer in shared
/// transactions; what they store reads back through the pool, and claims keep their rules:
/// once per record, and not before it is due.
#[tokio::test]
async fn the_sqlite_writer_stores_claims_and_records_outcomes_like_the_pool() {
    let memory_counters = WriteCounters::default();
    let memory = crate::common::open_store("sqlite::memory:", memory_counters.clone())
        .await
        .expect("an in-memory store");
    let in_memory = request();
    assert!(stored(&memory, &in_memory).await);
    assert_eq!(
        memory_counters.commits.get(),
        1,
        "an in-memory database is written by the SQLite writer, as a file is"
    );
    assert!(!stored(&memory, &in_memory).await, "a duplicate in memory");
    assert_eq!(
        memory
            .claim_due(&[in_memory.id], Utc::now())
            .await
            .unwrap()
            .len(),
        1,
        "the pool and the writer share the in-memory database"
    );
    assert!(memory.get(in_memory.id).await.unwrap().is_some());
    let dir = tempfile::TempDir::new().unwrap();
    let (_, store, counters) = file_with_writer(&dir).await;
    let (a, b) = (request(), request());

    assert!(stored(&store, &a).await);
    assert!(!stored(&store, &a).await, "a duplicate");
    assert!(stored(&store, &b).await);
    let stored_a = store.get(a.id).await.unwrap().expect("a reads back");
    assert_eq!(
        (
            stored_a.template,
            stored_a.locale,
            &stored_a.to,
            &stored_a.vars
        ),
        (a.template, a.locale, &a.to, &a.vars)
    );
    assert_eq!(
        (stored_a.status, stored_a.attempts),
        (DeliveryStatus::Queued, 0)
    );

    let now = Utc::now();
    let mut claimed = store.claim_due(&[a.id, b.id, a.id], now).await.unwrap();
    claimed.sort_by_key(|c| c.id);
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), expected);
    assert!(claimed.iter().all(|c| c.attempts == 0));
    assert!(
        store.claim_due(&[a.id], now).await.unwrap().is_empty(),
        "a claimed record is not claimed twice"
    );

    let later = now + chrono::Duration::hours(1);
    store
        .finish(vec![
            finished(
                b.id,
                DeliveryStatus::Retrying,
                1,
                Some("451 later"),
                now,
                later,
            ),
            finished(a.id, DeliveryStatus::Sent, 1, None, now, now),
        ])
        .await
        .unwrap();
    let b_record = serde_json::to_value(store.get(b.id).await.unwrap().unwrap()).unwrap();
    assert_eq!(b_record["status"], "retrying");
    assert_eq!(b_record["attempts"], 1);
    assert_eq!(b_record["last_error"], "451 later");
    assert!(
        store.claim_due(&[b.id], now).await.unwrap().is_empty(),
        "a retry is not claimed before its time"
    );
    let retry = store
        .claim_due(&[b.id], later + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1, "the stored count of tries comes back");
    let a_record = store.get(a.id).await.unwrap().unwrap();
    assert_eq!(a_record.status, DeliveryStatus::Sent);
    assert!(a_record.sent_at.is_some());

    // Writes that queue up while the database is locked share one transaction, and each
    // still gets its own answer. The lock is held by another connection until every insert
    // has been handed to the writer. The writer waits for the lock on a blocking thread:
    // this test's runtime has one thread, so a wait on it would keep this test from
    // releasing the lock until the wait gave up, and every insert would end `unavailable`.
    let before = (counters.rows.get(), counters.commits.get());
    assert_eq!(
        before.0,
        2 + 3 + 2,
        "rows inserted, claimed and updated so far"
    );
    let blocker = rusqlite::Connection::open(dir.path().join("m.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut inserts = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let store = store.clone();
        inserts.spawn(async move { stored(&store, &request()).await });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    blocker.execute_batch("COMMIT").unwrap();
    while let Some(new) = inserts.join_next().await {
        assert!(new.unwrap(), "each of the 300 is stored");
    }
    let page = store
        .list(Some(DeliveryStatus::Queued), 1, 10)
        .await
        .unwrap();
    // The 300, and `b`, claimed again: `sending` shows as `queued`.
    assert_eq!(page.total, 301);
    assert_eq!(counters.rows.get() - before.0, 300);
    let commits = counters.commits.get() - before.1;
    assert!(commits <= 3, "300 queued inserts took {commits} commits");

    // A store that cannot be written answers `unavailable`, and claims and outcomes with an
    // error: nothing is reported stored that is not.
    store
        .db()
        .execute_unprepared("DROP TABLE mail_deliveries")
        .await
        .unwrap();
    let r = request();
    let refused = store
        .insert(r.clone(), None)
        .await
        .expect_err("nothing to write to");
    assert!(matches!(refused, MailError::Write(_)), "{refused:?}");
    let answer = serde_json::to_value(refused.to_answer(r.id)).unwrap();
    assert_eq!(answer["status"], "unavailable");
    assert!(
        answer["error"].as_str().unwrap().contains("not stored"),
        "{answer}"
    );
    assert!(store.claim_due(&[a.id], now).await.is_err());
    close(store).await;
}

/// A new SQLite file `m.db` in `dir` with the schema in place, its store (with the file's
/// writer), and the writer's counters.
async fn file_with_writer(dir: &tempfile::TempDir) -> (std::path::PathBuf, Store, WriteCounters) {
    let path = dir.path().join("m.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let counters = WriteCounters::default();
    let store = crate::common::open_store(&url, counters.clone())
        .await
        .expect("connect and migrate");
    (path, store, counters)
}

/// Stores `n` requests, each awaited before the next is sent, so each is a commit of its own.
async fn commit_one_by_one(store: &Store, n: usize) {
    for _ in 0..n {
        assert!(stored(store, &request()).await);
    }
}

/// The writer does not copy its write-ahead log into the database inside a commit (that
/// would `fsync` on the runtime's thread); a thread of its own does, every 64 batches. If
/// that thread did nothing, the log would grow without end and the database file would
/// never change: here the file grows while no other connection writes.
#[tokio::test]
async fn the_sqlite_writer_checkpoints_its_log_into_the_database_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let (path, store, _) = file_with_writer(&dir).await;
    let before = std::fs::metadata(&path).unwrap().len();
    // Four times the 64 batches after which a checkpoint is asked for.
    commit_one_by_one(&store, 256).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let size = std::fs::metadata(&path).unwrap().len();
        if size > before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {before} bytes after 256 commits: nothing was checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    close(store).await;
}

/// A checkpoint beside the writer copies only what was committed before it began, and
/// SQLite starts the log over only when a write finds all of it copied: with writes that
/// never pause, the WAL grew by every commit (1.3 GB in 30 s of the benchmark). Here commits
/// follow each other without a pause, thousands of frames past the point where the writer
/// waits for a checkpoint, and the WAL file must not grow past that point.
#[tokio::test]
async fn the_sqlite_writers_log_stays_bounded_when_writes_never_pause() {
    let dir = tempfile::TempDir::new().unwrap();
    let (path, store, _) = file_with_writer(&dir).await;
    let wal = path.with_file_name("m.db-wal");
    // One insert per commit touches about five pages (the table and its four indexes): 6,000
    // commits write some 30,000 frames, about 120 MiB of log if it never started over.
    commit_one_by_one(&store, 6000).await;
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // 4,096 frames of 4 KiB with their headers, and room for the last commit's few pages:
    // the writer learns the size of the log from each commit and pauses right after the one
    // that passes 4,096 frames.
    let bound = 32 + (4096 + 64) * (4096 + 24);
    assert!(
        size <= bound,
        "the WAL is {size} bytes after 6,000 commits; it should stay under {bound}"
    );
    close(store).await;
}

/// The frames in the WAL now, from a passive checkpoint on a connection of the test's own.
fn wal_frames(path: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(path).expect("open");
    connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
        .expect("checkpoint")
}

/// A reader on an old snapshot keeps a checkpoint from copying the frames written after
/// it, so the log cannot start over however often the writer waits. The writer then waits
/// every 64 batches instead of after each one (which would be a checkpoint per commit), and
/// once the reader is gone the log starts over and the waits stop.
#[tokio::test]
async fn a_reader_on_an_old_snapshot_slows_the_writer_only_every_64_batches() {
    let dir = tempfile::TempDir::new().unwrap();
    let (path, store, counters) = file_with_writer(&dir).await;
    let reader = rusqlite::Connection::open(&path).expect("open the reader");
    reader.execute_batch("BEGIN").expect("begin");
    let _: i64 = reader
        .query_row("SELECT count(*) FROM mail_deliveries", [], |row| row.get(0))
        .expect("a snapshot");
    // About five frames a commit: the log passes 4,096 frames after some 800 commits, and
    // 3,200 more follow while it cannot start over.
    commit_one_by_one(&store, 4000).await;
    let waits = counters.checkpoint_waits.get();
    assert!(
        (1..=4000 / 64 + 1).contains(&waits),
        "the writer waited {waits} times for a checkpoint during 4,000 commits"
    );
    assert!(
        wal_frames(&path) > 4096,
        "the reader kept the log from starting over"
    );

    reader.execute_batch("COMMIT").expect("the reader ends");
    drop(reader);
    commit_one_by_one(&store, 300).await;
    let more = counters.checkpoint_waits.get() - waits;
    assert!(
        more <= 300 / 64 + 1,
        "{more} waits in 300 commits after the reader ended"
    );
    let frames = wal_frames(&path);
    assert!(
        frames < 4096,
        "the log started over once the reader had gone: {frames} frames"
    );
    close(store).await;
}
