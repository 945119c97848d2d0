//! Deleting an account erases what the mailer holds about its address once the account's last
//! mail is sent: the request travels in the users outbox with the deletion, so a mailer that
//! is down at that moment erases it when it is back, on each transport. A new account under
//! the same address, made after the deletion, keeps its mail and its record.

use crate::support::stack::{Kind, SERVICE_TOKEN, Stack};
use reqwest::{Method, StatusCode};
use std::time::Duration;
use testkit::skip::{RABBITMQ, available};
use testkit::smtp::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

/// The request id of a mail, from its `Message-ID: <id@domain>`.
fn request_id(message_id: &str) -> String {
    message_id
        .trim_matches(['<', '>'])
        .split('@')
        .next()
        .expect("an id")
        .to_string()
}

/// The status of `GET /mails/{id}` on the mailer.
async fn record_status(stack: &Stack, id: &str) -> StatusCode {
    stack
        .http()
        .get(format!("{}/mails/{id}", stack.mailer_url()))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .expect("GET /mails/{id}")
        .status()
}

async fn deleting_an_account_erases_its_mail_records_after_its_last_mail(kind: Kind) {
    let mut stack = Stack::start(kind, SmtpSink::start()).await;
    let user = stack.create_user("erased").await;
    stack.create_user("kept").await;
    let mails = stack.smtp.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2, "two welcome mails");
    let welcome_of = |login: &str| {
        let to = format!("{login}@example.com");
        request_id(
            &mails
                .iter()
                .find(|m| m.to == vec![to.clone()])
                .expect("a welcome mail")
                .message_id,
        )
    };
    let (erased_welcome, kept_welcome) = (welcome_of("erased"), welcome_of("kept"));
    assert_eq!(record_status(&stack, &erased_welcome).await, StatusCode::OK);

    // The mailer is down when the account is deleted: the request waits in the outbox.
    stack.kill_mailer();
    let id = user["id"].as_str().expect("an id");
    let deleted = stack
        .users_admin(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .expect("DELETE /users/{id}");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    // Someone signs up again under the freed address before the mailer is back: that welcome
    // mail is requested after the deleted account's last one, and is not part of its erasure.
    let again = stack.create_user("erased").await;
    assert_ne!(again["id"], user["id"]);
    stack.start_mailer().await;

    let mails = stack.smtp.wait_for(4, WAIT).await;
    let to_erased: Vec<_> = mails
        .iter()
        .filter(|m| m.to == vec!["erased@example.com".to_string()])
        .collect();
    assert_eq!(
        to_erased.len(),
        3,
        "the first welcome, the account_deleted mail and the new welcome; mailer log:\n{}",
        stack.log("mailer")
    );
    let new_welcome = request_id(
        &to_erased
            .iter()
            .find(|m| {
                m.template_hint() != "account_deleted"
                    && request_id(&m.message_id) != erased_welcome
            })
            .expect("the new account's welcome mail")
            .message_id,
    );
    let last = mails
        .iter()
        .find(|m| m.template_hint() == "account_deleted")
        .unwrap_or_else(|| {
            panic!(
                "the account_deleted mail; mailer log:\n{}",
                stack.log("mailer")
            )
        });
    assert_eq!(last.to, vec!["erased@example.com".to_string()]);
    let last_id = request_id(&last.message_id);

    // Once it is sent, both of the address's records go; the other account's stays.
    let erased = testkit::eventually(WAIT, || async {
        record_status(&stack, &erased_welcome).await == StatusCode::NOT_FOUND
            && record_status(&stack, &last_id).await == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        erased,
        "the deleted account's records are still at the mailer; mailer log:\n{}",
        stack.log("mailer")
    );
    assert_eq!(record_status(&stack, &kept_welcome).await, StatusCode::OK);
    assert_eq!(
        record_status(&stack, &new_welcome).await,
        StatusCode::OK,
        "the new account's welcome record was erased with the old account's"
    );
    let erased_total = crate::support::stack::metric_sum_with(
        &stack.metrics_text(&stack.mailer_url()).await,
        "records_deleted_total",
        &["reason=\"erasure\""],
    );
    assert_eq!(
        erased_total, 2.0,
        "the welcome and the account_deleted records"
    );
}

#[tokio::test]
async fn socketio_deleting_an_account_erases_its_mail_records_after_its_last_mail() {
    deleting_an_account_erases_its_mail_records_after_its_last_mail(Kind::Socketio).await;
}

#[tokio::test]
async fn amqp_deleting_an_account_erases_its_mail_records_after_its_last_mail() {
    if !available(
        RABBITMQ,
        "amqp_deleting_an_account_erases_its_mail_records_after_its_last_mail",
    ) {
        return;
    }
    deleting_an_account_erases_its_mail_records_after_its_last_mail(Kind::Amqp).await;
}
