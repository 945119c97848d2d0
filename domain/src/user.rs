//! The account fields the users service accepts, each validated by its only constructor.

use crate::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A login: 3 to 32 characters of `[a-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Login(String);

impl Login {
    /// Validates a login.
    pub fn parse(value: impl Into<String>) -> Result<Self, Invalid> {
        let value = value.into();
        let len = value.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Invalid::new(
                "login",
                format!("must be 3 to 32 characters long, got {len}"),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
        {
            return Err(Invalid::new(
                "login",
                format!("may contain only a-z, 0-9, '.', '_' and '-', found {bad:?}"),
            ));
        }
        Ok(Self(value))
    }

    /// The login as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Login {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(value)
    }
}

impl From<Login> for String {
    fn from(value: Login) -> String {
        value.0
    }
}

/// An email address: `local@domain`, with a dotted domain of letters, digits and hyphens.
///
/// This is a practical check (what a mail server would accept for delivery), not the full
/// RFC 5322 grammar: no quoted local parts, no IP-literal domains, no comments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates an address.
    pub fn parse(value: impl Into<String>) -> Result<Self, Invalid> {
        let value = value.into();
        let bad = |why: &str| {
            Err(Invalid::new(
                "email",
                format!("is not a valid address: {why}"),
            ))
        };
        if value.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return bad("it has no '@'");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before '@' must be 1 to 64 characters");
        }
        let local_ok = local.chars().all(|c| {
            c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii()
        });
        if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return bad("the part before '@' has a character that is not allowed");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("the domain needs at least one dot");
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii());
            if !ok {
                return bad("the domain is malformed");
            }
        }
        Ok(Self(value))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

/// A clear-text password on its way to the hasher: at least 8 characters, at most 1024.
///
/// It has neither `Debug` nor `Display` nor `Serialize`, so it cannot reach a log line or a
/// response by accident; [`Password::expose`] is the one way to read it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Validates a password.
    pub fn parse(value: impl Into<String>) -> Result<Self, Invalid> {
        let value = value.into();
        let len = value.chars().count();
        if len < 8 {
            return Err(Invalid::new(
                "password",
                "must be at least 8 characters long",
            ));
        }
        // The cap bounds the hashing work one request can ask for.
        if len > 1024 {
            return Err(Invalid::new(
                "password",
                "must be at most 1024 characters long",
            ));
        }
        Ok(Self(value))
    }

    /// The clear text, for the hasher.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(value).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_the_contract() {
        for ok in ["ada", "a.b_c-d", "x23", &"a".repeat(32)] {
            assert!(Login::parse(ok).is_ok(), "{ok}");
        }
        assert!(Login::parse("ab").unwrap_err().message.contains("3 to 32"));
        assert!(Login::parse("a".repeat(33)).is_err());
        assert!(Login::parse("Ada").unwrap_err().message.contains("'A'"));
        assert!(Login::parse("a d a").is_err());
    }

    #[test]
    fn emails_are_checked() {
        for ok in ["ada@example.com", "a.b+c@sub.example.org", "zoé@exemple.fr"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "ada@exa mple.com",
            "a..b@example.com",
            "ada@-x.com",
            "ada@example..com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email");
            assert!(err.message.starts_with("is not a valid address"), "{bad}");
        }
    }

    #[test]
    fn passwords_have_a_length_and_no_printing() {
        assert!(Password::parse("1234567").is_err());
        assert_eq!(Password::parse("12345678").unwrap().expose(), "12345678");
        assert!(Password::parse("x".repeat(1025)).is_err());
        let from_json: Result<Password, _> = serde_json::from_str("\"short\"");
        match from_json {
            Err(e) => assert!(e.to_string().contains("at least 8"), "{e}"),
            Ok(_) => panic!("a short password was accepted"),
        }
    }
}
