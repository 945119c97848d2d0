//! Which database a test runs on, and the fresh database each test gets.

use sea_orm::{ConnectionTrait, Database};
use tokio::sync::OnceCell;

/// The server PostgreSQL tests use; `root` is tried when `postgres` is refused.
const PG_HOST: &str = "127.0.0.1:5432";

/// A test's database backend.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database, created through this admin URL.
    Postgres { admin_url: String },
}

static ADMIN_URL: OnceCell<Option<String>> = OnceCell::const_new();

async fn find_admin_url() -> Option<String> {
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@{PG_HOST}/test");
        if let Ok(Ok(db)) =
            tokio::time::timeout(std::time::Duration::from_secs(5), Database::connect(&url)).await
        {
            let _ = db.close().await;
            return Some(url);
        }
    }
    None
}

impl Backend {
    /// PostgreSQL when reachable; otherwise prints why `test` is skipped and returns `None`,
    /// or panics when `FACTEUR_REQUIRE_SERVICES=1`.
    pub async fn postgres(test: &str) -> Option<Backend> {
        match ADMIN_URL.get_or_init(find_admin_url).await {
            Some(url) => Some(Backend::Postgres {
                admin_url: url.clone(),
            }),
            None => {
                let why = format!(
                    "PostgreSQL is not reachable at {PG_HOST} (users postgres and root, database test)"
                );
                testkit::skip_or_fail(&format!("{test} (postgres)"), &why);
                None
            }
        }
    }
}

/// A PostgreSQL database made for one test, dropped when the guard goes.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> PgDatabase {
        let name = format!("users_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{}", self.name),
            None => panic!("an admin URL without a database"),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime may be shutting down: a small runtime on
        // its own thread drops the database (FORCE closes the app's remaining connections).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A database a test prepares before any app opens it (an older schema, rows an older
/// release wrote): an SQLite file in a folder of its own, or a fresh PostgreSQL database.
/// Keep it alive until every app on it has stopped.
pub struct OwnDatabase {
    pub url: String,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl OwnDatabase {
    pub async fn create(backend: &Backend) -> OwnDatabase {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => OwnDatabase {
                url: format!("sqlite://{}/users.db?mode=rwc", dir.path().display()),
                _dir: dir,
                _pg: None,
            },
            Backend::Postgres { admin_url } => {
                let pg = PgDatabase::create(admin_url).await;
                OwnDatabase {
                    url: pg.url(),
                    _dir: dir,
                    _pg: Some(pg),
                }
            }
        }
    }
}
