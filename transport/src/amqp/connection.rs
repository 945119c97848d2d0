//! Opening a RabbitMQ connection and noticing when it dies, for the supervisors of the
//! publisher, the consumer and the events publisher.

use domain::config::AmqpConfig;
use futures_util::{Stream, StreamExt};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, Event};
use std::time::Duration;

/// How long the TCP connect plus the AMQP handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a supervisor looks at the connection's status, in case no error event came.
const STATUS_POLL: Duration = Duration::from_millis(500);
/// The largest AMQP frame asked for when the URL does not say (`?frame_max=`). lapin keeps
/// two buffers of 32 frames each per connection, filled with zeros up front, so the frame size
/// sets what each connection holds resident (docs/BENCHMARKS.md). Mail
/// requests and events weigh about a kilobyte, and a larger message is split over frames.
const FRAME_MAX: u32 = 16 * 1024;

/// Connects to the broker, naming the connection after `role` in the management UI.
/// The error never contains the URL, which carries the password.
pub(crate) async fn open(config: &AmqpConfig, role: &str) -> Result<Connection, String> {
    let properties =
        ConnectionProperties::default().with_connection_name(format!("facteur {role}").into());
    let mut uri: AMQPUri = config
        .url
        .expose()
        .parse()
        .map_err(|_| "transport.amqp.url is not a valid AMQP URL".to_string())?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri, properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(format!("could not connect to RabbitMQ: {e}")),
        Err(_) => Err(format!(
            "could not connect to RabbitMQ within {CONNECT_TIMEOUT:?}"
        )),
    }
}

/// Resolves when `connection` reports an error or stops being connected.
pub(crate) async fn wait_until_broken(
    connection: &Connection,
    events: &mut (impl Stream<Item = Event> + Unpin),
) -> String {
    let mut poll = tokio::time::interval(STATUS_POLL);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Event::Error(e)) => return format!("the RabbitMQ connection failed: {e}"),
                Some(_) => {}
                None => return "the RabbitMQ connection ended".into(),
            },
            _ = poll.tick() => {
                if !connection.status().connected() {
                    return "the RabbitMQ connection is no longer open".into();
                }
            }
        }
    }
}
