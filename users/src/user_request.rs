//! The account fields a client sends, checked all at once: [`NewUser`] for `POST /users`,
//! [`UserPatch`] for `PATCH /users/{id}`.
//!
//! Names, company and functions end up in mail headers and log lines, so they may hold no
//! control character (CR and LF among them), no format character (zero-width and
//! bidirectional controls) and no Unicode line separator: see [`domain::plain_text`]. That is
//! checked before trimming, so a trailing newline is refused too rather than quietly cut.

use crate::body_reader::BodyReader;
use crate::error::ApiError;
use domain::{Email, Invalid, Locale, Login, Password, plain_text};
use serde_json::{Map, Value};

/// Longest first name, last name, company or function, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Most functions one user may list.
const MAX_FUNCTIONS: usize = 20;

const CREATE_FIELDS: [&str; 8] = [
    "login",
    "email",
    "password",
    "first_name",
    "last_name",
    "company",
    "functions",
    "locale",
];

/// A valid `POST /users` body.
pub(crate) struct NewUser {
    pub login: Login,
    pub email: Email,
    pub password: Password,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub functions: Vec<String>,
    pub locale: Locale,
}

/// The fields a `PATCH /users/{id}` body may hold: a create's, and the password that proves
/// a session's holder knows it.
const PATCH_FIELDS: [&str; 9] = [
    "login",
    "email",
    "password",
    "first_name",
    "last_name",
    "company",
    "functions",
    "locale",
    "current_password",
];

/// A valid `PATCH /users/{id}` body: only the fields sent.
#[derive(Default)]
pub(crate) struct UserPatch {
    /// The caller's current password, which a session token must send to change `password`
    /// or `email`; checked, never stored.
    pub current_password: Option<String>,
    pub login: Option<Login>,
    pub email: Option<Email>,
    pub password: Option<Password>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `Some(None)` clears the company.
    pub company: Option<Option<String>>,
    pub functions: Option<Vec<String>>,
    pub locale: Option<Locale>,
}

fn name(field: &'static str) -> impl FnOnce(String) -> Result<String, Invalid> {
    move |value| {
        plain_text(field, &value)?;
        let value = value.trim().to_owned();
        let chars = value.chars().count();
        if chars == 0 {
            Err(Invalid::new(field, "must not be empty"))
        } else if chars > MAX_NAME_CHARS {
            Err(Invalid::new(
                field,
                format!("must be at most {MAX_NAME_CHARS} characters long"),
            ))
        } else {
            Ok(value)
        }
    }
}

fn company(value: Option<String>) -> Result<Option<String>, Invalid> {
    if let Some(v) = &value {
        plain_text("company", v)?;
    }
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.chars().count() > MAX_NAME_CHARS => Err(Invalid::new(
            "company",
            format!("must be at most {MAX_NAME_CHARS} characters long"),
        )),
        Some(v) => Ok(Some(v)),
    }
}

fn functions(values: Vec<String>) -> Result<Vec<String>, Invalid> {
    if values.len() > MAX_FUNCTIONS {
        return Err(Invalid::new(
            "functions",
            format!("may list at most {MAX_FUNCTIONS} functions"),
        ));
    }
    for v in &values {
        plain_text("functions", v)?;
    }
    values
        .into_iter()
        .map(|v| v.trim().to_owned())
        .map(|v| match v.chars().count() {
            0 => Err(Invalid::new(
                "functions",
                "must not contain an empty function",
            )),
            n if n > MAX_NAME_CHARS => Err(Invalid::new(
                "functions",
                format!("each function must be at most {MAX_NAME_CHARS} characters long"),
            )),
            _ => Ok(v),
        })
        .collect()
}

/// A user's mails are written in one of the locales every mailer catalog holds, so the
/// language stays the one chosen whatever templates a mailer loads.
fn locale(value: String) -> Result<Locale, Invalid> {
    Locale::parse(&value)
        .ok()
        .filter(|l| Locale::BUILT_IN.contains(l))
        .ok_or_else(|| {
            Invalid::new(
                "locale",
                format!("unknown locale {value:?}: expected fr or en"),
            )
        })
}

impl NewUser {
    /// Checks every field of a create body.
    pub fn parse(body: Map<String, Value>) -> Result<Self, ApiError> {
        let mut f = BodyReader::new(body, &CREATE_FIELDS);
        let login = f.required_string("login");
        let login = f.parse(login, Login::parse);
        let email = f.required_string("email");
        let email = f.parse(email, Email::parse);
        let password = f.required_string("password");
        let password = f.parse(password, Password::parse);
        let first_name = f.required_string("first_name");
        let first_name = f.parse(first_name, name("first_name"));
        let last_name = f.required_string("last_name");
        let last_name = f.parse(last_name, name("last_name"));
        // Optional fields: absent or null means the default.
        let company_value = f.optional_string("company").flatten();
        let company = check(&mut f, company(company_value)).flatten();
        let functions_value = f.optional_string_list("functions").unwrap_or_default();
        let functions = check(&mut f, functions(functions_value)).unwrap_or_default();
        let locale_value = f.optional_string("locale").flatten();
        let locale = match locale_value {
            Some(value) => f.parse(Some(value), locale),
            None => Some(Locale::FR),
        };
        f.finish()?;
        let (
            Some(login),
            Some(email),
            Some(password),
            Some(first_name),
            Some(last_name),
            Some(locale),
        ) = (login, email, password, first_name, last_name, locale)
        else {
            // finish() returned Ok, so every required field parsed.
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a create body passed validation with a field missing"
            )));
        };
        Ok(Self {
            login,
            email,
            password,
            first_name,
            last_name,
            company,
            functions,
            locale,
        })
    }
}

/// Records `result`'s error, if any, against its field.
fn check<T>(f: &mut BodyReader, result: Result<T, Invalid>) -> Option<T> {
    result.map_err(|e| f.reject(&e.field, e.message)).ok()
}

impl UserPatch {
    /// Checks every field a change body sends.
    pub fn parse(body: Map<String, Value>) -> Result<Self, ApiError> {
        let mut f = BodyReader::new(body, &PATCH_FIELDS);
        let mut patch = UserPatch::default();
        if f.has("current_password") {
            patch.current_password = f.required_string("current_password");
        }
        for field in [
            "login",
            "email",
            "password",
            "first_name",
            "last_name",
            "locale",
        ] {
            if f.has(field) {
                let value = f.required_string(field);
                match field {
                    "login" => patch.login = f.parse(value, Login::parse),
                    "email" => patch.email = f.parse(value, Email::parse),
                    "password" => patch.password = f.parse(value, Password::parse),
                    "first_name" => patch.first_name = f.parse(value, name("first_name")),
                    "last_name" => patch.last_name = f.parse(value, name("last_name")),
                    _ => patch.locale = f.parse(value, locale),
                }
            }
        }
        if f.has("company")
            && let Some(value) = f.optional_string("company")
        {
            patch.company = check(&mut f, company(value));
        }
        if f.has("functions")
            && let Some(values) = f.optional_string_list("functions")
        {
            patch.functions = check(&mut f, functions(values));
        }
        f.finish()?;
        Ok(patch)
    }
}
