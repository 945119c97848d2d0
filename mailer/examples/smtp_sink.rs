//! A counting SMTP sink for the mailer benchmark (`mailer/bench/run.sh`): a real SMTP
//! server (mailin-embedded) that accepts every mail and prints the running total once a
//! second as `mails <n>`.
//!
//! Usage: `cargo run --release -p mailer --example smtp_sink -- 127.0.0.1:2525`

use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone)]
struct Counter(Arc<AtomicU64>);

impl Handler for Counter {
    fn data_end(&mut self) -> Response {
        self.0.fetch_add(1, Ordering::Relaxed);
        OK
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2525".to_string());
    let listener = match std::net::TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    let count = Arc::new(AtomicU64::new(0));
    let printer = count.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            println!("mails {}", printer.load(Ordering::Relaxed));
        }
    });
    let mut server = Server::new(Counter(count));
    server
        .with_name("sink.local")
        .with_num_threads(32)
        .with_tcp_listener(listener);
    if let Err(e) = server.serve() {
        eprintln!("the SMTP sink stopped: {e}");
        std::process::exit(1);
    }
}
