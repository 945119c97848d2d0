//! `mailer.*`: the mailer service and its SMTP server.

use super::scalar::{option_string_or_scalar, string_or_scalar};
use crate::{Locale, Secret};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// `mailer.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailerConfig {
    /// `mailer.listen`: the address and port of socket.io, the REST API and the live page
    /// (default `127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// `mailer.database`: `sqlite://…` or `postgres://…` (default
    /// `sqlite://var/mailer.db?mode=rwc`, a file under `./var/`).
    #[serde(deserialize_with = "string_or_scalar")]
    pub database: String,
    /// `mailer.from`: the sender, `Name <address>` or a bare address (default
    /// `Facteur <no-reply@facteur.local>`); its domain goes into every Message-ID.
    #[serde(deserialize_with = "string_or_scalar")]
    pub from: String,
    /// `mailer.smtp`: the SMTP server, or `null` (the default) to write one `.eml` file per
    /// mail into `outbox_dir`.
    pub smtp: Option<SmtpConfig>,
    /// `mailer.outbox_dir`: the folder mails are written to when `smtp` is null (default
    /// `var/mail`, relative to the working directory).
    pub outbox_dir: PathBuf,
    /// `mailer.max_attempts`: SMTP tries before a mail is marked `failed`, at least 1
    /// (default 8).
    pub max_attempts: u32,
    /// `mailer.worker_threads`: Tokio worker threads of the mailer binary (socket.io, HTTP,
    /// rendering, SMTP), 1 to 1024 (default 1). The SQLite store's commits run on a blocking
    /// thread and its checkpoints on a thread of their own, beside these.
    pub worker_threads: usize,
    /// `mailer.max_connections`: HTTP connections (socket.io included) served at once, at
    /// least 1 (default 1024); more wait in the accept backlog.
    pub max_connections: usize,
    /// `mailer.max_connections_per_client`: HTTP connections (socket.io included, an upgraded
    /// websocket until it closes) one client address may hold at once (default 64; 0: no
    /// cap); more are closed at accept.
    pub max_connections_per_client: usize,
    /// `mailer.trusted_proxies`: peer addresses that `max_connections_per_client` does not
    /// cap, such as the proxy in front of several mailers (default none).
    pub trusted_proxies: Vec<IpAddr>,
    /// `mailer.max_sockets`: engine.io sessions held at once, at least 1 (default 10,000); a
    /// handshake past that is answered 503.
    pub max_sockets: usize,
    /// `mailer.max_live_sockets`: anonymous `/live` viewers held at once (default 2,000), a
    /// pool of their own within `max_sockets`, at most `max_sockets`: the rest is kept for
    /// service clients, whatever the viewers do. A viewer past it gets a connect error.
    pub max_live_sockets: usize,
    /// `mailer.allowed_origins`: browser origins (`https://ops.example.com`, no path) allowed
    /// to open a socket.io session besides the mailer's own (default none).
    pub allowed_origins: Vec<String>,
    /// `mailer.live_token`: when set, `/live` needs `{"token": …}` at connect and shows whole
    /// recipients; when null (the default) anyone may watch, with addresses shortened.
    pub live_token: Option<Secret>,
    /// `mailer.suppression_key`: the secret under which the suppression list is kept, as a
    /// keyed hash (HMAC-SHA256) of each canonical address. The database remembers a check
    /// value of it: a mailer started with another key while the list holds entries refuses
    /// to start, since none of them would be found.
    pub suppression_key: Secret,
    /// `mailer.cluster`: null (the default) for one mailer, or `{redis_url}` for several that
    /// share one Redis and one PostgreSQL store and act as one socket.io server.
    pub cluster: Option<ClusterConfig>,
    /// `mailer.retention`: how long delivery records are kept.
    pub retention: RetentionConfig,
    /// `mailer.templates_dir`: null (the default) for the built-in templates alone, or a
    /// folder laid out like the built-in one whose templates override built-ins of the same
    /// name and add new ones; reloaded on SIGHUP and when a file in it changes.
    pub templates_dir: Option<PathBuf>,
    /// `mailer.default_locale`: the locale a mail is written in when its template lacks the
    /// request's (default `fr`); every template of the catalog must have it.
    pub default_locale: Locale,
    /// `mailer.brand`: given to every template as `brand`.
    pub brand: BrandConfig,
    /// `mailer.dkim`: null (the default) to send unsigned mails, or the key that signs
    /// every mail and the DNS name it is published under.
    pub dkim: Option<DkimConfig>,
    /// `mailer.webhooks`: where status webhooks may point, and when they are retried.
    pub webhooks: WebhooksConfig,
    /// `mailer.bounces`: null (the default) for no bounce intake, or where the mailer
    /// listens for the reports other servers send back about its mails.
    pub bounces: Option<BouncesConfig>,
}

