//! `cargo run`: the whole Facteur stack in one process, on the embedded defaults of
//! `config.yaml` — socket.io transport, SQLite under `./var/`, mails as `.eml` files under
//! `./var/mail/`. Production runs the `users` and `mailer` binaries separately.
//!
//! The two services run side by side until Ctrl-C or SIGTERM. When either stops first (an
//! error, a panic), the launcher logs which and why, stops the other gracefully, and exits 1.

use domain::config::{Command, Config, Process, TransportKind, parse_args};
use runtime::signal::shutdown_signal;
use std::fmt::Display;
use std::process::ExitCode;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

const HELP: &str = "\
facteur — runs the users and mailer services together

USAGE:
    cargo run [-- --config PATH]

OPTIONS:
    --config PATH   the configuration file (default: $FACTEUR_CONFIG, else ./config.yaml)
    -h, --help      this text

Every configuration key can be overridden by an environment variable: FACTEUR_ and the key
path in capitals with __ between levels. Switch the transport to RabbitMQ with

    FACTEUR_TRANSPORT__KIND=amqp cargo run

Production runs the two services as separate processes: `cargo run -p users` and
`cargo run -p mailer` (the same configuration file and variables).";

fn main() -> ExitCode {
    let config_path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(path)) => path,
        Ok(Command::Help) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(config_path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let secrets = match config.check_secrets(Process::Launcher) {
        Ok(secrets) => secrets,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = runtime::telemetry::init(&config.log, &config.telemetry, "facteur");
    if let Some(warning) = secrets.warning() {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            runtime::telemetry::flush_lines();
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(config));
    telemetry.shutdown();
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        // A mailer setting that only the mailer can check (its templates, its DKIM key) is
        // as wrong as written as any other key: one line and exit 2.
        Err(e)
            if e.downcast_ref::<mailer::StartupError>()
                .is_some_and(mailer::StartupError::is_configuration) =>
        {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("facteur stopped: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds both services, serves until a signal or until either stops, and says whether
/// both ended cleanly. A failure to build is an `Err`.
async fn run(config: Config) -> anyhow::Result<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let mailer = mailer::App::build(&config).await?;
    let transport = transport::connect(&config.transport);
    let users = users::App::build(&config, transport.clone()).await?;
    print_where_everything_is(&config, users.local_addr(), mailer.local_addr());

    let mailer_run = tokio::spawn(mailer.run_until_stopped(stopped()));
    let users_run = tokio::spawn(users.run_until_stopped(stopped()));
    let clean = supervise(users_run, mailer_run, stop_tx, shutdown_signal()).await;
    transport.close().await;
    Ok(clean)
}

/// Waits for `signal` or for either service to finish, whichever comes first. Then sends
/// `stop` so the other one shuts down gracefully, and waits for it: one service never keeps
/// serving alone. True when both ended without an error or a panic.
async fn supervise<U: Display, M: Display>(
    mut users: JoinHandle<Result<(), U>>,
    mut mailer: JoinHandle<Result<(), M>>,
    stop: watch::Sender<bool>,
    signal: impl Future<Output = ()>,
) -> bool {
    let (users_clean, mailer_clean) = tokio::select! {
        () = signal => {
            let _ = stop.send(true);
            (report_exit("users", users.await), report_exit("mailer", mailer.await))
        }
        outcome = &mut users => {
            let clean = report_exit("users", outcome);
            tracing::warn!("the users service stopped on its own: stopping the mailer");
            let _ = stop.send(true);
            (clean, report_exit("mailer", mailer.await))
        }
        outcome = &mut mailer => {
            let clean = report_exit("mailer", outcome);
            tracing::warn!("the mailer stopped on its own: stopping the users service");
            let _ = stop.send(true);
            (report_exit("users", users.await), clean)
        }
    };
    users_clean && mailer_clean
}

/// Logs how the service `name` ended; true for a clean stop.
fn report_exit<E: Display>(name: &str, outcome: Result<Result<(), E>, JoinError>) -> bool {
    match outcome {
        Ok(Ok(())) => {
            tracing::info!("{name} has stopped");
            true
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "{name} failed");
            false
        }
        Err(error) => {
            tracing::error!(%error, "{name}'s task did not complete (it panicked or was cancelled)");
            false
        }
    }
}

fn print_where_everything_is(
    config: &Config,
    users: std::net::SocketAddr,
    mailer: std::net::SocketAddr,
) {
    let transport = match config.transport.kind {
        TransportKind::Socketio => format!(
            "socket.io ({})",
            domain::config::redact_user_info(&config.transport.socketio.url)
        ),
        TransportKind::Amqp => format!(
            "RabbitMQ (exchange {}, queue {})",
            config.transport.amqp.exchange, config.transport.amqp.queue
        ),
    };
    let mails = match &config.mailer.smtp {
        Some(smtp) => format!("SMTP {}:{}", smtp.host, smtp.port),
        None => format!(
            "{}/ (one .eml file per mail)",
            config.mailer.outbox_dir.display()
        ),
    };
    println!(
        "\nFacteur is running — Ctrl-C to stop\n\
         \n  users API     http://{users}/users      docs http://{users}/docs\
         \n  mailer API    http://{mailer}/mails     docs http://{mailer}/docs\
         \n  live page     http://{mailer}/\
         \n  health        http://{users}/health  http://{mailer}/health\
         \n  transport     {transport}\
         \n  mails         {mails}\
         \n  admin token   users.admin_token in the configuration (config.yaml)\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A service that serves until `stop` and then reports a clean, graceful shutdown.
    fn until_stopped(
        stop: &watch::Sender<bool>,
        shut_down: Arc<AtomicBool>,
    ) -> JoinHandle<Result<(), String>> {
        let mut stopped = stop.subscribe();
        tokio::spawn(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
            shut_down.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    #[tokio::test]
    async fn a_mailer_that_fails_stops_the_users_service_and_the_launcher_fails() {
        let (stop, _) = watch::channel(false);
        let users_shut_down = Arc::new(AtomicBool::new(false));
        let users = until_stopped(&stop, users_shut_down.clone());
        let mailer = tokio::spawn(async { Err::<(), _>("the mailer's HTTP server failed") });

        let clean = supervise(users, mailer, stop, std::future::pending()).await;

        assert!(!clean, "a failed mailer makes the launcher fail");
        assert!(
            users_shut_down.load(Ordering::SeqCst),
            "users shut down gracefully"
        );
    }

    #[tokio::test]
    async fn a_users_service_that_panics_stops_the_mailer_and_the_launcher_fails() {
        let (stop, _) = watch::channel(false);
        let mailer_shut_down = Arc::new(AtomicBool::new(false));
        let mailer = until_stopped(&stop, mailer_shut_down.clone());
        let users = tokio::spawn(async { panic!("the relay task panicked") });

        let clean = supervise::<String, String>(users, mailer, stop, std::future::pending()).await;

        assert!(!clean, "a panic makes the launcher fail");
        assert!(
            mailer_shut_down.load(Ordering::SeqCst),
            "the mailer shut down gracefully"
        );
    }

    #[tokio::test]
    async fn a_signal_stops_both_and_clean_stops_succeed() {
        let (stop, _) = watch::channel(false);
        let (users_down, mailer_down) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let users = until_stopped(&stop, users_down.clone());
        let mailer = until_stopped(&stop, mailer_down.clone());

        let clean = supervise(users, mailer, stop, async {}).await;

        assert!(clean);
        assert!(users_down.load(Ordering::SeqCst) && mailer_down.load(Ordering::SeqCst));
    }
}
