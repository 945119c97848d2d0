//! `telemetry.*`: where traces go.

use super::peers::PeerRange;
use super::scalar::string_or_scalar;
use serde::{Deserialize, Deserializer};

/// `telemetry.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `telemetry.otlp_endpoint`: `null` (the default: spans are made for propagation and logs,
    /// and exported nowhere) or an OTLP/HTTP endpoint, `http://` or `https://`. A URL with no
    /// path gets the standard `/v1/traces`.
    #[serde(deserialize_with = "optional_string")]
    pub otlp_endpoint: Option<String>,
    /// `telemetry.service_name`: the `service.name` of exported spans (default: the
    /// process's name, `users`, `mailer` or `facteur`).
    #[serde(deserialize_with = "optional_string")]
    pub service_name: Option<String>,
    /// `telemetry.trusted_trace_peers`: addresses or CIDR ranges whose `traceparent` header is
    /// continued (default none). A request from any other peer starts a trace of its own,
    /// linked to the caller's context, so a client cannot choose the trace (or its sampling)
    /// that the service's spans join.
    pub trusted_trace_peers: Vec<PeerRange>,
}

impl TelemetryConfig {
    /// The URL spans are posted to, when export is on (validated at load).
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.otlp_endpoint.as_deref()?;
        let url = url::Url::parse(endpoint).ok()?;
        Some(if url.path() == "/" {
            format!("{}v1/traces", url.as_str())
        } else {
            url.to_string()
        })
    }
}

/// `null` or a string; a number or boolean from a variable is read as its text.
fn optional_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Text(#[serde(deserialize_with = "string_or_scalar")] String);
    Ok(Option::<Text>::deserialize(deserializer)?.map(|t| t.0))
}
