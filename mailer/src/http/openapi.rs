//! The OpenAPI description (`/openapi.json`) and Swagger UI (`/docs`, assets embedded, so
//! it renders offline). Every schema is derived from the type that is serialized or read on
//! the wire; the event side is described by the AsyncAPI document, which takes its payload
//! schemas from the same types.

use super::AppState;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// The mail request's schema with the variables each template needs
/// ([`domain::schema::mail_request`]), so that a request that keeps to the document is
/// accepted.
struct TemplateVars;

impl Modify for TemplateVars {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            domain::MailRequest::name().into_owned(),
            domain::schema::mail_request(),
        );
    }
}

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

/// The mailer's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Facteur mailer", description = "Turns mail requests into mails. The same operations exist as socket.io events (`send-mail`, `get-mail`, `retry-mail`, `cancel-mail`, `join`, `leave` on namespace `/`, `catch-up` on `/live`), and the mailer emits `mail-status` and `mail-activity`; with AMQP it also consumes mail requests from RabbitMQ and publishes each status there. Those events, their payloads and acks, their limits and the AMQP topology are described in AsyncAPI 3.0: [/asyncapi](/asyncapi) renders [/asyncapi.json](/asyncapi.json)."),
    paths(super::mails::create_mail, super::mails::get_mail, super::mails::list_mails,
        super::mails::retry_mail, super::mails::retry_mails, super::mails::cancel_mail,
        super::suppressions::list, super::suppressions::add, super::suppressions::remove,
        super::recipients::erase, super::dkim::get_dkim_record,
        super::templates::list_templates, super::templates::render_template,
        super::templates::preview::preview_template,
        super::health::health, super::health::metrics,
        super::asyncapi::asyncapi_json, super::asyncapi::asyncapi_page),
    components(schemas(domain::MailRequest, domain::MailRequestId, domain::Locale, domain::Template,
        domain::Recipient, domain::MailAnswer, crate::store::DeliveryStatus, crate::store::DeliveryRecord,
        crate::store::Page, crate::error::ErrorBody, super::health::Health,
        crate::events::MaskedRecipient, crate::events::MailActivityEvent, crate::events::MailStatusEvent,
        super::mails::RetryBody, super::mails::Retried, crate::store::Suppression,
        super::suppressions::NewSuppressionBody, crate::store::SuppressionPage,
        super::recipients::Erased, crate::sending::DkimRecord,
        super::templates::TemplateSummary, super::templates::VarSummary,
        super::templates::RenderRequest, super::templates::RenderedTemplate,
        crate::socket::RoomAck, crate::error::EventError, crate::socket::LiveAuth,
        crate::socket::CatchUpArgs, crate::socket::CatchUpAnswer)),
    modifiers(&BearerAuth, &TemplateVars),
)]
pub struct MailerApi;

/// `/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", MailerApi::openapi()))
        .layer(axum::middleware::map_response(
            runtime::http_server::with_docs_policy,
        ))
}
