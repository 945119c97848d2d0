//! The mailer process: `mailer [--config PATH]`. Loads the configuration, sets up logs,
//! builds the [`mailer::App`] and serves until Ctrl-C or SIGTERM.

use std::path::PathBuf;

/// glibc's allocator took about a tenth of the mailer's CPU under load (`perf`: consolidating
/// and unlinking chunks across threads); mimalloc keeps per-thread free lists. Built with
/// `no_thp`: with transparent huge pages its arenas made the mailer 60 MiB resident instead
/// of 37 (docs/benchmarks/mailer.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: mailer [--config PATH]\n\nRuns the Facteur mailer. The configuration comes from PATH, else $FACTEUR_CONFIG, else ./config.yaml, with FACTEUR_* variables on top.";

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            "--config" => match args.next() {
                Some(p) => path = Some(PathBuf::from(p)),
                None => exit_with("--config needs a path"),
            },
            other => exit_with(&format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
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
    domain::telemetry::init(&config.log);
    if let Some(warning) = secrets.warning() {
        tracing::warn!("{warning}");
    }
    // Exit code 2 is for a configuration that is invalid as written; a start that fails on
    // something outside (a database that does not answer) is 1.
    let app = match mailer::App::build(&config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "the mailer could not start");
            let invalid_as_written = matches!(e, mailer::StartupError::From { .. });
            std::process::exit(if invalid_as_written { 2 } else { 1 });
        }
    };
    tracing::info!(address = %app.local_addr(), transport = %config.transport.kind, "mailer listening on http://{}", app.local_addr());
    if let Err(e) = app.run_until_stopped(shutdown_signal()).await {
        tracing::error!(error = %e, "the mailer stopped on an error");
        std::process::exit(1);
    }
}

fn exit_with(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2);
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
