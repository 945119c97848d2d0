//! Reading the configuration: the file, then the `FACTEUR_*` variables on top.

use super::{CONFIG_ENV, Config, ConfigError, DEFAULT_CONFIG_FILE};
use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use std::path::{Path, PathBuf};

/// The sections whose `FACTEUR_<SECTION>__…` variables are configuration keys.
const SECTIONS: [&str; 5] = ["transport", "users", "mailer", "log", "telemetry"];

/// Keys whose environment value is taken as a string exactly as written (so are keys ending in
/// `password`): figment would otherwise read `FACTEUR_MAILER__SMTP__PASSWORD=0123` as a number.
const STRING_KEYS: [&str; 22] = [
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
    "mailer.suppression_key",
    "mailer.cluster.redis_url",
    "mailer.bounces.domain",
    "mailer.dkim.domain",
    "mailer.dkim.selector",
    "mailer.dkim.private_key_file",
    "telemetry.otlp_endpoint",
    "telemetry.service_name",
];

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
}

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
