//! Path and query extractors whose rejections come out in the contract's error shape.
//!
//! axum's own `Path` and `Query` answer with plain-text bodies (a duplicated query key, a path
//! that is not UTF-8); these wrappers turn every rejection into a [`MailError`].

use crate::error::MailError;
use axum::extract::FromRequestParts;

/// A path parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(MailError))]
pub struct ApiPath<T>(pub T);

/// Query parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(MailError))]
pub struct ApiQuery<T>(pub T);
