//! Nothing lost, nothing sent twice, whatever fails: each scenario cuts one part while mail
//! requests flow, brings it back, and counts the mails at the SMTP server by Message-ID.

use crate::support::stack::{Kind, Stack};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use testkit::skip::{RABBITMQ, available, report};
use testkit::smtp::{SmtpSink, count_by_message_id};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Tests that use RabbitMQ hold it shared; the test that restarts it holds it alone.
static BROKER: RwLock<()> = RwLock::const_new(());

/// Held by every test of this binary that uses RabbitMQ.
pub async fn broker_shared() -> RwLockReadGuard<'static, ()> {
    BROKER.read().await
}

async fn broker_exclusive() -> RwLockWriteGuard<'static, ()> {
    BROKER.write().await
}

const WAIT: Duration = Duration::from_secs(90);

/// Creates `count` users named `<prefix><n>`, eight at a time.
async fn create_users(stack: &Arc<Stack>, prefix: &str, count: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(count.div_ceil(8)) {
        let stack = stack.clone();
        let logins: Vec<String> = chunk.iter().map(|n| format!("{prefix}{n}")).collect();
        tasks.spawn(async move {
            for login in logins {
                stack.create_user(&login).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a create task");
    }
}

/// Waits for `expected` distinct mails, lets late duplicates show, prints the scenario's line
/// and returns the number of duplicates.
async fn count_and_report(stack: &Stack, scenario: &str, expected: usize) -> usize {
    stack.smtp.wait_for(expected, WAIT).await;
    let mails = stack.settled_mails().await;
    let (counts, duplicated) = count_by_message_id(&mails);
    let duplicates = mails.len() - counts.len();
    report(&format!(
        "fault scenario {scenario} [{}]: mails expected {expected}, received {} distinct, duplicates {duplicates}{}",
        stack.kind.as_str(),
        counts.len(),
        if duplicated.is_empty() {
            String::new()
        } else {
            format!(" ({duplicated:?})")
        }
    ));
    assert_eq!(
        counts.len(),
        expected,
        "{scenario}: every mail arrives\nusers log:\n{}\nmailer log:\n{}",
        stack.log("users"),
        stack.log("mailer")
    );
    duplicates
}

fn stack_arc(stack: Stack) -> Arc<Stack> {
    Arc::new(stack)
}

fn unwrap_stack(stack: Arc<Stack>) -> Stack {
    Arc::try_unwrap(stack).unwrap_or_else(|_| panic!("the stack is still shared"))
}

async fn mailer_down_while_users_are_created(kind: Kind) {
    let mut stack = Stack::start(kind, SmtpSink::start()).await;
    stack.kill_mailer();
    let stack = stack_arc(stack);
    create_users(&stack, "down", 100).await;
    let mut stack = unwrap_stack(stack);
    // How long the mailer stays down after the creates is part of the scenario.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.start_mailer().await;
    let duplicates = count_and_report(&stack, "mailer stopped during 100 creates", 100).await;
    assert_eq!(duplicates, 0);
}

async fn smtp_refuses_connections_for_ten_seconds(kind: Kind) {
    let mut stack = Stack::configure(kind, SmtpSink::reserve());
    stack.start_mailer().await;
    stack.start_users().await;
    let stack = stack_arc(stack);
    create_users(&stack, "refused", 20).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let stack = unwrap_stack(stack);
    assert!(
        stack.smtp.mails().is_empty(),
        "nothing can arrive while SMTP is down"
    );
    stack.smtp.listen();
    let duplicates = count_and_report(&stack, "SMTP refused connections for 10 s", 20).await;
    assert_eq!(duplicates, 0);
}

async fn users_killed_while_relaying(kind: Kind) {
    let stack = stack_arc(Stack::start(kind, SmtpSink::start()).await);
    create_users(&stack, "relay", 100).await;
    let mut stack = unwrap_stack(stack);
    // The relay is publishing the 100 rows right now.
    stack.kill_users();
    stack.start_users().await;
    let duplicates = count_and_report(&stack, "users killed (SIGKILL) while relaying", 100).await;
    assert_eq!(duplicates, 0);
}

async fn mailer_killed_while_sending(kind: Kind) {
    let stack = stack_arc(Stack::start(kind, SmtpSink::start()).await);
    create_users(&stack, "sending", 100).await;
    let mut stack = unwrap_stack(stack);
    stack.smtp.wait_for(10, WAIT).await;
    stack.kill_mailer();
    stack.start_mailer().await;
    let duplicates = count_and_report(&stack, "mailer killed (SIGKILL) while sending", 100).await;
    // A mail the server took in the instant before the kill, before its record said so, is
    // the one case the contract allows to go again: the restarted mailer counts each such
    // resend, and no other duplicate may exist.
    let resends = stack
        .metric(&stack.mailer_url(), "smtp_possible_resends_total")
        .await;
    assert!(
        duplicates as f64 <= resends,
        "{duplicates} duplicates but only {resends} possible resends counted"
    );
}

struct RabbitAppRestarted;

impl Drop for RabbitAppRestarted {
    fn drop(&mut self) {
        // Whatever happened in the test, the broker must be back for everyone else.
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
    }
}

fn rabbitmqctl(action: &str) {
    let out = Command::new("rabbitmqctl")
        .arg(action)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn wait_for_rabbitmq() {
    let back = testkit::eventually(Duration::from_secs(60), || async {
        tokio::net::TcpStream::connect(RABBITMQ.1).await.is_ok()
    })
    .await;
    assert!(back, "RabbitMQ did not come back within 60 s");
}

async fn rabbitmq_restarted_while_requests_flow() {
    let _alone = broker_exclusive().await;
    let stack = stack_arc(Stack::start(Kind::Amqp, SmtpSink::start()).await);
    let creating = {
        let stack = stack.clone();
        tokio::spawn(async move {
            for n in 0..60 {
                stack.create_user(&format!("flow{n}")).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Requests are flowing: some have already come through as mails.
    let flowing = testkit::eventually(WAIT, || std::future::ready(stack.smtp.count() >= 5)).await;
    assert!(flowing, "requests flow before the restart");
    let guard = RabbitAppRestarted;
    rabbitmqctl("stop_app");
    tokio::time::sleep(Duration::from_secs(3)).await;
    rabbitmqctl("start_app");
    drop(guard);
    wait_for_rabbitmq().await;
    creating
        .await
        .expect("the creates go on while the broker restarts");
    let duplicates = count_and_report(&stack, "RabbitMQ restarted while requests flow", 60).await;
    assert_eq!(duplicates, 0);
}

macro_rules! on_both_transports {
    ($($scenario:ident),* $(,)?) => {
        mod socketio {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Kind::Socketio).await;
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if !super::available(super::RABBITMQ, concat!("amqp::", stringify!($scenario))) {
                        return;
                    }
                    let _broker = super::broker_shared().await;
                    super::$scenario(super::Kind::Amqp).await;
                }
            )*
        }
    };
}

on_both_transports!(
    mailer_down_while_users_are_created,
    smtp_refuses_connections_for_ten_seconds,
    users_killed_while_relaying,
    mailer_killed_while_sending,
);

#[tokio::test]
async fn amqp_rabbitmq_restarted_while_requests_flow() {
    if !available(RABBITMQ, "amqp_rabbitmq_restarted_while_requests_flow") {
        return;
    }
    rabbitmq_restarted_while_requests_flow().await;
}
