//! Reading the JSON body of the routes other than `POST /mails` (whose answer has a shape of
//! its own): the render request, the bulk retry, a new suppression. The limits are those of
//! `POST /mails`: at most 64 KiB (413 `payload_too_large`), declared as JSON (415
//! `unsupported_media_type`), a JSON object (400 `invalid_json`); an empty body is no body.

use super::mails::is_json;
use crate::error::MailError;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, header};
use domain::mail::MAX_REQUEST_BYTES;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The body's fields: `None` for an empty body or `null`, the object otherwise.
pub async fn read_object(
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<Map<String, Value>>, MailError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES) {
        return Err(MailError::PayloadTooLarge(MAX_REQUEST_BYTES));
    }
    let bytes = to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| MailError::PayloadTooLarge(MAX_REQUEST_BYTES))?;
    // JSON's own white space only: a form feed, which ASCII counts as white space, is not JSON.
    if bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(MailError::UnsupportedMediaType);
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        MailError::invalid("invalid_json", format!("The body is not valid JSON: {e}."))
    })?;
    match value {
        // `null` is what the OpenAPI description allows besides the object.
        Value::Null => Ok(None),
        Value::Object(fields) => Ok(Some(fields)),
        _ => Err(MailError::invalid(
            "invalid_json",
            "The body must be a JSON object.",
        )),
    }
}

/// The body as a `T` (no body reads as `{}`). A field the route does not take is 400
/// `invalid_request` naming it in `details`; any other mismatch (a field of the wrong type)
/// is named by serde's sentence under `details.body`.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, MailError> {
    let fields = read_object(headers, body).await?.unwrap_or_default();
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        let message = e.to_string();
        // serde's sentence for an unknown field is "unknown field `x`, expected …".
        let field = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .unwrap_or("body")
            .to_string();
        MailError::InvalidFields(BTreeMap::from([(field, message)]))
    })
}
