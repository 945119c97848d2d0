//! The configuration of every Facteur process: `config.yaml` plus `FACTEUR_*` variables.
//!
//! Loaded once at start with figment, validated, and rejected with one line that names the
//! key when anything is wrong. Secrets are [`Secret`]s, so `Debug` never shows them.
//!
//! Environment variables take precedence over the file. `FACTEUR_USERS__ADMIN_TOKEN` sets
//! `users.admin_token`: `__` separates levels, names are lower-cased. Only variables whose
//! first level is a section of the file are read, so `FACTEUR_CONFIG` and friends do not
//! collide with keys.

use crate::{Email, Secret};
use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use url::Url;

/// The variable that names the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "FACTEUR_CONFIG";
/// The file read when neither `--config` nor `FACTEUR_CONFIG` names one (optional).
pub const DEFAULT_CONFIG_FILE: &str = "config.yaml";

/// Everything both services read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// How users and mailer talk.
    pub transport: TransportConfig,
    /// The users service.
    pub users: UsersConfig,
    /// The mailer service.
    pub mailer: MailerConfig,
    /// Log output.
    pub log: LogConfig,
}

/// Which transport carries mail requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// users is a socket.io client of the mailer.
    #[default]
    Socketio,
    /// Both talk to RabbitMQ.
    Amqp,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Socketio => "socketio",
            TransportKind::Amqp => "amqp",
        })
    }
}

/// `transport.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// `socketio` or `amqp`.
    pub kind: TransportKind,
    /// The socket.io side.
    pub socketio: SocketIoConfig,
    /// The AMQP side.
    pub amqp: AmqpConfig,
}

/// `transport.socketio.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketIoConfig {
    /// The mailer's base URL, `http://` or `https://`.
    #[serde(deserialize_with = "string_or_scalar")]
    pub url: String,
    /// The shared secret service clients present at connect, also the mailer REST API's bearer token.
    pub token: Secret,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            token: Secret::new("change-me"),
        }
    }
}

/// `transport.amqp.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// The broker URL, `amqp://` or `amqps://` (a secret: it carries the password).
    pub url: Secret,
    /// The durable direct exchange requests are published to.
    #[serde(deserialize_with = "string_or_scalar")]
    pub exchange: String,
    /// The quorum queue the mailer consumes.
    #[serde(deserialize_with = "string_or_scalar")]
    pub queue: String,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            exchange: "facteur.mail".into(),
            queue: "facteur.mail.requests".into(),
        }
    }
}

/// `users.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// Where the REST API listens.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    #[serde(deserialize_with = "string_or_scalar")]
    pub database: String,
    /// The bearer token with every right on the users API.
    pub admin_token: Secret,
    /// Signs the session tokens that `POST /authenticate` hands out.
    pub session_secret: Secret,
    /// The link put in password-reset mails; `{token}` is replaced by the reset token.
    #[serde(deserialize_with = "string_or_scalar")]
    pub reset_url: String,
    /// Password hashes that may wait for a hashing thread; past that, 503 `unavailable`.
    pub max_pending_hashes: usize,
    /// HTTP connections held at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-For` header names the client for the rate limits.
    pub trusted_proxies: Vec<IpAddr>,
    /// The rate limits of the open routes.
    pub limits: UsersLimits,
}

/// `users.limits.*`: how many of each thing one key may do per window; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersLimits {
    /// Failed `POST /authenticate` per login per 15 minutes.
    pub login_failures_per_login: u32,
    /// Failed `POST /authenticate` per client address per 15 minutes.
    pub login_failures_per_client: u32,
    /// Reset mails per email address per hour (past that the answer stays 202, no mail).
    pub reset_mails_per_address: u32,
    /// `POST /password-resets` per client address per minute.
    pub resets_per_client: u32,
    /// `POST /users` per client address per minute.
    pub creates_per_client: u32,
}

impl Default for UsersLimits {
    fn default() -> Self {
        Self {
            login_failures_per_login: 10,
            login_failures_per_client: 30,
            reset_mails_per_address: 3,
            resets_per_client: 20,
            creates_per_client: 20,
        }
    }
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database: "sqlite://var/users.db?mode=rwc".into(),
            admin_token: Secret::new("change-me-too"),
            session_secret: Secret::new("change-me-three"),
            reset_url: "http://127.0.0.1:3000/password-resets/{token}".into(),
            max_pending_hashes: 64,
            max_connections: 1024,
            trusted_proxies: Vec::new(),
            limits: UsersLimits::default(),
        }
    }
}

