//! The OpenAPI description (`/openapi.json`) and Swagger UI (`/docs`, assets embedded, so
//! it renders offline). The `*Doc` types describe the JSON shapes for the docs only.

use super::AppState;
use super::asyncapi::schemas as asyncapi;
use axum::Router;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AllOfBuilder, OneOfBuilder, Ref, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// The recipient of a mail.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RecipientDoc {
    /// The address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// The display name (default empty); no control, format or line-separator characters
    /// (`rejected`, naming `to.name`).
    #[schema(nullable = false, schema_with = plain_name)]
    name: Option<String>,
}

/// A display name: no character that `domain::plain_text` refuses.
fn plain_name() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(concat!(r"^[^", domain::forbidden_class!(), r"]*$")))
        .description(Some(
            "The display name (default empty); no control, format or line-separator characters",
        ))
        .build()
}

/// A mail request, identical on every transport.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MailRequestDoc {
    /// A UUID chosen by the sender; the idempotency key.
    #[schema(format = Uuid)]
    id: String,
    /// A template of the catalog.
    template: TemplateDoc,
    /// `fr` or `en`.
    locale: LocaleDoc,
    /// The recipient.
    to: RecipientDoc,
    /// The template's variables: see [`template_vars`] for those each template needs.
    #[schema(nullable = false)]
    vars: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the sender asked (RFC 3339).
    #[schema(format = DateTime)]
    requested_at: String,
    /// The W3C trace context the request belongs to, a string; anything that is not a
    /// well-formed one is ignored, never a reason to refuse the mail.
    traceparent: Option<serde_json::Value>,
}

/// A language of the built-in templates.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum LocaleDoc {
    Fr,
    En,
}

/// The variables each template needs, as `domain::Template::check_vars` checks them: a
/// request without them is `rejected`. Added to the mail request's schema, so that a request
/// that keeps to the document is accepted.
struct TemplateVars;

impl Modify for TemplateVars {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let text = serde_json::json!({"type": "string", "minLength": 1});
        let needs = |template: &str, vars: serde_json::Value, required: &[&str]| {
            serde_json::json!({
                "type": "object",
                "properties": {
                    "template": {"type": "string", "enum": [template]},
                    "vars": {"type": "object", "properties": vars, "required": required},
                },
                "required": if required.is_empty() { vec![] } else { vec!["vars"] },
            })
        };
        let variants = serde_json::json!({"oneOf": [
            // The verification paragraph's link and expiry come together or not at all.
            needs("welcome", serde_json::json!({"login": text, "verify_url": text, "expires_at": text}),
                &["login", "verify_url", "expires_at"]),
            serde_json::json!({
                "type": "object",
                "properties": {
                    "template": {"type": "string", "enum": ["welcome"]},
                    "vars": {"type": "object", "properties": {"login": text},
                        "required": ["login"], "additionalProperties": false},
                },
                "required": ["vars"],
            }),
            needs("email_verification", serde_json::json!({"verify_url": text, "expires_at": text}),
                &["verify_url", "expires_at"]),
            needs("email_changed", serde_json::json!({"new_email": text, "changed_at": text}),
                &["new_email", "changed_at"]),
            needs("password_changed", serde_json::json!({"changed_at": text}), &["changed_at"]),
            needs("account_deleted", serde_json::json!({}), &[]),
            needs("password_reset", serde_json::json!({"reset_url": text, "expires_at": text}),
                &["reset_url", "expires_at"]),
            needs("account_updated", serde_json::json!({"changed": {
                "type": "array", "minItems": 1, "items": {"type": "string"}}}), &["changed"]),
        ]});
        let components = openapi.components.get_or_insert_with(Default::default);
        let Some(base) = components.schemas.remove("MailRequestDoc") else {
            return;
        };
        let variants: RefOr<Schema> =
            serde_json::from_value(variants).expect("the variants are a schema");
        let description = "A mail request; each template needs its own variables.";
        let whole = AllOfBuilder::new()
            .item(base)
            .item(variants)
            .description(Some(description))
            .build();
        components
            .schemas
            .insert("MailRequestDoc".to_string(), Schema::AllOf(whole).into());
    }
}

