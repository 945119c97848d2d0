//! The mailer's side of the socket.io transport: namespace `/` for service clients, with the
//! token checked at connect and `send-mail` decoded by hand so a bad payload gets a
//! `rejected` ack instead of silence.

use crate::{MailHandler, Origin};
use domain::mail::MAX_REQUEST_BYTES;
use domain::{MailAnswer, MailRequest, Secret};
use serde::Deserialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;
use std::sync::Arc;

/// The event a service client emits with a mail request, expecting an ack.
pub const SEND_MAIL_EVENT: &str = "send-mail";

/// The auth payload of a service client's CONNECT: `{"token": "…"}`.
#[derive(Deserialize)]
pub struct ServiceAuth {
    /// The shared secret of `transport.socketio.token`.
    pub token: String,
}

/// Why a connect was refused; its text is what the client sees in `connect_error`.
#[derive(Debug, thiserror::Error)]
#[error("unauthorized: a valid token is required in the connect auth payload")]
struct Unauthorized;

/// Mounts namespace `/` on `io`: a connect without the right token gets a connect error;
/// each `send-mail` is decoded, validated and handed to `handler`, and its answer sent back
/// as the ack. `on_connect` runs for every accepted socket, so the mailer can add its own
/// events (`get-mail`, `join`, `leave`). Works with any adapter (several mailers share
/// one through Redis); the result is the adapter's initialisation, to await or drop.
pub fn mount_service_namespace<A, F>(
    io: &SocketIo<A>,
    token: Secret,
    handler: Arc<dyn MailHandler>,
    on_connect: F,
) -> A::InitRes
where
    A: Adapter + DefinedAdapter,
    F: Fn(SocketRef<A>) + Clone + Send + Sync + 'static,
{
    let authenticate = move |TryData(auth): TryData<ServiceAuth>| {
        let accepted = matches!(&auth, Ok(a) if token.matches(&a.token));
        async move { if accepted { Ok(()) } else { Err(Unauthorized) } }
    };
    let on_service_connect = move |socket: SocketRef<A>| {
        let handler = handler.clone();
        socket.on(
            SEND_MAIL_EVENT,
            move |socket: SocketRef<A>, TryData(payload): TryData<Value>, ack: AckSender<A>| {
                let handler = handler.clone();
                async move {
                    let answer = match payload {
                        Ok(value) => answer_send_mail(value, &socket, handler.as_ref()).await,
                        Err(e) => MailAnswer::rejected(
                            None,
                            format!("request: the payload could not be decoded: {e}"),
                        ),
                    };
                    if let Err(e) = ack.send(&answer) {
                        tracing::warn!(error = %e, "could not send the send-mail ack");
                    }
                }
            },
        );
        on_connect(socket);
        std::future::ready(())
    };
    io.ns("/", on_service_connect.with(authenticate))
}

async fn answer_send_mail<A: Adapter>(
    value: Value,
    socket: &SocketRef<A>,
    handler: &dyn MailHandler,
) -> MailAnswer {
    let size = serde_json::to_vec(&value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_REQUEST_BYTES {
        return MailAnswer::rejected(
            None,
            format!("request: is {size} bytes, over the limit of {MAX_REQUEST_BYTES} bytes"),
        );
    }
    match MailRequest::from_value(value.clone()) {
        Ok(request) => {
            handler
                .handle(request, Origin::Socket(socket.id.to_string()))
                .await
        }
        Err(invalid) => MailAnswer::rejected_payload(&value, &invalid),
    }
}