/// `mailer.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailerConfig {
    /// Where socket.io and the REST API listen.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    #[serde(deserialize_with = "string_or_scalar")]
    pub database: String,
    /// The sender, `Name <address>` or a bare address; its domain goes into every Message-ID.
    #[serde(deserialize_with = "string_or_scalar")]
    pub from: String,
    /// The SMTP server, or `null` to write `.eml` files into `outbox_dir`.
    pub smtp: Option<SmtpConfig>,
    /// Where mails go when `smtp` is null.
    pub outbox_dir: PathBuf,
    /// SMTP tries before a mail is marked failed.
    pub max_attempts: u32,
    /// Tokio worker threads of the mailer process (socket.io, HTTP, rendering, SMTP). The
    /// SQLite store's commits run on a blocking thread, its checkpoints on a thread of their own.
    pub worker_threads: usize,
    /// HTTP connections (socket.io included) held at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// engine.io sessions held at once; a handshake past that is refused.
    pub max_sockets: usize,
    /// Browser origins (`https://ops.example.com`) allowed to open a socket.io session,
    /// besides the mailer's own.
    pub allowed_origins: Vec<String>,
    /// When set, `/live` needs `{"token": …}` at connect and shows whole recipients.
    pub live_token: Option<Secret>,
}

impl Default for MailerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: "sqlite://var/mailer.db?mode=rwc".into(),
            from: "Facteur <no-reply@facteur.local>".into(),
            smtp: None,
            outbox_dir: PathBuf::from("var/mail"),
            max_attempts: 8,
            // One worker measured cheaper per mail and faster than one per core on two cores
            // (docs/benchmarks/mailer.md): no wake-ups of a second worker for each new task.
            worker_threads: 1,
            max_connections: 1024,
            max_sockets: 10_000,
            allowed_origins: Vec::new(),
            live_token: None,
        }
    }
}

impl MailerConfig {
    /// The address part of `from`.
    pub fn from_address(&self) -> &str {
        match (self.from.rfind('<'), self.from.rfind('>')) {
            (Some(start), Some(end)) if start < end => &self.from[start + 1..end],
            _ => self.from.trim(),
        }
    }

