//! The socket.io side of the mailer (socketioxide).
//!
//! - Namespace `/`, for services: the token is checked at connect and `send-mail` is
//!   handled by the transport crate's receiver, which calls the core; this module adds
//!   `get-mail`, `join` and `leave`.
//! - Namespace `/live`, for browsers: no token, no events of its own; it only receives
//!   `mail-activity` broadcasts.

use crate::core::MailerCore;
use crate::events::{mail_room, template_room};
use crate::metrics::Metrics;
use domain::{MailRequestId, Secret, Template};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use std::sync::Arc;
use transport::MailHandler;

/// Mounts both namespaces on `io`.
pub fn mount(io: &SocketIo, token: Secret, core: MailerCore) {
    let metrics = core.metrics().clone();
    let handler: Arc<dyn MailHandler> = Arc::new(core.clone());
    let service_metrics = metrics.clone();
    transport::socketio::mount_service_namespace(io, token, handler, move |socket: SocketRef| {
        on_service_connect(socket, core.clone(), service_metrics.clone());
    });
    io.ns("/live", move |socket: SocketRef| {
        count_client(&socket, &metrics, "/live");
        std::future::ready(())
    });
}

fn count_client(socket: &SocketRef, metrics: &Arc<Metrics>, namespace: &'static str) {
    metrics.clients(namespace, 1);
    let metrics = metrics.clone();
    socket.on_disconnect(move || {
        metrics.clients(namespace, -1);
        std::future::ready(())
    });
}

fn on_service_connect(socket: SocketRef, core: MailerCore, metrics: Arc<Metrics>) {
    count_client(&socket, &metrics, "/");
    // A room named by the socket id lets one emit reach the sender and the rooms at once.
    socket.join(socket.id.to_string());
    socket.on(
        "get-mail",
        move |TryData(payload): TryData<Value>, ack: AckSender| {
            let core = core.clone();
            async move {
                let reply = get_mail_reply(&core, payload.ok()).await;
                let _ = ack.send(&reply);
            }
        },
    );
    socket.on(
        "join",
        |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
            let reply = match room_name(payload.ok()) {
                Ok(room) => {
                    socket.join(room);
                    json!({"ok": true})
                }
                Err(error) => json!({"ok": false, "error": error}),
            };
            let _ = ack.send(&reply);
            std::future::ready(())
        },
    );
    socket.on(
        "leave",
        |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
            let reply = match room_name(payload.ok()) {
                Ok(room) => {
                    socket.leave(room);
                    json!({"ok": true})
                }
                Err(error) => json!({"ok": false, "error": error}),
            };
            let _ = ack.send(&reply);
            std::future::ready(())
        },
    );
}

async fn get_mail_reply(core: &MailerCore, payload: Option<Value>) -> Value {
    let id: Option<MailRequestId> = match &payload {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Object(o)) => o
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        _ => None,
    };
    let Some(id) = id else {
        return json!({"error": "invalid_id", "message": "get-mail expects a request id (a UUID)."});
    };
    match core.get_mail(id).await {
        Ok(Some(record)) => {
            serde_json::to_value(&record).unwrap_or_else(|_| json!({"error": "internal"}))
        }
        Ok(None) => json!({"error": "not_found"}),
        Err(e) => {
            tracing::error!(error = %e, "get-mail could not read the store");
            json!({"error": "unavailable", "message": "The delivery store is not answering; try again later."})
        }
    }
}

/// Checks a `join`/`leave` room name: `mail:<uuid>` or `template:<name>`.
fn room_name(payload: Option<Value>) -> Result<String, String> {
    let Some(Value::String(name)) = payload else {
        return Err("a room name is expected: mail:<id> or template:<name>.".into());
    };
    if let Some(id) = name.strip_prefix("mail:") {
        let id: MailRequestId = id.parse().map_err(|_| {
            format!("{name:?} is not a mail room: the id after mail: must be a UUID.")
        })?;
        return Ok(mail_room(id));
    }
    if let Some(template) = name.strip_prefix("template:") {
        let template = Template::parse(template).map_err(|e| format!("{}.", e.message))?;
        return Ok(template_room(template));
    }
    Err(format!(
        "{name:?} is not a room: expected mail:<id> or template:<name>."
    ))
}
