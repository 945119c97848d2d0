//! Namespace `/` of the socket.io half: the events services emit, with their acks, and the
//! `mail-status` and `mail-activity` emits.

use super::blocks::{SERVER, add_messages, emit, handshake_binding, receive};
use crate::asyncapi::blocks::{Part, message, message_of, schema_ref};
use crate::asyncapi::schemas::name;
use crate::error::EventError;
use crate::events::{MailActivityEvent, MailStatusEvent};
use crate::socket::{LiveAuth, RoomAck};
use crate::store::DeliveryRecord;
use domain::{MailAnswer, MailRequest, MailRequestId};
use serde_json::{Value, json};

/// A room of namespace `/`: a string, checked by the mailer when it is joined or left.
fn room_name() -> Value {
    json!({
        "type": "string",
        "description": "A room of namespace `/`: `mail:<id>` (one request) or `template:<name>` (every mail of a template).",
    })
}

/// Namespace `/`: its events, their acks, and what the mailer emits there.
pub fn namespace(part: &mut Part) {
    let messages = [
        (
            "sendMail",
            message::<MailRequest>(
                Some("send-mail"),
                "send-mail",
                "A mail request, as on every transport.",
            ),
        ),
        (
            "mailAnswer",
            message::<MailAnswer>(
                None,
                "send-mail ack",
                "The answer: accepted, duplicate, rejected (with a sentence) or unavailable.",
            ),
        ),
        (
            "getMail",
            message::<MailRequestId>(
                Some("get-mail"),
                "get-mail",
                "The id of a request (a bare string; `{\"id\": …}` is read too).",
            ),
        ),
        (
            "retryMail",
            message::<MailRequestId>(
                Some("retry-mail"),
                "retry-mail",
                "The id of a `failed` delivery to queue again; this socket then hears its next `mail-status` events.",
            ),
        ),
        (
            "cancelMail",
            message::<MailRequestId>(
                Some("cancel-mail"),
                "cancel-mail",
                "The id of a `queued` or `retrying` delivery never to send.",
            ),
        ),
        (
            "deliveryRecord",
            message::<DeliveryRecord>(
                None,
                "delivery record ack",
                "The ack of get-mail, retry-mail and cancel-mail: the record as it is after the event, like the body of the matching REST route.",
            ),
        ),
        (
            "eventError",
            message::<EventError>(
                None,
                "error ack",
                "The ack of an event that could not be served: `{error, message}`.",
            ),
        ),
        (
            "join",
            message_of(
                Some("join"),
                "join",
                "A room to hear the `mail-status` events of: `mail:<id>` or `template:<name>`.",
                room_name(),
            ),
        ),
        (
            "leave",
            message_of(
                Some("leave"),
                "leave",
                "A room to stop hearing.",
                room_name(),
            ),
        ),
        (
            "roomAck",
            message::<RoomAck>(
                None,
                "join / leave ack",
                "`{\"ok\": true}`, or `{\"ok\": false, \"error\", \"message\"}`.",
            ),
        ),
        (
            "mailStatus",
            message::<MailStatusEvent>(
                Some("mail-status"),
                "mail-status",
                "A delivery's new status: to the socket that sent the request (or the last retry-mail), and to the rooms `mail:<id>` and `template:<name>`; a socket in several of them gets it once.",
            ),
        ),
        (
            "mailActivity",
            message::<MailActivityEvent>(
                Some("mail-activity"),
                "mail-activity",
                "Every change of every delivery, broadcast to all clients of `/`, with the whole recipient.",
            ),
        ),
    ];
    let channel_messages = add_messages(part, "service", messages);
    part.channels.insert(
        "service".into(),
        json!({
            "address": "/",
            "title": "Namespace / (services)",
            "description": "For services such as the users service. The CONNECT packet must carry the auth payload `{\"token\": <transport.socketio.token>}` (see `x-socketio-auth`); without it, or with a wrong one, the connect is refused with an error whose message starts with `unauthorized`, and no event is served. Each socket is also in a room named by its id, so that `mail-status` reaches it through any mailer of a cluster.",
            "servers": [{"$ref": SERVER}],
            "messages": channel_messages,
            "bindings": handshake_binding(),
            "x-socketio-auth": schema_ref(&name::<LiveAuth>()),
        }),
    );
    let record_or_error = ["deliveryRecord", "eventError"];
    let operations = [
        (
            "receiveSendMail",
            receive(
                "service",
                "sendMail",
                &["mailAnswer"],
                "A service asks for a mail; the ack is the answer, sent once the request is stored (or found duplicate, or refused).",
            ),
        ),
        (
            "receiveGetMail",
            receive(
                "service",
                "getMail",
                &record_or_error,
                "Reads a delivery record: the same handler as `GET /mails/{id}`.",
            ),
        ),
        (
            "receiveRetryMail",
            receive(
                "service",
                "retryMail",
                &record_or_error,
                "Queues a failed delivery again: the same handler as `POST /mails/{id}/retry`.",
            ),
        ),
        (
            "receiveCancelMail",
            receive(
                "service",
                "cancelMail",
                &record_or_error,
                "Cancels a delivery not yet handed to SMTP: the same handler as `POST /mails/{id}/cancel`.",
            ),
        ),
        (
            "receiveJoin",
            receive(
                "service",
                "join",
                &["roomAck"],
                "Puts the socket in a room; at most 1,000 rooms per socket, its own id's room not counted.",
            ),
        ),
        (
            "receiveLeave",
            receive(
                "service",
                "leave",
                &["roomAck"],
                "Takes the socket out of a room.",
            ),
        ),
        (
            "emitMailStatus",
            emit(
                "service",
                "mailStatus",
                "Each status change of a delivery: sent, retrying, failed, cancelled, suppressed, or queued again after a retry.",
            ),
        ),
        (
            "emitMailActivity",
            emit(
                "service",
                "mailActivity",
                "Each change of every delivery, `queued` at accept included, broadcast to every client of `/` on every mailer.",
            ),
        ),
    ];
    for (key, operation) in operations {
        part.operations.insert(key.into(), operation);
    }
}
