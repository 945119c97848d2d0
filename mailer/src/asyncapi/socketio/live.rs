//! Namespace `/live` of the socket.io half: `catch-up` and the `mail-activity` broadcast,
//! whose recipients depend on `mailer.live_token`.

use super::blocks::{SERVER, add_messages, emit, handshake_binding, receive};
use crate::asyncapi::blocks::{Part, message, schema_ref};
use crate::asyncapi::schemas::name;
use crate::error::EventError;
use crate::events::MailActivityEvent;
use crate::socket::{CatchUpAnswer, CatchUpArgs, LiveAuth};
use serde_json::json;

/// Namespace `/live`: `catch-up` and the `mail-activity` broadcast, with or without the
/// live token.
pub fn namespace(part: &mut Part, live_token: bool) {
    let (access, recipients) = if live_token {
        (
            "This mailer has a live token: the CONNECT packet must carry `{\"token\": <mailer.live_token>}` (see `x-socketio-auth`), else the connect error `unauthorized: /live needs the live token`.",
            "Recipients are whole: this mailer has a live token.",
        )
    } else {
        (
            "This mailer has no live token: anyone may connect, with no auth payload.",
            "Recipients are masked: `to` is `{\"email\": \"a…@example.com\"}` (the first character, an ellipsis, the domain; never the name), and every address inside `error` is masked the same way.",
        )
    };
    let activity = format!(
        "Every change of every delivery, broadcast to every `/live` client of every mailer; it never delays the answer to the sender. {recipients}"
    );
    let messages = [
        (
            "catchUp",
            message::<CatchUpArgs>(
                Some("catch-up"),
                "catch-up",
                "What the page missed: the changes after a cursor.",
            ),
        ),
        (
            "catchUpAnswer",
            message::<CatchUpAnswer>(
                None,
                "catch-up ack",
                "The changes, oldest first, and the cursor to ask after next.",
            ),
        ),
        (
            "eventError",
            message::<EventError>(
                None,
                "catch-up error ack",
                "`invalid_cursor` for a payload that is not `{after?: cursor}`, `busy` past one catch-up a second per socket or four at once in all: ask again a second later.",
            ),
        ),
        (
            "mailActivity",
            message::<MailActivityEvent>(Some("mail-activity"), "mail-activity", &activity),
        ),
    ];
    let channel_messages = add_messages(part, "live", messages);
    let mut channel = json!({
        "address": "/live",
        "title": "Namespace /live (browsers)",
        "description": format!("Read-only, for the live page `/`. {access} {recipients}"),
        "servers": [{"$ref": SERVER}],
        "messages": channel_messages,
        "bindings": handshake_binding(),
    });
    if live_token {
        channel["x-socketio-auth"] = schema_ref(&name::<LiveAuth>());
    }
    part.channels.insert("live".into(), channel);
    part.operations.insert(
        "receiveCatchUp".into(),
        receive("live", "catchUp", &["catchUpAnswer", "eventError"], "Answers the changes after `after` (at most 500), or the latest 50 without it, each delivery once in its latest state, shown as on `/live`."),
    );
    part.operations.insert(
        "emitLiveMailActivity".into(),
        emit(
            "live",
            "mailActivity",
            "Each change of every delivery, to every `/live` client.",
        ),
    );
}