/// `{"email": "a…@example.com"}`: the recipient as anonymous `/live` viewers see it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MaskedRecipientDoc {
    /// The address's first character, an ellipsis (U+2026), `@` and the domain.
    email: String,
}

/// The `mail-activity` socket.io event, broadcast to `/` and `/live`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MailActivityDoc {
    /// The request id.
    id: String,
    /// The template.
    template: String,
    /// On `/` the whole recipient ([`RecipientDoc`]); on `/live` a [`MaskedRecipientDoc`],
    /// or the whole recipient when `mailer.live_token` is set.
    #[schema(schema_with = activity_recipient)]
    to: serde_json::Value,
    /// `queued`, `sent`, `retrying`, `failed`, `cancelled` or `suppressed`.
    status: String,
    /// When the status changed (RFC 3339).
    at: String,
    /// SMTP tries so far.
    attempts: u32,
    /// The last try's error, or why it was not sent (on `/live` with masked recipients,
    /// the address masked in it too).
    error: Option<String>,
    /// This change's place in the store-wide order: 16 decimal digits, later changes
    /// larger. `/live`'s `catch-up` `{after: cursor}` answers the changes after it.
    cursor: String,
}

/// `mail-activity.to`: one of the two recipient shapes.
fn activity_recipient() -> Schema {
    OneOfBuilder::new()
        .item(Ref::from_schema_name("RecipientDoc"))
        .item(Ref::from_schema_name("MaskedRecipientDoc"))
        .description(Some(
            "On `/` the whole recipient; on `/live` the masked one, or the whole recipient \
             when `mailer.live_token` is set.",
        ))
        .build()
        .into()
}

/// The answer to a mail request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MailAnswerDoc {
    /// The request id, or null when none could be read.
    id: Option<String>,
    /// `accepted`, `duplicate`, `rejected` or `unavailable`.
    status: String,
    /// One sentence, for `rejected` and `unavailable`.
    error: Option<String>,
}

/// A delivery record.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeliveryRecordDoc {
    /// The request id.
    #[schema(format = Uuid)]
    id: String,
    /// The template.
    template: String,
    /// The locale.
    locale: String,
    /// The recipient.
    to: RecipientDoc,
    /// `sending` is shown as `queued`.
    status: PublicStatusDoc,
    /// SMTP tries so far.
    attempts: u32,
    /// The last try's error.
    last_error: Option<String>,
    /// When it was stored.
    created_at: String,
    /// When the SMTP server took it.
    sent_at: Option<String>,
}

/// One page of delivery records.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PageDoc {
    /// Newest first.
    items: Vec<DeliveryRecordDoc>,
    /// How many match.
    total: u64,
    /// The page, from 1.
    page: u64,
    /// Records per page.
    per_page: u64,
}

/// The filter of `POST /mails/retry`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct RetryFilterDoc {
    /// Must be `failed`.
    status: FailedDoc,
    /// Only this template.
    template: Option<TemplateDoc>,
    /// Only this recipient, however it is spelt (compared in canonical form: domain by
    /// UTS-46, local part in NFC and without case).
    #[schema(format = Email, max_length = 254)]
    to: Option<String>,
    /// Only mails stored before this time (RFC 3339).
    #[schema(format = DateTime)]
    before: Option<String>,
}

/// The only status `POST /mails/retry` takes.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FailedDoc {
    Failed,
}

/// A template of the built-in catalog.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TemplateDoc {
    Welcome,
    AccountUpdated,
    AccountDeleted,
    PasswordReset,
    EmailVerification,
    EmailChanged,
    PasswordChanged,
}

/// The answer of `POST /mails/retry`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RetriedDoc {
    /// How many deliveries went back to `queued`.
    retried: u64,
}

/// An address the mailer will not send to.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SuppressionDoc {
    /// The address as it was first added; any spelling of it is the same entry.
    email: String,
    /// Why: the SMTP server's refusal at `RCPT TO`, or what the operator wrote.
    reason: String,
    /// When it was added (RFC 3339).
    created_at: String,
}

/// The body of `POST /suppressions`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct NewSuppressionDoc {
    /// The address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Why (at most 1,000 characters, no control characters).
    #[schema(max_length = 1000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    reason: Option<String>,
}

