//! Fresh PostgreSQL databases for tests that share one between processes, made and dropped
//! with `psql` against the machine's server.

use std::process::Command;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that lives as long as this value.
pub struct FreshDatabase {
    name: String,
}

impl FreshDatabase {
    /// Creates `facteur_<purpose>_<random>`.
    pub fn create(purpose: &str) -> FreshDatabase {
        let name = format!("facteur_{purpose}_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        FreshDatabase { name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                ADMIN_URL,
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([ADMIN_URL, "-qc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
