//! The payloads of the event side that have no REST route of their own, as `ToSchema` types
//! beside those of [`crate::http::openapi`]. They are listed in the OpenAPI document's
//! components too, so that both documents take every schema from one generated set.

use utoipa::ToSchema;

/// The `mail-status` event (socket.io `/`), and the body of each `mail.<status>` message on
/// the AMQP events exchange.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MailStatusDoc {
    /// The request id.
    id: String,
    /// `queued` (after a retry), `sent`, `retrying`, `failed`, `cancelled` or `suppressed`.
    status: String,
    /// SMTP tries so far.
    attempts: u32,
    /// The last error, for `retrying` and `failed`, or why the mail is not sent; absent
    /// otherwise.
    #[schema(nullable = false)]
    error: Option<String>,
}

/// A mail request id: the UUID the sender chose.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MailIdDoc(String);

/// A room of namespace `/`: `mail:<id>` (one request) or `template:<name>` (every mail of a
/// template).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RoomNameDoc(String);

/// The ack of `join` and `leave`: `{"ok": true}`, or `{"ok": false, "error", "message"}`
/// with `invalid_room` or (`join` only, past 1,000 rooms) `too_many_rooms`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RoomAckDoc {
    /// Whether the socket is now in (or out of) the room.
    ok: bool,
    /// When refused: a stable code.
    #[schema(nullable = false)]
    error: Option<String>,
    /// When refused: one sentence.
    #[schema(nullable = false)]
    message: Option<String>,
}

/// The ack of a socket.io event that could not be served: the REST error body without
/// `details`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventErrorDoc {
    /// A stable code: `not_found`, `invalid_id`, `not_retryable`, `not_cancellable`,
    /// `suppressed`, `unavailable`, `invalid_cursor`, `busy`, …
    error: String,
    /// One sentence.
    message: String,
}

/// The auth payload of a socket.io CONNECT: on `/` the service token
/// (`transport.socketio.token`), on `/live` the live token (`mailer.live_token`) when one
/// is set.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SocketAuthDoc {
    /// The shared secret.
    token: String,
}

/// The payload of `catch-up` on `/live`: `{}` (or no payload, or `after: null`) asks for the
/// latest 50 changes.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CatchUpRequestDoc {
    /// The cursor of the last change the client has: the answer holds the changes after it.
    after: Option<String>,
}

/// The ack of `catch-up`: each delivery changed since `after` once, in its latest state,
/// oldest first, at most 500 (a full answer means "ask again after `cursor`").
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CatchUpAnswerDoc {
    /// The changes, shown as `/live` shows `mail-activity` (masked without a live token).
    items: Vec<crate::http::openapi::MailActivityDoc>,
    /// The last item's cursor, or `after` when nothing changed since it
    /// (`"0000000000000000"` for an empty store).
    cursor: String,
}
