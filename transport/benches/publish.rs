//! Publish throughput and latency of both backends, receiver on the same machine.
//!
//! `cargo bench -p transport --bench publish` runs, per backend: N publishes with C of them
//! concurrent (throughput, p50, p99), then a fixed rate of 1,000 publishes/s for 3 s (p50,
//! p99). socket.io goes to an in-process socketioxide server whose `send-mail` is read with
//! the transport's `decode_send_mail`, as the mailer's is; AMQP goes to the local RabbitMQ,
//! with an `AmqpConsumer` draining the queue.
//! Every run is bounded (a few seconds).

#[path = "../tests/common/receiver.rs"]
mod receiver;

use async_trait::async_trait;
use domain::config::{AmqpConfig, SocketIoConfig};
use domain::{Email, Locale, MailAnswer, MailRequest, Recipient, Secret, Template};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use transport::amqp::{AmqpConsumer, AmqpPublisher};
use transport::socketio::SocketIoPublisher;
use transport::{MailHandler, Origin, Transport};

const TOTAL: usize = 20_000;
const RATE_PER_SECOND: u64 = 1_000;
const RATE_DURATION: Duration = Duration::from_secs(3);

/// Accepts everything and counts, standing for a mailer whose store costs nothing.
struct CountingHandler(AtomicUsize);

#[async_trait]
impl MailHandler for CountingHandler {
    async fn handle(&self, request: MailRequest, _: Origin) -> MailAnswer {
        self.0.fetch_add(1, Ordering::Relaxed);
        MailAnswer::accepted(request.id)
    }
}

fn request(i: usize) -> MailRequest {
    let mut vars = serde_json::Map::new();
    vars.insert("login".into(), "ada".into());
    let to = Recipient {
        email: Email::parse(format!("user{i}@example.com")).expect("valid address"),
        name: "Ada Lovelace".into(),
    };
    MailRequest::new(Template::WELCOME, Locale::EN, to, vars).expect("valid request")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(
    backend: &str,
    what: &str,
    mut latencies: Vec<Duration>,
    elapsed: Duration,
    failures: usize,
) {
    latencies.sort();
    let done = latencies.len();
    println!(
        "{backend:8} {what:28} n={done:6} failed={failures} throughput={:8.0}/s p50={:7.3} ms p99={:7.3} ms max={:7.3} ms",
        done as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// `TOTAL` publishes from `concurrency` workers, each publishing one after the other.
async fn saturate(backend: &str, publisher: Arc<dyn Transport>, concurrency: usize) {
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(TOTAL / concurrency);
                let mut failures = 0;
                for i in (w..TOTAL).step_by(concurrency) {
                    let request = request(i);
                    let sent = Instant::now();
                    match publisher.publish(&request).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(e) => {
                            failures += 1;
                            eprintln!("{e}");
                        }
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(TOTAL);
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await.expect("worker");
        latencies.extend(l);
        failures += f;
    }
    report(
        backend,
        &format!("{TOTAL} publishes, {concurrency} concurrent"),
        latencies,
        started.elapsed(),
        failures,
    );
}

/// One publish every 1/RATE s for RATE_DURATION, each in its own task.
async fn fixed_rate(backend: &str, publisher: Arc<dyn Transport>) {
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SECOND));
    let count = (RATE_PER_SECOND * RATE_DURATION.as_secs()) as usize;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        ticks.tick().await;
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let request = request(i);
            let sent = Instant::now();
            publisher.publish(&request).await.map(|_| sent.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    let mut failures = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(latency) => latencies.push(latency),
            Err(e) => {
                failures += 1;
                eprintln!("{e}");
            }
        }
    }
    report(
        backend,
        &format!("{RATE_PER_SECOND}/s for {RATE_DURATION:?}"),
        latencies,
        started.elapsed(),
        failures,
    );
}

async fn bench_socketio() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (layer, io) = socketioxide::SocketIo::builder().build_layer();
    let handler = Arc::new(CountingHandler(AtomicUsize::new(0)));
    receiver::mount_receiver(&io, "bench", handler);
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().layer(layer)).await });
    let config = SocketIoConfig {
        url: format!("http://{addr}"),
        token: Secret::new("bench"),
    };
    let publisher = SocketIoPublisher::start(&config);
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(10))
            .await,
        "socket.io connect"
    );
    let publisher: Arc<dyn Transport> = Arc::new(publisher);
    saturate(
        "socketio",
        publisher.clone(),
        transport::socketio::DEFAULT_MAX_IN_FLIGHT,
    )
    .await;
    fixed_rate("socketio", publisher).await;
}

async fn bench_amqp() {
    if tokio::net::TcpStream::connect("127.0.0.1:5672")
        .await
        .is_err()
    {
        println!("amqp     SKIPPED: RabbitMQ is not reachable at 127.0.0.1:5672");
        return;
    }
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let config = AmqpConfig {
        url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
        exchange: format!("bench.{tag}"),
        queue: format!("bench.{tag}.requests"),
    };
    let handler = Arc::new(CountingHandler(AtomicUsize::new(0)));
    let consumer = AmqpConsumer::start(&config, handler.clone());
    let publisher = AmqpPublisher::start(&config);
    assert!(
        consumer.wait_until_connected(Duration::from_secs(10)).await,
        "consumer"
    );
    assert!(
        publisher
            .wait_until_connected(Duration::from_secs(10))
            .await,
        "publisher"
    );
    let publisher: Arc<dyn Transport> = Arc::new(publisher);
    saturate("amqp", publisher.clone(), 256).await;
    // Let the consumer drain the burst first, so the fixed-rate run measures a steady state
    // instead of a broker still delivering 20,000 messages.
    wait_for_handled(&handler, TOTAL).await;
    fixed_rate("amqp", publisher.clone()).await;
    let expected = TOTAL + (RATE_PER_SECOND * RATE_DURATION.as_secs()) as usize;
    wait_for_handled(&handler, expected).await;
    println!(
        "amqp     consumer handled {} of {expected} confirmed requests",
        handler.0.load(Ordering::Relaxed)
    );
    publisher.close().await;
    consumer.stop().await;
    delete(&config).await;
}

/// Waits (at most 30 s) until the consumer handled `count` requests.
async fn wait_for_handled(handler: &CountingHandler, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while handler.0.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delete(config: &AmqpConfig) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let names = transport::amqp::TopologyNames::of(config);
    let Ok(connection) = lapin::Connection::connect(config.url.expose(), Default::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for queue in [&names.queue, &names.dead_queue] {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [
            &names.exchange,
            &names.dead_letter_exchange,
            &names.events_exchange,
        ] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        bench_socketio().await;
        bench_amqp().await;
    });
}
