//! The OpenAPI document (`/openapi.json`) and Swagger UI (`/docs`), served from files built
//! into the binary so that the page renders with no network.
//!
//! Handlers read their bodies field by field (`body_reader`), so the bodies are described here,
//! with the same bounds the handlers check: a client (or a fuzzer) that keeps to this document
//! is never refused for the shape of what it sends.

use axum::Router;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// `/openapi.json` and `/docs`.
pub(crate) fn router() -> Router {
    Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .layer(axum::middleware::map_response(
            runtime::http_server::with_docs_policy,
        ))
}

/// No control, format or line-separator character (what `domain::plain_text` refuses).
const PLAIN: &str = concat!(
    "^",
    domain::forbidden_beyond_bmp!(),
    r"[^",
    domain::forbidden_class!(),
    r"]*$"
);
/// [`PLAIN`], and not blank.
const PLAIN_NOT_BLANK: &str = concat!(
    "^",
    domain::forbidden_beyond_bmp!(),
    r"[^",
    domain::forbidden_class!(),
    r"]*[^\s",
    domain::forbidden_class!(),
    r"][^",
    domain::forbidden_class!(),
    r"]*$"
);
/// The longest name, company or function, in characters.
const MAX_NAME_CHARS: usize = 100;

fn text(pattern: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(MAX_NAME_CHARS))
        .description(Some(description))
}

fn name() -> Object {
    text(
        PLAIN_NOT_BLANK,
        "Not blank; no control, format or line-separator characters.",
    )
    .build()
}

fn company() -> Object {
    text(PLAIN, "Blank or null: none.")
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

fn functions() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(text(PLAIN_NOT_BLANK, "One function; not blank."))
        .max_items(Some(20))
        .description(Some("At most 20; null: none."))
        .build()
}

/// The contract's error body, for every 4xx and 5xx.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// A stable code: `invalid_request`, `invalid_json`, `unauthorized`, `not_found`, …
    error: String,
    /// One sentence.
    message: String,
    /// Each invalid field with its sentence, or `{}`.
    details: BTreeMap<String, String>,
}

/// The language of a user's mails.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum LocaleDoc {
    Fr,
    En,
}

/// The body of `POST /users`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewUserDoc {
    /// 3 to 32 of `a-z`, `0-9`, `.`, `_`, `-`.
    #[schema(pattern = r"^[a-z0-9._-]{3,32}$")]
    login: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    #[schema(schema_with = name)]
    first_name: String,
    #[schema(schema_with = name)]
    last_name: String,
    #[schema(schema_with = company)]
    company: Option<String>,
    #[schema(schema_with = functions)]
    functions: Option<Vec<String>>,
    /// Default `fr`.
    locale: Option<LocaleDoc>,
}

/// The body of `PATCH /users/{id}`: any of the fields of a new user.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct UserPatchDoc {
    #[schema(nullable = false, pattern = r"^[a-z0-9._-]{3,32}$")]
    login: Option<String>,
    #[schema(nullable = false, format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(nullable = false, min_length = 8, max_length = 1024)]
    password: Option<String>,
    #[schema(nullable = false, schema_with = name)]
    first_name: Option<String>,
    #[schema(nullable = false, schema_with = name)]
    last_name: Option<String>,
    /// Null or blank: none.
    #[schema(schema_with = company)]
    company: Option<String>,
    /// Null: none.
    #[schema(schema_with = functions)]
    functions: Option<Vec<String>>,
    #[schema(nullable = false)]
    locale: Option<LocaleDoc>,
    /// The account's current password: with a session token, required to change `password`
    /// or `email` (400 naming it when missing; 401 `invalid_credentials` when wrong, counted
    /// as a login failure). Ignored otherwise and with the admin token (whatever it holds);
    /// never stored.
    #[schema(nullable = false)]
    current_password: Option<String>,
}

/// The body of `POST /authenticate`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct CredentialsDoc {
    login: String,
    password: String,
}

/// The body of `POST /password-resets` and `POST /email-verifications`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct AddressDoc {
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// The body of `POST /password-resets/{token}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewPasswordDoc {
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// The users REST API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Facteur users", description = "User accounts, sessions, password resets and proved addresses. Every change asks for a mail through the transactional outbox."),
    paths(
        super::users::create_user,
        super::users::list_users,
        super::users::get_user,
        super::user_changes::update_user,
        super::user_changes::delete_user,
        super::authenticate::authenticate,
        super::sessions::list_sessions,
        super::sessions::end_session,
        super::sessions::end_own_session,
        super::password_resets::request_password_reset,
        super::password_resets::complete_password_reset,
        super::reset_page::show_reset_page,
        super::email_verifications::request_email_verification,
        super::email_verifications::show_verification_page,
        super::email_verifications::complete_email_verification,
        super::health::health,
        super::health::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
