//! What types alone cannot check: URL schemes, non-empty secrets, placeholders, bounds.

use super::urls::{check_url, redact_user_info};
use super::{Config, ConfigError, is_sqlite};
use crate::{Email, Secret};
use url::Url;

impl Config {
    /// Checks what types alone cannot: URL schemes, non-empty secrets, placeholders.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_transport()?;
        self.validate_users()?;
        self.validate_mailer()?;
        self.validate_telemetry()
    }

    fn validate_telemetry(&self) -> Result<(), ConfigError> {
        const KEY: &str = "telemetry.otlp_endpoint";
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            let url = check_url(KEY, endpoint, &["http", "https"])?;
            if !url.has_host() {
                return Err(ConfigError::new(
                    KEY,
                    format!("{:?} must name a host", redact_user_info(endpoint)),
                ));
            }
        }
        if self.telemetry.service_name.as_deref() == Some("") {
            return Err(ConfigError::new(
                "telemetry.service_name",
                "must not be empty (leave it null for the process's name)",
            ));
        }
        Ok(())
    }

    fn validate_transport(&self) -> Result<(), ConfigError> {
        let t = &self.transport;
        check_url(
            "transport.socketio.url",
            &t.socketio.url,
            &["http", "https"],
        )?;
        non_empty("transport.socketio.token", &t.socketio.token)?;
        check_url(
            "transport.amqp.url",
            t.amqp.url.expose(),
            &["amqp", "amqps"],
        )?;
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
        Ok(())
    }

    fn validate_users(&self) -> Result<(), ConfigError> {
        database_url("users.database", &self.users.database)?;
        non_empty("users.admin_token", &self.users.admin_token)?;
        non_empty("users.session_secret", &self.users.session_secret)?;
        link_with_token("users.reset_url", &self.users.reset_url)?;
        link_with_token("users.verify_url", &self.users.verify_url)?;
        if !(1..=MAX_VERIFICATION_TTL_HOURS).contains(&self.users.verification_ttl_hours) {
            return Err(ConfigError::new(
                "users.verification_ttl_hours",
                format!("must be from 1 to {MAX_VERIFICATION_TTL_HOURS} (a year)"),
            ));
        }
        check_url("users.reset_url", &self.users.reset_url, &["http", "https"])?;
        check_url(
            "users.verify_url",
            &self.users.verify_url,
            &["http", "https"],
        )?;
        at_least_one("users.max_pending_hashes", self.users.max_pending_hashes)?;
        at_least_one("users.max_connections", self.users.max_connections)
    }

    fn validate_mailer(&self) -> Result<(), ConfigError> {
        let mailer = &self.mailer;
        database_url("mailer.database", &mailer.database)?;
        Email::parse(mailer.from_address().to_string()).map_err(|e| {
            ConfigError::new("mailer.from", format!("{:?} {}", mailer.from, e.message))
        })?;
        if mailer.max_attempts == 0 {
            return Err(ConfigError::new(
                "mailer.max_attempts",
                "must be at least 1",
            ));
        }
        if mailer.retention.records_days == 0 {
            return Err(ConfigError::new(
                "mailer.retention.records_days",
                "must be at least 1",
            ));
        }
        if mailer.webhooks.retry_delays.len() > 20
            || mailer
                .webhooks
                .retry_delays
                .iter()
                .any(|&d| d > 7 * 24 * 3600)
        {
            return Err(ConfigError::new(
                "mailer.webhooks.retry_delays",
                "must hold at most 20 delays of at most 604800 seconds (7 days) each",
            ));
        }
        if !(1..=1024).contains(&mailer.worker_threads) {
            return Err(ConfigError::new(
                "mailer.worker_threads",
                format!("must be between 1 and 1024, not {}", mailer.worker_threads),
            ));
        }
        if let Some(smtp) = &mailer.smtp {
            if smtp.host.is_empty() {
                return Err(ConfigError::new("mailer.smtp.host", "must not be empty"));
            }
            if smtp.port == 0 {
                return Err(ConfigError::new("mailer.smtp.port", "must not be 0"));
            }
        }
        if mailer.brand.name.trim().is_empty() {
            return Err(ConfigError::new("mailer.brand.name", "must not be empty"));
        }
        if let Some(email) = &mailer.brand.support_email {
            Email::parse(email.clone()).map_err(|e| {
                ConfigError::new(
                    "mailer.brand.support_email",
                    format!("{email:?} {}", e.message),
                )
            })?;
        }
        for (key, url) in [
            ("mailer.brand.url", &mailer.brand.url),
            ("mailer.brand.logo_url", &mailer.brand.logo_url),
        ] {
            if let Some(url) = url
                && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            {
                return Err(ConfigError::new(
                    key,
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        if mailer.templates_dir.as_ref().is_some_and(|d| !d.is_dir()) {
            return Err(ConfigError::new("mailer.templates_dir", "is not a folder"));
        }
        if mailer.outbox_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("mailer.outbox_dir", "must not be empty"));
        }
        at_least_one("mailer.max_connections", mailer.max_connections)?;
        at_least_one("mailer.max_sockets", mailer.max_sockets)?;
        if mailer.max_live_sockets > mailer.max_sockets {
            return Err(ConfigError::new(
                "mailer.max_live_sockets",
                format!(
                    "must be at most mailer.max_sockets ({}), not {}: anonymous /live viewers are a part of the sessions",
                    mailer.max_sockets, mailer.max_live_sockets
                ),
            ));
        }
        for (n, origin) in mailer.allowed_origins.iter().enumerate() {
            check_origin(&format!("mailer.allowed_origins.{n}"), origin)?;
        }
        if let Some(token) = &mailer.live_token {
            non_empty("mailer.live_token", token)?;
        }
        non_empty("mailer.suppression_key", &mailer.suppression_key)?;
        if let Some(bounces) = &mailer.bounces {
            // The domain is the right-hand side of every mail's envelope sender.
            dns_name("mailer.bounces.domain", &bounces.domain, 2)?;
            if bounces.listen == mailer.listen && bounces.listen.port() != 0 {
                return Err(ConfigError::new(
                    "mailer.bounces.listen",
                    "must not be mailer.listen: the bounce receiver speaks SMTP on a port of its own",
                ));
            }
        }
        if let Some(dkim) = &mailer.dkim {
            // Both go into the DKIM-Signature header and the DNS name of the key, where
            // anything but a host name would break the one or the other.
            dns_name("mailer.dkim.domain", &dkim.domain, 2)?;
            dns_name("mailer.dkim.selector", &dkim.selector, 1)?;
            if dkim.private_key_file.as_os_str().is_empty() {
                return Err(ConfigError::new(
                    "mailer.dkim.private_key_file",
                    "must not be empty",
                ));
            }
        }
        if let Some(cluster) = &mailer.cluster {
            check_redis_url("mailer.cluster.redis_url", &cluster.redis_url)?;
            // Mailers act as one only through one store: each SQLite file is one mailer's.
            if super::sqlite::is_sqlite(&mailer.database) {
                return Err(ConfigError::new(
                    "mailer.database",
                    "must be a postgres:// database when mailer.cluster is set: several mailers share one delivery store, and an SQLite file belongs to one process",
                ));
            }
        }
        Ok(())
    }
}

/// A Redis URL the adapter's client can open: `redis://` or `rediss://` (TLS) with a host.
fn check_redis_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let url = check_url(key, value, &["redis", "rediss"])?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            key,
            format!(
                "{:?} must name a host, as in redis://127.0.0.1:6379",
                redact_user_info(value)
            ),
        ));
    }
    Ok(())
}

