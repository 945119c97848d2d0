//! The OpenAPI description (`/openapi.json`) and Swagger UI (`/docs`, assets embedded, so
//! it renders offline). Every schema is derived from the type that is serialized or read on
//! the wire; the event side is described by the AsyncAPI document, which takes its payload
//! schemas from the same types.

use super::AppState;
use crate::templates::Templates;
use crate::templates::live::LiveTemplates;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::{Arc, Mutex};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// `/openapi.json`: [`MailerApi`], with the mail request's schema listing the variables of
/// every template in force ([`domain::schema::mail_request_with`]), those of `templates_dir`
/// included, so that a request that keeps to the document is accepted. Serialized once per
/// set of templates; cheap to clone.
#[derive(Clone)]
pub struct OpenApiDocument(Arc<Built>);

struct Built {
    base: utoipa::openapi::OpenApi,
    templates: Arc<LiveTemplates>,
    cache: Mutex<Option<(Arc<Templates>, Bytes)>>,
}

impl OpenApiDocument {
    /// The document of the templates `templates` holds, each time it is asked for.
    pub fn with_templates(templates: Arc<LiveTemplates>) -> Self {
        Self(Arc::new(Built {
            base: MailerApi::openapi(),
            templates,
            cache: Mutex::default(),
        }))
    }

    /// The serialized document for the set in force.
    pub fn json(&self) -> Bytes {
        let set = self.0.templates.current();
        let mut cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, bytes)) = cache.as_ref()
            && Arc::ptr_eq(cached, &set)
        {
            return bytes.clone();
        }
        let mut document = self.0.base.clone();
        document
            .components
            .get_or_insert_with(Default::default)
            .schemas
            .insert(
                domain::MailRequest::name().into_owned(),
                domain::schema::mail_request_with(set.request_variants()),
            );
        let bytes = Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
        *cache = Some((set, bytes.clone()));
        bytes
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
        super::webhooks::add, super::webhooks::list, super::webhooks::get_one,
        super::webhooks::change, super::webhooks::remove, super::webhooks::attempts,
        super::webhooks::retry_attempt,
        super::templates::list_templates, super::templates::render_template,
        super::templates::preview::preview_template,
        super::health::health, super::health::metrics,
        super::asyncapi::asyncapi_json, super::asyncapi::asyncapi_page),
    components(schemas(domain::MailRequest, domain::MailRequestId, domain::Locale, domain::Template,
        domain::Recipient, domain::MailAnswer, crate::store::DeliveryStatus, crate::store::DeliveryRecord,
        crate::store::Page, crate::store::DeliveryReport, crate::error::ErrorBody, super::health::Health,
        crate::events::MaskedRecipient, crate::events::MailActivityEvent, crate::events::MailStatusEvent,
        super::mails::RetryBody, super::mails::Retried, crate::store::Suppression,
        super::suppressions::NewSuppressionBody, crate::store::SuppressionPage,
        super::recipients::Erased, crate::sending::DkimRecord,
        super::webhooks::NewWebhookBody, super::webhooks::WebhookChangeBody,
        super::webhooks::CreatedWebhook, super::webhooks::WebhookList,
        crate::store::WebhookEndpoint, crate::store::WebhookAttempt, crate::store::AttemptPage,
        super::templates::TemplateSummary, super::templates::VarSummary,
        super::templates::RenderRequest, super::templates::RenderedTemplate,
        crate::socket::RoomAck, crate::error::EventError, crate::socket::LiveAuth,
        crate::socket::CatchUpArgs, crate::socket::CatchUpAnswer)),
    modifiers(&BearerAuth),
)]
pub struct MailerApi;

/// `/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(SwaggerUi::new("/docs").config(Config::new(["/openapi.json"])))
        .layer(axum::middleware::map_response(
            runtime::http_server::with_docs_policy,
        ))
}

async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.json(),
    )
}
