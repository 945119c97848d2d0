//! The transport conformance suite: one set of cases, run once per backend against real
//! peers — the socketioxide server in process, and the real RabbitMQ on this machine.
//!
//! Test names start with the backend (`socketio::…`, `amqp::…`), and when the last case of a
//! backend finishes the suite prints one summary line for it. AMQP cases skip with a visible
//! `SKIPPED` line when RabbitMQ is unreachable, and fail under `FACTEUR_REQUIRE_SERVICES=1`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/receiver.rs"]
mod receiver;

mod amqp;
mod backend;
mod cases;
mod handler;
mod interop;
mod raw_socket;
mod socketio;
mod socketio_only;
mod tally;

/// Declares one test per case for a backend, in a module named after it.
macro_rules! conformance_suite {
    ($module:ident, $backend:ty, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let mut tally = crate::tally::Tally::begin(<$backend as crate::backend::Backend>::NAME);
                    let ran = crate::cases::$case::<$backend>(stringify!($case)).await;
                    tally.finish(ran);
                }
            )*
        }
    };
}

/// Every case, in the order the issue lists them; [`tally::CASES_PER_BACKEND`] counts them.
macro_rules! every_case {
    ($module:ident, $backend:ty) => {
        conformance_suite!(
            $module,
            $backend,
            [
                a_published_request_reaches_the_handler_unchanged,
                each_answer_comes_back_to_the_publisher,
                with_the_other_side_down_publish_fails_fast_with_a_retryable_error,
                after_the_other_side_restarts_the_same_publisher_works_again,
                a_thousand_concurrent_publishes_are_all_answered_each_with_its_own_answer,
                garbage_on_the_receiving_side_is_rejected_and_the_receiver_keeps_serving,
            ]
        );
    };
}

every_case!(socketio_backend, crate::socketio::SocketIoBackend);
every_case!(amqp_backend, crate::amqp::AmqpBackend);
