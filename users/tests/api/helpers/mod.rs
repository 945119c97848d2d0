//! Test support: databases, the spawned app, the test transport, HTTP helpers.

mod backend;
mod http;
mod transport_double;

pub use backend::{Backend, OwnDatabase};
pub use http::{
    ADMIN, TestApp, TestResponse, ada, build_app_on, spawn_app, spawn_app_configured,
    spawn_app_tuned,
};

/// Generates a `sqlite` and a `postgres` test for each scenario `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres(stringify!($name)).await {
                    super::$name(backend).await
                }
            }
        }
    )* };
}
