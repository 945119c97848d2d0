//! The OpenAPI document (`/openapi.json`) and Swagger UI (`/docs`), served from files built
//! into the binary so that the page renders with no network.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
