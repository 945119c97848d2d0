//! The account fields the users service accepts, each validated by its only constructor.

use crate::Invalid;
use crate::text::first_forbidden;
use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_normalization::{UnicodeNormalization, is_nfc};

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

/// An email address: `local@domain`, held as written (composed to NFC), with the canonical
/// key that every spelling of the same address shares.
///
/// The domain may be written in Unicode (`bücher.de`, `ｅｘａｍｐｌｅ.org`) or in its `xn--`
/// form; mapped by UTS-46 (IDNA) it must be a dotted name of ASCII letters, digits and
/// hyphens. This is a practical check (what a mail server would accept for delivery), not the
/// full RFC 5322 grammar: no quoted local parts, no IP-literal domains, no comments. No
/// control, format or line-separator character is accepted anywhere (see `text`): a
/// zero-width or bidirectional character would make two different addresses look alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email {
    text: String,
    key: String,
}

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
        // Checked before composing, so that no length of input costs more than this.
        if value.len() > 254 {
            return bad("longer than 254 characters");
        }
        if let Some(c) = first_forbidden(&value) {
            return bad(&format!(
                "it holds a control or format character (U+{:04X})",
                c as u32
            ));
        }
        let value = if is_nfc(&value) {
            value
        } else {
            value.nfc().collect::<String>()
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
        let Ok(ascii_domain) = idna::domain_to_ascii(domain) else {
            return bad("the domain is not a valid domain name");
        };
        let labels: Vec<&str> = ascii_domain.split('.').collect();
        if labels.len() < 2 {
            return bad("the domain needs at least one dot");
        }
        let labels_ok = labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !labels_ok || ascii_domain.len() > 253 {
            return bad("the domain is malformed");
        }
        // Lower case can undo a composition (U+0130 becomes `i` and a combining dot).
        let local_key: String = local.to_lowercase().nfc().collect();
        let key = format!("{local_key}@{ascii_domain}");
        Ok(Self { text: value, key })
    }

    /// The address as written (composed to NFC): what is stored, shown and mailed to.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The key under which addresses are compared: the local part in NFC and lower case,
    /// the domain mapped by UTS-46 to lower-case ASCII. `Ada@Bücher.de`,
    /// `ada@xn--bcher-kva.de` and `ada@ｂüｃｈｅｒ.de` share the key `ada@xn--bcher-kva.de`.
    /// Uniqueness, look-ups and the suppression list use it; a key is itself a valid address
    /// whose key is itself.
    pub fn canonical(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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
        value.text
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

    /// The key of `address`, which must parse.
    fn key(address: &str) -> String {
        Email::parse(address)
            .unwrap_or_else(|e| panic!("{address:?}: {e}"))
            .canonical()
            .to_owned()
    }

    #[test]
    fn every_spelling_of_an_address_has_one_canonical_key() {
        let spellings = [
            "victim@example.org",
            "VICTIM@EXAMPLE.ORG",
            "Victim@Example.Org",
            "victim@ｅｘａｍｐｌｅ.org",
            "victim@ｅｘａｍｐｌｅ．ｏｒｇ",
        ];
        for spelling in spellings {
            assert_eq!(key(spelling), "victim@example.org", "{spelling:?}");
        }
        for spelling in [
            "ada@bücher.de",
            "ada@BÜCHER.DE",
            "ada@bu\u{308}cher.de",
            "ada@xn--bcher-kva.de",
            "ADA@XN--BCHER-KVA.DE",
            "ada@ｂüｃｈｅｒ.de",
        ] {
            assert_eq!(key(spelling), "ada@xn--bcher-kva.de", "{spelling:?}");
        }
        // The local part: composed, then compared without case.
        let composed = "ad\u{e8}le@exemple.fr";
        let decomposed = "ade\u{300}le@exemple.fr";
        assert_eq!(key(decomposed), composed);
        assert_eq!(key("ADE\u{300}LE@exemple.fr"), composed);
        assert_eq!(key("İ@example.org"), "i\u{307}@example.org");
        // Different addresses keep different keys.
        assert_ne!(key("ada@example.org"), key("ada@example.com"));
        assert_ne!(key("ada@bücher.de"), key("ada@bucher.de"));
        assert_ne!(key("adèle@exemple.fr"), key("adele@exemple.fr"));
        // NFC, not NFKC: a server may well tell a fullwidth mailbox name from an ASCII one.
        assert_ne!(key("ｖｉｃｔｉｍ@example.org"), key("victim@example.org"));
    }

    #[test]
    fn a_key_is_an_address_whose_key_is_itself() {
        for spelling in [
            "victim@ｅｘａｍｐｌｅ.org",
            "ADE\u{300}LE@BÜCHER.DE",
            "İstanbul@örnek.com.tr",
            "Δοκιμή@παράδειγμα.δοκιμή",
            "用户@例子.广告",
        ] {
            let once = key(spelling);
            assert_eq!(key(&once), once, "{spelling:?}");
        }
    }

    #[test]
    fn an_address_is_kept_as_written_composed_to_nfc() {
        let email = Email::parse("Ade\u{300}le@Bücher.de").unwrap();
        assert_eq!(email.as_str(), "Ad\u{e8}le@Bücher.de");
        assert_eq!(email.to_string(), email.as_str());
        assert_eq!(String::from(email.clone()), email.as_str());
        let fullwidth = Email::parse("victim@ｅｘａｍｐｌｅ.org").unwrap();
        assert_eq!(fullwidth.as_str(), "victim@ｅｘａｍｐｌｅ.org");
        let json = serde_json::to_string(&email).unwrap();
        let back: Email = serde_json::from_str(&json).unwrap();
        assert_eq!(back, email);
    }

    #[test]
    fn an_address_with_a_control_or_format_character_is_refused() {
        for (bad, code) in [
            ("a\u{200B}da@example.com", "U+200B"),
            ("ada@exa\u{200B}mple.com", "U+200B"),
            ("ada\u{202E}@example.com", "U+202E"),
            ("\u{2066}ada@example.com\u{2069}", "U+2066"),
            ("\u{FEFF}ada@example.com", "U+FEFF"),
            ("ada\u{85}@example.com", "U+0085"),
            ("ada@example.com\u{85}", "U+0085"),
            ("a\u{200D}da@example.com", "U+200D"),
            ("ada@exam\u{AD}ple.com", "U+00AD"),
            ("ada\u{2028}@example.com", "U+2028"),
            ("ada\u{200F}@example.com", "U+200F"),
            ("ada\u{61C}@example.com", "U+061C"),
        ] {
            let error = Email::parse(bad).unwrap_err();
            assert_eq!(error.field, "email");
            assert!(
                error.message.contains("control or format character")
                    && error.message.contains(code),
                "{bad:?}: {}",
                error.message
            );
        }
    }

    #[test]
    fn a_domain_that_does_not_map_to_a_host_name_is_refused() {
        for bad in [
            "ada@xn--.com",
            "ada@exa_mple.com",
            "ada@ex\u{2488}.com",
            &format!("ada@{}.com", "a".repeat(64)),
        ] {
            let error = Email::parse(bad).unwrap_err();
            assert!(
                error.message.starts_with("is not a valid address"),
                "{bad:?}"
            );
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
