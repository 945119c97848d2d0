//! Extractors whose rejections come out in the contract's error shape.
//!
//! axum's own `Json`, `Path` and `Query` answer with plain-text bodies and a 422 for a body
//! of the wrong shape; these wrappers turn every rejection into an [`ApiError`].

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts};
use serde_json::{Map, Value};

/// A JSON body. Handlers read it as a `Map` so that each field can be checked and every
/// bad one reported at once (see [`crate::body_reader`]).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct ApiJson<T>(pub T);

/// A JSON object body.
pub(crate) type JsonObject = ApiJson<Map<String, Value>>;

/// A path parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct ApiPath<T>(pub T);

/// Query parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct ApiQuery<T>(pub T);
