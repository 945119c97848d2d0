//! `log.*`: what every process writes to stderr.

use super::scalar::string_or_scalar;
use serde::Deserialize;

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `text`, the default: one human-readable line per event.
    #[default]
    Text,
    /// `json`: one JSON object per line, for log collectors.
    Json,
}

/// `log.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `log.format`: `text` (default) or `json`.
    pub format: LogFormat,
    /// `log.level`: a tracing filter such as `info` (the default) or `users=debug,info`;
    /// `RUST_LOG`, when set, replaces it.
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
