//! One address, one account, whatever its spelling; and no address or name that hides what
//! it holds behind a zero-width, bidirectional or control character.

use crate::helpers::{
    ADMIN, Backend, OwnDatabase, ada, build_app_on, spawn_app, spawn_app_configured,
};
use crate::on_both_databases;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use serde_json::{Map, Value, json};
use uuid::Uuid;

on_both_databases!(
    every_spelling_of_a_taken_address_is_a_409,
    a_reset_finds_the_account_by_any_spelling_and_mails_the_address_as_written,
    a_hidden_character_in_an_address_or_a_name_is_a_400_naming_the_field,
    the_migration_keys_existing_accounts_and_names_both_accounts_that_collide,
);

/// [`ada`]'s body for `login`, with `email`.
fn with_email(login: &str, email: &str) -> Value {
    let mut body = ada(login);
    body["email"] = json!(email);
    body
}

async fn every_spelling_of_a_taken_address_is_a_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app
        .post("/users", &with_email("victim", "victim@example.org"))
        .await;
    victim.assert_status(201);
    let adele = app
        .post("/users", &with_email("adele", "adèle@bücher.de"))
        .await;
    adele.assert_status(201);
    let (_, other) = app.create_user_path("other").await;

    let spellings = [
        "victim@ｅｘａｍｐｌｅ.org",
        "VICTIM@EXAMPLE.ORG",
        "Victim@Example.Org",
        "ade\u{300}le@bu\u{308}cher.de",
        "adèle@xn--bcher-kva.de",
        "ADÈLE@XN--BCHER-KVA.DE",
        "ADÈLE@BÜCHER.DE",
        "adèle@ｂüｃｈｅｒ.de",
    ];
    for (n, spelling) in spellings.iter().enumerate() {
        let created = app
            .post("/users", &with_email(&format!("thief{n}"), spelling))
            .await;
        let changed = app
            .patch(&other, Some(ADMIN), &json!({ "email": spelling }))
            .await;

        for answer in [&created, &changed] {
            answer.assert_error(409, "conflict");
            assert!(
                answer.json["details"]["email"].is_string(),
                "{spelling}: {}",
                answer.text
            );
        }
    }
    assert_eq!(app.get("/users", Some(ADMIN)).await.json["total"], 3);
    // What the user wrote is what is kept, composed to NFC.
    let decomposed = app
        .post("/users", &with_email("zoe", "Zoe\u{301}@Exemple.fr"))
        .await;
    decomposed.assert_status(201);
    assert_eq!(decomposed.json["email"], "Zo\u{e9}@Exemple.fr");
    assert_eq!(adele.json["email"], "adèle@bücher.de");
    // The owner may write their own address another way.
    let adele_path = format!("/users/{}", adele.json["id"].as_str().expect("id"));
    let respelt = app
        .patch(
            &adele_path,
            Some(ADMIN),
            &json!({"email": "Adèle@xn--bcher-kva.de"}),
        )
        .await;
    respelt.assert_status(200);
    assert_eq!(respelt.json["email"], "Adèle@xn--bcher-kva.de");
    app.post("/users", &with_email("thief", "adèle@bücher.de"))
        .await
        .assert_error(409, "conflict");
}

async fn a_reset_finds_the_account_by_any_spelling_and_mails_the_address_as_written(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.post("/users", &with_email("adele", "adèle@bücher.de"))
        .await
        .assert_status(201);

    app.mailed_reset_link("ADE\u{300}LE@XN--BCHER-KVA.DE", 2)
        .await;

    let resets = app.transport.with_template("password_reset");
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].to.email.as_str(), "adèle@bücher.de");
}

