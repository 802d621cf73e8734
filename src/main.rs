//! The `vocals` command line: parses flags, loads the configuration, sets up logging and hands over to the
//! library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vocals::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "vocals", version, about = "SIP user agent and RTP media server for voice-AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. With no config file it runs on built-in defaults.
    Serve {
        /// TOML configuration file (see config/vocals.toml for every key).
        #[arg(long, short, env = "VOCALS_CONFIG")]
        config: Option<PathBuf>,
        /// Validate the configuration, print the effective values and exit.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, check } => serve(config, check),
    }
}

fn serve(file: Option<PathBuf>, check: bool) -> ExitCode {
    let config = match Config::load(file.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    init_tracing(&config);
    // One TLS provider for the whole process, ring, before anything builds a TLS configuration (two
    // providers linked in make rustls panic at run time).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vocals: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = match vocals::metrics::install() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics disabled: the recorder could not be installed");
            None
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let listeners = vocals::daemon::bind(&config).await?;
        vocals::daemon::serve(config, listeners, metrics, shutdown_signal()).await?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
        LogFormat::Plain => builder.with_ansi(false).without_time().init(),
        LogFormat::Auto if std::io::stderr().is_terminal() => builder.init(),
        LogFormat::Auto => builder.with_ansi(false).without_time().init(),
    }
}
