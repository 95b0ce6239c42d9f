//! The `whatsapp-sidecar` binary: parses the command line, loads the configuration, starts
//! tracing and calls into the library.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::config::{Config, LogFormat};
use whatsapp_sidecar::{check, daemon, sandbox, telemetry};

/// jemalloc instead of the system allocator: the daemon allocates and frees many small buffers
/// per webhook and per Odoo answer; glibc's malloc took about a quarter of its CPU time at 1,000
/// messages/s, and jemalloc cut the daemon's CPU per message by 10-15 % at the same memory
/// (mimalloc cut it too but doubled the resident memory). See the README's performance section.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// WhatsApp Business messaging for Odoo: the daemon that runs beside Odoo.
#[derive(Debug, Parser)]
#[command(name = "whatsapp-sidecar", version, about)]
struct Cli {
    /// The configuration file [default: ./whatsapp-sidecar.toml, then
    /// /etc/whatsapp-sidecar/whatsapp-sidecar.toml].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format (overrides log.format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or Ctrl-C.
    Run,
    /// Check the configuration and every peer; one OK/FAIL line per check, non-zero exit on a FAIL.
    Check,
    /// Run the built-in WhatsApp Cloud API sandbox (try everything without a Meta account), or
    /// inject an inbound message into a running one.
    Sandbox(Box<sandbox::cli::SandboxArgs>),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Pretty,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run => {
            let config = Config::load(cli.config.as_deref())?;
            let format = log_format(cli.log_format, config.log.format);
            telemetry::init(format, &config.log.filter);
            let shutdown = shutdown_on_signal();
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .with_context(|| {
                    format!(
                        "server.listen: cannot listen on {}; is another process using it?",
                        config.server.listen
                    )
                })?;
            daemon::run(config, listener, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox(args) => {
            telemetry::init(log_format(cli.log_format, LogFormat::Pretty), "info");
            sandbox::cli::run_cli(*args, shutdown_on_signal())
                .await
                .context("sandbox")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let ok = check::run(cli.config.as_deref(), &mut std::io::stdout()).await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn log_format(arg: Option<LogFormatArg>, configured: LogFormat) -> LogFormat {
    match arg {
        Some(LogFormatArg::Pretty) => LogFormat::Pretty,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => configured,
    }
}

/// A token cancelled on SIGTERM or Ctrl-C (SIGINT).
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the daemon");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
