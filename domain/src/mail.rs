//! The mail request, identical on every transport, and the answer it gets.

use crate::{Email, Invalid};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;

/// The largest mail request accepted, in bytes of JSON.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The idempotency key of a mail request, chosen by the sender: a UUID.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
pub struct MailRequestId(pub Uuid);

impl MailRequestId {
    /// A new, time-ordered id (UUIDv7), so ids sort roughly by creation.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for MailRequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MailRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for MailRequestId {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| Invalid::new("id", "is not a UUID"))
    }
}

/// The name of a template in the mailer's catalog: a lower-case letter, then up to 63 lower-case
/// letters, digits, `_` or `-`. Which names exist is the loaded catalog's business (the mailer
/// refuses a name it does not hold); this type only keeps names that can be file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9_-]{0,63}$", example = "welcome")]
pub struct Template(Cow<'static, str>);

impl Template {
    /// Sent once an account is created. Vars: `login`; and `verify_url` with `expires_at`
    /// when the address is to be proved.
    pub const WELCOME: Template = Template(Cow::Borrowed("welcome"));
    /// Sent when account fields change. Vars: `changed`, the names of the changed fields.
    pub const ACCOUNT_UPDATED: Template = Template(Cow::Borrowed("account_updated"));
    /// Sent once an account is deleted.
    pub const ACCOUNT_DELETED: Template = Template(Cow::Borrowed("account_deleted"));
    /// Sent on a password reset request. Vars: `reset_url`, `expires_at`.
    pub const PASSWORD_RESET: Template = Template(Cow::Borrowed("password_reset"));
    /// Sent to prove an address: a new one, or on request. Vars: `verify_url`, `expires_at`.
    pub const EMAIL_VERIFICATION: Template = Template(Cow::Borrowed("email_verification"));
    /// Sent to the previous address when an account's address changes. Vars: `new_email`
    /// (masked), `changed_at`.
    pub const EMAIL_CHANGED: Template = Template(Cow::Borrowed("email_changed"));
    /// Sent when an account's password changes. Vars: `changed_at`.
    pub const PASSWORD_CHANGED: Template = Template(Cow::Borrowed("password_changed"));

    /// The mails the contract promises, in a stable order: every catalog the mailer loads
    /// holds them, whatever a templates folder overrides.
    pub const BUILT_IN: [Template; 7] = [
        Template::WELCOME,
        Template::ACCOUNT_UPDATED,
        Template::ACCOUNT_DELETED,
        Template::PASSWORD_RESET,
        Template::EMAIL_VERIFICATION,
        Template::EMAIL_CHANGED,
        Template::PASSWORD_CHANGED,
    ];

    /// The name used on the wire and in template file names.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned value that costs no allocation for the built-in templates (a
    /// metric's label, say).
    pub fn name(&self) -> Cow<'static, str> {
        self.0.clone()
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<Self, Invalid> {
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            && name.len() <= 64;
        if !well_formed {
            return Err(Invalid::new(
                "template",
                format!(
                    "{name:?} is not a template name: a lower-case letter, then up to 63 lower-case letters, digits, _ or -"
                ),
            ));
        }
        Ok(Self::BUILT_IN
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or_else(|| Self(Cow::Owned(name.to_string()))))
    }

    /// Whether the contract promises this mail.
    pub fn is_built_in(&self) -> bool {
        Self::BUILT_IN.contains(self)
    }

    /// Checks that `vars` holds what a mail the contract promises needs, with the right
    /// types; other templates are checked against the loaded catalog by the mailer.
    pub fn check_vars(&self, vars: &Map<String, Value>) -> Result<(), Invalid> {
        let string = |name: &str| match vars.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::String(_)) => {
                Err(Invalid::new(format!("vars.{name}"), "must not be empty"))
            }
            Some(_) => Err(Invalid::new(format!("vars.{name}"), "must be a string")),
            None => Err(Invalid::new(
                format!("vars.{name}"),
                format!("is required by the {} template", self.as_str()),
            )),
        };
        match self.as_str() {
            "welcome" => {
                string("login")?;
                // The verification paragraph needs both its link and its expiry, or neither.
                if vars.contains_key("verify_url") || vars.contains_key("expires_at") {
                    string("verify_url")?;
                    string("expires_at")?;
                }
                Ok(())
            }
            "password_reset" => {
                string("reset_url")?;
                string("expires_at")
            }
            "email_verification" => {
                string("verify_url")?;
                string("expires_at")
            }
            "email_changed" => {
                string("new_email")?;
                string("changed_at")
            }
            "password_changed" => string("changed_at"),
            "account_updated" => match vars.get("changed") {
                Some(Value::Array(items))
                    if !items.is_empty() && items.iter().all(|v| v.is_string()) =>
                {
                    Ok(())
                }
                Some(_) => Err(Invalid::new(
                    "vars.changed",
                    "must be a non-empty list of field names",
                )),
                None => Err(Invalid::new(
                    "vars.changed",
                    "is required by the account_updated template",
                )),
            },
            _ => Ok(()),
        }
    }
}

