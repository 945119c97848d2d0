//! URLs in the configuration: the one check every URL key gets at start, and the one way a
//! URL is shown anywhere (log lines, `/health`, `/metrics`, errors): without its user info.
//!
//! A database, AMQP, Redis or OTLP URL may carry a user and a password; the value itself is
//! used as given, and only [`redact_user_info`]'s form of it is ever written out.

use super::ConfigError;
use url::Url;

/// `url` without its user and password (`postgres://app:pw@db/users` → `postgres://db/users`).
/// A text that is not a URL loses whatever precedes an `@` in its authority all the same.
pub fn redact_user_info(url: &str) -> String {
    if let Ok(mut parsed) = Url::parse(url)
        && parsed.has_host()
    {
        if parsed.username().is_empty() && parsed.password().is_none() {
            return url.to_string();
        }
        // Both fail only for URLs that cannot have a host, ruled out above.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        return parsed.to_string();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The start-time check of a URL key: no white space or control character anywhere, and a
/// scheme among `schemes`. The error names `key` and shows the URL without its user info.
pub(super) fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let shown = redact_user_info(value);
    let expected = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            key,
            format!("{shown:?} holds a space or a control character, which no URL may hold"),
        ));
    }
    let url = Url::parse(value).map_err(|_| {
        ConfigError::new(
            key,
            format!("{shown:?} is not a URL: expected one starting with {expected}"),
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::new(
            key,
            format!("{shown:?} must start with {expected}"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_removed_and_the_rest_kept() {
        assert_eq!(
            redact_user_info("postgres://app:s3cret@db:5432/users?sslmode=require"),
            "postgres://db:5432/users?sslmode=require"
        );
        assert_eq!(
            redact_user_info("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_user_info("rediss://:pw@redis.example.com:6380/0"),
            "rediss://redis.example.com:6380/0"
        );
        assert_eq!(
            redact_user_info("http://otel:tok@collector:4318/"),
            "http://collector:4318/"
        );
        assert_eq!(
            redact_user_info("sqlite://var/users.db?mode=rwc"),
            "sqlite://var/users.db?mode=rwc"
        );
        assert_eq!(redact_user_info("sqlite::memory:"), "sqlite::memory:");
        // Not a URL (a space in the host), still no password.
        assert_eq!(
            redact_user_info("postgres://app:s3cret@db host/users"),
            "postgres://db host/users"
        );
    }

    #[test]
    fn a_space_or_a_missing_scheme_is_refused_naming_the_key() {
        let e =
            check_url("users.database", "postgres://a:pw@db/us ers", &["postgres"]).unwrap_err();
        assert_eq!(e.key, "users.database");
        assert!(!e.message.contains("pw"), "{e}");
        let e = check_url(
            "telemetry.otlp_endpoint",
            "collector:4318",
            &["http", "https"],
        )
        .unwrap_err();
        assert_eq!(e.key, "telemetry.otlp_endpoint");
        assert!(check_url("k", "db.example.com/users", &["postgres"]).is_err());
        assert!(check_url("k", "rediss://r:6380", &["redis", "rediss"]).is_ok());
    }
}