/// A DNS name in the syntax RFC 6376 gives `d=` and `s=`: at least `min_labels` labels of
/// ASCII letters, digits and inner hyphens, each at most 63 characters.
fn dns_name(key: &str, value: &str, min_labels: usize) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = value.split('.').collect();
    if value.len() > 253 || labels.len() < min_labels || !labels.iter().all(|l| label_ok(l)) {
        let example = if min_labels > 1 {
            "mail.example.com"
        } else {
            "mail2026"
        };
        return Err(ConfigError::new(
            key,
            format!(
                "{value:?} is not a DNS name: expected labels of ASCII letters, digits and hyphens separated by dots, as in {example}"
            ),
        ));
    }
    Ok(())
}

/// The longest a verification link may work: a year.
const MAX_VERIFICATION_TTL_HOURS: u32 = 24 * 366;

/// A link put in mails: `http://` or `https://`, with `{token}` to replace.
fn link_with_token(key: &str, url: &str) -> Result<(), ConfigError> {
    if !url.contains("{token}") {
        return Err(ConfigError::new(
            key,
            format!("{url:?} must contain {{token}}"),
        ));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::new(
            key,
            format!("{url:?} must start with http:// or https://"),
        ));
    }
    Ok(())
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
    check_url(key, url, &["sqlite", "postgres", "postgresql"])?;
    if is_sqlite(url) || url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "must start with sqlite:, postgres:// or postgresql://",
        ))
    }
}
