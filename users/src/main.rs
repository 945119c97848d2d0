//! The users service binary: load the configuration, set up logs, build [`users::App`] and
//! run it until Ctrl-C or SIGTERM.

use std::path::PathBuf;

const HELP: &str = "users — the Facteur users REST service\n\nUSAGE:\n    users [--config PATH]\n\nOPTIONS:\n    --config PATH   the configuration file (default: $FACTEUR_CONFIG, else ./config.yaml)\n    -h, --help      this text";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("-h" | "--help", _) => {
                println!("{HELP}");
                return Ok(());
            }
            ("--config", Some(p)) => path = Some(PathBuf::from(p)),
            _ => exit_with(&format!("unexpected argument {arg:?}; see --help")),
        }
    }
    let config =
        domain::config::Config::load(path.as_deref()).unwrap_or_else(|e| exit_with(&e.to_string()));
    let secrets = config
        .check_secrets(domain::config::Process::Users)
        .unwrap_or_else(|e| exit_with(&e.to_string()));
    domain::telemetry::init(&config.log);
    if let Some(warning) = secrets.warning() {
        tracing::warn!("{warning}");
    }
    let transport = transport::connect(&config.transport);
    let app = users::App::build(&config, transport.clone()).await?;
    tracing::info!(address = %app.local_addr(), transport = %config.transport.kind, "users listening on http://{}", app.local_addr());
    app.run_until_stopped(shutdown_signal()).await?;
    transport.close().await;
    Ok(())
}

fn exit_with(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutdown signal received");
}
