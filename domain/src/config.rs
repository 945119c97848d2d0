//! The configuration of every Facteur process: `config.yaml` plus `FACTEUR_*` variables.
//!
//! Loaded once at start with figment, validated, and rejected with one line that names the
//! key when anything is wrong. Secrets are [`Secret`](crate::Secret)s, so `Debug` never
//! shows them.
//!
//! Environment variables take precedence over the file. `FACTEUR_USERS__ADMIN_TOKEN` sets
//! `users.admin_token`: `__` separates levels, names are lower-cased. Only variables whose
//! first level is a section of the file are read, so `FACTEUR_CONFIG` and friends do not
//! collide with keys.
//!
//! Layout: one module per section's types (`transport`, `users`, `mailer`, `log`,
//! `telemetry`), then
//! `load` (file and variables), `validate`, `secrets` (the start-time secrets check),
//! `sqlite` (SQLite URLs and files) and `args` (the command line of every binary).

mod args;
mod error;
mod load;
mod log;
mod mailer;
mod peers;
mod scalar;
mod secrets;
mod sqlite;
mod telemetry;
mod transport;
mod urls;
mod users;
mod validate;

pub use args::{Command, parse_args};
pub use error::ConfigError;
pub use log::{LogConfig, LogFormat};
pub use mailer::{
    BouncesConfig, BrandConfig, ClusterConfig, DkimConfig, MailerConfig, RetentionConfig,
    SmtpConfig, SmtpTls, WebhooksConfig,
};
pub use peers::{PeerRange, any_contains};
pub(crate) use scalar::string_or_scalar;
pub use secrets::{Process, SecretsCheck};
pub use sqlite::{
    create_sqlite_folder, is_sqlite, prepare_sqlite_file, sqlite_file, sqlite_folder,
};
pub use telemetry::TelemetryConfig;
pub use transport::{AmqpConfig, SocketIoConfig, TransportConfig, TransportKind};
pub use urls::redact_user_info;
pub use users::{UsersConfig, UsersLimits};

use serde::Deserialize;

/// The variable that names the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "FACTEUR_CONFIG";
/// The file read when neither `--config` nor `FACTEUR_CONFIG` names one (optional).
pub const DEFAULT_CONFIG_FILE: &str = "config.yaml";

/// Everything the services and the launcher read; every section may be left out, and every
/// key has a default that works on loopback.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `transport.*`: how users and mailer talk (socket.io by default).
    pub transport: TransportConfig,
    /// `users.*`: the users service.
    pub users: UsersConfig,
    /// `mailer.*`: the mailer service.
    pub mailer: MailerConfig,
    /// `log.*`: log output of every process.
    pub log: LogConfig,
    /// `telemetry.*`: where the spans of every process go.
    pub telemetry: TelemetryConfig,
}

#[cfg(test)]
mod tests;