    /// The domain of `from`, used in `Message-ID: <id@domain>`.
    pub fn from_domain(&self) -> &str {
        self.from_address()
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("facteur.local")
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (local relays and tests).
    None,
    /// Plain, then STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `mailer.smtp.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name or address.
    #[serde(deserialize_with = "string_or_scalar")]
    pub host: String,
    /// The server's port (25, 465, 587, …).
    pub port: u16,
    /// The login, if the server wants one.
    #[serde(default, deserialize_with = "option_string_or_scalar")]
    pub username: Option<String>,
    /// The password, if the server wants one.
    #[serde(default)]
    pub password: Option<Secret>,
    /// `none`, `starttls` or `tls`.
    #[serde(default)]
    pub tls: SmtpTls,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `log.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `users=debug,info`); `RUST_LOG` overrides it.
    #[serde(deserialize_with = "string_or_scalar")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A configuration that cannot be used: which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key (`transport.socketio.url`), or `config` for the file itself.
    pub key: String,
    /// What is wrong, and where the value came from when known.
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The sections whose `FACTEUR_<SECTION>__…` variables are configuration keys.
const SECTIONS: [&str; 4] = ["transport", "users", "mailer", "log"];

/// Keys whose environment value is taken as a string exactly as written (so are keys ending in
/// `password`): figment would otherwise read `FACTEUR_MAILER__SMTP__PASSWORD=0123` as a number.
const STRING_KEYS: [&str; 14] = [
    "transport.socketio.url",
    "transport.socketio.token",
    "transport.amqp.url",
    "transport.amqp.exchange",
    "transport.amqp.queue",
    "users.database",
    "users.admin_token",
    "users.session_secret",
    "users.reset_url",
    "mailer.database",
    "mailer.from",
    "mailer.smtp.host",
    "mailer.smtp.username",
    "mailer.live_token",
];

/// Where the configuration file comes from.
fn config_path(explicit: Option<&Path>) -> Result<Option<(PathBuf, &'static str)>, ConfigError> {
    let (path, origin) = match explicit {
        Some(p) => (p.to_path_buf(), "--config"),
        None => match std::env::var_os(CONFIG_ENV) {
            Some(p) if !p.is_empty() => (PathBuf::from(p), CONFIG_ENV),
            _ => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                return Ok(default.is_file().then_some((default, "default")));
            }
        },
    };
    if !path.is_file() {
        return Err(ConfigError::new(
            "config",
            format!(
                "the file {} named by {origin} does not exist",
                path.display()
            ),
        ));
    }
    Ok(Some((path, origin)))
}

impl Config {
    /// Loads the file (`explicit`, else `FACTEUR_CONFIG`, else `./config.yaml` if present),
    /// applies `FACTEUR_*` variables, and validates.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some((path, _)) = config_path(explicit)? {
            figment = figment.merge(Yaml::file_exact(path));
        }
        Self::extract(figment, std::env::vars())
    }

    /// Loads from YAML text and the given variables instead of the process environment.
    pub fn from_yaml_and_env(
        yaml: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::extract(Figment::new().merge(Yaml::string(yaml)), vars)
    }

    fn extract(
        mut figment: Figment,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        for var in env_providers(vars) {
            figment = figment.merge(var);
        }
        let config: Config = figment.extract().map_err(from_figment_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: URL schemes, non-empty secrets, placeholders.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.transport;
        let url = Url::parse(&t.socketio.url).map_err(|e| {
            ConfigError::new(
                "transport.socketio.url",
                format!("{:?} is not a URL: {e}", t.socketio.url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "transport.socketio.url",
                format!("{:?} must start with http:// or https://", t.socketio.url),
            ));
        }
        non_empty("transport.socketio.token", &t.socketio.token)?;
        let amqp = Url::parse(t.amqp.url.expose())
            .map_err(|e| ConfigError::new("transport.amqp.url", format!("is not a URL: {e}")))?;
        if !matches!(amqp.scheme(), "amqp" | "amqps") {
            return Err(ConfigError::new(
                "transport.amqp.url",
                "must start with amqp:// or amqps://",
            ));
        }
        if t.amqp.exchange.is_empty() {
            return Err(ConfigError::new(
                "transport.amqp.exchange",
                "must not be empty",
            ));
        }
        if t.amqp.queue.is_empty() {
            return Err(ConfigError::new(
                "transport.amqp.queue",
                "must not be empty",
            ));
        }
        database_url("users.database", &self.users.database)?;
        non_empty("users.admin_token", &self.users.admin_token)?;
        non_empty("users.session_secret", &self.users.session_secret)?;
        let reset = &self.users.reset_url;
        if !reset.contains("{token}") {
            return Err(ConfigError::new(
                "users.reset_url",
                format!("{reset:?} must contain {{token}}"),
            ));
        }
        if !(reset.starts_with("http://") || reset.starts_with("https://")) {
            return Err(ConfigError::new(
                "users.reset_url",
                format!("{reset:?} must start with http:// or https://"),
            ));
        }
        database_url("mailer.database", &self.mailer.database)?;
        Email::parse(self.mailer.from_address().to_string()).map_err(|e| {
            ConfigError::new(
                "mailer.from",
                format!("{:?} {}", self.mailer.from, e.message),
            )
        })?;
        if self.mailer.max_attempts == 0 {
            return Err(ConfigError::new(
                "mailer.max_attempts",
                "must be at least 1",
            ));
        }
        if !(1..=1024).contains(&self.mailer.worker_threads) {
            return Err(ConfigError::new(
                "mailer.worker_threads",
                format!(
                    "must be between 1 and 1024, not {}",
                    self.mailer.worker_threads
                ),
            ));
        }
        if let Some(smtp) = &self.mailer.smtp {
            if smtp.host.is_empty() {
                return Err(ConfigError::new("mailer.smtp.host", "must not be empty"));
            }
            if smtp.port == 0 {
                return Err(ConfigError::new("mailer.smtp.port", "must not be 0"));
            }
        }
        if self.mailer.outbox_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("mailer.outbox_dir", "must not be empty"));
        }
        at_least_one("users.max_pending_hashes", self.users.max_pending_hashes)?;
        at_least_one("users.max_connections", self.users.max_connections)?;
        at_least_one("mailer.max_connections", self.mailer.max_connections)?;
        at_least_one("mailer.max_sockets", self.mailer.max_sockets)?;
        for (n, origin) in self.mailer.allowed_origins.iter().enumerate() {
            check_origin(&format!("mailer.allowed_origins.{n}"), origin)?;
        }
        if let Some(token) = &self.mailer.live_token {
            non_empty("mailer.live_token", token)?;
        }
        Ok(())
    }
}

/// The file of an SQLite URL (`sqlite://var/users.db?mode=rwc` → `var/users.db`); `None` for
/// in-memory and non-SQLite URLs.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path.starts_with(":memory:") || query.contains("mode=memory");
    (!memory).then(|| PathBuf::from(path))
}

/// The folder that holds an SQLite URL's file (`sqlite://var/users.db?mode=rwc` → `var`), so a
/// service can create it before connecting; `None` for in-memory and non-SQLite URLs.
pub fn sqlite_folder(url: &str) -> Option<PathBuf> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Creates the folder of an SQLite URL's file if it is missing: SQLite creates the file
/// (`mode=rwc`) but not its folder, `./var/` on a fresh checkout. Folders it creates are
/// readable by their owner only (0700 on Unix); existing ones are left as they are.
pub fn create_sqlite_folder(url: &str) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match sqlite_folder(url) {
        Some(folder) => builder.create(&folder).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create the database folder {}: {e}",
                    folder.display()
                ),
            )
        }),
        None => Ok(()),
    }
}

