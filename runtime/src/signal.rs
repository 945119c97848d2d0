//! The signal every Facteur process stops on.

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `docker stop` and systemd send), and logs
/// one info line saying so. If a handler cannot be installed, waits for the other alone.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
    let name = tokio::select! {
        _ = ctrl_c => "Ctrl-C",
        _ = terminate => "SIGTERM",
    };
    tracing::info!(
        signal = name,
        "shutdown signal received: finishing what is in flight"
    );
}
