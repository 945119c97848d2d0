//! The reads behind every request that names a user: one user by id (`GET /users/{id}`), and
//! one session by id with its user (each request with a session token). Each is one query
//! built by sea-orm and decoded by it, on every backend; the pool's connections keep each
//! prepared, so a read parses no SQL.

use crate::entities::{session, user};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use uuid::Uuid;

/// The user with this id.
pub(crate) async fn find(db: &DatabaseConnection, id: Uuid) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// The session with this id and its user.
pub(crate) async fn find_session(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<(session::Model, user::Model)>, DbErr> {
    let found = session::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(session, user)| Some((session, user?))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::connect_and_migrate;
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    fn user(company: Option<&str>) -> user::Model {
        let email = format!("Reader{}@example.test", rand::random::<u32>());
        user::Model {
            id: Uuid::now_v7(),
            login: format!("reader{}", rand::random::<u32>()),
            email_key: email.to_lowercase(),
            email,
            password_hash: "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA".into(),
            first_name: "Zoé".into(),
            last_name: "Ünal".into(),
            company: company.map(str::to_owned),
            functions: serde_json::json!(["dev", "ops"]),
            locale: "en".into(),
            created_at: user::now(),
            updated_at: user::now() + chrono::Duration::microseconds(1),
            email_verified_at: None,
        }
    }

    async fn insert(db: &DatabaseConnection, row: &user::Model) {
        row.clone()
            .into_active_model()
            .insert(db)
            .await
            .expect("insert");
    }

    async fn file_database(dir: &tempfile::TempDir) -> DatabaseConnection {
        let url = format!("sqlite://{}/users.db?mode=rwc", dir.path().display());
        connect_and_migrate(&url).await.expect("database")
    }

    /// Rows written through sea-orm read back field for field.
    #[tokio::test]
    async fn reads_what_sea_orm_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = file_database(&dir).await;
        for (company, verified) in [(None, false), (Some("ACME"), true)] {
            let mut written = user(company);
            if verified {
                written.email_verified_at = Some(user::now());
            }
            insert(&db, &written).await;
            assert_eq!(find(&db, written.id).await.expect("read"), Some(written));
        }
        assert_eq!(find(&db, Uuid::now_v7()).await.expect("read"), None);
    }

    /// A later commit is visible to the next read.
    #[tokio::test]
    async fn sees_each_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = file_database(&dir).await;
        let written = user(None);
        insert(&db, &written).await;
        assert_eq!(
            find(&db, written.id).await.expect("read"),
            Some(written.clone())
        );
        let mut change = written.clone().into_active_model();
        change.first_name = sea_orm::Set("Zora".into());
        change.update(&db).await.expect("update");
        let read = find(&db, written.id).await.expect("read").expect("found");
        assert_eq!(read.first_name, "Zora");
    }

    /// A session row and its user read back as sea-orm wrote them; an unknown id reads none.
    #[tokio::test]
    async fn reads_a_session_with_its_user() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = file_database(&dir).await;
        let owner = user(Some("ACME"));
        insert(&db, &owner).await;
        let row = session::Model {
            id: Uuid::now_v7(),
            user_id: owner.id,
            secret_hash: "ab".repeat(32),
            created_at_ms: 1_700_000_000_000,
            last_used_at_ms: 1_700_000_060_000,
            expires_at_ms: 1_700_003_600_000,
            client: Some("192.0.2.1".into()),
            user_agent: None,
        };
        row.clone()
            .into_active_model()
            .insert(&db)
            .await
            .expect("insert");
        assert_eq!(
            find_session(&db, row.id).await.expect("read"),
            Some((row, owner))
        );
        assert_eq!(find_session(&db, Uuid::now_v7()).await.expect("read"), None);
    }
}
