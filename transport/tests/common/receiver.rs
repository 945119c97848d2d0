//! Namespace `/` as the mailer mounts it for service clients, with `send-mail` only, built
//! from the pieces `transport::socketio` gives the mailer: a connect without `token` is
//! refused, and each `send-mail` is acked with `handler`'s answer, or with the rejection of a
//! payload that is not a valid request. Used by the conformance suite and the publish bench.

use domain::Secret;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use std::sync::Arc;
use transport::socketio::{SEND_MAIL_EVENT, ServiceAuth, check_service_auth, decode_send_mail};
use transport::{MailHandler, Origin};

/// Mounts the receiver on `io`.
pub fn mount_receiver<H: MailHandler + 'static>(io: &SocketIo, token: &str, handler: Arc<H>) {
    let token = Secret::new(token);
    let authenticate = move |TryData(auth): TryData<ServiceAuth>| {
        std::future::ready(check_service_auth(auth.as_ref().ok(), &token))
    };
    let on_connect = move |socket: SocketRef| {
        let handler = handler.clone();
        socket.on(
            SEND_MAIL_EVENT,
            move |socket: SocketRef, TryData(payload): TryData<Value>, ack: AckSender| {
                let handler = handler.clone();
                async move {
                    let answer = match decode_send_mail(payload) {
                        Ok(request) => {
                            let origin = Origin::Socket(socket.id.to_string());
                            handler.handle(request, origin).await
                        }
                        Err(rejected) => rejected,
                    };
                    let _ = ack.send(&answer);
                }
            },
        );
        std::future::ready(())
    };
    io.ns("/", on_connect.with(authenticate));
}
