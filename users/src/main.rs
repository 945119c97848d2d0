//! The users service binary: load the configuration, set up logs, build [`users::App`] and
//! run it until Ctrl-C or SIGTERM.

use domain::config::{Command, Config, Process, parse_args};
use runtime::signal::shutdown_signal;

const HELP: &str = "users — the Facteur users REST service\n\nUSAGE:\n    users [--config PATH]\n\nOPTIONS:\n    --config PATH   the configuration file (default: $FACTEUR_CONFIG, else ./config.yaml)\n    -h, --help      this text";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(path)) => path,
        Ok(Command::Help) => {
            println!("{HELP}");
            return Ok(());
        }
        Err(message) => exit_with(&format!("{message}; see --help")),
    };
    let config = Config::load(path.as_deref()).unwrap_or_else(|e| exit_with(&e.to_string()));
    let secrets = config
        .check_secrets(Process::Users)
        .unwrap_or_else(|e| exit_with(&e.to_string()));
    let telemetry = runtime::telemetry::init(&config.log, &config.telemetry, "users");
    if let Some(warning) = secrets.warning() {
        tracing::warn!("{warning}");
    }
    let transport = transport::connect(&config.transport);
    let app = users::App::build(&config, transport.clone())
        .await
        .inspect_err(|_| runtime::telemetry::flush_lines())?;
    tracing::info!(address = %app.local_addr(), transport = %config.transport.kind, "users listening on http://{}", app.local_addr());
    app.run_until_stopped(shutdown_signal())
        .await
        .inspect_err(|_| runtime::telemetry::flush_lines())?;
    transport.close().await;
    telemetry.shutdown();
    Ok(())
}

/// Prints `message` on stderr and exits 2, the code of a start refused as configured.
fn exit_with(message: &str) -> ! {
    runtime::telemetry::flush_lines();
    eprintln!("{message}");
    std::process::exit(2)
}
