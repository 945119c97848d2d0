//! `GET /password-resets/{token}`: the page the reset mail links to, a plain HTML form that
//! posts the new password back to the same URL (`POST /password-resets/{token}` as a form).
//!
//! The page is self-contained: inline CSS, no script, nothing loaded from elsewhere, and a
//! Content-Security-Policy that says so. The token sits in the URL, so the page is never
//! cached and sends no `Referer`. Nothing the client sent is written into the page.

use super::password_resets::{reset_password, token_is_usable};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;
use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::Password;
use serde::Deserialize;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;\
                     padding:0 1rem;color:#222}h1{font-size:1.4rem}label{display:block;\
                     margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}\
                     button{margin-top:1rem;padding:.5rem 1.2rem}.error{color:#a00}";

/// The form's fields.
#[derive(Deserialize)]
pub(super) struct ResetForm {
    password: String,
    confirm: Option<String>,
}

/// `GET /password-resets/{token}`: the form, or a page saying the link no longer works.
#[utoipa::path(get, path = "/password-resets/{token}", tag = "password resets",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "an HTML form that sets the new password", content_type = "text/html", body = String),
        (status = 400, description = "an HTML page: the link is unknown, expired or used", content_type = "text/html", body = String)))]
pub(crate) async fn show_reset_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    match token_is_usable(&state, &token).await {
        Ok(true) => page(StatusCode::OK, &form(None)),
        Ok(false) => error_page(ApiError::InvalidToken),
        Err(e) => error_page(e),
    }
}

/// A form submission of `POST /password-resets/{token}`, answered with a page.
pub(super) async fn submit_form(state: AppState, token: String, request: Request) -> Response {
    let Ok(Form(submitted)) = Form::<ResetForm>::from_request(request, &state).await else {
        return page(
            StatusCode::BAD_REQUEST,
            &form(Some("The form was not filled in; enter the new password.")),
        );
    };
    if submitted
        .confirm
        .as_deref()
        .is_some_and(|c| c != submitted.password)
    {
        return page(
            StatusCode::BAD_REQUEST,
            &form(Some("The two passwords differ.")),
        );
    }
    let password = match Password::parse(submitted.password) {
        Ok(password) => password,
        Err(invalid) => {
            let message = format!("The password {}.", invalid.message);
            return page(StatusCode::BAD_REQUEST, &form(Some(&message)));
        }
    };
    match reset_password(&state, &token, password).await {
        Ok(()) => page(
            StatusCode::OK,
            "<h1>Password changed</h1><p>Your new password is set. You can close this page and sign in with it.</p>",
        ),
        Err(e) => error_page(e),
    }
}

/// `error` as a page, with the status and headers (`Retry-After`) of its JSON answer.
fn error_page(error: ApiError) -> Response {
    let heading = match &error {
        ApiError::InvalidToken => "This link no longer works",
        _ => "The password could not be changed",
    };
    let sentence = match &error {
        ApiError::InvalidToken => {
            "It is unknown, expired or already used. Ask for a new reset link.".to_owned()
        }
        other => format!(
            "{} ({})",
            capitalised(&other.to_string()),
            other.status_and_code().1
        ),
    };
    // The JSON answer logs 5xx causes and sets Retry-After; only its body is replaced.
    let (mut parts, _) = error.into_response().into_parts();
    let body = format!("<h1>{heading}</h1><p>{}</p>", escape(&sentence));
    let html = page(parts.status, &body);
    let (html_parts, html_body) = html.into_parts();
    parts.headers.extend(html_parts.headers);
    Response::from_parts(parts, html_body)
}

fn form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "<h1>Choose a new password</h1>{error}\
         <form method=\"post\">\
         <label for=\"password\">New password (at least 8 characters)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" minlength=\"8\" maxlength=\"1024\" required autocomplete=\"new-password\" autofocus>\
         <label for=\"confirm\">The same again</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" minlength=\"8\" maxlength=\"1024\" required autocomplete=\"new-password\">\
         <button type=\"submit\">Set the password</button>\
         </form>"
    )
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Facteur — password reset</title><style>{STYLE}</style></head>\
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

fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
