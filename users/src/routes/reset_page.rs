//! `GET /password-resets/{token}`: the page the reset mail links to, a plain HTML form that
//! posts the new password back to the same URL (`POST /password-resets/{token}` as a form).
//!
//! The page is one of `html_page`'s: self-contained, never cached, no `Referer`.

use super::html_page::{self, FailureTexts, escape};
use super::password_resets::{reset_password, token_is_usable};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;
use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::Password;
use serde::Deserialize;

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

const TITLE: &str = "password reset";

const FAILURE: FailureTexts = FailureTexts {
    title: TITLE,
    invalid_heading: "This link no longer works",
    invalid_sentence: "It is unknown, expired or already used. Ask for a new reset link.",
    other_heading: "The password could not be changed",
};

fn error_page(error: ApiError) -> Response {
    html_page::error_page(error, &FAILURE)
}

fn page(status: StatusCode, body: &str) -> Response {
    html_page::page(status, TITLE, body)
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