impl TryFrom<String> for Template {
    type Error = Invalid;
    fn try_from(name: String) -> Result<Self, Invalid> {
        Self::parse(&name)
    }
}

impl From<Template> for String {
    fn from(template: Template) -> Self {
        template.0.into_owned()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A language, as a BCP 47 tag (`fr`, `en`, `de-CH`, `pt-BR`), kept in its conventional case
/// (language lower-case, script title-case, region upper-case), so `EN-gb` and `en-GB` are one
/// locale and name the same template files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
// The pattern is the common shape (language, script, region): every tag it allows is one the
// mailer takes; the mailer also takes the rest of BCP 47 (variants, extensions, private use).
#[schema(
    value_type = String,
    example = "fr",
    pattern = "^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$"
)]
pub struct Locale(Cow<'static, str>);

impl Locale {
    /// French.
    pub const FR: Locale = Locale(Cow::Borrowed("fr"));
    /// English.
    pub const EN: Locale = Locale(Cow::Borrowed("en"));

    /// The locales the built-in templates are written in.
    pub const BUILT_IN: [Locale; 2] = [Locale::FR, Locale::EN];

    /// The tag, in its conventional case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language subtag: `de` for `de-CH`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// Parses a BCP 47 language tag; anything else is refused.
    pub fn parse(tag: &str) -> Result<Self, Invalid> {
        if language_tags::LanguageTag::parse(tag).is_err() || tag.len() > 35 {
            return Err(Invalid::new(
                "locale",
                format!("{tag:?} is not a BCP 47 language tag (such as fr, en or pt-BR)"),
            ));
        }
        let mut out = String::with_capacity(tag.len());
        let mut private = false;
        for (i, subtag) in tag.split('-').enumerate() {
            if i > 0 {
                out.push('-');
            }
            private |= subtag.len() == 1;
            if i > 0 && !private && subtag.len() == 2 {
                out.push_str(&subtag.to_ascii_uppercase());
            } else if i > 0 && !private && subtag.len() == 4 {
                let lower = subtag.to_ascii_lowercase();
                out.push_str(&lower[..1].to_ascii_uppercase());
                out.push_str(&lower[1..]);
            } else {
                out.push_str(&subtag.to_ascii_lowercase());
            }
        }
        Ok(Self::BUILT_IN
            .into_iter()
            .find(|l| l.as_str() == out)
            .unwrap_or(Self(Cow::Owned(out))))
    }
}

impl TryFrom<String> for Locale {
    type Error = Invalid;
    fn try_from(tag: String) -> Result<Self, Invalid> {
        Self::parse(&tag)
    }
}

impl From<Locale> for String {
    fn from(locale: Locale) -> Self {
        locale.0.into_owned()
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a mail goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recipient {
    /// The address.
    #[schema(value_type = String, format = Email, max_length = 254)]
    pub email: Email,
    /// The display name (default empty); no control, format or line-separator characters
    /// (`rejected`, naming `to.name`).
    #[serde(default)]
    #[schema(schema_with = crate::schema::plain_name)]
    pub name: String,
}

impl Recipient {
    /// Refuses a name that holds a control, format or line-separator character: it goes
    /// into the `To` header, where a line break would end the header early, and a
    /// bidirectional control would show the reader another name than the one sent.
    pub fn check(&self) -> Result<(), Invalid> {
        crate::plain_text("to.name", &self.name)
    }
}

/// A request to send one mail, identical on every transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailRequest {
    /// The idempotency key, chosen by the sender: at most one mail is sent per id.
    pub id: MailRequestId,
    /// Which mail.
    pub template: Template,
    /// Which language.
    pub locale: Locale,
    /// The recipient.
    pub to: Recipient,
    /// The template's variables: each template needs its own (see the schema's variants).
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// When the sender asked for the mail (RFC 3339).
    pub requested_at: DateTime<Utc>,
    /// The W3C trace context the request belongs to, a string; anything that is not a
    /// well-formed one is ignored, never a reason to refuse the mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub traceparent: Option<String>,
    /// When true, once this mail's delivery ends (sent, failed, cancelled or suppressed), the
    /// mailer erases every delivery record and `.eml` file addressed to its recipient, as
    /// `DELETE /recipients/{email}` does: the users service asks it with a deleted account's
    /// last mail. Default false.
    // Left out of the OpenAPI document: a request with it takes its own record away once it
    // is delivered, which a client exploring the document would take for a lost resource;
    // `docs/CONTRACT.md` describes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(ignore)]
    pub erase_recipient: bool,
}

/// Whether `value` has the shape of a W3C `traceparent`: `version-trace_id-parent_id-flags`
/// in lower-case hex, 2-32-16-2 digits, version not `ff`, ids not all zeros. A later version
/// may append fields after the flags. Only the shape is checked: the value is a hint for
/// tracing, never a reason to refuse a mail.
pub fn is_traceparent(value: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    let mut parts = value.splitn(5, '-');
    let (Some(version), Some(trace), Some(parent), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest_ok = match parts.next() {
        None => true,
        Some(_) => version != "00",
    };
    let flags = if version == "00" {
        flags
    } else {
        flags.get(..2).unwrap_or("")
    };
    version.len() == 2
        && hex(version)
        && version != "ff"
        && trace.len() == 32
        && hex(trace)
        && !zeros(trace)
        && parent.len() == 16
        && hex(parent)
        && !zeros(parent)
        && flags.len() == 2
        && hex(flags)
        && rest_ok
}

impl MailRequest {
    /// Builds a request with a fresh id, checking the variables against the template.
    pub fn new(
        template: Template,
        locale: Locale,
        to: Recipient,
        vars: Map<String, Value>,
    ) -> Result<Self, Invalid> {
        to.check()?;
        template.check_vars(&vars)?;
        Ok(Self {
            id: MailRequestId::new(),
            template,
            locale,
            to,
            vars,
            requested_at: Utc::now(),
            traceparent: None,
            erase_recipient: false,
        })
    }

    /// Parses and validates a request from raw JSON bytes, the way every door receives it.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Invalid> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(Invalid::new(
                "request",
                format!(
                    "is {} bytes, over the limit of {MAX_REQUEST_BYTES} bytes",
                    bytes.len()
                ),
            ));
        }
        if let Some(request) = Self::read_valid(bytes) {
            return Ok(request);
        }
        // Not valid as it stands: typing it again from a value would fail again (a repeated
        // key aside, which the checks one at a time read as the value holds it).
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Invalid::new("request", format!("is not valid JSON: {e}")))?;
        Self::naming_errors(value)
    }

    /// Parses and validates a request from a JSON value (a socket.io payload, say).
    pub fn from_value(value: Value) -> Result<Self, Invalid> {
        // Most requests are valid: typed from the value as it stands and checked once. Only
        // one that is not goes field by field, so that the error names the field.
        if value.is_object()
            && let Some(request) = Self::deserialize(&value).ok().and_then(Self::checked)
        {
            return Ok(request);
        }
        Self::naming_errors(value)
    }

    /// [`Self::from_value`] one check at a time, the first failure named.
    fn naming_errors(value: Value) -> Result<Self, Invalid> {
        let Value::Object(mut object) = value else {
            return Err(Invalid::new(
                "request",
                format!("must be a JSON object, got {}", json_kind(&value)),
            ));
        };
        // Check the names first so the error names them plainly, then let serde type the rest.
        if let Some(Value::String(name)) = object.get("template") {
            Template::parse(name)?;
        }
        if let Some(Value::String(name)) = object.get("locale") {
            Locale::parse(name)?;
        }
        if let Some(Value::Object(to)) = object.get("to")
            && let Some(Value::String(email)) = to.get("email")
        {
            Email::parse(email.clone()).map_err(|e| e.within("to"))?;
        }
        // A trace context that is not one is left out, as W3C Trace Context asks of a
        // receiver: the mail goes on, in a trace of its own.
        if object
            .get("traceparent")
            .is_some_and(|v| !v.as_str().is_some_and(is_traceparent))
        {
            object.remove("traceparent");
        }
        let request: MailRequest = serde_json::from_value(Value::Object(object))
            .map_err(|e| Invalid::new("request", e.to_string()))?;
        request.to.check()?;
        request.template.check_vars(&request.vars)?;
        Ok(request)
    }

    /// Reads a valid request straight from its JSON bytes, with the checks of
    /// [`Self::from_value`] but without building a JSON value first; `None` when it is not
    /// valid, and [`Self::from_value`] says why. Most requests are valid, and the value costs
    /// more than the request itself.
    pub fn read_valid(bytes: &[u8]) -> Option<Self> {
        // A struct also reads from an array, field by field; the request is an object only.
        let first = bytes
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(bytes).ok().and_then(Self::checked)
    }

    /// The request once typed, with what typing does not check: a trace context that is not
    /// one is left out, and the name and the template's variables are checked. `None` when
    /// one of them is wrong.
    fn checked(mut self) -> Option<Self> {
        if self
            .traceparent
            .as_deref()
            .is_some_and(|t| !is_traceparent(t))
        {
            self.traceparent = None;
        }
        self.to.check().ok()?;
        self.template.check_vars(&self.vars).ok()?;
        Some(self)
    }

    /// The request as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a mail request always serializes")
    }
}