/// One page of the suppression list.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SuppressionPageDoc {
    /// Newest first.
    items: Vec<SuppressionDoc>,
    /// How many addresses are listed.
    total: u64,
    /// The page, from 1.
    page: u64,
    /// Entries per page.
    per_page: u64,
}

/// A status `GET /mails?status=` filters on.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PublicStatusDoc {
    Queued,
    Retrying,
    Sent,
    Failed,
    Cancelled,
    Suppressed,
}

/// An error of a non-mail route.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDoc {
    /// A stable code.
    error: String,
    /// One sentence.
    message: String,
    /// More, per field.
    details: serde_json::Value,
}

/// `/health`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HealthDoc {
    /// `ok` or `unavailable`.
    status: String,
    /// `ok` or `unavailable`.
    database: String,
    /// `ok` (SMTP) or `files`.
    smtp: String,
    /// `socketio` or `{"amqp": "connected"|"disconnected"}`.
    transport: serde_json::Value,
    /// With `mailer.cluster` only: `connected` (events cross mailers) or `disconnected`
    /// (Redis is away: this mailer's clients get its own events only; it still accepts and
    /// sends).
    #[schema(nullable = false)]
    cluster: Option<String>,
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
    info(title = "Facteur mailer", description = "Turns mail requests into mails. The same operations exist as socket.io events on namespace `/` (path `/socket.io/`): `send-mail` (ack: the answer), `get-mail` (ack: the record or `{\"error\":\"not_found\",\"message\":…}`), `retry-mail` and `cancel-mail` with an id (ack: the body of `POST /mails/{id}/retry` or `/cancel`: the record, or `{\"error\":\"not_retryable\"|\"not_cancellable\"|\"suppressed\"|\"not_found\",\"message\":…}`), `join` / `leave` a room `mail:<id>` or `template:<name>` (ack `{\"ok\":true}`, or `{\"ok\":false,\"error\":\"too_many_rooms\"}` past 1,000 rooms, the socket's own id room not counted). The mailer emits `mail-status` and `mail-activity` (see MailActivityDoc); on `/live` recipients are masked unless `mailer.live_token` is set, and then `/live` needs auth `{\"token\": …}` (connect error `unauthorized: /live needs the live token` otherwise). Limits: a websocket message or polling body over 128 KiB closes that connection (polling: 413); a browser handshake (with `Origin`) from an origin other than the mailer's own or `mailer.allowed_origins` gets 403 `forbidden_origin`; past `mailer.max_sockets` sessions a handshake gets 503 `too_many_sessions`.\n\nThe events, their payloads and acks, and the AMQP topology are described in AsyncAPI 3.0: [/asyncapi](/asyncapi) renders [/asyncapi.json](/asyncapi.json)."),
    paths(super::mails::create_mail, super::mails::get_mail, super::mails::list_mails,
        super::mails::retry_mail, super::mails::retry_mails, super::mails::cancel_mail,
        super::suppressions::list, super::suppressions::add, super::suppressions::remove,
        super::templates::list_templates, super::templates::render_template,
        super::templates::preview::preview_template,
        super::health::health, super::health::metrics,
        super::asyncapi::asyncapi_json, super::asyncapi::asyncapi_page),
    components(schemas(MailRequestDoc, LocaleDoc, TemplateDoc, FailedDoc, PublicStatusDoc, MailAnswerDoc, DeliveryRecordDoc, PageDoc, ErrorDoc, HealthDoc, RecipientDoc, MaskedRecipientDoc, MailActivityDoc,
        RetryFilterDoc, RetriedDoc, SuppressionDoc, NewSuppressionDoc, SuppressionPageDoc,
        super::templates::TemplateSummary, super::templates::VarSummary, super::templates::RenderRequestDoc, super::templates::RenderedTemplate,
        asyncapi::MailStatusDoc, asyncapi::MailIdDoc, asyncapi::RoomNameDoc, asyncapi::RoomAckDoc,
        asyncapi::EventErrorDoc, asyncapi::SocketAuthDoc, asyncapi::CatchUpRequestDoc, asyncapi::CatchUpAnswerDoc)),
    modifiers(&BearerAuth, &TemplateVars),
)]
pub struct ApiDoc;

/// `/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .layer(axum::middleware::map_response(
            runtime::http_server::with_docs_policy,
        ))
}