async fn a_hidden_character_in_an_address_or_a_name_is_a_400_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, path) = app.create_user_path("ada").await;
    // Zero-width space, right-to-left override, left-to-right isolate, byte order mark, NEL.
    let hidden = ['\u{200B}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{85}'];

    for (n, c) in hidden.into_iter().enumerate() {
        let code = format!("U+{:04X}", c as u32);
        let cases: [(&str, Value); 6] = [
            ("email", json!(format!("bob{n}{c}@example.com"))),
            ("email", json!(format!("bob{n}@exa{c}mple.com"))),
            ("first_name", json!(format!("Bob{c}"))),
            ("last_name", json!(format!("{c}Builder"))),
            ("company", json!(format!("Build{c}ers"))),
            ("functions", json!(["builder", format!("fix{c}er")])),
        ];
        for (field, value) in cases {
            let mut body = ada(&format!("bob{n}"));
            body[field] = value.clone();
            let created = app.post("/users", &body).await;
            let mut change = Map::new();
            change.insert(field.to_owned(), value.clone());
            let changed = app.patch(&path, Some(ADMIN), &Value::Object(change)).await;

            for answer in [&created, &changed] {
                answer.assert_error(400, "invalid_request");
                let details = answer.json["details"].as_object().expect("details");
                assert_eq!(details.len(), 1, "{field} {code}: {}", answer.text);
                let message = details[field].as_str().unwrap_or_default();
                assert!(message.contains(&code), "{field} {code}: {}", answer.text);
            }
        }
        let reset = app
            .post(
                "/password-resets",
                &json!({"email": format!("ada{c}@example.com")}),
            )
            .await;
        reset.assert_error(400, "invalid_request");
        assert!(reset.json["details"]["email"].is_string(), "{}", reset.text);
    }
    assert_eq!(app.get("/users", Some(ADMIN)).await.json["total"], 1);
    // The background relay may have claimed ada's welcome and not yet published it when the
    // test's own pass looks for due rows: wait until it is published.
    app.wait_until_outbox_empty().await;
    assert_eq!(app.transport.published().len(), 1, "only ada's welcome");
}

/// Writes a `users` row as the schema before address keys had it.
async fn insert_account(db: &DatabaseConnection, id: Uuid, login: &str, email: &str) {
    let now = chrono::Utc::now();
    let insert = Query::insert()
        .into_table("users")
        .columns([
            "id",
            "login",
            "email",
            "password_hash",
            "first_name",
            "last_name",
            "company",
            "functions",
            "locale",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            login.into(),
            email.into(),
            "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA".into(),
            "Ada".into(),
            "Lovelace".into(),
            Option::<String>::None.into(),
            json!([]).into(),
            "en".into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    db.execute(&insert)
        .await
        .expect("an account of the old schema");
}

async fn the_migration_keys_existing_accounts_and_names_both_accounts_that_collide(
    backend: Backend,
) {
    // A database as the release before address keys left it: its unique index on the
    // address as written let two spellings of one address be two accounts.
    let database = OwnDatabase::create(&backend).await;
    let db = Database::connect(&database.url).await.expect("connect");
    users::Migrator::up(&db, Some(2))
        .await
        .expect("the schema before address keys");
    let (ada, shadow, grace) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    insert_account(&db, ada, "ada", "ada@bücher.de").await;
    insert_account(&db, grace, "grace", "Grace@Example.org").await;
    insert_account(&db, shadow, "shadow", "ADA@xn--bcher-kva.de").await;
    db.close().await.expect("close");

    let refused = match build_app_on(&database.url).await {
        Ok(_) => panic!("the app started with two accounts for one address"),
        Err(error) => error.to_string(),
    };

    for part in [ada.to_string(), shadow.to_string()] {
        assert!(refused.contains(&part), "{part} not named: {refused}");
    }
    for login in ["login ada", "login shadow"] {
        assert!(refused.contains(login), "{login} not named: {refused}");
    }
    assert!(!refused.contains(&grace.to_string()), "{refused}");

    // Nothing changed; once the operator gives one of them another address, the start
    // migrates, and every existing address is taken under every spelling.
    let db = Database::connect(&database.url).await.expect("connect");
    let moved = Query::update()
        .table("users")
        .value("email", "shadow@example.org")
        .and_where(Expr::col("id").eq(shadow))
        .to_owned();
    db.execute(&moved).await.expect("moved");
    db.close().await.expect("close");
    let url = database.url.clone();
    let app = spawn_app_configured(backend, move |config| config.users.database = url).await;
    for (login, spelling) in [
        ("thief1", "ada@ｂüｃｈｅｒ.de"),
        ("thief2", "grace@example.org"),
        ("thief3", "SHADOW@EXAMPLE.ORG"),
    ] {
        app.post("/users", &with_email(login, spelling))
            .await
            .assert_error(409, "conflict");
    }
    app.post("/users", &with_email("newbie", "newbie@example.org"))
        .await
        .assert_status(201);
    assert_eq!(app.get("/users", Some(ADMIN)).await.json["total"], 4);
    app.mailed_reset_link("GRACE@example.ORG", 2).await;
    let resets = app.transport.with_template("password_reset");
    assert_eq!(resets[0].to.email.as_str(), "Grace@Example.org");
    app.stop().await;
}