/// What kind of JSON value `value` is, as a sentence names it ("a string", "null").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How a mail request was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MailStatus {
    /// Stored; it will be sent.
    Accepted,
    /// This id was seen before; nothing new is sent.
    Duplicate,
    /// Invalid; nothing is sent, and sending it again will not help.
    Rejected {
        /// One clear sentence.
        error: String,
    },
    /// Not stored because the mailer could not store it right now; the sender should retry.
    Unavailable {
        /// One clear sentence.
        error: String,
    },
}

/// The answer to a mail request: the socket.io ack, the REST body, what the AMQP consumer logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailAnswer {
    /// The request's id; `null` when the request was too broken to carry one.
    pub id: Option<MailRequestId>,
    /// The outcome.
    #[serde(flatten)]
    pub status: MailStatus,
}

impl MailAnswer {
    /// `accepted` for `id`.
    pub fn accepted(id: MailRequestId) -> Self {
        Self {
            id: Some(id),
            status: MailStatus::Accepted,
        }
    }

    /// `duplicate` for `id`.
    pub fn duplicate(id: MailRequestId) -> Self {
        Self {
            id: Some(id),
            status: MailStatus::Duplicate,
        }
    }

    /// `rejected`, with one sentence.
    pub fn rejected(id: Option<MailRequestId>, error: impl Into<String>) -> Self {
        Self {
            id,
            status: MailStatus::Rejected {
                error: error.into(),
            },
        }
    }

