//! The `whatsapp-sidecar` binary: parses the command line, starts tracing, turns Ctrl-C and
//! SIGTERM into a cancellation token and calls into the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use whatsapp_sidecar::sandbox;

#[derive(Parser)]
#[command(name = "whatsapp-sidecar", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in WhatsApp Cloud API sandbox (try everything without a Meta account), or
    /// inject an inbound message into a running one.
    Sandbox(sandbox::cli::SandboxArgs),
}

/// Cancels `token` on Ctrl-C or SIGTERM.
fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(e) => {
                        tracing::warn!("cannot listen for SIGTERM: {e}");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        token.cancel();
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone());
    match cli.command {
        Command::Sandbox(args) => sandbox::cli::run_cli(args, shutdown)
            .await
            .context("sandbox")?,
    }
    Ok(())
}
