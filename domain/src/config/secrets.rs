//! The start-time check of secrets: a shipped or short secret never protects a process that
//! listens beyond loopback.
//!
//! The values in `config.yaml`, `deploy/.env.example` and the docs are public: anyone who has
//! read the repository knows them. On a loopback address they keep `cargo run` working with
//! nothing to set, and the process says so in one warning line; on any other address the
//! process refuses to start (exit 2) and names the key.

use super::{Config, ConfigError, TransportKind};
use crate::Secret;
use std::net::SocketAddr;

/// Values that ship with Facteur (`config.yaml`, `deploy/.env.example`, the docs).
const SHIPPED: [&str; 6] = [
    "change-me",
    "change-me-too",
    "change-me-three",
    "change-me-four",
    "change-me-live",
    "replace-me-with-32-random-characters",
];

/// A secret this short is refused off loopback even when it was not shipped.
pub const MIN_SECRET_LEN: usize = 24;

/// Which program is starting: each checks the secrets it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The `users` binary.
    Users,
    /// The `mailer` binary.
    Mailer,
    /// The `cargo run` launcher, which runs both.
    Launcher,
}

/// Secrets that are shipped or short but allowed, because their process listens on loopback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretsCheck {
    /// The keys, in a stable order.
    pub weak_on_loopback: Vec<&'static str>,
}

impl SecretsCheck {
    /// The one warning line to log, when there is anything to say.
    pub fn warning(&self) -> Option<String> {
        (!self.weak_on_loopback.is_empty()).then(|| {
            format!(
                "{} {} a shipped or short value: accepted because the service listens on loopback only; \
                 any other listen address refuses to start until each is a random secret of at least {MIN_SECRET_LEN} characters",
                self.weak_on_loopback.join(", "),
                if self.weak_on_loopback.len() == 1 { "is" } else { "are" },
            )
        })
    }
}

fn is_weak(secret: &Secret) -> bool {
    let value = secret.expose();
    value.chars().count() < MIN_SECRET_LEN || SHIPPED.iter().any(|s| secret.matches(s))
}

impl Config {
    /// The secrets `process` uses, each with the listen address it protects.
    fn secrets_of(&self, process: Process) -> Vec<(&'static str, &Secret, SocketAddr)> {
        let mut used = Vec::new();
        if matches!(process, Process::Users | Process::Launcher) {
            let listen = self.users.listen;
            used.push(("users.admin_token", &self.users.admin_token, listen));
            used.push(("users.session_secret", &self.users.session_secret, listen));
            if self.transport.kind == TransportKind::Socketio {
                used.push((
                    "transport.socketio.token",
                    &self.transport.socketio.token,
                    listen,
                ));
            }
        }
        if matches!(process, Process::Mailer | Process::Launcher) {
            let listen = self.mailer.listen;
            used.push((
                "transport.socketio.token",
                &self.transport.socketio.token,
                listen,
            ));
            if let Some(live) = &self.mailer.live_token {
                used.push(("mailer.live_token", live, listen));
            }
            used.push((
                "mailer.suppression_key",
                &self.mailer.suppression_key,
                listen,
            ));
        }
        used
    }

    /// Refuses a shipped or short secret used by a process that listens beyond loopback
    /// (the error names the key); lists those accepted because it listens on loopback.
    pub fn check_secrets(&self, process: Process) -> Result<SecretsCheck, ConfigError> {
        let mut check = SecretsCheck::default();
        for (key, secret, listen) in self.secrets_of(process) {
            if !is_weak(secret) {
                continue;
            }
            if !listen.ip().is_loopback() {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "is a value shipped with Facteur or shorter than {MIN_SECRET_LEN} characters, \
                         and the service listens on {listen}, beyond loopback: set a random secret of your own"
                    ),
                ));
            }
            if !check.weak_on_loopback.contains(&key) {
                check.weak_on_loopback.push(key);
            }
        }
        Ok(check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::from_yaml_and_env(yaml, Vec::new()).unwrap()
    }

    #[test]
    fn shipped_secrets_are_refused_off_loopback_and_named() {
        let open = config("users: {listen: 0.0.0.0:3000}");
        let error = open.check_secrets(Process::Users).unwrap_err();
        assert_eq!(error.key, "users.admin_token");
        let strong = "s".repeat(MIN_SECRET_LEN);
        let only_session = config(&format!(
            "users: {{listen: 0.0.0.0:3000, admin_token: {strong}}}\ntransport: {{socketio: {{token: {strong}}}}}"
        ));
        let error = only_session.check_secrets(Process::Users).unwrap_err();
        assert_eq!(error.key, "users.session_secret");
        let mailer = config("mailer: {listen: '[::]:8080'}");
        let error = mailer.check_secrets(Process::Mailer).unwrap_err();
        assert_eq!(error.key, "transport.socketio.token");
        let only_suppression = config(&format!(
            "mailer: {{listen: '[::]:8080'}}\ntransport: {{socketio: {{token: {strong}}}}}"
        ));
        let error = only_suppression.check_secrets(Process::Mailer).unwrap_err();
        assert_eq!(error.key, "mailer.suppression_key");
        // The mailer's own secrets do not stop the users service, and the other way round.
        assert!(mailer.check_secrets(Process::Users).is_ok());
    }

    #[test]
    fn a_short_secret_is_weak_even_when_not_shipped() {
        let strong = "s".repeat(MIN_SECRET_LEN);
        let c = config(&format!(
            "mailer: {{listen: 10.0.0.1:8080, live_token: short-but-mine}}\ntransport: {{socketio: {{token: {strong}}}}}"
        ));
        assert_eq!(
            c.check_secrets(Process::Mailer).unwrap_err().key,
            "mailer.live_token"
        );
    }

    #[test]
    fn on_loopback_the_shipped_values_give_one_warning_naming_them() {
        let c = config("{}");
        let check = c.check_secrets(Process::Launcher).unwrap();
        assert_eq!(
            check.weak_on_loopback,
            [
                "users.admin_token",
                "users.session_secret",
                "transport.socketio.token",
                "mailer.suppression_key"
            ]
        );
        let line = check.warning().unwrap();
        assert!(
            line.contains("users.admin_token, users.session_secret, transport.socketio.token"),
            "{line}"
        );
        let strong = "s".repeat(MIN_SECRET_LEN);
        let set = config(&format!(
            "users: {{listen: 0.0.0.0:3000, admin_token: {strong}a, session_secret: {strong}b}}\ntransport: {{socketio: {{token: {strong}c}}}}"
        ));
        assert_eq!(set.check_secrets(Process::Users).unwrap().warning(), None);
    }
}
