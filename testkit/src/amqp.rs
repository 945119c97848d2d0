//! RabbitMQ for tests: where it is, and the teardown that deletes what a test declared under
//! names of its own.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};

/// The broker on this machine with the default account.
pub const RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Deletes `queues` then `exchanges` on the machine's broker, ignoring what is already gone
/// or unreachable: a test's teardown must not fail the test.
pub async fn delete_topology(queues: &[&str], exchanges: &[&str]) {
    let Ok(connection) = Connection::connect(RABBITMQ_URL, ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for queue in queues {
            let _ = channel
                .queue_delete((*queue).into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in exchanges {
            let _ = channel
                .exchange_delete((*exchange).into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}
