//! The small HTML pages that mailed links open (`reset_page`, `verify_page`): self-contained
//! (inline CSS, no script, nothing loaded from elsewhere, and a Content-Security-Policy that
//! says so), never cached and sending no `Referer`, since the token sits in the URL. Nothing
//! the client sent is written into a page.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;\
                     padding:0 1rem;color:#222}h1{font-size:1.4rem}label{display:block;\
                     margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}\
                     button{margin-top:1rem;padding:.5rem 1.2rem}.error{color:#a00}";

/// `body` in a page titled `Facteur — {title}`, with the headers above.
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Facteur — {title}</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>"
    );
    let mut response = (status, Body::from(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    response
}

/// What a page says when its link fails.
pub(super) struct FailureTexts {
    /// The page's title.
    pub title: &'static str,
    /// The heading for an unknown, expired or used token.
    pub invalid_heading: &'static str,
    /// The sentence for an unknown, expired or used token.
    pub invalid_sentence: &'static str,
    /// The heading for any other failure.
    pub other_heading: &'static str,
}

/// `error` as a page, with the status and headers (`Retry-After`) of its JSON answer.
pub(super) fn error_page(error: ApiError, texts: &FailureTexts) -> Response {
    let (heading, sentence) = match &error {
        ApiError::InvalidToken => (texts.invalid_heading, texts.invalid_sentence.to_owned()),
        other => (
            texts.other_heading,
            format!(
                "{} ({})",
                capitalised(&other.to_string()),
                other.status_and_code().1
            ),
        ),
    };
    // The JSON answer logs 5xx causes and sets Retry-After; only its body is replaced.
    let (mut parts, _) = error.into_response().into_parts();
    let body = format!("<h1>{heading}</h1><p>{}</p>", escape(&sentence));
    let html = page(parts.status, texts.title, &body);
    let (html_parts, html_body) = html.into_parts();
    parts.headers.extend(html_parts.headers);
    Response::from_parts(parts, html_body)
}

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `text` safe inside an element or a quoted attribute.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