/// `mailer.bounces.*`: required when the section is present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// `mailer.bounces.listen`: the address and port of the SMTP receiver for bounces and
    /// complaints (the domain's MX points there, through whatever forwards port 25).
    pub listen: SocketAddr,
    /// `mailer.bounces.domain`: the domain of the envelope sender of every mail,
    /// `bounce+{id}@{domain}`, in ASCII; the receiver takes mail for it only.
    #[serde(deserialize_with = "string_or_scalar")]
    pub domain: String,
}

/// `mailer.webhooks.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// `mailer.webhooks.allow_private_targets`: true lets endpoints resolve to loopback,
    /// private, link-local or multicast addresses (default false: a webhook URL is a door
    /// into the mailer's network, and anyone holding the bearer token may set one).
    pub allow_private_targets: bool,
    /// `mailer.webhooks.retry_delays`: seconds between an event's failed attempt and the
    /// next, one per retry (default the contract's `[5, 300, 1800, 7200, 18000, 36000,
    /// 36000]`: eight attempts over about 28 hours); the event is `failed` after the last.
    pub retry_delays: Vec<u64>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_delays: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
        }
    }
}

/// `mailer.dkim.*`: required when the section is present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// `mailer.dkim.domain`: the signing domain (`d=`), in ASCII (`xn--` for an
    /// internationalised name); usually the domain of `mailer.from`, since receivers that
    /// check DMARC want the two to align.
    #[serde(deserialize_with = "string_or_scalar")]
    pub domain: String,
    /// `mailer.dkim.selector`: the key's name (`s=`): its public half is published as a TXT
    /// record at `{selector}._domainkey.{domain}`.
    #[serde(deserialize_with = "string_or_scalar")]
    pub selector: String,
    /// `mailer.dkim.private_key_file`: a PEM file holding an Ed25519 private key (PKCS#8,
    /// as `openssl genpkey -algorithm ed25519` writes it) or an RSA one (PKCS#8 or PKCS#1);
    /// read once at start.
    pub private_key_file: PathBuf,
}

/// `mailer.brand.*`: who the mails speak for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrandConfig {
    /// `mailer.brand.name`: the product or team name the mails are signed with (default
    /// `Facteur`, not empty).
    #[serde(deserialize_with = "string_or_scalar")]
    pub name: String,
    /// `mailer.brand.url`: the product's home page, or null.
    pub url: Option<String>,
    /// `mailer.brand.support_email`: where readers can write, or null.
    pub support_email: Option<String>,
    /// `mailer.brand.logo_url`: an image shown in the HTML mails' header, or null.
    pub logo_url: Option<String>,
}

impl Default for BrandConfig {
    fn default() -> Self {
        Self {
            name: "Facteur".into(),
            url: None,
            support_email: None,
            logo_url: None,
        }
    }
}

/// `mailer.retention.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// `mailer.retention.records_days`: finished delivery records (sent, failed, cancelled,
    /// suppressed) older than this many days are deleted with their `.eml` files, once a
    /// day; at least 1 (default 400).
    pub records_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { records_days: 400 }
    }
}

/// `mailer.cluster.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `mailer.cluster.redis_url`: `redis://[user:password@]host[:port][/db]` (Redis 7 or
    /// later; the adapter speaks RESP3). May carry a password, so it is never logged whole.
    #[serde(deserialize_with = "string_or_scalar")]
    pub redis_url: String,
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
            // One worker is cheaper per mail on a small machine: no wake-ups of a second
            // worker for each new task (docs/BENCHMARKS.md).
            worker_threads: 1,
            max_connections: 1024,
            max_connections_per_client: 64,
            trusted_proxies: Vec::new(),
            max_sockets: 10_000,
            max_live_sockets: 2_000,
            allowed_origins: Vec::new(),
            live_token: None,
            suppression_key: Secret::new("change-me-four"),
            cluster: None,
            retention: RetentionConfig::default(),
            templates_dir: None,
            default_locale: Locale::FR,
            brand: BrandConfig::default(),
            dkim: None,
            webhooks: WebhooksConfig::default(),
            bounces: None,
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

/// How the SMTP connection is secured (`mailer.smtp.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// `none`: plain text, for local relays and tests.
    None,
    /// `starttls`, the default: plain, then STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// `tls`: TLS from the first byte (usually port 465).
    Tls,
}

/// `mailer.smtp.*`: required when the section is present, except the login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `mailer.smtp.host`: the server's host name or address (required, not empty).
    #[serde(deserialize_with = "string_or_scalar")]
    pub host: String,
    /// `mailer.smtp.port`: the server's TCP port, 25, 465, 587… (required, not 0).
    pub port: u16,
    /// `mailer.smtp.username`: the login, if the server wants one (default none).
    #[serde(default, deserialize_with = "option_string_or_scalar")]
    pub username: Option<String>,
    /// `mailer.smtp.password`: the password that goes with `username` (default none).
    #[serde(default)]
    pub password: Option<Secret>,
    /// `mailer.smtp.tls`: `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub tls: SmtpTls,
}
