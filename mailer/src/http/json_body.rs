//! Reading the JSON body of an operator's request (`POST /mails/retry`, `POST /suppressions`)
//! with the limits of `POST /mails`: JSON content type (415), at most 64 KiB (413), and a
//! 400 naming what is wrong, all in the contract's error shape.

use super::mails::is_json;
use crate::error::error_body;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::mail::MAX_REQUEST_BYTES;
use serde::de::DeserializeOwned;

/// The body as a `T`, or the error response to send.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Response> {
    if !is_json(headers) {
        return Err(error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The content type must be application/json.",
        ));
    }
    let too_large = || {
        error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("The body is over the limit of {MAX_REQUEST_BYTES} bytes."),
        )
    };
    let bytes = to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| too_large())?;
    // An empty body is an empty object: every field of these bodies is optional or has a
    // clear error of its own.
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(bytes).map_err(|e| {
        error_body(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            &format!("The body is not what this route takes: {e}."),
        )
    })
}