    /// `unavailable`: not stored, retry later.
    pub fn unavailable(id: Option<MailRequestId>, error: impl Into<String>) -> Self {
        Self {
            id,
            status: MailStatus::Unavailable {
                error: error.into(),
            },
        }
    }

    /// Decodes `payload` as a mail request; `rejected` when it is not one, with the id it
    /// carries when that much is readable. The payload is taken, not copied: the id is read
    /// first, for the answer to a request that fails.
    pub fn decode(payload: Value) -> Result<MailRequest, Self> {
        let id = payload
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        MailRequest::from_value(payload).map_err(|invalid| Self::rejected(id, invalid.to_string()))
    }

    /// True for `accepted` and `duplicate`: the request is stored on the mailer's side.
    pub fn is_stored(&self) -> bool {
        matches!(self.status, MailStatus::Accepted | MailStatus::Duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract_example() -> Value {
        json!({
            "id": "0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10",
            "template": "welcome",
            "locale": "fr",
            "to": { "email": "ada@example.com", "name": "Ada Lovelace" },
            "vars": { "login": "ada" },
            "requested_at": "2026-11-27T08:00:00Z"
        })
    }

    #[test]
    fn the_contract_example_parses_and_round_trips() {
        let bytes = serde_json::to_vec(&contract_example()).unwrap();
        let request = MailRequest::from_json(&bytes).unwrap();
        assert_eq!(request.template, Template::WELCOME);
        assert_eq!(request.locale, Locale::FR);
        assert_eq!(request.to.email.as_str(), "ada@example.com");
        assert_eq!(serde_json::to_value(&request).unwrap(), contract_example());
    }

    #[test]
    fn each_kind_of_bad_request_gets_a_clear_message() {
        let with = |key: &str, value: Value| {
            let mut v = contract_example();
            v[key] = value;
            MailRequest::from_value(v).unwrap_err().to_string()
        };
        assert!(with("template", json!("No pe")).contains("\"No pe\" is not a template name"));
        assert!(with("locale", json!("not a tag")).contains("is not a BCP 47 language tag"));
        assert!(with("id", json!("not-a-uuid")).contains("request:"));
        assert!(with("to", json!({"email": "x"})).starts_with("to.email:"));
        assert!(with("vars", json!({})).contains("vars.login: is required"));
        assert!(with("requested_at", json!(12)).contains("request:"));
        for name in [
            "Ada\r\nBcc: eve@example.com",
            "Ada\u{2028}",
            "Ada\u{85}",
            "\u{0}",
            "A\u{200B}da",
            "Ada\u{202E}",
            "\u{2066}Ada",
            "\u{FEFF}Ada",
        ] {
            let error = with("to", json!({"email": "ada@example.com", "name": name}));
            assert!(error.starts_with("to.name:"), "{name:?}: {error}");
        }
        for email in [
            "a\u{200B}da@example.com",
            "ada@exa\u{202E}mple.com",
            "\u{2066}ada@example.com",
            "ada@example.com\u{FEFF}",
            "ada\u{85}@example.com",
        ] {
            let error = with("to", json!({"email": email, "name": "Ada"}));
            assert!(
                error.starts_with("to.email:") && error.contains("control or format character"),
                "{email:?}: {error}"
            );
        }
        let mut missing = contract_example();
        missing.as_object_mut().unwrap().remove("id");
        assert!(
            MailRequest::from_value(missing)
                .unwrap_err()
                .message
                .contains("missing field `id`")
        );
        assert!(
            MailRequest::from_value(json!([1, 2]))
                .unwrap_err()
                .message
                .contains("an array")
        );
        assert!(
            MailRequest::from_json(b"{nope")
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
        let huge = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert!(
            MailRequest::from_json(&huge)
                .unwrap_err()
                .message
                .contains("over the limit")
        );
    }

    /// `read_valid` reads a request without a JSON value, and `from_value` types a valid one
    /// at once: whatever the body, each ends in the request, or the error, that the checks
    /// one at a time (`naming_errors`) give.
    #[test]
    fn reading_the_bytes_and_reading_the_value_agree() {
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        let mut add = |v: Value| bodies.push(serde_json::to_vec(&v).unwrap());
        let with = |key: &str, value: Value| {
            let mut v = contract_example();
            v[key] = value;
            v
        };
        add(contract_example());
        add(with(
            "traceparent",
            json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ));
        add(with("traceparent", json!("not a trace context")));
        add(with("traceparent", json!(12)));
        add(with("traceparent", Value::Null));
        add(with("template", json!("No pe")));
        add(with("locale", json!("FR-latn")));
        add(with("to", json!({"email": "x"})));
        add(with(
            "to",
            json!({"email": "ada@example.com", "name": "Ada\r\nBcc: e@x.org"}),
        ));
        add(with("to", json!(["ada@example.com", "Ada"])));
        add(with("vars", json!({})));
        add(with("requested_at", json!(12)));
        add(with("unknown", json!({"kept": false})));
        add(json!([
            "0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10", "welcome", "fr",
            {"email": "ada@example.com"}, {"login": "ada"}, "2026-11-27T08:00:00Z"
        ]));
        add(json!("welcome"));
        let example = String::from_utf8(serde_json::to_vec(&contract_example()).unwrap()).unwrap();
        bodies.push(format!(" \n\t{example}").into_bytes());
        bodies.push(
            example
                .replacen("\"fr\"", "\"fr\",\"locale\":\"en\"", 1)
                .into_bytes(),
        );
        bodies.push(b"{nope".to_vec());
        for body in bodies {
            let value = serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string());
            let one_by_one = value
                .clone()
                .and_then(|v| MailRequest::naming_errors(v).map_err(|e| e.to_string()));
            let by_value =
                value.and_then(|v| MailRequest::from_value(v).map_err(|e| e.to_string()));
            let by_bytes = MailRequest::from_json(&body).map_err(|e| e.to_string());
            let shown = String::from_utf8_lossy(&body);
            assert_eq!(by_value, one_by_one, "{shown}");
            match (&by_value, &by_bytes) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{shown}"),
                (Err(a), Err(b)) => {
                    assert!(b.ends_with(a.as_str()) || a == b, "{shown}: {a} / {b}")
                }
                _ => panic!("{shown}: {by_value:?} against {by_bytes:?}"),
            }
            if let Some(read) = MailRequest::read_valid(&body) {
                assert_eq!(Ok(read), by_value, "{shown}");
            }
        }
    }

    #[test]
    fn template_variables_are_checked() {
        let changed = |v: Value| {
            let mut map = Map::new();
            map.insert("changed".into(), v);
            Template::ACCOUNT_UPDATED.check_vars(&map)
        };
        assert!(changed(json!(["email"])).is_ok());
        assert!(changed(json!([])).is_err());
        assert!(changed(json!("email")).is_err());
        assert!(Template::ACCOUNT_DELETED.check_vars(&Map::new()).is_ok());
        assert!(Template::PASSWORD_RESET.check_vars(&Map::new()).is_err());
        let welcome = |v: Value| Template::WELCOME.check_vars(v.as_object().unwrap());
        assert!(welcome(json!({"login": "ada"})).is_ok());
        assert!(
            welcome(json!({"login": "ada", "verify_url": "https://x/v/t", "expires_at": "2026-11-29T08:00:00Z"}))
                .is_ok()
        );
        let half = welcome(json!({"login": "ada", "verify_url": "https://x/v/t"})).unwrap_err();
        assert_eq!(half.field, "vars.expires_at");
        assert!(Template::EMAIL_CHANGED.check_vars(&Map::new()).is_err());
        assert!(
            Template::PASSWORD_CHANGED
                .check_vars(
                    json!({"changed_at": "2026-11-27T08:00:00Z"})
                        .as_object()
                        .unwrap()
                )
                .is_ok()
        );
        for template in Template::BUILT_IN {
            assert_eq!(Template::parse(template.as_str()).unwrap(), template);
        }
    }

    #[test]
    fn locales_are_bcp47_tags_in_their_conventional_case() {
        assert_eq!(Locale::parse("fr").unwrap(), Locale::FR);
        assert_eq!(Locale::parse("de-ch").unwrap().as_str(), "de-CH");
        assert_eq!(Locale::parse("ZH-hant-tw").unwrap().as_str(), "zh-Hant-TW");
        assert_eq!(Locale::parse("de-CH").unwrap().language(), "de");
        for bad in ["", "french!", "fr_FR", "en--gb", "x"] {
            assert!(Locale::parse(bad).is_err(), "{bad:?}");
        }
        let back: Locale = serde_json::from_value(json!("pt-br")).unwrap();
        assert_eq!(back.as_str(), "pt-BR");
    }

    #[test]
    fn template_names_are_any_file_safe_name() {
        assert_eq!(Template::parse("welcome").unwrap(), Template::WELCOME);
        assert_eq!(
            Template::parse("order_shipped").unwrap().as_str(),
            "order_shipped"
        );
        for bad in ["", "Welcome", "a.b", "../x", "9lives", &"a".repeat(65)] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers_serialize_as_the_contract_shows() {
        let id: MailRequestId = "0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10".parse().unwrap();
        assert_eq!(
            serde_json::to_value(MailAnswer::accepted(id)).unwrap(),
            json!({"id": "0190f3c2-7b1e-7cc4-9a51-2f7d3b1c9e10", "status": "accepted"})
        );
        assert_eq!(
            serde_json::to_value(MailAnswer::rejected(None, "bad")).unwrap(),
            json!({"id": null, "status": "rejected", "error": "bad"})
        );
        let back: MailAnswer =
            serde_json::from_value(json!({"id": id.to_string(), "status": "duplicate"})).unwrap();
        assert_eq!(back, MailAnswer::duplicate(id));
    }

    #[test]
    fn a_traceparent_is_carried_when_well_formed_and_left_out_otherwise() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut value = contract_example();
        value["traceparent"] = json!(good);
        let request = MailRequest::from_value(value).unwrap();
        assert_eq!(request.traceparent.as_deref(), Some(good));
        let round = MailRequest::from_json(&request.to_json()).unwrap();
        assert_eq!(round, request);
        for bad in [
            json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
            json!("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            json!("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            json!("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            json!(42),
        ] {
            let mut value = contract_example();
            value["traceparent"] = bad.clone();
            let request = MailRequest::from_value(value).unwrap();
            assert_eq!(request.traceparent, None, "{bad}");
        }
        assert!(is_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"
        ));
        assert!(
            !serde_json::to_string(&MailRequest::from_value(contract_example()).unwrap())
                .unwrap()
                .contains("traceparent")
        );
    }
}
