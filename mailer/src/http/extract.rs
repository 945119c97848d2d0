//! The extractors of the REST routes, whose rejections are [`MailError`]s, and the one place
//! where a request body is read within the mailer's limit.
//!
//! axum's own `Path` and `Query` answer with plain-text bodies (a duplicated query key, a path
//! that is not UTF-8); the wrappers here turn every rejection into a [`MailError`]. JSON bodies
//! are not read with axum's `Json` either: the contract counts any `application/*+json` type
//! as JSON, lets an empty body stand for `{}` on the routes other than `POST /mails`, and
//! passes serde's own sentence on to the client.

use crate::error::MailError;
use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use domain::mail::MAX_REQUEST_BYTES;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A path parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(MailError))]
pub struct ApiPath<T>(pub T);

/// Query parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(MailError))]
pub struct ApiQuery<T>(pub T);

/// The JSON object body of a route other than `POST /mails`, read as a `T`.
///
/// The body is at most 64 KiB (413 `payload_too_large`). An empty body (JSON white space
/// only) or `null` reads as `{}`; any other body must be declared as JSON (415
/// `unsupported_media_type`) and be a JSON object (400 `invalid_json`). A field the route
/// does not take is 400 `invalid_request` naming it in `details`; any other mismatch (a field
/// of the wrong type) is named by serde's sentence under `details.body`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = MailError;

    async fn from_request(request: Request, _: &S) -> Result<Self, MailError> {
        let declared_json = is_json(request.headers());
        let bytes = read_body(request).await?;
        let fields = json_object(&bytes, declared_json)?.unwrap_or_default();
        serde_json::from_value(Value::Object(fields))
            .map(ApiJson)
            .map_err(unfit_fields)
    }
}

/// The body of `POST /mails`: declared as JSON (checked before its size, 415) and at most
/// 64 KiB (413). The route reads it itself: straight into a request when it is a valid one,
/// and otherwise through [`parse`] (400 `invalid_json`), since its answer names the
/// request's bad fields in a shape of its own.
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = MailError;

    async fn from_request(request: Request, _: &S) -> Result<Self, MailError> {
        if !is_json(request.headers()) {
            return Err(MailError::UnsupportedMediaType);
        }
        read_body(request).await.map(JsonBody)
    }
}

/// The whole body, within [`MAX_REQUEST_BYTES`]: every body the mailer reads comes through
/// here. A declared `Content-Length` over the limit is refused before a byte is read.
async fn read_body(request: Request) -> Result<Bytes, MailError> {
    let too_large = || MailError::PayloadTooLarge(MAX_REQUEST_BYTES);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES) {
        return Err(too_large());
    }
    to_bytes(request.into_body(), MAX_REQUEST_BYTES)
        .await
        .map_err(|_| too_large())
}

/// `application/json`, or an `application/*+json` type, whatever its parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The body as a JSON value.
pub fn parse(bytes: &[u8]) -> Result<Value, MailError> {
    serde_json::from_slice(bytes).map_err(|e| MailError::InvalidJson(e.to_string()))
}

/// The body's fields: `None` for an empty body or `null`, the object otherwise.
fn json_object(bytes: &[u8], declared_json: bool) -> Result<Option<Map<String, Value>>, MailError> {
    // JSON's own white space only: a form feed, which ASCII counts as white space, is not JSON.
    if bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(None);
    }
    if !declared_json {
        return Err(MailError::UnsupportedMediaType);
    }
    match parse(bytes)? {
        // `null` is what the OpenAPI description allows besides the object.
        Value::Null => Ok(None),
        Value::Object(fields) => Ok(Some(fields)),
        _ => Err(MailError::invalid(
            "invalid_json",
            "The body must be a JSON object.",
        )),
    }
}

/// The fields that do not fit the route's type: an unknown one by its name, anything else
/// as `body`.
fn unfit_fields(error: serde_json::Error) -> MailError {
    let message = error.to_string();
    // serde's sentence for an unknown field is "unknown field `x`, expected …".
    let field = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("body")
        .to_string();
    MailError::InvalidFields(BTreeMap::from([(field, message)]))
}

/// The `page` and `per_page` query parameters of a list route, read from text so that a bad
/// value gets the code `invalid_page`.
pub struct Paging {
    /// From 1 (default 1).
    pub page: u64,
    /// From 1 to 100 (default 20).
    pub per_page: u64,
}

impl Paging {
    /// The two parameters as given, each checked against its bounds.
    pub fn read(page: Option<&str>, per_page: Option<&str>) -> Result<Self, MailError> {
        Ok(Self {
            page: whole_number("page", page, 1, 1_000_000)?,
            per_page: whole_number("per_page", per_page, 20, 100)?,
        })
    }
}

fn whole_number(name: &str, value: Option<&str>, default: u64, max: u64) -> Result<u64, MailError> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(MailError::invalid(
                "invalid_page",
                format!("{name} must be a whole number from 1 to {max}."),
            )),
        },
    }
}
