//! The mailer process: `mailer [--config PATH]`. Loads the configuration, sets up logs,
//! builds the [`mailer::App`] and serves until Ctrl-C or SIGTERM.

use domain::config::{Command, parse_args};
use runtime::signal::shutdown_signal;

/// mimalloc keeps per-thread free lists, where glibc's allocator spends time consolidating and
/// unlinking chunks across threads. Built with `no_thp`, since transparent huge pages make
/// its arenas resident far beyond what they hold (figures in docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: mailer [--config PATH]\n\nRuns the Facteur mailer. The configuration comes from PATH, else $FACTEUR_CONFIG, else ./config.yaml, with FACTEUR_* variables on top.";

fn main() {
    let path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(path)) => path,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(message) => exit_with(&format!("{message}\n{USAGE}")),
    };
    let config =
        domain::config::Config::load(path.as_deref()).unwrap_or_else(|e| exit_with(&e.to_string()));
    let secrets = config
        .check_secrets(domain::config::Process::Mailer)
        .unwrap_or_else(|e| exit_with(&e.to_string()));
    // Built by hand rather than with `#[tokio::main]`: the worker count is a configuration
    // key, read before the runtime exists.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.mailer.worker_threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("the mailer could not start its runtime: {e}");
            std::process::exit(1);
        });
    runtime.block_on(serve(config, secrets));
}

async fn serve(config: domain::config::Config, secrets: domain::config::SecretsCheck) {
    let telemetry = runtime::telemetry::init(&config.log, &config.telemetry, "mailer");
    if let Some(warning) = secrets.warning() {
        tracing::warn!("{warning}");
    }
    // Exit code 2 is for a configuration that is invalid as written; a start that fails on
    // something outside (a database that does not answer) is 1.
    let app = match mailer::App::build(&config).await {
        Ok(app) => app,
        // One line naming the file and line, or the key, like a configuration error.
        Err(
            e @ (mailer::StartupError::Templates(_)
            | mailer::StartupError::SuppressionKey(_)
            | mailer::StartupError::Dkim(_)),
        ) => exit_with(&e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "the mailer could not start");
            std::process::exit(if e.is_configuration() { 2 } else { 1 });
        }
    };
    tracing::info!(address = %app.local_addr(), transport = %config.transport.kind, "mailer listening on http://{}", app.local_addr());
    if let Err(e) = app.run_until_stopped(shutdown_signal()).await {
        tracing::error!(error = %e, "the mailer stopped on an error");
        std::process::exit(1);
    }
    telemetry.shutdown();
}

/// Prints `message` on stderr and exits 2, the code of a start refused as configured.
fn exit_with(message: &str) -> ! {
    runtime::telemetry::flush_lines();
    eprintln!("{message}");
    std::process::exit(2);
}
