//! `cargo run`: the whole Facteur stack in one process, on the embedded defaults of
//! `config.yaml` — socket.io transport, SQLite under `./var/`, mails as `.eml` files under
//! `./var/mail/`. Production runs the `users` and `mailer` binaries separately.

use domain::config::{Config, Process, TransportKind};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::watch;

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
        Ok(Some(path)) => path,
        Ok(None) => {
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
    domain::telemetry::init(&config.log);
    if let Some(warning) = secrets.warning() {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facteur stopped: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` asks for the help text.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Option<PathBuf>>, String> {
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--config" => match args.next() {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err("--config needs a path".into()),
            },
            other => match other.strip_prefix("--config=") {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    Ok(Some(path))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let mailer = mailer::App::build(&config).await?;
    let transport = transport::connect(&config.transport);
    let users = users::App::build(&config, transport).await?;
    print_where_everything_is(&config, users.local_addr(), mailer.local_addr());

    let mailer_run = tokio::spawn(mailer.run_until_stopped(stopped()));
    let users_run = tokio::spawn(users.run_until_stopped(stopped()));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing what is in flight");
        let _ = stop_tx.send(true);
    });
    let (users_result, mailer_result) = tokio::join!(users_run, mailer_run);
    users_result??;
    mailer_result??;
    Ok(())
}

fn print_where_everything_is(
    config: &Config,
    users: std::net::SocketAddr,
    mailer: std::net::SocketAddr,
) {
    let transport = match config.transport.kind {
        TransportKind::Socketio => format!("socket.io ({})", config.transport.socketio.url),
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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