/// Prepares an SQLite URL's file before SQLite opens it: its folder (0700, see
/// [`create_sqlite_folder`]) and, when missing, the file itself, empty and readable by its
/// owner only (0600). SQLite would create it 0644, and its `-wal` and `-shm` files take the
/// database file's mode. Nothing to do for in-memory and non-SQLite URLs.
pub fn prepare_sqlite_file(url: &str) -> std::io::Result<()> {
    create_sqlite_folder(url)?;
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot create the database file {}: {e}", path.display()),
        )),
    }
}

fn at_least_one(key: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(())
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn check_origin(key: &str, origin: &str) -> Result<(), ConfigError> {
    let wrong = || {
        ConfigError::new(
            key,
            format!(
                "{origin:?} is not an origin: expected scheme://host[:port], as in https://ops.example.com"
            ),
        )
    };
    let url = Url::parse(origin).map_err(|_| wrong())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(wrong());
    }
    if url.origin().ascii_serialization() != origin.trim_end_matches('/') {
        return Err(wrong());
    }
    Ok(())
}

fn non_empty(key: &str, secret: &Secret) -> Result<(), ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    Ok(())
}

fn database_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "must start with sqlite:, postgres:// or postgresql://",
        ))
    }
}

/// One `FACTEUR_*` variable as a figment provider, so an error names the variable.
struct EnvVar {
    name: String,
    key: String,
    value: figment::value::Value,
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::default(&self.key, &self.value).data()
    }
}

/// The `FACTEUR_<SECTION>__…` variables among `vars`, as providers.
fn env_providers(vars: impl IntoIterator<Item = (String, String)>) -> Vec<EnvVar> {
    let mut found: Vec<EnvVar> = vars
        .into_iter()
        .filter_map(|(name, raw)| {
            let rest = name.strip_prefix("FACTEUR_")?;
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let section = key.split('.').next()?;
            if !SECTIONS.contains(&section) || !key.contains('.') {
                return None;
            }
            let value = if STRING_KEYS.contains(&key.as_str()) || key.ends_with("password") {
                figment::value::Value::from(raw)
            } else {
                raw.parse().expect("parsing a figment value is infallible")
            };
            Some(EnvVar { name, key, value })
        })
        .collect();
    // A stable order, so the same environment always gives the same error.
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn from_figment_error(error: figment::Error) -> ConfigError {
    let key = if error.path.is_empty() {
        "config".to_string()
    } else {
        error.path.join(".")
    };
    let source = match &error.metadata {
        Some(md) => match &md.source {
            // figment shows files relative to the working directory; the path as given is clearer.
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            Some(src) => format!(" (in {src})"),
            None => format!(" (in {})", md.name),
        },
        None => String::new(),
    };
    ConfigError::new(&key, format!("{}{source}", error.kind))
}

/// Deserializes a string, also accepting a number or a boolean written where a string belongs
/// (`password: 12345` in YAML).
pub(crate) fn string_or_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        U(u64),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::U(n) => n.to_string(),
        Scalar::I(n) => n.to_string(),
        Scalar::F(n) => n.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

fn option_string_or_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string_or_scalar(d).map(Some)
}

mod secrets;
pub use secrets::{Process, SecretsCheck};

#[cfg(test)]
mod tests;
